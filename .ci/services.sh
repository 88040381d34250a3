#!/usr/bin/env bash
# Start (idempotently) the local MariaDB and Redis that tests, benchmarks and `make serve` use.
# Debian's packages start no service (no systemd here), so each server runs by hand with its data
# folder under the project. A server already answering on the port is reused (for instance the one
# another checkout of this project started), so a second copy never fights the first for the port.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="$PWD/.data"
DB_PORT="${OPD_DB_PORT:-3306}"
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
    setsid mariadbd --no-defaults --user=root --datadir="$DATA/mariadb" --socket="$SOCK" \
      --pid-file="$DATA/mariadb.pid" --port="$DB_PORT" --bind-address=127.0.0.1 --skip-name-resolve \
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
  mariadb --no-defaults -S "$SOCK" -uroot <<SQL
CREATE DATABASE IF NOT EXISTS \`$DB_NAME\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
GRANT ALL PRIVILEGES ON \`$DB_NAME\`.* TO '$DB_USER'@'127.0.0.1';
GRANT ALL PRIVILEGES ON \`test\\_$DB_NAME%\`.* TO '$DB_USER'@'127.0.0.1';
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

echo "DATABASE_URL=mysql://$DB_USER:$DB_PASS@127.0.0.1:$DB_PORT/$DB_NAME"
echo "REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0"
