"""Tillbook settings.

Everything is read from the environment (django-environ); production differs from a laptop
only by environment values. See README.md "Settings" and .env.example.
"""

import datetime
from decimal import Decimal
from pathlib import Path

import csp.constants as _csp
import environ
from django.core.management.utils import get_random_secret_key
from django.templatetags.static import static
from django.urls import reverse_lazy
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# ---------------------------------------------------------------------------------------------
# Core
# ---------------------------------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=False)
# A server without DEBUG must be given a key. On a laptop one is generated once and kept in a
# git-ignored file, so the web server, the worker and later runs all sign with the same key.
SECRET_KEY = env("SECRET_KEY", default="")
if not SECRET_KEY and DEBUG:
    _dev_key_file = BASE_DIR / ".dev-secret-key"
    if not _dev_key_file.exists():
        _dev_key_file.write_text(get_random_secret_key())
        _dev_key_file.chmod(0o600)
    SECRET_KEY = _dev_key_file.read_text().strip()
if not SECRET_KEY:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "unfold",
    "unfold.contrib.filters",
    "unfold.contrib.forms",
    "unfold.contrib.import_export",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_filters",
    "import_export",
    "django_q",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "csp",
    "console",
    "catalog",
    "ledger",
    "reconciliation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy on every response (console/csp.py: stricter storefront, admin policy).
    "console.csp.PathCSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Renews the staff session's idle timeout, at most once a STAFF_IDLE_RENEW_SECONDS.
    "console.middleware.IdleSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Marks request.user verified once a one-time code was accepted in this session.
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Roles in OTP_REQUIRED_ROLES see no admin page until their second factor is verified.
    "console.logins.SecondFactorMiddleware",
    # Answers a locked-out login with the lockout page (after the failure limit).
    "axes.middleware.AxesMiddleware",
    # Last, so it sees the view's exception first: an unreachable database answers 503, not 500.
    "console.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "console.urls"
WSGI_APPLICATION = "console.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "console.context_processors.shop",
                "csp.context_processors.nonce",
            ],
        },
    },
]

# ---------------------------------------------------------------------------------------------
# Database and cache
# ---------------------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Persistent connections: a new PostgreSQL connection costs ~3.5 ms, more than a callback's whole
# database work. Each web worker thread and each qcluster process keeps one for CONN_MAX_AGE
# seconds; the health check (a cheap round trip at the start of each request or task) replaces a
# connection the server dropped, so a database restart costs one failed check, not errors.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=600)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The worker and the web server share one file: wait for the lock instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The rate limiter and the Daraja token need a cache shared by every process.
CACHES = {
    "default": env.cache("CACHE_URL", default="dbcache://tillbook_cache"),
}

# ---------------------------------------------------------------------------------------------
# Auth
# ---------------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"
# /admin/login/ opened directly (no ?next=) lands on the dashboard, not /accounts/profile/.
LOGIN_REDIRECT_URL = "/admin/"
# Axes first: it refuses a locked-out username + address before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# Login throttling (django-axes): failures count per username *and* client address, so a
# stranger guessing a password locks only themselves out; the same user on another address
# can still log in. The address follows TRUST_X_FORWARDED_FOR like the public API.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = datetime.timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=30))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "ledger.callbacks.client_ip"
AXES_LOCKOUT_CALLABLE = "console.logins.lockout_response"
AXES_RESET_ON_SUCCESS = True
AXES_ENABLE_ADMIN = False  # console/admin.py registers it in the unfold theme, superusers only
AXES_SENSITIVE_PARAMETERS = ["password", "token", "otp_token"]

# Second factor (django-otp, TOTP + single-use recovery codes). Group names from console/roles.py,
# and "superuser" for superusers. Empty = optional for everyone.
OTP_REQUIRED_ROLES = env.list("OTP_REQUIRED_ROLES", default=["Finance", "superuser"])
OTP_TOTP_ISSUER = env("OTP_TOTP_ISSUER", default="Tillbook")
OTP_ADMIN_HIDE_SENSITIVE_DATA = True  # the device admin never shows a key or a recovery code
RECOVERY_CODE_COUNT = 10

