#!/usr/bin/env bash
# Kafka Connect (distributed mode, REST on 127.0.0.1:8083) with the Debezium MariaDB connector plugin.
# Sourced after stack/lib.sh; defines connect_install, connect_start, connect_ready, connect_stop.
# Uses the jars that stack/components/kafka.sh downloads (sourced here if it was not yet).

if [[ "$(type -t kafka_fetch_jars)" != function ]]; then
  # shellcheck source-path=SCRIPTDIR source=kafka.sh
  source "$REPO_ROOT/stack/components/kafka.sh"
fi

CONNECT_CONF="$REPO_ROOT/stack/config/connect"
CONNECT_DATA="$DATA_DIR/connect"
CONNECT_PORT=8083
DEBEZIUM_HOME="$CACHE_DIR/debezium-$DEBEZIUM_VERSION"
DEBEZIUM_PLUGINS="$DEBEZIUM_HOME/plugins"
CONNECT_HEAP_OPTS="${CONNECT_HEAP_OPTS:--Xms256m -Xmx1g}"
CONNECT_REQUIRED_PLUGIN="io.debezium.connector.mariadb.MariaDbConnector"

# The Debezium MariaDB connector plugin archive from Central, unpacked into $DEBEZIUM_PLUGINS once.
connect_fetch_debezium() {
  [[ -f "$DEBEZIUM_PLUGINS/.complete" ]] && return 0
  mkdir -p "$DEBEZIUM_HOME"
  (
    flock 9
    [[ -f "$DEBEZIUM_PLUGINS/.complete" ]] && exit 0
    say "downloading the Debezium $DEBEZIUM_VERSION MariaDB connector into $DEBEZIUM_PLUGINS"
    local tmp="$DEBEZIUM_PLUGINS.partial"
    rm -rf "$tmp" "$DEBEZIUM_PLUGINS"
    mkdir -p "$tmp"
    kafka_mvn dependency:unpack \
      -Dartifact="io.debezium:debezium-connector-mariadb:$DEBEZIUM_VERSION:tar.gz:plugin" \
      -DoutputDirectory="$tmp" -Dmdep.overWriteReleases=true
    [[ -f "$tmp/debezium-connector-mariadb/debezium-connector-mariadb-$DEBEZIUM_VERSION.jar" ]] || {
      say "Debezium plugin incomplete in $tmp"
      exit 1
    }
    touch "$tmp/.complete"
    mv "$tmp" "$DEBEZIUM_PLUGINS"
  ) 9>"$DEBEZIUM_HOME/.lock"
}

connect_install() {
  kafka_fetch_jars
  connect_fetch_debezium
}

# The runtime copy of connect-distributed.properties: the repo's file plus plugin.path.
connect_write_config() {
  mkdir -p "$CONNECT_DATA/tmp"
  {
    cat "$CONNECT_CONF/connect-distributed.properties"
    printf '\n# Added by stack/components/connect.sh\nplugin.path=%s\n' "$DEBEZIUM_PLUGINS"
  } >"$CONNECT_DATA/connect-distributed.properties"
}

connect_start() {
  if is_running connect; then
    return 0
  fi
  if port_open "$CONNECT_PORT"; then
    say "port $CONNECT_PORT is taken by a process this stack did not start; not starting Connect"
    return 1
  fi
  if ! kafka_ready; then
    say "Kafka is not ready on 127.0.0.1:$KAFKA_PORT; start it (and wait_ready kafka) before Connect"
    return 1
  fi
  connect_install
  connect_write_config
  # shellcheck disable=SC2086
  start_daemon connect java $CONNECT_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
    -Djava.awt.headless=true -Djava.io.tmpdir="$CONNECT_DATA/tmp" \
    -Dlog4j2.configurationFile="$CONNECT_CONF/log4j2.properties" \
    -cp "$KAFKA_LIB/*" org.apache.kafka.connect.cli.ConnectDistributed \
    "$CONNECT_DATA/connect-distributed.properties"
}

# Ready when the worker has joined its group (GET /connectors answers) and lists the MariaDB plugin.
connect_ready() {
  port_open "$CONNECT_PORT" || return 1
  curl -fsS --max-time 5 "http://127.0.0.1:$CONNECT_PORT/connectors" >/dev/null || return 1
  local plugins
  plugins="$(curl -fsS --max-time 5 "http://127.0.0.1:$CONNECT_PORT/connector-plugins")" || return 1
  [[ "$plugins" == *"\"$CONNECT_REQUIRED_PLUGIN\""* ]]
}

connect_stop() {
  stop_daemon connect 60
}
