"""`manage.py check --deploy` is clean with production settings: DEBUG off, a real SECRET_KEY,
real callback tokens, HTTPS on. Run in a fresh process, because settings.py derives the
hardening from the environment at import time (the test settings turn the HTTPS redirect off)."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECK = (
    "import django; django.setup(); from django.core.management import call_command; "
    "call_command('check', deploy=True, fail_level='WARNING')"
)
# Test-only values the suite's environment may carry (the browser tests' conftest sets
# DJANGO_ALLOW_ASYNC_UNSAFE for Playwright); production sets none of them.
TEST_ONLY = (
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "STATICFILES_BACKEND",
    "Q_SYNC",
    "DEBUG",
    "SECRET_KEY",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
)


def production_env(tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in TEST_ONLY and not k.startswith("PYTEST")}
    env.update(
        DJANGO_SETTINGS_MODULE="console.settings",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        STK_CALLBACK_TOKEN=secrets.token_urlsafe(32),
        C2B_CALLBACK_TOKEN=secrets.token_urlsafe(32),
        ALLOWED_HOSTS="shop.example.co.ke",
        CSRF_TRUSTED_ORIGINS="https://shop.example.co.ke",
        PUBLIC_BASE_URL="https://shop.example.co.ke",
        DATABASE_URL=f"sqlite:///{tmp_path / 'prod.sqlite3'}",
        STATIC_ROOT=str(tmp_path / "static"),
    )
    return env


def run_check(env):
    return subprocess.run(
        [sys.executable, "-c", CHECK], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    result = run_check(production_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout + result.stderr


def test_check_deploy_fails_on_a_development_token(tmp_path):
    # The same run notices what production must not ship with (so the clean run above means something).
    env = production_env(tmp_path) | {"STK_CALLBACK_TOKEN": "dev-stk-callback-token"}
    result = run_check(env)
    assert result.returncode != 0 and "STK_CALLBACK_TOKEN" in result.stderr