# Staff sessions end after this much idle time. A request renews the session (a write) only when
# the last renewal is STAFF_IDLE_RENEW_SECONDS old (console.middleware.IdleSessionMiddleware), so
# a session ends between that slack and the idle time after its last request, never later.
STAFF_IDLE_MINUTES = env.int("STAFF_IDLE_MINUTES", default=30)
STAFF_IDLE_RENEW_SECONDS = env.int("STAFF_IDLE_RENEW_SECONDS", default=60)
SESSION_COOKIE_AGE = STAFF_IDLE_MINUTES * 60

# ---------------------------------------------------------------------------------------------
# Locale: amounts in KES, shown in Nairobi time
# ---------------------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", default="Africa/Nairobi")
USE_I18N = True
USE_TZ = True
USE_THOUSAND_SEPARATOR = True
FORMAT_MODULE_PATH = ["console.formats"]

# ---------------------------------------------------------------------------------------------
# Static and media files (whitenoise serves static in production)
# ---------------------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = env("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "console" / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = env("MEDIA_ROOT", default=str(BASE_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": env(
            "STATICFILES_BACKEND",
            default="django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage",
        )
    },
}
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# ---------------------------------------------------------------------------------------------
# Production hardening (all on when DEBUG is off; `check --deploy` is clean)
# ---------------------------------------------------------------------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# A load balancer probes /healthz and /readyz over plain HTTP inside the network: a redirect to
# HTTPS would read as "down". Patterns match the path without its leading slash.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]

# ---------------------------------------------------------------------------------------------
# Content-Security-Policy (django-csp 4). This is the storefront's policy and the base of every
# page: scripts only from our own static files or carrying this response's nonce, no inline
# handlers, no eval, styles only from our stylesheet. Admin pages get a wider policy in
# console/csp.py (unfold's Alpine.js needs 'unsafe-eval', its templates inline styles).
# ---------------------------------------------------------------------------------------------
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [_csp.SELF],
        "script-src": [_csp.SELF, _csp.NONCE],
        "style-src": [_csp.SELF],
        "img-src": [_csp.SELF, "data:"],
        "font-src": [_csp.SELF],
        "connect-src": [_csp.SELF],
        "object-src": [_csp.NONE],
        "base-uri": [_csp.SELF],
        "form-action": [_csp.SELF],
        "frame-ancestors": [_csp.NONE],
    },
}

# Every handler redacts secrets (callback tokens travel in URL paths). Django's own defaults give
# "django" and "django.server" handlers without that filter, so both are replaced here.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_secrets": {"()": "console.logging.RedactSecretsFilter"}},
    "formatters": {
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        }
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["redact_secrets"]},
        "django.server": {
            "class": "logging.StreamHandler",
            "formatter": "django.server",
            "filters": ["redact_secrets"],
        },
    },
    "loggers": {
        # No handlers of its own: its records reach the root's redacting handler.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
        # django-q2 logs every enqueue and every finished task at INFO: hundreds of lines a second
        # under load, and each passes the redacting filter. Failures are warnings and errors.
        "django-q": {"handlers": [], "level": env("Q_LOG_LEVEL", default="WARNING"), "propagate": True},
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}

