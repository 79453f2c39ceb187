"""Settings for the serving benchmark's gunicorn: the console's own, plus the baseline view."""

from console.settings import *  # noqa: F403

ROOT_URLCONF = "tests.perf.bench_urls"
