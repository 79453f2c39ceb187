"""Settings for the test suite: the production settings with test-safe environment defaults."""

import os

os.environ.setdefault("SECRET_KEY", "test-only-not-secret")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("CACHE_URL", "locmemcache://")
os.environ.setdefault("STATICFILES_BACKEND", "django.contrib.staticfiles.storage.StaticFilesStorage")
os.environ["Q_SYNC"] = "true"  # django-q2 runs tasks inline in tests

from console.settings import *  # noqa: E402, F403
