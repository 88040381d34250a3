#!/usr/bin/env bash
# Install the Debian packages the project needs, only where missing (apt starts no service here).
#   .ci/install-os-packages.sh build   what creating the virtualenv needs (mysqlclient compiles
#                                      against libmariadb; a Debian python needs its venv module)
#   .ci/install-os-packages.sh         all of that, plus the servers and browser the test suite uses
set -euo pipefail
python="${PYTHON:-python3}"
need=()
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v cc >/dev/null || need+=(gcc)
dpkg -s libmariadb-dev >/dev/null 2>&1 || need+=(libmariadb-dev)
if [ "$(command -v "$python")" = /usr/bin/python3 ]; then
  # Debian splits the standard library: venv needs ensurepip, and building needs Python.h.
  /usr/bin/python3 -c "import ensurepip" 2>/dev/null || need+=(python3-venv)
  dpkg -s python3-dev >/dev/null 2>&1 || need+=(python3-dev)
fi
if [ "${1:-all}" != build ]; then
  command -v mariadbd >/dev/null || need+=(mariadb-server)
  # manage.py backup and restore run the client tools (a host without the server needs them alone).
  command -v mariadb-dump >/dev/null || need+=(mariadb-client)
  command -v redis-server >/dev/null || need+=(redis-server)
  # The Redis failover test runs three sentinels (redis-server --sentinel, from this package on Debian).
  dpkg -s redis-sentinel >/dev/null 2>&1 || need+=(redis-sentinel)
  [ -x /usr/bin/chromium ] || need+=(chromium)
  command -v wrk >/dev/null || need+=(wrk)
  # make cluster's reverse proxy (/usr/sbin is not on every user's PATH).
  [ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || need+=(nginx)
fi
[ ${#need[@]} -eq 0 ] && exit 0

echo "installing OS packages: ${need[*]}" >&2
sudo=()
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "not root and no sudo: install them by hand: apt-get install ${need[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${need[@]}" >/dev/null
