#!/usr/bin/env bash
# Kafka Connect connector configs (connectors/*.properties) and the search indexer app.
# Sourced after stack/lib.sh; defines connectors_register, the readiness checks and the
# search-indexer helpers.

CONNECTORS_DIR="$REPO_ROOT/connectors"
CONNECT_URL="${KAFKA_CONNECT_URL:-http://127.0.0.1:8083}"

# connectors_register: PUT every connectors/*.properties into Connect, by `node dist/ops/cli.js
# connect register` (search/connect.ts), the same command docker-compose runs. Idempotent.
connectors_register() {
  (cd "$REPO_ROOT" && KAFKA_CONNECT_URL="$CONNECT_URL" node dist/ops/cli.js connect register) |
    while read -r line; do say "connector $line"; done
  return "${PIPESTATUS[0]}"
}

# connector_running NAME: the connector and all its tasks report RUNNING.
connector_running() {
  curl -fsS --max-time 5 "$CONNECT_URL/connectors/$1/status" |
    jq -e '.connector.state == "RUNNING" and (.tasks | length > 0)
      and all(.tasks[]; .state == "RUNNING")' >/dev/null
}

# connectors_ready: every connector in connectors/ is running.
connectors_ready() {
  local file
  for file in "$CONNECTORS_DIR"/*.properties; do
    [[ -e "$file" ]] || continue
    connector_running "$(basename "$file" .properties)" || return 1
  done
}

# The search indexer runs as an app (stack/components/apps.sh starts dist/ entries by name).
# It logs "indexer started" once it has joined its consumer group.
search_indexer_ready() { grep -q '"indexer started"' "$LOG_DIR/search-indexer.log" 2>/dev/null; }