# ---------------------------------------------------------------------------------------------
# Background work: django-q2 with the ORM broker (no Redis needed)
# ---------------------------------------------------------------------------------------------
Q_CLUSTER = {
    "name": "tillbook",
    "orm": "default",
    # The ORM broker with fewer round trips: bulk takes with SKIP LOCKED on PostgreSQL.
    "broker_class": "console.kernel.queue.OrmBroker",
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": 300,
    "retry": 360,  # longer than timeout, so a slow task is never run twice at once
    "max_attempts": 1,
    "catch_up": False,
    # The ORM broker sleeps `poll` seconds only when the queue is empty; it takes up to `bulk`
    # tasks per look (one statement on PostgreSQL; two clusters never take the same task).
    "poll": env.float("Q_POLL", default=0.5),
    "bulk": env.int("Q_BULK", default=4),
    # Keep every result: django-q2's own pruning (save_limit > 0) reads and locks all saved
    # successes on every task. console.tasks.task_results_prune trims them once a minute instead.
    "save_limit": 0,
    "ack_failures": True,
    "sync": env.bool("Q_SYNC", default=False),
}
# Successful task results kept (console.tasks.task_results_prune): the newest Q_RESULTS_KEEP, and
# none older than Q_RESULTS_KEEP_HOURS. Failures are kept until someone deletes them.
Q_RESULTS_KEEP = env.int("Q_RESULTS_KEEP", default=10000)
Q_RESULTS_KEEP_HOURS = env.int("Q_RESULTS_KEEP_HOURS", default=72)

# ---------------------------------------------------------------------------------------------
# The shop
# ---------------------------------------------------------------------------------------------
SHOP_NAME = env("SHOP_NAME", default="Tillbook Data Bundles")
TILL_NUMBER = env("TILL_NUMBER", default="6944804")
TILL_NAME = env("TILL_NAME", default="TILLBOOK DATA")
# Other names the till has traded under (comma-separated): a pasted M-Pesa SMS paying any of
# these, or TILL_NAME, pays us; one naming any other payee is an altered SMS.
TILL_OTHER_NAMES = env.list("TILL_OTHER_NAMES", default=[])
SUPPORT_WHATSAPP = env("SUPPORT_WHATSAPP", default="254782070228")
# The business's WhatsApp profile name, as an export made on another phone shows our replies.
SUPPORT_WHATSAPP_NAME = env("SUPPORT_WHATSAPP_NAME", default="Tillbook Support")

# ---------------------------------------------------------------------------------------------
# Payments: gateway choice and credentials (never committed; see .env.example)
# ---------------------------------------------------------------------------------------------
PAYMENT_GATEWAY = env("PAYMENT_GATEWAY", default="simulator")  # simulator | payhero | daraja
PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", default="http://127.0.0.1:8000")
# Secret path tokens: STK callback URLs travel with every prompt, C2B URLs are registered once
# with Safaricom, so each has its own. The STK token rotates: the previous one is still accepted
# until STK_CALLBACK_TOKEN_PREVIOUS_UNTIL (ISO 8601), for prompts sent before the change.
STK_CALLBACK_TOKEN = env("STK_CALLBACK_TOKEN", default="dev-stk-callback-token")
STK_CALLBACK_TOKEN_PREVIOUS = env("STK_CALLBACK_TOKEN_PREVIOUS", default="")
STK_CALLBACK_TOKEN_PREVIOUS_UNTIL = env("STK_CALLBACK_TOKEN_PREVIOUS_UNTIL", default="")
C2B_CALLBACK_TOKEN = env("C2B_CALLBACK_TOKEN", default="dev-c2b-callback-token")
CALLBACK_ALLOWED_IPS = env.list("CALLBACK_ALLOWED_IPS", default=[])
# Bodies larger than this are refused (413) and only an excerpt is kept; requests that fail
# authentication keep only an excerpt and are rate-limited per client IP.
CALLBACK_MAX_BODY_BYTES = env.int("CALLBACK_MAX_BODY_BYTES", default=64 * 1024)
CALLBACK_EXCERPT_BYTES = env.int("CALLBACK_EXCERPT_BYTES", default=1024)
CALLBACK_REJECTED_RATE = env("CALLBACK_REJECTED_RATE", default="20/m")
# Only behind a reverse proxy that sets it: otherwise anyone could forge their address.
TRUST_X_FORWARDED_FOR = env.bool("TRUST_X_FORWARDED_FOR", default=False)
GATEWAY_CONNECT_TIMEOUT = env.float("GATEWAY_CONNECT_TIMEOUT", default=5.0)
GATEWAY_READ_TIMEOUT = env.float("GATEWAY_READ_TIMEOUT", default=20.0)

