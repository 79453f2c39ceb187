#!/usr/bin/env bash
# Run the Tillbook console: web server and django-q2 worker, each in its own process group;
# Ctrl-C (or TERM) stops both within a few seconds.
# SQLite and the payment simulator by default; demo logins and the catalogue are loaded.
#
#   PORT=8101 ./scripts/console.sh     another port; PUBLIC_BASE_URL follows it unless you set it
#   TILLBOOK_DRY_RUN=1 ...             print the resolved settings and commands, start nothing
#   TILLBOOK_VENV=/path/to/venv ...    use that virtualenv as it is (nothing is installed)
source "$(dirname "$0")/_lib.sh"

export DEBUG="${DEBUG:-true}"
export PORT="${PORT:-8000}"
# The gateways (the simulator too) call back to this address: it must be the port we listen on.
export PUBLIC_BASE_URL="${PUBLIC_BASE_URL:-http://127.0.0.1:$PORT}"
# Demo logins work without a phone; production leaves it unset (Finance and superusers need a code).
export OTP_REQUIRED_ROLES=""
# Seconds the web server and the worker get to stop after Ctrl-C before they are killed.
STOP_GRACE="${STOP_GRACE:-5}"

WEB=(python manage.py runserver "127.0.0.1:$PORT")
WORKER=(python manage.py qcluster)

if [ -n "${TILLBOOK_DRY_RUN:-}" ]; then
  echo "PORT=$PORT"
  echo "PUBLIC_BASE_URL=$PUBLIC_BASE_URL"
  echo "DEBUG=$DEBUG"
  echo "STOP_GRACE=$STOP_GRACE"
  echo "web: ${WEB[*]}"
  echo "worker: ${WORKER[*]}"
  exit 0
fi

ensure_venv requirements.txt

python manage.py migrate --noinput -v0
python manage.py createcachetable
python manage.py setup_demo  # also sets up the roles and the schedules (each manage.py costs seconds)

# Each child leads its own process group (setsid), so one signal reaches the runserver
# reloader and every qcluster worker; the terminal's Ctrl-C comes to this script only.
GROUPS_STARTED=()
WORKER_PID=""
start() {
  if command -v setsid >/dev/null; then setsid "$@" & else "$@" & fi
  GROUPS_STARTED+=("$!")
}

any_alive() {
  local pid
  for pid in "${GROUPS_STARTED[@]}"; do
    if kill -0 -- "-$pid" 2>/dev/null || kill -0 "$pid" 2>/dev/null; then return 0; fi
  done
  return 1
}

signal_all() {
  local sig="$1" pid
  for pid in "${GROUPS_STARTED[@]}"; do
    if [ "$sig" = TERM ] && [ "$pid" = "$WORKER_PID" ]; then
      # TERM to the cluster's main process only, as a supervisor sends it: django-q2 stops its
      # own children, and can hang on exit when every process of its group gets TERM at once.
      kill -TERM "$pid" 2>/dev/null || true
    else
      kill "-$sig" -- "-$pid" 2>/dev/null || kill "-$sig" "$pid" 2>/dev/null || true
    fi
  done
}

stop() {
  local code="${1:-0}"
  trap - INT TERM EXIT
  if [ "${#GROUPS_STARTED[@]}" -gt 0 ]; then
    log "stopping the web server and the worker"
    signal_all TERM
    local waited=0
    while any_alive && [ "$waited" -lt $((STOP_GRACE * 10)) ]; do sleep 0.1; waited=$((waited + 1)); done
    if any_alive; then
      log "still running after ${STOP_GRACE}s: killing"
      signal_all KILL
    fi
    wait 2>/dev/null || true
  fi
  exit "$code"
}
trap 'stop 130' INT
trap 'stop 143' TERM
trap 'stop $?' EXIT

start "${WORKER[@]}"
WORKER_PID="${GROUPS_STARTED[0]}"
start "${WEB[@]}"
log "console: http://127.0.0.1:$PORT/admin/   storefront: http://127.0.0.1:$PORT/   callbacks: $PUBLIC_BASE_URL"
# Until Ctrl-C, or until one of the two stops on its own (the EXIT trap then stops the other).
wait -n || true
