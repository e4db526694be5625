#!/usr/bin/env bash
# Shared helpers for the local stack. Sourced by stack/stack.sh and the component scripts.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK_DIR="${STACK_DIR:-$REPO_ROOT/.stack}"
DATA_DIR="$STACK_DIR/data"
LOG_DIR="$STACK_DIR/logs"
RUN_DIR="$STACK_DIR/run"
# Downloads and builds live outside the repo so a fresh clone reuses them.
CACHE_DIR="${GATEWAY_CACHE:-$HOME/.cache/gateway-payment}"
mkdir -p "$DATA_DIR" "$LOG_DIR" "$RUN_DIR" "$CACHE_DIR"

# shellcheck source=versions.env
source "$REPO_ROOT/stack/versions.env"

say() { printf '[stack] %s\n' "$*" >&2; }

pid_of() { cat "$RUN_DIR/$1.pid" 2>/dev/null || true; }

# is_running NAME: the recorded pid is a live process. kill -0 alone also succeeds on a
# zombie PID 1 has not reaped yet, so a crashed engine would not be restarted.
is_running() {
  local pid stat state
  pid="$(pid_of "$1")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  if [[ ! -d /proc/self ]]; then
    kill -0 "$pid" 2>/dev/null
    return
  fi
  stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || return 1
  # The command name (field 2) may hold spaces and ')'; the state follows the last ')'.
  state="${stat##*)}"
  state="${state# }"
  state="${state%% *}"
  [[ -n "$state" && "$state" != Z && "$state" != X ]]
}

# On shared cores the request path comes first: the api, produto, the sandbox and MariaDB
# keep the normal CPU priority, and the engines and workers behind them run at nice 10.
# They still get every cycle the request path leaves idle; a burst waits in the outbox.
BACKGROUND_NICE=10
BACKGROUND=(kafka connect opensearch temporal process-purchases payment-processing search-indexer webhooks)

# start_daemon NAME CMD...: runs CMD in its own session, logs to $LOG_DIR/NAME.log,
# records the pid so `down` stops only what `up` started.
start_daemon() {
  local name="$1"
  shift
  if is_running "$name"; then
    return 0
  fi
  if [[ " ${BACKGROUND[*]} " == *" $name "* ]]; then
    set -- nice -n "$BACKGROUND_NICE" "$@"
  fi
  rm -f "$RUN_DIR/$name.pid"
  # The child writes its own pid before exec, so the pid file is right even if setsid forks.
  setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$RUN_DIR/$name.pid" "$@" \
    >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
  local waited=0
  while [[ ! -s "$RUN_DIR/$name.pid" ]] && ((waited < 50)); do
    sleep 0.1
    waited=$((waited + 1))
  done
}

# stop_daemon NAME [TIMEOUT]: SIGTERM the process group, SIGKILL after TIMEOUT seconds.
stop_daemon() {
  local name="$1" timeout="${2:-30}" pid
  pid="$(pid_of "$name")"
  if [[ -z "$pid" ]] || ! kill -0 "$pid" 2>/dev/null; then
    rm -f "$RUN_DIR/$name.pid"
    return 0
  fi
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  local waited=0
  while kill -0 "$pid" 2>/dev/null && ((waited < timeout * 10)); do
    sleep 0.1
    waited=$((waited + 1))
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "$name did not stop in ${timeout}s; killing it"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$RUN_DIR/$name.pid"
}

# wait_ready NAME TIMEOUT: polls NAME_ready until it succeeds or TIMEOUT seconds pass.
wait_ready() {
  local name="$1" timeout="$2" start=$SECONDS
  until "${name}_ready" >/dev/null 2>&1; do
    if ((SECONDS - start >= timeout)); then
      say "$name is not ready after ${timeout}s; its log is $LOG_DIR/$name.log"
      tail -n 30 "$LOG_DIR/$name.log" >&2 2>/dev/null || true
      return 1
    fi
    if [[ -f "$RUN_DIR/$name.pid" ]] && ! is_running "$name"; then
      say "$name exited while starting; its log is $LOG_DIR/$name.log"
      tail -n 30 "$LOG_DIR/$name.log" >&2 2>/dev/null || true
      return 1
    fi
    sleep 0.5
  done
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# mvn_fetch POM_DIR OUT_DIR: copies a pom's runtime dependencies into OUT_DIR once.
mvn_fetch() {
  local pom_dir="$1" out="$2"
  if [[ -f "$out/.complete" ]]; then
    return 0
  fi
  rm -rf "$out"
  mkdir -p "$out"
  mvn -B -q -f "$pom_dir/pom.xml" -Dmaven.repo.local="$CACHE_DIR/m2" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$out" >&2 ||
    {
      rm -rf "$out"
      return 1
    }
  touch "$out/.complete"
}