PAYHERO_BASE_URL = env("PAYHERO_BASE_URL", default="https://backend.payhero.co.ke/api/v2")
PAYHERO_API_USERNAME = env("PAYHERO_API_USERNAME", default="")
PAYHERO_API_PASSWORD = env("PAYHERO_API_PASSWORD", default="")
PAYHERO_CHANNEL_ID = env("PAYHERO_CHANNEL_ID", default="")

DARAJA_BASE_URL = env("DARAJA_BASE_URL", default="https://sandbox.safaricom.co.ke")
DARAJA_CONSUMER_KEY = env("DARAJA_CONSUMER_KEY", default="")
DARAJA_CONSUMER_SECRET = env("DARAJA_CONSUMER_SECRET", default="")
DARAJA_SHORTCODE = env("DARAJA_SHORTCODE", default="")
DARAJA_PASSKEY = env("DARAJA_PASSKEY", default="")
DARAJA_TRANSACTION_TYPE = env("DARAJA_TRANSACTION_TYPE", default="CustomerBuyGoodsOnline")
DARAJA_PARTY_B = env("DARAJA_PARTY_B", default="")  # the till for Buy Goods, else the paybill

SIMULATOR_CALLBACK_DELAY = env.float("SIMULATOR_CALLBACK_DELAY", default=3.0)

# A success (callback) is believed only once the gateway's status query confirms it.
STK_CONFIRM_SUCCESS = env.bool("STK_CONFIRM_SUCCESS", default=True)
# After an unknown send (timeout), no new prompt is offered until the first can no longer be answered.
STK_PROMPT_LIFETIME = env.int("STK_PROMPT_LIFETIME", default=120)  # seconds
# The pay page explains the wait after this long without an answer (the browser tests shorten it).
STK_WAIT_HINT_SECONDS = env.float("STK_WAIT_HINT_SECONDS", default=30)
# Plausible ranges for values from outside: amounts below the maximum, times near now.
MAX_PAYMENT_AMOUNT = Decimal(env("MAX_PAYMENT_AMOUNT", default="250000"))
CLOCK_SKEW_SECONDS = env.int("CLOCK_SKEW_SECONDS", default=300)
GATEWAY_TIME_WINDOW_DAYS = env.int("GATEWAY_TIME_WINDOW_DAYS", default=3)  # callback/C2B timestamps
# Statement rows and pasted or forwarded SMS may not be dated before the till opened.
TILL_START_DATE = datetime.date.fromisoformat(env("TILL_START_DATE", default="2020-01-01"))
# Total time one customer request may spend on gateway calls (token + push), below the web
# server's worker timeout (gunicorn's default 30 s).
GATEWAY_REQUEST_BUDGET = env.float("GATEWAY_REQUEST_BUDGET", default=25.0)  # seconds
STK_CHASE_AFTER = env.int("STK_CHASE_AFTER", default=120)  # seconds
STK_EXPIRE_AFTER = env.int("STK_EXPIRE_AFTER", default=1800)  # seconds
STK_RATE_LIMIT = env("STK_RATE_LIMIT", default="5/m")
STK_DUPLICATE_WINDOW = env.int("STK_DUPLICATE_WINDOW", default=60)  # seconds: same prompt = double click
CLAIM_GRACE = env.int("CLAIM_GRACE", default=7200)  # seconds
# Scheduled matcher runs between full ones look only at claims with new evidence.
MATCHER_FULL_RUN_EVERY = env.int("MATCHER_FULL_RUN_EVERY", default=3600)  # seconds
# The matcher writes its verifications in sets of this many claims, one transaction per set.
MATCHER_VERIFY_SET = env.int("MATCHER_VERIFY_SET", default=200)

