#!/usr/bin/env bash
# The local platform without Docker: up | down | status | logs [name] | test | install | infra
# Everything listens on 127.0.0.1; data, logs and pid files live under .stack/.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
for f in "$REPO_ROOT"/stack/components/*.sh; do
  # shellcheck source=/dev/null
  source "$f"
done

INFRA=(mariadb kafka connect opensearch temporal)
APPS=(provider-sandbox api produto process-purchases payment-processing search-indexer webhooks)
READY_TIMEOUT="${READY_TIMEOUT:-180}"

node_deps() {
  local sum
  sum="$(sha256sum "$REPO_ROOT/package-lock.json" | cut -d' ' -f1)"
  if [[ "$(cat "$REPO_ROOT/node_modules/.lock-sha" 2>/dev/null)" != "$sum" ]]; then
    say "installing npm packages"
    (cd "$REPO_ROOT" && npm ci --no-audit --no-fund >&2)
    echo "$sum" >"$REPO_ROOT/node_modules/.lock-sha"
  fi
  sum="$(sha256sum "$REPO_ROOT/prisma/schema.prisma" | cut -d' ' -f1)"
  if [[ "$(cat "$REPO_ROOT/generated/.schema-sha" 2>/dev/null)" != "$sum" ]]; then
    # Prisma 7's client needs no engine binary; the CLI would try to download one.
    (cd "$REPO_ROOT" && PRISMA_SCHEMA_ENGINE_BINARY=/bin/false npx prisma generate >/dev/null)
    echo "$sum" >"$REPO_ROOT/generated/.schema-sha"
  fi
}

# Debian packages: the database server, docker-compose for the compose-file check, and
# Chromium for the Web UI codec test.
system_packages() {
  local missing=() p
  for p in mariadb-server docker-compose curl jq chromium; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if ((${#missing[@]})); then
    say "installing ${missing[*]} from Debian"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
    # The package may start its own server on 3306; ours must own that port.
    service mariadb stop >/dev/null 2>&1 || true
  fi
}

# Installs run side by side: the Go build and the Maven downloads are the slow parts.
install_all() {
  local pids=() names=() failed=0 i
  system_packages
  for c in "${INFRA[@]}"; do
    "${c}_install" >"$LOG_DIR/install-$c.log" 2>&1 &
    pids+=($!)
    names+=("$c")
  done
  node_deps
  for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
      say "installing ${names[$i]} failed; see $LOG_DIR/install-${names[$i]}.log"
      tail -n 20 "$LOG_DIR/install-${names[$i]}.log" >&2
      failed=1
    fi
  done
  return "$failed"
}

infra_up() {
  install_all
  build
  for c in mariadb kafka opensearch temporal; do
    is_running "$c" || "${c}_start"
  done
  wait_ready mariadb "$READY_TIMEOUT"
  mariadb_init
  wait_ready kafka "$READY_TIMEOUT"
  # Tables before the connector: its first snapshot reads their schema from the database.
  # Registered first, it raced the migrations, and a table created during its snapshot
  # was unknown to it afterwards (the task failed on the first purchase row).
  (cd "$REPO_ROOT" && node dist/ops/cli.js setup)
  is_running connect || connect_start
  wait_ready connect "$READY_TIMEOUT"
  connectors_register
  wait_ready opensearch "$READY_TIMEOUT"
  wait_ready temporal "$READY_TIMEOUT"
}

build() {
  (cd "$REPO_ROOT" && npm run -s build)
}

apps_up() {
  local a
  for a in "${APPS[@]}"; do
    app_start "$a"
  done
  for a in "${APPS[@]}"; do
    wait_ready "$(app_fn "$a")" 60
  done
}

print_urls() {
  cat <<URLS
Gateway Payment is up.
  API                 http://127.0.0.1:3000   (GET /health)
  produto (catalog)   http://127.0.0.1:3001
  provider sandbox    http://127.0.0.1:3002
  Temporal UI         http://127.0.0.1:8233
  Temporal gRPC       127.0.0.1:7233
  OpenSearch          http://127.0.0.1:9200
  Kafka Connect       http://127.0.0.1:8083
  Kafka               127.0.0.1:9092
  MariaDB             127.0.0.1:3306  (db gateway, user gateway)
Logs: $LOG_DIR   Stop: ./stack/stack.sh down
URLS
}

status() {
  local c fn state
  for c in "${INFRA[@]}" "${APPS[@]}"; do
    fn="$(app_fn "$c")"
    if is_running "$c" && "${fn}_ready" >/dev/null 2>&1; then
      state="ready"
    elif is_running "$c"; then
      state="running, not ready"
    else
      state="stopped"
    fi
    printf '%-20s %-20s pid=%s\n' "$c" "$state" "$(pid_of "$c")"
  done
}

down() {
  local i c
  for ((i = ${#APPS[@]} - 1; i >= 0; i--)); do
    stop_daemon "${APPS[$i]}" 20
  done
  for ((i = ${#INFRA[@]} - 1; i >= 0; i--)); do
    c="${INFRA[$i]}"
    "${c}_stop"
  done
  say "stopped"
}

cmd="${1:-}"
case "$cmd" in
  up)
    start=$SECONDS
    infra_up
    apps_up
    print_urls
    say "up in $((SECONDS - start))s"
    ;;
  infra)
    infra_up
    ;;
  install)
    # Downloads and builds only; nothing is started.
    install_all
    build
    ;;
  down) down ;;
  restart)
    # restart APP...: stops and starts app pieces, with the caller's environment (WORKER_*).
    shift
    for a in "$@"; do
      [[ " ${APPS[*]} " == *" $a "* ]] || { echo "restart: $a is not one of: ${APPS[*]}" >&2; exit 2; }
      stop_daemon "$a" 20
      app_start "$a"
      wait_ready "$(app_fn "$a")" 60
    done
    ;;
  status) status ;;
  logs)
    if [[ -n "${2:-}" ]]; then tail -n 200 -F "$LOG_DIR/$2.log"; else tail -n 20 -F "$LOG_DIR"/*.log; fi
    ;;
  test)
    # Infra only: the tests start the app pieces they need in-process, on their own queues.
    infra_up
    cd "$REPO_ROOT" && npx jest --ci
    ;;
  *)
    echo "usage: $0 up | down | restart app... | status | logs [name] | test | install | infra" >&2
    exit 2
    ;;
esac
