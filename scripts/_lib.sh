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
