#!/usr/bin/env bash
# Run the whole test suite: once against SQLite, once against a real PostgreSQL server that this
# script starts in a temporary directory and stops afterwards. Browser tests use Debian's chromium.
# Extra arguments go to both pytest runs (e.g. scripts/test.sh -k claims).
source "$(dirname "$0")/_lib.sh"
ensure_venv requirements-dev.txt

# --- Debian's chromium for the Playwright tests (never a downloaded browser) -----------------
if [ ! -x /usr/bin/chromium ]; then
  log "installing Debian's chromium"
  apt_install chromium
fi

# --- PostgreSQL binaries: on PATH, under /usr/lib/postgresql, or from Debian -----------------
pg_bindir() {
  if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then dirname "$(command -v initdb)"; return; fi
  local d; d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"
  [ -n "$d" ] && [ -x "$d/initdb" ] && echo "$d"
}
PGBIN="$(pg_bindir || true)"
if [ -z "$PGBIN" ]; then
  log "installing PostgreSQL from Debian"
  apt_install postgresql
  PGBIN="$(pg_bindir)"
fi

# initdb refuses root: run the server as an unprivileged user.
PGUSER_OS="$(id -un)"
if [ "$(id -u)" = 0 ]; then
  PGUSER_OS=tillbook-pg
  id "$PGUSER_OS" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$PGUSER_OS"
fi
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u "$PGUSER_OS" -- "$@"; else "$@"; fi; }

PGTMP="$(mktemp -d /tmp/tillbook-pg.XXXXXX)"
chmod 755 "$PGTMP"
[ "$(id -u)" = 0 ] && chown "$PGUSER_OS" "$PGTMP"
PGPORT="$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
stop_pg() {
  as_pg "$PGBIN/pg_ctl" -D "$PGTMP/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$PGTMP"
}
trap stop_pg EXIT
as_pg "$PGBIN/initdb" -D "$PGTMP/data" -U postgres -A trust -E UTF8 --no-locale >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$PGTMP/data" -l "$PGTMP/server.log" -w -t 60 start \
  -o "-p $PGPORT -k $PGTMP -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" >/dev/null
log "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PGPORT"

export SECRET_KEY=test-only-not-secret DEBUG=false SECURE_SSL_REDIRECT=false CACHE_URL=locmemcache:// \
  STATICFILES_BACKEND=django.contrib.staticfiles.storage.StaticFilesStorage

status=0
log "ruff"
ruff check . || status=1

log "import-linter (layers only point down; see pyproject.toml)"
lint-imports --no-cache || status=1

log "test suite on SQLite"
DATABASE_URL="sqlite:///$PGTMP/tillbook.sqlite3" pytest -p no:cacheprovider -m "not postgres_only" "$@" || status=1

log "test suite on PostgreSQL"
DATABASE_URL="postgres://postgres@127.0.0.1:$PGPORT/tillbook" pytest -p no:cacheprovider -m "not browser" "$@" || status=1

if [ "$status" != 0 ]; then log "FAILED"; else log "all green"; fi
exit "$status"
