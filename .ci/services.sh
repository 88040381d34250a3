#!/usr/bin/env bash
# Start (idempotently) the local MariaDB and Redis that tests, benchmarks and `make serve` use.
# Debian's packages start no service (no systemd here), so each server runs by hand with its data
# folder under the project. A server already answering on the port is reused (for instance the one
# another checkout of this project started), so a second copy never fights the first for the port.
# REPLICA=1 also starts a read replica (binlog replication of the primary) on OPD_REPLICA_PORT; the
# primary must then write a binary log, so a primary already running without one is refused.
# OPD_DATA_DIR, OPD_DB_PORT, OPD_REDIS_PORT, OPD_REPLICA_PORT move everything (tests start their own set).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${OPD_DATA_DIR:-$PWD/.data}"
DB_PORT="${OPD_DB_PORT:-3306}"
REPLICA="${REPLICA:-0}"
REPLICA_PORT="${OPD_REPLICA_PORT:-3307}"
REPL_USER=opd_repl REPL_PASS="${OPD_REPL_PASSWORD:-opd_repl}"
REDIS_PORT="${OPD_REDIS_PORT:-6379}"
DB_USER=opd DB_PASS=opd DB_NAME=opd
mkdir -p "$DATA"
for server in mariadbd redis-server; do
  command -v "$server" >/dev/null || {
    echo "$server is not installed: run .ci/install-os-packages.sh (make services and make test do)" >&2
    exit 1
  }
done

# A query, not `mariadb-admin ping`: ping succeeds even when the application user is refused.
db_answers() {
  mariadb --no-defaults -h127.0.0.1 -P"$DB_PORT" -u"$DB_USER" -p"$DB_PASS" -e "SELECT 1" "$DB_NAME" >/dev/null 2>&1
}

if ! db_answers; then
  SOCK="$DATA/mariadb.sock"
  if [ ! -d "$DATA/mariadb/mysql" ]; then
    mariadb-install-db --no-defaults --user=root --datadir="$DATA/mariadb" \
      --auth-root-authentication-method=normal --skip-test-db >"$DATA/mariadb-install.log" 2>&1
  fi
  if ! mariadb-admin --no-defaults -S "$SOCK" -uroot ping >/dev/null 2>&1; then
    # setsid: in a session of its own, so Ctrl-C on `make serve` or `make test` does not reach it.
    binlog=()
    # A replica's source: row changes in a binary log; the audit triggers are created by the migration's
    # user, which binary logging otherwise allows only to SUPER.
    [ "$REPLICA" = 1 ] && binlog=(--log-bin=mariadb-bin --server-id=1 --binlog-format=MIXED
      --log-bin-trust-function-creators=1 --expire-logs-days=7)
    setsid mariadbd --no-defaults --user=root --datadir="$DATA/mariadb" --socket="$SOCK" \
      --pid-file="$DATA/mariadb.pid" --port="$DB_PORT" --bind-address=127.0.0.1 --skip-name-resolve \
      "${binlog[@]}" \
      --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
      --max-connections=400 --innodb-buffer-pool-size=1G --innodb-flush-log-at-trx-commit=2 \
      --log-error="$DATA/mariadb.err" >/dev/null 2>&1 &
    for _ in $(seq 1 100); do
      mariadb-admin --no-defaults -S "$SOCK" -uroot ping >/dev/null 2>&1 && break
      sleep 0.2
    done
    mariadb-admin --no-defaults -S "$SOCK" -uroot ping >/dev/null 2>&1 || {
      echo "MariaDB did not start on port $DB_PORT (another server there?); see $DATA/mariadb.err" >&2
      exit 1
    }
  fi
  # The application user may create test_opd* databases so pytest-django (and xdist workers) can build theirs.
  # Accounts are per server (sql_log_bin=0): a replica keeps its own, read-only ones.
  mariadb --no-defaults -S "$SOCK" -uroot <<SQL
