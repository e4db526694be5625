#!/usr/bin/env bash
# MariaDB 10.11 from Debian, with row-based binlog for Debezium.
MARIADB_SOCKET="$RUN_DIR/mariadb.sock"
MARIADB_DATA="$DATA_DIR/mariadb"

# The Debian package itself is installed by system_packages in stack.sh (apt allows one at a time).
mariadb_install() {
  mariadbd --version | grep -q "$MARIADB_VERSION" || {
    say "mariadbd is not version $MARIADB_VERSION: $(mariadbd --version)"
    return 1
  }
}

mariadb_start() {
  local run_as=()
  if [[ "$(id -u)" == 0 ]]; then
    run_as=(--user=mysql)
    chown -R mysql:mysql "$RUN_DIR" 2>/dev/null || true
  fi
  if [[ ! -d "$MARIADB_DATA/mysql" ]]; then
    mkdir -p "$MARIADB_DATA"
    [[ "$(id -u)" == 0 ]] && chown -R mysql:mysql "$MARIADB_DATA"
    mariadb-install-db --no-defaults "${run_as[@]}" --datadir="$MARIADB_DATA" \
      --auth-root-authentication-method=socket --skip-test-db >>"$LOG_DIR/mariadb.log" 2>&1
  fi
  [[ "$(id -u)" == 0 ]] && chown mysql:mysql "$RUN_DIR"
  start_daemon mariadb mariadbd --no-defaults "${run_as[@]}" \
    --datadir="$MARIADB_DATA" --socket="$MARIADB_SOCKET" --pid-file="$RUN_DIR/mariadbd.pid" \
    --bind-address=127.0.0.1 --port=3306 \
    --server-id=1 --log-bin="$MARIADB_DATA/binlog" --binlog-format=ROW --binlog-row-image=FULL \
    --expire-logs-days=3 --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
    --max-connections=500 --innodb-buffer-pool-size=256M
}

mariadb_ready() {
  mariadb --socket="$MARIADB_SOCKET" -uroot -e 'SELECT 1' >/dev/null 2>&1
}

# Idempotent: the app user and database, a second database for tests, and the CDC user.
mariadb_init() {
  mariadb --socket="$MARIADB_SOCKET" -uroot <<SQL
CREATE DATABASE IF NOT EXISTS gateway CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE DATABASE IF NOT EXISTS gateway_test CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS 'gateway'@'127.0.0.1' IDENTIFIED BY 'gateway';
CREATE USER IF NOT EXISTS 'gateway'@'localhost' IDENTIFIED BY 'gateway';
GRANT ALL PRIVILEGES ON gateway.* TO 'gateway'@'127.0.0.1', 'gateway'@'localhost';
GRANT ALL PRIVILEGES ON \`gateway\_%\`.* TO 'gateway'@'127.0.0.1', 'gateway'@'localhost';
CREATE USER IF NOT EXISTS 'debezium'@'127.0.0.1' IDENTIFIED BY 'debezium';
CREATE USER IF NOT EXISTS 'debezium'@'localhost' IDENTIFIED BY 'debezium';
GRANT SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, REPLICATION CLIENT, BINLOG MONITOR
  ON *.* TO 'debezium'@'127.0.0.1', 'debezium'@'localhost';
FLUSH PRIVILEGES;
SQL
}

mariadb_stop() {
  stop_daemon mariadb 60
}
