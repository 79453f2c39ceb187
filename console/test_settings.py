"""Settings for the test suite: the production settings with test-safe environment defaults."""

import os

os.environ.setdefault("SECRET_KEY", "test-only-not-secret")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("CACHE_URL", "locmemcache://")
os.environ.setdefault("STATICFILES_BACKEND", "django.contrib.staticfiles.storage.StaticFilesStorage")
os.environ["Q_SYNC"] = "true"  # django-q2 runs tasks inline in tests
os.environ.setdefault("STATEMENT_COPY_CHUNK", "1000")  # the ORM path's chunks: tests kill jobs by chunk

from console.settings import *  # noqa: E402, F403
