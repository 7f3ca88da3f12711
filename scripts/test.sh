#!/usr/bin/env bash
# Runs the test suite; starts a throwaway PostgreSQL cluster when the binaries are there,
# so the backend tests run on SQLite and PostgreSQL alike.
set -euo pipefail
VENV="$1"; shift
PG_DIR=""
cleanup() {
  if [ -n "$PG_DIR" ]; then
    runuser -u postgres -- pg_ctl -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
  fi
}
trap cleanup EXIT

start_postgres() {
  command -v initdb >/dev/null && command -v pg_ctl >/dev/null || return 0
  [ "$(id -u)" = "0" ] && id postgres >/dev/null 2>&1 || return 0
  PG_DIR="$(mktemp -d /tmp/openshelf-pg.XXXXXX)"
  chown postgres "$PG_DIR"
  local port
  port="$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  runuser -u postgres -- initdb -D "$PG_DIR/data" -U postgres -A trust >/dev/null
  runuser -u postgres -- pg_ctl -D "$PG_DIR/data" -l "$PG_DIR/log" -w \
    -o "-p $port -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
  export OPENSHELF_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
  echo "PostgreSQL test cluster on port $port"
}

if [ -z "${OPENSHELF_TEST_POSTGRES_URL:-}" ]; then start_postgres; fi
"$VENV/bin/python" -m pytest "$@"
