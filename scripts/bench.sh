#!/usr/bin/env bash
# Run every scale benchmark with its baseline in the same run; one JSON line per row.
# Uses DATABASE_URL when it points at PostgreSQL, else starts a PostgreSQL of its own with
# fsync on (benchmarks measure what production pays). Arguments go to tests/perf/bench.py
# (e.g. --scale 0.01 for a quick look, --only dashboard).
source "$(dirname "$0")/_lib.sh"
ensure_venv requirements-dev.txt
# The serving rows drive gunicorn with Debian's wrk.
command -v wrk >/dev/null || apt_install wrk
case "${DATABASE_URL:-}" in
  postgres*) ;;
  *) pg_start durable; export DATABASE_URL="$PG_URL" ;;
esac
python tests/perf/bench.py "$@"