# Ledger exports: small ones download at once; XLSX is capped (CSV has no cap).
EXPORT_DIRECT_MAX_ROWS = env.int("EXPORT_DIRECT_MAX_ROWS", default=20_000)
EXPORT_XLSX_MAX_ROWS = env.int("EXPORT_XLSX_MAX_ROWS", default=2_000_000)
# Statement imports on PostgreSQL (COPY): rows per committed chunk; progress and resume go by chunk.
STATEMENT_COPY_CHUNK = env.int("STATEMENT_COPY_CHUNK", default=10_000)

# Uploads: a limit per kind of file, checked while reading (see console/uploads.py, README).
MB = 1024 * 1024
UPLOAD_STATEMENT_MAX_BYTES = env.int("UPLOAD_STATEMENT_MAX_BYTES", default=40 * MB)
UPLOAD_STATEMENT_MAX_ROWS = env.int("UPLOAD_STATEMENT_MAX_ROWS", default=200_000)
UPLOAD_CHAT_MAX_BYTES = env.int("UPLOAD_CHAT_MAX_BYTES", default=120 * MB)  # the .zip as uploaded
UPLOAD_CHAT_TEXT_MAX_BYTES = env.int("UPLOAD_CHAT_TEXT_MAX_BYTES", default=60 * MB)  # the chat text
# An upload up to this size imports in the request (errors shown on the form); larger ones in the worker.
CHAT_IMPORT_INLINE_MAX_BYTES = env.int("CHAT_IMPORT_INLINE_MAX_BYTES", default=2 * MB)
# "Save and match": up to this many new claims are matched in the request, more in the worker.
MATCH_INLINE_MAX_CLAIMS = env.int("MATCH_INLINE_MAX_CLAIMS", default=20)
UPLOAD_BUNDLE_MAX_BYTES = env.int("UPLOAD_BUNDLE_MAX_BYTES", default=1 * MB)
UPLOAD_BUNDLE_MAX_ROWS = env.int("UPLOAD_BUNDLE_MAX_ROWS", default=5_000)
UPLOAD_XLSX_MEMBER_MAX_BYTES = env.int("UPLOAD_XLSX_MEMBER_MAX_BYTES", default=400 * MB)  # one part unpacked
UPLOAD_ZIP_MAX_RATIO = env.int("UPLOAD_ZIP_MAX_RATIO", default=100)

# ---------------------------------------------------------------------------------------------
# Admin: django-unfold. Callbacks are dotted paths into console/ (no app imports here).
# ---------------------------------------------------------------------------------------------
UNFOLD = {
    "SITE_TITLE": "Tillbook",
    "SITE_HEADER": "Tillbook",
    "SITE_SYMBOL": "point_of_sale",
    "SITE_FAVICONS": [
        {"rel": "icon", "type": "image/svg+xml", "href": lambda request: static("console/favicon.svg")},
    ],
    # The audit trail is every record's history (services never write Django's admin log):
    # no History button; /history/ URLs redirect to the record's audit events.
    "SHOW_HISTORY": False,
    "SHOW_VIEW_ON_SITE": False,
    # Copy buttons and select-on-click boxes: wired in a static file, never in on* attributes (CSP).
    "SCRIPTS": [lambda request: static("console/copy.js")],
    "STYLES": [lambda request: static("console/console.css")],
    "ENVIRONMENT": "console.admin_site.environment_callback",
    "DASHBOARD_CALLBACK": "console.dashboard.dashboard_callback",
    "SIDEBAR": {
        "show_search": True,
        "show_all_applications": False,
        "navigation": "console.admin_site.navigation",
    },
}
_ = (static, reverse_lazy, _)  # kept importable for UNFOLD values that need them
