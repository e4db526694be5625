#!/usr/bin/env bash
# Kafka (KRaft, single node: broker 127.0.0.1:9092, controller 127.0.0.1:9093) from Maven Central jars.
# Sourced after stack/lib.sh; defines kafka_install, kafka_start, kafka_ready, kafka_stop.
# Also defines helpers that stack/components/connect.sh uses (kafka_fetch_jars, kafka_java).

KAFKA_HOME="$CACHE_DIR/kafka-$KAFKA_VERSION"
KAFKA_LIB="$KAFKA_HOME/lib"
KAFKA_CONF="$REPO_ROOT/stack/config/kafka"
KAFKA_DATA="$DATA_DIR/kafka"
KAFKA_PORT=9092
KAFKA_CONTROLLER_PORT=9093
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}"

# kafka_java ARGS...: a JVM with the Kafka jars on its classpath, for the command-line tools.
# C1 only and a small heap: the tools are short-lived and the box has 2 cores.
kafka_java() {
  java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
    -Dlog4j2.configurationFile="$KAFKA_CONF/tools-log4j2.properties" \
    -cp "$KAFKA_LIB/*" "$@"
}

# kafka_mvn ARGS...: Maven on stack/maven/kafka/pom.xml with the stack's repository and versions.
kafka_mvn() {
  mvn -B -q -f "$REPO_ROOT/stack/maven/kafka/pom.xml" -Dmaven.repo.local="$CACHE_DIR/m2" \
    -Dkafka.version="$KAFKA_VERSION" -Dlog4j.version="$LOG4J_VERSION" "$@" >&2
}

# kafka_fetch_jars: the broker, Connect and tool jars in $KAFKA_LIB, once. Safe to call from
# several processes at the same time (flock), and a failed download leaves nothing behind.
kafka_fetch_jars() {
  [[ -f "$KAFKA_LIB/.complete" ]] && return 0
  mkdir -p "$KAFKA_HOME"
  (
    flock 9
    [[ -f "$KAFKA_LIB/.complete" ]] && exit 0
    say "downloading Kafka $KAFKA_VERSION jars into $KAFKA_LIB"
    local tmp="$KAFKA_LIB.partial"
    rm -rf "$tmp" "$KAFKA_LIB"
    mkdir -p "$tmp"
    kafka_mvn dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp"
    [[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" && -f "$tmp/connect-runtime-$KAFKA_VERSION.jar" ]] || {
      say "Kafka jars incomplete in $tmp"
      exit 1
    }
    touch "$tmp/.complete"
    mv "$tmp" "$KAFKA_LIB"
  ) 9>"$KAFKA_HOME/.lock"
}

kafka_install() {
  kafka_fetch_jars
}

# The runtime copy of server.properties: the repo's file plus log.dirs under the data dir.
kafka_write_config() {
  mkdir -p "$KAFKA_DATA/log" "$KAFKA_DATA/tmp"
  {
    cat "$KAFKA_CONF/server.properties"
    printf '\n# Added by stack/components/kafka.sh\nlog.dirs=%s\n' "$KAFKA_DATA/log"
  } >"$KAFKA_DATA/server.properties"
}

# A cluster id as `kafka.tools.StorageTool random-uuid` makes one (16 random bytes, URL-safe
# base64 without padding, not starting with '-'), without paying for a JVM start.
kafka_random_uuid() {
  local id
  while :; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
    [[ "$id" != -* ]] && break
  done
  printf '%s\n' "$id"
}

kafka_start() {
  if is_running kafka; then
    return 0
  fi
  local port
  for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    if port_open "$port"; then
      say "port $port is taken by a process this stack did not start; not starting Kafka"
      return 1
    fi
  done
  kafka_install
  kafka_write_config
  if [[ ! -f "$KAFKA_DATA/log/meta.properties" ]]; then
    local cluster_id
    cluster_id="$(kafka_random_uuid)"
    say "formatting Kafka storage in $KAFKA_DATA/log (cluster id $cluster_id)"
    kafka_java kafka.tools.StorageTool format --standalone --ignore-formatted \
      -t "$cluster_id" -c "$KAFKA_DATA/server.properties" >&2
  fi
  # java.io.tmpdir: compression codecs (snappy, zstd, lz4) unpack native libraries there;
  # keep it off /tmp, which may be mounted noexec.
  # shellcheck disable=SC2086
  start_daemon kafka java $KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
    -Djava.awt.headless=true -Djava.io.tmpdir="$KAFKA_DATA/tmp" \
    -Dlog4j2.configurationFile="$KAFKA_CONF/log4j2.properties" \
    -cp "$KAFKA_LIB/*" kafka.Kafka "$KAFKA_DATA/server.properties"
}

# kafka_probe REQUEST NBYTES: sends one hand-written Kafka request (a printf format) to the broker
# and prints the first NBYTES of the answer as decimal bytes. Runs in a subshell, so a write to a
# connection the broker already closed cannot kill the caller.
kafka_probe() {
  (
    exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_PORT" || exit 1
    # shellcheck disable=SC2059
    printf "$1" >&3
    timeout 5 head -c "$2" <&3 | od -An -v -tu1
  )
}

# Ready when the broker is really usable, checked with two hand-written requests (milliseconds,
# where a Kafka tool would pay for a JVM start):
# 1. Metadata v1 with no topics lists at least one broker: a broker appears in metadata only once
#    the controller has unfenced it. Answer: size, correlation id 1, number of brokers.
# 2. FindCoordinator v1 for a group answers without error: this creates __consumer_offsets on a
#    fresh broker and waits for its leader, so a client's first consumer group does not trip over
#    COORDINATOR_NOT_AVAILABLE / COORDINATOR_LOAD_IN_PROGRESS. Answer: size, correlation id 2,
#    throttle time, error code.
kafka_ready() {
  port_open "$KAFKA_PORT" || return 1
  local reply b
  # size 19 | api_key 3 | version 1 | correlation id 1 | client id "ready" | topics: empty array
  reply="$(kafka_probe '\x00\x00\x00\x13\x00\x03\x00\x01\x00\x00\x00\x01\x00\x05ready\x00\x00\x00\x00' 12)" ||
    return 1
  # shellcheck disable=SC2206
  b=($reply)
  ((${#b[@]} == 12)) || return 1
  ((b[4] == 0 && b[5] == 0 && b[6] == 0 && b[7] == 1)) || return 1
  ((b[8] + b[9] + b[10] + b[11] > 0)) || return 1
  # size 29 | api_key 10 | version 1 | correlation id 2 | client id "ready" | key "stack-ready" | key_type 0 (group)
  reply="$(kafka_probe '\x00\x00\x00\x1d\x00\x0a\x00\x01\x00\x00\x00\x02\x00\x05ready\x00\x0bstack-ready\x00' 14)" ||
    return 1
  # shellcheck disable=SC2206
  b=($reply)
  ((${#b[@]} == 14)) || return 1
  ((b[4] == 0 && b[5] == 0 && b[6] == 0 && b[7] == 2)) || return 1
  ((b[12] == 0 && b[13] == 0))
}

kafka_stop() {
  stop_daemon kafka 60
}
