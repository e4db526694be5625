#!/usr/bin/env bash
# The project's own services, run from the compiled dist/ folder.
app_fn() { echo "${1//-/_}"; }

app_entry() {
  case "$1" in
    api) echo dist/api/main.js ;;
    produto) echo dist/produto/main.js ;;
    provider-sandbox) echo dist/provider-sandbox/main.js ;;
    process-purchases) echo dist/workers/process-purchases.js ;;
    payment-processing) echo dist/workers/payment-processing.js ;;
    search-indexer) echo dist/workers/search-indexer.js ;;
    webhooks) echo dist/workers/webhooks.js ;;
  esac
}

app_start() {
  is_running "$1" && return 0
  : >"$LOG_DIR/$1.log" # readiness reads this log, so it starts empty
  (cd "$REPO_ROOT" && start_daemon "$1" node "$(app_entry "$1")")
}

http_health() { curl -fsS -o /dev/null "http://127.0.0.1:$1/health"; }
api_ready() { http_health 3000; }
produto_ready() { http_health 3001; }
provider_sandbox_ready() { http_health 3002; }

# A worker logs "worker started" once it is connected and polling.
worker_polling() {
  grep -q '"worker started"' "$LOG_DIR/$1.log"
}
process_purchases_ready() { worker_polling process-purchases; }
payment_processing_ready() { worker_polling payment-processing; }
# Its dispatcher has joined its consumer group before the worker polls.
webhooks_ready() { worker_polling webhooks; }
