#!/usr/bin/env bash
# Run the Tillbook console: web server and django-q2 worker in one process group (Ctrl-C stops both).
# SQLite and the payment simulator by default; demo logins and the catalogue are loaded.
source "$(dirname "$0")/_lib.sh"
ensure_venv requirements.txt

export DEBUG="${DEBUG:-true}"
export PORT="${PORT:-8000}"
# Demo logins work without a phone; production leaves it unset (Finance and superusers need a code).
export OTP_REQUIRED_ROLES=""

python manage.py migrate --noinput -v0
python manage.py createcachetable
python manage.py setup_roles >/dev/null
python manage.py setup_demo

cleanup() { trap - INT TERM EXIT; kill 0 2>/dev/null || true; }
trap cleanup INT TERM EXIT
python manage.py qcluster &
python manage.py runserver "127.0.0.1:$PORT" &
log "console: http://127.0.0.1:$PORT/admin/   storefront: http://127.0.0.1:$PORT/"
wait -n