SET SESSION sql_log_bin=0;
CREATE DATABASE IF NOT EXISTS \`$DB_NAME\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
GRANT ALL PRIVILEGES ON \`$DB_NAME\`.* TO '$DB_USER'@'127.0.0.1';
GRANT ALL PRIVILEGES ON \`test\\_$DB_NAME%\`.* TO '$DB_USER'@'127.0.0.1';
-- manage.py restore's default scratch database (<name>_restore).
GRANT ALL PRIVILEGES ON \`${DB_NAME}\\_restore%\`.* TO '$DB_USER'@'127.0.0.1';
FLUSH PRIVILEGES;
SQL
  db_answers || { echo "MariaDB did not start; see $DATA/mariadb.err" >&2; exit 1; }
fi

if ! redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then
  mkdir -p "$DATA/redis"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes --dir "$DATA/redis" \
    --save "" --appendonly no --pidfile "$DATA/redis.pid" --logfile "$DATA/redis.log"
  for _ in $(seq 1 50); do
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null || { echo "Redis did not start" >&2; exit 1; }
fi

if [ "$REPLICA" = 1 ]; then
  root_primary() { mariadb --no-defaults -S "$DATA/mariadb.sock" -uroot "$@"; }
  [ "$(root_primary -N -e 'SELECT @@log_bin' 2>/dev/null)" = 1 ] || {
    echo "MariaDB on port $DB_PORT runs without a binary log (or not from $DATA): stop it and run" \
      "make services REPLICA=1 again, so it starts as a replication source." >&2
    exit 1
  }
  RSOCK="$DATA/mariadb-replica.sock"
  root_replica() { mariadb --no-defaults -S "$RSOCK" -uroot "$@"; }
  if ! mariadb-admin --no-defaults -S "$RSOCK" -uroot ping >/dev/null 2>&1; then
    if [ ! -d "$DATA/mariadb-replica/mysql" ]; then
      mariadb-install-db --no-defaults --user=root --datadir="$DATA/mariadb-replica" \
        --auth-root-authentication-method=normal --skip-test-db >"$DATA/mariadb-replica-install.log" 2>&1
    fi
    # read-only: the application's user cannot write there even if a write were routed to it.
    setsid mariadbd --no-defaults --user=root --datadir="$DATA/mariadb-replica" --socket="$RSOCK" \
      --pid-file="$DATA/mariadb-replica.pid" --port="$REPLICA_PORT" --bind-address=127.0.0.1 \
      --skip-name-resolve --server-id=2 --read-only=1 --relay-log=replica-relay-bin \
      --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci --max-connections=400 \
      --innodb-flush-log-at-trx-commit=2 --log-error="$DATA/mariadb-replica.err" >/dev/null 2>&1 &
    for _ in $(seq 1 100); do
      mariadb-admin --no-defaults -S "$RSOCK" -uroot ping >/dev/null 2>&1 && break
      sleep 0.2
    done
    mariadb-admin --no-defaults -S "$RSOCK" -uroot ping >/dev/null 2>&1 || {
      echo "The replica did not start on port $REPLICA_PORT; see $DATA/mariadb-replica.err" >&2
      exit 1
    }
  fi
  if [ -z "$(root_replica -N -e 'SHOW SLAVE STATUS')" ]; then
    # First start: copy the primary's databases with their GTID position, then replicate from there.
    root_primary <<SQL
SET SESSION sql_log_bin=0;
CREATE USER IF NOT EXISTS '$REPL_USER'@'127.0.0.1' IDENTIFIED BY '$REPL_PASS';
GRANT REPLICATION SLAVE ON *.* TO '$REPL_USER'@'127.0.0.1';
-- manage.py backup records the binlog position of its snapshot (a point-in-time recovery's start).
GRANT BINLOG MONITOR ON *.* TO '$DB_USER'@'127.0.0.1';
SQL
    mapfile -t dbs < <(root_primary -N -e "SELECT schema_name FROM information_schema.schemata WHERE
      schema_name NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')")
    mariadb-dump --no-defaults -S "$DATA/mariadb.sock" -uroot --single-transaction --master-data=1 --gtid \
      --routines --triggers --events --databases "${dbs[@]}" | root_replica
    # The application's user reads there and may watch replication (its lag); nothing more.
    root_replica <<SQL
CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
GRANT SELECT ON \`$DB_NAME\`.* TO '$DB_USER'@'127.0.0.1';
GRANT SELECT ON \`test\\_$DB_NAME%\`.* TO '$DB_USER'@'127.0.0.1';
GRANT SLAVE MONITOR ON *.* TO '$DB_USER'@'127.0.0.1';
CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$DB_PORT, MASTER_USER='$REPL_USER',
  MASTER_PASSWORD='$REPL_PASS', MASTER_USE_GTID=slave_pos;
START SLAVE;
SQL
  fi
fi

echo "DATABASE_URL=mysql://$DB_USER:$DB_PASS@127.0.0.1:$DB_PORT/$DB_NAME"
[ "$REPLICA" = 1 ] && echo "REPLICA_DATABASE_URL=mysql://$DB_USER:$DB_PASS@127.0.0.1:$REPLICA_PORT/$DB_NAME"
echo "REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0"
