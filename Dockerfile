# syntax=docker/dockerfile:1
# Tillbook's production image: one image, three processes (console/processes.py names them):
#   release  python manage.py release                                      (compose.yaml's one-shot)
#   web      gunicorn console.wsgi --config python:console.gunicorn_conf   (the CMD below)
#   worker   python manage.py qcluster
# Settings come only from the environment at run time (compose.yaml: env_file .env.production);
# nothing secret is baked in. See README.md, "Deploy with containers".

# --- Build: the pinned requirements into a virtualenv (every one ships a wheel: no compiler) ---
FROM python:3.11-slim-bookworm AS builder
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install -r /tmp/requirements.txt

# --- Run: the virtualenv and the code, owned by root; the app user owns only media/ -----------
FROM python:3.11-slim-bookworm AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH
RUN groupadd --gid 10001 tillbook \
 && useradd --uid 10001 --gid tillbook --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin tillbook
WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
COPY . /app

# Static files, hashed and compressed for whitenoise's manifest storage (it refuses to serve an
# asset missing from staticfiles.json). collectstatic imports the settings, which with DEBUG off
# insist on a SECRET_KEY: this throwaway one exists only for this RUN and signs nothing. The
# database URL points nowhere, so collecting can never touch a database. STATIC_ROOT is the
# settings' default (/app/staticfiles): do not set STATIC_ROOT at run time. The code is compiled
# once here, as nobody may write /app at run time (PYTHONDONTWRITEBYTECODE).
RUN env DEBUG=false SECRET_KEY=build-only-collectstatic-not-a-secret ALLOWED_HOSTS=localhost \
      DATABASE_URL=sqlite:////nonexistent/build-only.sqlite3 CACHE_URL=locmemcache:// \
      python manage.py collectstatic --noinput --verbosity 0 \
 && python -m compileall -q /app \
 && mkdir -p /app/media \
 && chown tillbook:tillbook /app/media

USER tillbook
EXPOSE 8000
# Liveness of the web server (no curl in slim images: console/probe.py uses urllib). compose.yaml
# replaces it with /readyz for web, the worker's own check for worker, and none for release.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
  CMD ["python", "-m", "console.probe", "/healthz"]
CMD ["gunicorn", "console.wsgi", "--config", "python:console.gunicorn_conf"]
