#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests of the shared profile, on 127.0.0.1 only, with
# its data in the given (temporary) folder.
#   .ci/postgres.sh start <folder>   install PostgreSQL from Debian when missing, start, print the URL
#   .ci/postgres.sh stop <folder>    stop it (fast mode; killed if that fails) and delete the folder
# The server itself is run by mlops_assets_tests/pg_server.py (standard library only), the same
# code the test fixture uses when no MLOPS_TEST_POSTGRES_URL is given.
set -euo pipefail
cd "$(dirname "$0")/.."
cmd="${1:-}"
folder="${2:-}"
if [ -z "$folder" ] || { [ "$cmd" != start ] && [ "$cmd" != stop ]; }; then
  echo "usage: $0 start|stop <folder>" >&2
  exit 2
fi

have_binaries() {
  compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null || command -v pg_ctl >/dev/null 2>&1
}

if [ "$cmd" = start ]; then
  if ! have_binaries; then
    if ! command -v apt-get >/dev/null 2>&1; then
      echo "PostgreSQL is not installed and apt-get is missing: install PostgreSQL (initdb, pg_ctl)" >&2
      exit 1
    fi
    SUDO=""
    if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; fi
    echo "installing PostgreSQL from Debian's packages" >&2
    # Tell the package not to create (and start) a cluster of its own: the tests use the
    # throwaway server below.
    $SUDO mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" | $SUDO tee /etc/postgresql-common/createcluster.d/mlops-ci.conf >/dev/null
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
    # Should a cluster have been made all the same (an older postgresql-common), stop it rather
    # than leave a server nobody asked for.
    if command -v pg_lsclusters >/dev/null 2>&1; then
      pg_lsclusters --no-header 2>/dev/null | while read -r version name _; do
        $SUDO pg_ctlcluster "$version" "$name" stop >/dev/null 2>&1 || true
      done
    fi
  fi
  mkdir -p "$folder"
  python3 mlops_assets_tests/pg_server.py start "$folder"
else
  python3 mlops_assets_tests/pg_server.py stop "$folder" || true
  rm -rf "$folder"
fi
