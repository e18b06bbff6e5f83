"""Django settings, read once from the environment. Every variable is documented in the README."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from warmysender.email.scanners import parse_networks
from warmysender.lib import embedded_pg
from warmysender.lib.crypto import keys_from_environment
from warmysender.lib.env import (
    env_bool,
    env_choice,
    env_int,
    env_secret,
    env_str,
    warmysender_home,
)

BASE_DIR = Path(__file__).resolve().parent
HOME = warmysender_home()

DEBUG = env_bool("WARMYSENDER_DEBUG", False)
SECRET_KEY = env_secret("SECRET_KEY")
if not SECRET_KEY:
    # A self-hoster who runs `warmysender serve` without configuring anything still gets a stable
    # key: it is generated once and kept in the data directory.
    key_file = HOME / "secret_key"
    if key_file.exists():
        SECRET_KEY = key_file.read_text().strip()
    else:
        from django.core.management.utils import get_random_secret_key

        SECRET_KEY = get_random_secret_key()
        try:
            HOME.mkdir(parents=True, exist_ok=True)
            key_file.write_text(SECRET_KEY)
            key_file.chmod(0o600)
        except OSError:
            pass

SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")
ALLOWED_HOSTS = [h.strip() for h in env_str("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h]
CSRF_TRUSTED_ORIGINS = [SITE_URL]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "ninja",
    "django_htmx",
    "template_partials",
    "procrastinate.contrib.django",
    "warmysender.accounts",
    "warmysender.audit",
    "warmysender.prospects",
    "warmysender.mailboxes",
    "warmysender.sequences",
    "warmysender.email",
    "warmysender.inbox",
    "warmysender.linkedin",
    "warmysender.webhooks",
    "warmysender.api",
    "warmysender.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "warmysender.accounts.middleware.CurrentWorkspaceMiddleware",
]

ROOT_URLCONF = "warmysender.urls"
ASGI_APPLICATION = "warmysender.asgi.application"

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
                "warmysender.web.context_processors.shell",
            ],
        },
    },
]


def _database_url() -> str:
    url = env_str("DATABASE_URL")
    if url:
        return url
    # No DATABASE_URL: the CLI starts an embedded server and exports its URL to every child. A
    # bare `manage.py` call attaches to one that is already running for this home.
    return embedded_pg.running_url(HOME) or f"postgresql://postgres@/warmysender?host={HOME / 'pg'}"


_db = dj_database_url.parse(_database_url(), conn_max_age=0)
if _db.get("ENGINE") != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must point to PostgreSQL (postgresql://...)")
_options = dict(_db.get("OPTIONS", {}))
# `?host=/socket/dir` arrives as an option; keep it in HOST/PORT where Django and tools look.
_db["HOST"] = _db.get("HOST") or str(_options.pop("host", ""))
_db["PORT"] = _db.get("PORT") or str(_options.pop("port", ""))
_db["OPTIONS"] = {**_options, "application_name": "warmysender"}
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 8},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
SESSION_COOKIE_AGE = 30 * 24 * 3600
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = SITE_URL.startswith("https://")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
PASSWORD_RESET_TIMEOUT = 3600 * 24

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = HOME / "static"
try:  # whitenoise warns about a missing directory; files come from the finders anyway
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
except OSError:
    pass
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG
MEDIA_ROOT = HOME / "media"

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "WarmySender <noreply@localhost>")

# Product settings
BILLING_ENABLED = env_choice("WARMYSENDER_BILLING", "off", ("off", "on")) == "on"
API_RATE_LIMIT_PER_MINUTE = env_int("API_RATE_LIMIT_PER_MINUTE", 60, minimum=1)
# How many emails one mailbox sends to one recipient domain per day (its own midnight).
RECIPIENT_DOMAIN_DAILY_LIMIT = env_int("RECIPIENT_DOMAIN_DAILY_LIMIT", 50, minimum=1)
IMPORT_PLACEHOLDER_DOMAIN = env_str("IMPORT_PLACEHOLDER_DOMAIN", "warmysender.com")
IMPORT_MAX_ROWS = 10_000
IMPORT_MAX_BYTES = env_int("IMPORT_MAX_BYTES", 10 * 1024 * 1024, minimum=1024)
INVITATION_MAX_AGE_DAYS = 7
LOGIN_LOCKOUT_FAILURES = 5
LOGIN_LOCKOUT_MINUTES = 15
# Webhook deliveries refuse private, loopback and link-local addresses; `on` allows loopback
# (127.0.0.0/8, ::1, localhost) for local development and tests.
WEBHOOKS_ALLOW_LOOPBACK = env_bool("WEBHOOKS_ALLOW_LOOPBACK", False)
# Mailbox passwords are stored encrypted with these keys (the first encrypts; see lib/crypto.py).
CREDENTIALS_KEYS = keys_from_environment(HOME)
# An extra CA bundle trusted for SMTP and IMAP connections (a private CA or a self-signed server
# certificate); the system's CAs stay trusted too.
SMTP_CA_FILE = env_str("SMTP_CA_FILE")
if SMTP_CA_FILE and not Path(SMTP_CA_FILE).is_file():
    raise ImproperlyConfigured(f"SMTP_CA_FILE: {SMTP_CA_FILE} is not a readable file")

# Open and click tracking (docs/tracking.md).
TRACKING_CNAME_TARGET = env_str("TRACKING_CNAME_TARGET", urlsplit(SITE_URL).hostname or "localhost")
TRACKING_DOMAIN_SCHEME = env_choice(
    "TRACKING_DOMAIN_SCHEME",
    "https" if SITE_URL.startswith("https://") else "http",
    ("http", "https"),
)
TRACKING_SCANNER_SECONDS = env_int("TRACKING_SCANNER_SECONDS", 30, minimum=0)
try:
    TRACKING_EXTRA_SCANNER_NETWORKS = parse_networks(env_str("TRACKING_EXTRA_SCANNER_NETWORKS"))
except ValueError as exc:
    raise ImproperlyConfigured(f"TRACKING_EXTRA_SCANNER_NETWORKS: {exc}") from None
# "host" or "host:port" of the DNS server that checks tracking-domain CNAMEs; unset: the system's.
TRACKING_DNS_SERVER = env_str("TRACKING_DNS_SERVER")

# LinkedIn through Unipile (docs/linkedin.md). `simulator` talks to the bundled Unipile simulator.
LINKEDIN_BACKEND = env_choice("LINKEDIN_BACKEND", "unipile", ("unipile", "simulator"))
UNIPILE_DSN = env_str("UNIPILE_DSN")
UNIPILE_API_KEY = env_secret("UNIPILE_API_KEY")
# Unipile does not sign webhooks: they must carry this secret in the X-Unipile-Secret header.
UNIPILE_WEBHOOK_SECRET = env_secret("UNIPILE_WEBHOOK_SECRET")
# The first of six layers before any account is deleted at Unipile; off unless set on purpose.
LINKEDIN_DELETE_ENABLED = env_bool("LINKEDIN_DELETE_ENABLED", False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO").upper()},
    "loggers": {
        "procrastinate": {"level": "WARNING"},
        "django.db.backends": {"level": "INFO"},
    },
}
