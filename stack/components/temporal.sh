#!/usr/bin/env bash
# Temporal dev server (with Web UI) from the `temporal` CLI, built with `go install`.
# State lives in a SQLite file so open workflows survive a restart of the stack.
# WAL with synchronous=NORMAL survives a crash of the server process but may lose the last
# commits on a power cut; it gives 2.5-5x the default's throughput here (docs/benchmarks.md).
TEMPORAL_BIN="$CACHE_DIR/bin/temporal"

temporal_install() {
  # `go install` builds report version 0.0.0-DEV, so a stamp file records what was built.
  if [[ -x "$TEMPORAL_BIN" && "$(cat "$TEMPORAL_BIN.version" 2>/dev/null)" == "$TEMPORAL_CLI_VERSION" ]]; then
    temporal_link
    return 0
  fi
  say "building temporal CLI v$TEMPORAL_CLI_VERSION with go install (slow the first time; cached in $CACHE_DIR)"
  GOPATH="$CACHE_DIR/gopath" GOCACHE="$CACHE_DIR/gocache" GOBIN="$CACHE_DIR/bin" CGO_ENABLED=0 \
    go install "github.com/temporalio/cli/cmd/temporal@v$TEMPORAL_CLI_VERSION" >&2
  echo "$TEMPORAL_CLI_VERSION" >"$TEMPORAL_BIN.version"
  temporal_link
}

# The README's and the runbook's `temporal ...` commands run as written: the CLI goes on
# PATH as /usr/local/bin/temporal, unless another temporal is there already.
temporal_link() {
  local link=/usr/local/bin/temporal
  if [[ ! -e "$link" || -L "$link" ]] && [[ -w "$(dirname "$link")" ]]; then
    ln -sfn "$TEMPORAL_BIN" "$link"
  fi
}

# Tests run in gateway-test, so they never touch the default namespace operators use.
temporal_start() {
  mkdir -p "$DATA_DIR/temporal"
  start_daemon temporal "$TEMPORAL_BIN" server start-dev \
    --db-filename "$DATA_DIR/temporal/temporal.db" \
    --sqlite-pragma journal_mode=wal --sqlite-pragma synchronous=normal \
    --ip 127.0.0.1 --port 7233 --ui-ip 127.0.0.1 --ui-port 8233 \
    --namespace default --namespace gateway-test \
    --log-format json --log-level warn \
    --search-attribute PurchaseId=Keyword \
    --search-attribute IdempotencyKey=Keyword \
    --search-attribute MerchantId=Keyword \
    --search-attribute CustomerId=Keyword \
    --search-attribute PurchaseStatus=Keyword \
    --search-attribute AmountMinor=Int
}

temporal_ready() {
  "$TEMPORAL_BIN" operator cluster health --address 127.0.0.1:7233 2>/dev/null | grep -q SERVING &&
    curl -fsS -o /dev/null http://127.0.0.1:8233/
}

temporal_stop() {
  stop_daemon temporal 30
}
