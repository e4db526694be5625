#!/usr/bin/env bash
# Kafka Connect connector configs (connectors/*.properties) and the search indexer app.
# Sourced after stack/lib.sh; defines connectors_register and the search-indexer helpers.

CONNECTORS_DIR="$REPO_ROOT/connectors"
CONNECT_URL="${KAFKA_CONNECT_URL:-http://127.0.0.1:8083}"

# properties_to_json FILE: a flat JSON object of FILE's key=value lines. Comments (# or !) and
# blank lines are skipped; the key ends at the first '='; no line continuations or escapes.
properties_to_json() {
  jq -R -n '
    [inputs
      | sub("^\\s+"; "")
      | select(length > 0 and (startswith("#") | not) and (startswith("!") | not))
      | capture("^(?<k>[^=]+?)\\s*=\\s*(?<v>.*?)\\s*$")
      | {(.k): .v}]
    | add // {}' <"$1"
}

# connectors_register [DIR]: PUT /connectors/<name>/config for every DIR/*.properties
# (name = file name without .properties). PUT creates or replaces, so it is idempotent; an
# unchanged config leaves the running connector alone. Fails if Connect rejects a config.
connectors_register() {
  local dir="${1:-$CONNECTORS_DIR}" file name body code
  for file in "$dir"/*.properties; do
    [[ -e "$file" ]] || continue
    name="$(basename "$file" .properties)"
    body="$(properties_to_json "$file")"
    code="$(curl -sS -o "$RUN_DIR/connector-$name.response" -w '%{http_code}' --max-time 60 \
      -X PUT -H 'Content-Type: application/json' --data "$body" \
      "$CONNECT_URL/connectors/$name/config")" || return 1
    if [[ "$code" != 200 && "$code" != 201 ]]; then
      say "connector $name: Connect answered $code: $(cat "$RUN_DIR/connector-$name.response")"
      return 1
    fi
    say "connector $name registered ($code)"
  done
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
