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

# --- A real PostgreSQL in a temporary directory (see pg_start in _lib.sh) --------------------
pg_start fast

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
DATABASE_URL="$PG_URL" pytest -p no:cacheprovider -m "not browser" "$@" || status=1

if [ "$status" != 0 ]; then log "FAILED"; else log "all green"; fi
exit "$status"
