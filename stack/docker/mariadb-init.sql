-- First start of an empty data volume only (docker-compose.yml mounts this into
-- /docker-entrypoint-initdb.d). The image already made the gateway database and user from
-- MARIADB_DATABASE / MARIADB_USER; this adds the rest of stack/components/mariadb.sh's mariadb_init.
CREATE DATABASE IF NOT EXISTS gateway_test CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
GRANT ALL PRIVILEGES ON `gateway\_%`.* TO 'gateway'@'%';

-- Debezium's MariaDB connector reads the binlog and snapshots tables as this user.
CREATE USER IF NOT EXISTS 'debezium'@'%' IDENTIFIED BY 'debezium';
GRANT SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, REPLICATION CLIENT, BINLOG MONITOR
  ON *.* TO 'debezium'@'%';
FLUSH PRIVILEGES;
