# Shared set-up for scripts/console.sh and scripts/test.sh. Sourced, not run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TILLBOOK_VENV:-$ROOT/.venv}"
cd "$ROOT"

log() { printf '\033[1m[tillbook]\033[0m %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root for: $*"; return 1; fi
}

apt_install() {
  # apt-get update once per run, then install quietly.
  if [ -z "${_APT_UPDATED:-}" ]; then as_root apt-get update -qq; _APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

find_python() {
  for py in python3.11 python3; do
    if command -v "$py" >/dev/null && "$py" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))'; then
      echo "$py"; return 0; fi
  done
  log "Python 3.11+ is required"; return 1
}

ensure_venv() {
  # Install requirements only when they changed since the last install.
  local req="$1" stamp="$VENV/.installed-$(basename "$1")"
  if [ -n "${TILLBOOK_VENV:-}" ]; then
    # A virtualenv the caller manages (the tests, CI): used as it is, nothing installed.
    [ -x "$VENV/bin/python" ] || { log "TILLBOOK_VENV=$VENV has no bin/python"; return 1; }
    export PATH="$VENV/bin:$PATH"; return 0
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtualenv in .venv"
    "$(find_python)" -m venv "$VENV"
  fi
  local want; want="$(cat requirements*.txt | sha256sum | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    log "installing $req"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$req"
    echo "$want" > "$stamp"
  fi
  export PATH="$VENV/bin:$PATH"
}

# --- A throw-away PostgreSQL server -----------------------------------------------------------
# pg_start [fast|durable]: initdb into a temporary directory and start a server on a free port,
# from the machine's binaries (PATH or /usr/lib/postgresql) or Debian's package. Sets PGBIN,
# PGTMP, PGPORT and PG_URL (…/tillbook) and stops the server on exit. "fast" turns fsync off
# (tests); "durable" keeps PostgreSQL's defaults (benchmarks measure what production pays).
pg_bindir() {
  if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then dirname "$(command -v initdb)"; return; fi
  local d; d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"
  [ -n "$d" ] && [ -x "$d/initdb" ] && echo "$d"
}

pg_start() {
  local mode="${1:-fast}" opts=""
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
  PGTMP="$(mktemp -d /tmp/tillbook-pg.XXXXXX)"
  chmod 755 "$PGTMP"
  if [ "$(id -u)" = 0 ]; then chown "$PGUSER_OS" "$PGTMP"; fi
  PGPORT="$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  trap pg_stop EXIT
  as_pg "$PGBIN/initdb" -D "$PGTMP/data" -U postgres -A trust -E UTF8 --no-locale >/dev/null
  if [ "$mode" = fast ]; then opts="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"; fi
  as_pg "$PGBIN/pg_ctl" -D "$PGTMP/data" -l "$PGTMP/server.log" -w -t 60 start \
    -o "-p $PGPORT -k $PGTMP -c listen_addresses=127.0.0.1 -c max_connections=200 $opts" >/dev/null
  PG_URL="postgres://postgres@127.0.0.1:$PGPORT/tillbook"
  log "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PGPORT ($mode)"
}

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u "$PGUSER_OS" -- "$@"; else "$@"; fi; }

pg_stop() {
  as_pg "$PGBIN/pg_ctl" -D "$PGTMP/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$PGTMP"
}
