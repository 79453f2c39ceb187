"""Management commands must run on a database that is not migrated yet."""

import subprocess
import sys

from django.conf import settings


def test_migrate_runs_on_a_brand_new_sqlite_database(tmp_path):
    """unfold's action-permission check queries the Permission table; before the first migrate
    there is none, and every command (migrate included) used to stop there."""
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "console.settings",
        "DEBUG": "true",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'new.sqlite3'}",
        "CACHE_URL": "locmemcache://",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    check = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=settings.BASE_DIR, env=env, capture_output=True, text=True
    )
    assert check.returncode == 0 and "no issues" in check.stdout
