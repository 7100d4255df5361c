"""Settings, read from the environment (django-environ).

The defaults give the embedded mode: SQLite in ``var/``, a broker on a SQLite file that needs
no server, and the edge stand-in on 127.0.0.1:8787. The full stack sets DATABASE_URL,
CELERY_BROKER_URL and the Cloudflare variables; see docs/configuration.md.
"""

import ipaddress
from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("ROLLOUT_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)


def _numbers(defaults: dict[str, int | float]) -> dict[str, int | float]:
    """The number settings of one topic, for ``globals().update``: each read from the environment
    variable of its name, as the type of its default (int or float); a malformed value fails at
    start-up. For settings that no other setting is computed from."""
    return {
        name: env.get_value(name, cast=type(default), default=default)
        for name, default in defaults.items()
    }


def _every(seconds: float, task: str) -> dict:
    """A Celery beat entry: ``task`` every ``seconds``. It expires after about one interval so
    missed runs do not pile up."""
    return {"task": task, "schedule": timedelta(seconds=seconds), "options": {"expires": seconds}}


DEBUG = env.bool("DEBUG", default=False)
# The embedded demo's key is published here; a secure deployment refuses to start with it, or with
# any short key (system check rollout.E600).
EMBEDDED_SECRET_KEY = "insecure-embedded-mode-key-change-me-" + "x" * 20
SECRET_KEY = env.str("SECRET_KEY", default="") or EMBEDDED_SECRET_KEY
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "axes",
    "outbox",
    "rollout",
    "monitoring",
    "metrics",
    "slack_actions",
    # above every other app: the token API (/api/v1) and its token pages
    "api",
    # django-ninja's own static files: the API's browsable docs page needs no CDN
    "ninja",
]

MIDDLEWARE = [
    "rollout.middleware.RequestIdMiddleware",
    "rollout.middleware.DatabaseUnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "rollout.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language from the switcher's cookie, else Accept-Language; a person's own choice
    # (rollout.Preferences) wins over both in ViewerPreferencesMiddleware below.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Ends a company sign-in's session after its maximum age (OIDC_SESSION_MAX_AGE_SECONDS).
    "rollout.middleware.CompanySessionLimitMiddleware",
    "rollout.middleware.ViewerPreferencesMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Audits every refusal of a state-changing request (rollout/permissions.py).
    "rollout.permissions.RefusalAuditMiddleware",
    # Last, as axes asks: it turns a locked-out log-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'rollout.sqlite3'}"),
}
# Embedded mode: the SQLite file of the demo, not the full stack.
_embedded = DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
if _embedded:
    # Web, worker and beat write to one file: WAL lets readers run beside the writer, and
    # IMMEDIATE transactions make writers queue on the busy timeout instead of failing with
    # "database is locked" halfway through a transaction.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
else:
    # Persistent connections, each tested before it is reused in a request: after a PostgreSQL
    # restart the first request finds its old connection dead and opens a new one, no process
    # restart needed. While the server is away, a request answers 503 (rollout/middleware.py),
    # and its attempt to connect gives up after DATABASE_CONNECT_TIMEOUT seconds instead of
    # holding a gunicorn thread for the operating system's TCP timeout.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5)
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "rollout:overview"
LOGOUT_REDIRECT_URL = "login"

# English is the default; German is complete (locale/de/). "en-gb" keeps the British date
# formats English pages always had; a browser asking for any English gets it.
LANGUAGE_CODE = "en-gb"


def gettext_noop(text: str) -> str:
    """Marks a name for makemessages. Django's own gettext_noop reads the settings this module
    is still defining."""
    return text


# Each language is named in itself, whatever the page's language (locale/de keeps the names).
LANGUAGES = [("en-gb", gettext_noop("English")), ("de", gettext_noop("Deutsch"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("DISPLAY_TIME_ZONE", default="Europe/Berlin")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Logs go to stderr, one record a line: JSON objects (time, level, logger, message, request_id
# or task_name/task_id, extra fields) for a log collector, or plain text for a person reading a
# terminal. JSON unless in embedded mode (SQLite). Secrets are removed from both; see
# config/log_format.py.
LOG_FORMAT = env.str("LOG_FORMAT", default="text" if _embedded else "json")
if LOG_FORMAT not in ("json", "text"):
    raise ValueError(f"LOG_FORMAT must be json or text, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "config.log_format.ContextFilter"}},
    "formatters": {
        "json": {"()": "config.log_format.JsonLogFormatter"},
        "text": {"()": "config.log_format.TextLogFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"httpx": {"level": "WARNING"}},
}

# --- Cloudflare -----------------------------------------------------------------------------
# Same variable name wrangler reads, so one setting points both at a local stand-in.
CLOUDFLARE_API_BASE_URL = env.str(
    "CLOUDFLARE_API_BASE_URL", default="http://127.0.0.1:8787/client/v4"
).rstrip("/")
CLOUDFLARE_API_TOKEN = env.str("CLOUDFLARE_API_TOKEN", default="demo-token")
# Seconds for connect, read and write of each call to the KV API and to /api/qa.
HTTP_TIMEOUT_SECONDS = env.float("HTTP_TIMEOUT_SECONDS", default=5.0)

# --- The KV writer ----------------------------------------------------------------------------
# One worker at a time may write an environment's KV key. The lease outlives the three bounded
# HTTP calls of one attempt (read, write, read back), so a live holder never loses it mid-write.
KV_WRITE_LEASE_SECONDS = env.float("KV_WRITE_LEASE_SECONDS", default=4 * HTTP_TIMEOUT_SECONDS)
# The holder renews a heartbeat this often while it works; an emergency stop takes over the lease
# of a holder that missed three beats (a worker killed mid-write) instead of waiting for it.
KV_LEASE_HEARTBEAT_SECONDS = env.float("KV_LEASE_HEARTBEAT_SECONDS", default=1.0)
# How often a write is tried, and the backoff between tries.
globals().update(
    _numbers(
        {"KV_WRITE_MAX_ATTEMPTS": 6, "KV_RETRY_BASE_SECONDS": 1.0, "KV_RETRY_MAX_SECONDS": 60.0}
    )
)
# How long the edge may take to report a written value before the change is flagged.
PROPAGATION_ALLOWANCE_SECONDS = env.float("PROPAGATION_ALLOWANCE_SECONDS", default=120.0)
EDGE_POLL_INTERVAL_SECONDS = env.float("EDGE_POLL_INTERVAL_SECONDS", default=1.0)
# A write that got no answer may still be applied by the API: for this long after it, KV holding
# that older version's settings again is taken for our late write and undone (monitoring/drift.py).
LATE_WRITE_HORIZON_SECONDS = env.float("LATE_WRITE_HORIZON_SECONDS", default=600.0)
SWEEP_INTERVAL_SECONDS = env.float("SWEEP_INTERVAL_SECONDS", default=30.0)

# --- Celery -----------------------------------------------------------------------------------
# Embedded mode: kombu's SQLAlchemy transport on a SQLite file in var/, shared by web, worker and
# beat on one machine. It replaced the filesystem transport, whose worker died under concurrent
# producers ("Unrecoverable error: JSONDecodeError" reading a half-written message file);
# bench/broker_hammer.py measures both (BENCHMARKS.md).
EMBEDDED_BROKER_URL = f"sqla+sqlite:///{VAR_DIR / 'broker.sqlite3'}"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or EMBEDDED_BROKER_URL
CELERY_BROKER_TRANSPORT_OPTIONS = {}
if CELERY_BROKER_URL.startswith("sqla+"):
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # SQLite lets one writer at a time: wait for the lock rather than fail a publish.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"connect_args": {"timeout": 30}}
elif CELERY_BROKER_URL.startswith("filesystem://"):
    # Kept for comparison only (bench/broker_hammer.py); not robust under concurrent use.
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    # Redelivery of a message whose worker died; the sweep re-queues sooner anyway.
    # Priority order: an emergency stop (priority 0) is taken before routine work (5).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": 300,
        "queue_order_strategy": "priority",
        "priority_steps": list(range(10)),
    }
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Every task without a priority of its own is routine work (5). Without this a message carries
# no priority, which the Redis transport reads as 0, and every health check, sample and sweep
# would queue level with an emergency stop instead of behind it.
CELERY_TASK_DEFAULT_PRIORITY = 5
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Keep Django's LOGGING (the JSON or text lines above) in worker and beat: by default Celery
# replaces the root logger's handlers with its own plain-text one.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
# A web request must not hang on a dead broker: one quick try, then the sweep takes over.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.1}
CELERY_BEAT_SCHEDULE = {
    "sweep-unapplied-config": _every(
        SWEEP_INTERVAL_SECONDS, "rollout.tasks.sweep_unapplied_changes"
    ),
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- Security -----------------------------------------------------------------------------------
# SECURE_DEPLOYMENT=true (behind HTTPS) turns on everything `manage.py check --deploy` asks for.
# The embedded demo runs on plain http://127.0.0.1 and leaves it off. See docs/security.md.
SECURE_DEPLOYMENT = env.bool("SECURE_DEPLOYMENT", default=False)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 3600)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=SECURE_DEPLOYMENT)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# The header's language switcher remembers a browser's choice (before log-in too) for a year.
LANGUAGE_COOKIE_AGE = 365 * 24 * 60 * 60
LANGUAGE_COOKIE_SECURE = SESSION_COOKIE_SECURE
LANGUAGE_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=SECURE_DEPLOYMENT)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if SECURE_DEPLOYMENT else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
# Preloading HSTS is a domain-wide commitment that is hard to undo: the operator opts in with
# SECURE_HSTS_PRELOAD=true, so its reminder (security.W021) is silenced.
SILENCED_SYSTEM_CHECKS = ["security.W021"]
if env.bool("BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Only our own scripts and styles; htmx runs without eval and without injected styles
# (htmx.config in base.html), so no 'unsafe-*' source is needed.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# The proxies whose X-Forwarded-For is believed: addresses or networks (CIDR). Empty: the header is
# never believed and the client address is the connection's. See rollout/client_address.py.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
for _proxy in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError:
        raise ValueError(f"TRUSTED_PROXIES: {_proxy!r} is not an address or network") from None

# Log-in lockout (django-axes, rollout/lockout.py): LOGIN_FAILURE_LIMIT failed log-ins for one
# username from one client address, each within LOGIN_FAILURE_WINDOW_SECONDS of the next, lock
# that username at that address until LOGIN_FAILURE_WINDOW_SECONDS after the last of them.
# Attempts and lockouts are in the database (the admin's "Axes" pages) and in the audit trail.
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_FAILURE_WINDOW_SECONDS = env.int("LOGIN_FAILURE_WINDOW_SECONDS", default=900)
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(seconds=LOGIN_FAILURE_WINDOW_SECONDS)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "rollout.client_address.client_address"
AXES_HANDLER = "rollout.lockout.AuditedLockoutHandler"
AXES_LOCKOUT_CALLABLE = "rollout.views.auth.locked_out"
# A person who got in starts afresh; attempts during a lock neither count nor lengthen it, so a
# locked-out person retrying does not push the end further away.
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}
# With a cache every process shares (Redis), sessions and permission sets are read from it
# instead of PostgreSQL on every poll (rollout/auth_backend.py). A per-process cache cannot
# carry a logout or a revoked role to the other processes, so it keeps Django's defaults.
SHARED_CACHE = CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
if SHARED_CACHE:
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
AUTHENTICATION_BACKENDS = [
    "rollout.lockout.LockoutBackend",
    # Refuses a password log-in of anyone but a break-glass account when local passwords are off.
    "rollout.break_glass.LocalPasswordPolicyBackend",
    # Passwords, and every user's permissions (from their role groups).
    "rollout.auth_backend.CachedPermissionsBackend"
    if SHARED_CACHE
    else "django.contrib.auth.backends.ModelBackend",
    # Company login (OpenID Connect); it grants no permissions of its own.
    "rollout.company_login.CompanyLoginBackend",
]

# --- Company login: OpenID Connect (rollout/company_login.py) ----------------------------------
# See docs/security.md ("Company login") and docs/configuration.md. Empty OIDC_DISCOVERY_URL:
# no company login, local passwords only.
OIDC_DISCOVERY_URL = env.str("OIDC_DISCOVERY_URL", default="")
OIDC_RP_CLIENT_ID = env.str("OIDC_CLIENT_ID", default="")
OIDC_RP_CLIENT_SECRET = env.str("OIDC_CLIENT_SECRET", default="")
OIDC_RP_SIGN_ALGO = env.str("OIDC_SIGN_ALGORITHM", default="RS256")
OIDC_RP_SCOPES = env.str("OIDC_SCOPES", default="openid email profile")
# The claim that lists a person's groups, and which groups give which role:
# {"tech lead": ["rollout-tech-leads"], "viewer": ["engineering"], …} (roles: rollout/roles.py).
OIDC_GROUPS_CLAIM = env.str("OIDC_GROUPS_CLAIM", default="groups")
OIDC_ROLE_GROUPS = env.json("OIDC_ROLE_GROUPS", default={})
# A company sign-in lasts at most this long; then the person signs in again and their groups
# are read again, so a leaver or a removed group loses access by then at the latest.
OIDC_SESSION_MAX_AGE_SECONDS = env.int("OIDC_SESSION_MAX_AGE_SECONDS", default=4 * 3600)
# Who a person with no mapped group should ask, as the page says "ask …".
OIDC_NO_ROLE_CONTACT = env.str("OIDC_NO_ROLE_CONTACT", default="an admin of Rollout Control")
# What mozilla-django-oidc needs besides: PKCE (S256), state and nonce, the ID token kept in the
# session for the provider's sign-out, bounded calls to the provider.
OIDC_USE_PKCE = True
OIDC_USE_NONCE = True
OIDC_STORE_ID_TOKEN = True
OIDC_TIMEOUT = HTTP_TIMEOUT_SECONDS
OIDC_OP_LOGOUT_URL_METHOD = "rollout.company_login.provider_logout_url"
# Local passwords: off for everyone but the named break-glass accounts, which stay for when the
# company's provider is down during an incident (rollout/break_glass.py).
LOCAL_PASSWORD_LOGIN = env.bool("LOCAL_PASSWORD_LOGIN", default=True)
BREAK_GLASS_ACCOUNTS = env.list("BREAK_GLASS_ACCOUNTS", default=[])
# Seconds one rendering of a live fragment (overview rows, environment status) serves every
# poll; 0 renders each poll. See rollout.views.environments._live_fragment.
LIVE_FRAGMENT_CACHE_SECONDS = env.int("LIVE_FRAGMENT_CACHE_SECONDS", default=1)

VAR_DIR.mkdir(parents=True, exist_ok=True)

# Extra headers for every request to the edge, e.g. {"X-Monitoring-Token": "…"} for a token the
# worker exempts from its rate limit. Never rendered in a page.
EDGE_PROBE_HEADERS = env.json("EDGE_PROBE_HEADERS", default={})
CELERY_BEAT_SCHEDULE["advance-rollouts"] = _every(60, "rollout.tasks.advance_rollouts")

# --- Notifications ----------------------------------------------------------------------------
# Slack incoming webhook for #deployments; unset means nothing is sent (the page says so).
SLACK_DEPLOYMENTS_WEBHOOK_URL = env.str("SLACK_DEPLOYMENTS_WEBHOOK_URL", default="")
SLACK_INCIDENTS_WEBHOOK_URL = env.str("SLACK_INCIDENTS_WEBHOOK_URL", default="")
NOTIFY_MAX_ATTEMPTS = env.int("NOTIFY_MAX_ATTEMPTS", default=5)
# Absolute base of links in messages, e.g. https://rollout.example.com
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")
# Acting from Slack (docs/slack.md): buttons on messages need the Slack app's bot token and its
# signing secret; without either, messages go out through the webhooks above, without buttons.
SLACK_BOT_TOKEN = env.str("SLACK_BOT_TOKEN", default="")
SLACK_SIGNING_SECRET = env.str("SLACK_SIGNING_SECRET", default="")
SLACK_API_BASE_URL = env.str("SLACK_API_BASE_URL", default="https://slack.com/api").rstrip("/")
# A press's response_url must begin with this; anything else is not Slack's and is not called.
SLACK_RESPONSE_URL_PREFIX = env.str("SLACK_RESPONSE_URL_PREFIX", default="https://hooks.slack.com/")
# A Slack user matched by their verified email is looked up again after this long, so a changed
# email or a deactivated Slack account stops acting for the dashboard user.
SLACK_EMAIL_RECHECK_HOURS = env.float("SLACK_EMAIL_RECHECK_HOURS", default=24.0)
# Seconds for each Slack Web API call: a dialog must open within Slack's three seconds.
SLACK_API_TIMEOUT_SECONDS = env.float("SLACK_API_TIMEOUT_SECONDS", default=2.0)
CELERY_BEAT_SCHEDULE["sweep-unsent-notifications"] = _every(
    SWEEP_INTERVAL_SECONDS, "outbox.tasks.sweep_unsent_notifications"
)
CELERY_BEAT_SCHEDULE["sweep-slack-presses"] = _every(
    SWEEP_INTERVAL_SECONDS, "slack_actions.tasks.sweep_presses"
)

# --- Monitoring: health checks, cohort sampler, drift, retention --------------------------------
# See docs/monitoring.md and docs/configuration.md.
# One observation per connected environment: KV read once, /api/qa probed once, recorded for the
# overview, the drift view and the health checks history (monitoring/observation.py).
OBSERVE_INTERVAL_SECONDS = env.float("OBSERVE_INTERVAL_SECONDS", default=15.0)
# Our requests to one environment's edge, all processes together, per sliding window: the worker
# answers the 11th request of one client in its 10 s window with 429, so 10 per 11 s (a second
# for the way there). The sampler leaves EDGE_REQUEST_BUDGET_RESERVED of them to the observation
# and the "in effect" confirmation. 0 turns the budget off (probe headers the worker exempts).
EDGE_REQUEST_BUDGET = env.int("EDGE_REQUEST_BUDGET", default=10)
EDGE_REQUEST_BUDGET_WINDOW_SECONDS = env.float("EDGE_REQUEST_BUDGET_WINDOW_SECONDS", default=11.0)
EDGE_REQUEST_BUDGET_RESERVED = env.int("EDGE_REQUEST_BUDGET_RESERVED", default=3)
# Where the budget is kept; empty (the embedded mode) keeps a window per process.
EDGE_BUDGET_REDIS_URL = env.str(
    "EDGE_BUDGET_REDIS_URL",
    default=CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else "",
)
COHORT_SAMPLE_INTERVAL_SECONDS = env.float("COHORT_SAMPLE_INTERVAL_SECONDS", default=300.0)
# How one sample is taken and judged.
globals().update(
    _numbers(
        {
            # N fresh-client probes, this many at a time.
            "COHORT_SAMPLE_SIZE": 100,
            "COHORT_SAMPLE_CONCURRENCY": 4,
            # A sample ends after this long even if 429s kept it from N answers; judged on what
            # it got.
            "COHORT_SAMPLE_MAX_SECONDS": 60.0,
            # Significance of the two-sided binomial test; the Wilson interval is shown at
            # 1 - alpha.
            "COHORT_SAMPLE_ALPHA": 0.01,
            # More failed probes than this share of N fails the sample whatever the split.
            "COHORT_SAMPLE_MAX_FAILED_SHARE": 0.1,
        }
    )
)
CHECK_RETENTION_DAYS = env.float("CHECK_RETENTION_DAYS", default=14.0)
PRUNE_INTERVAL_SECONDS = env.float("PRUNE_INTERVAL_SECONDS", default=3600.0)
# Extra probe headers per environment, keyed "service/environment", merged over
# EDGE_PROBE_HEADERS: {"pix-immo-api/production": {"X-Monitoring-Token": "…"}}. Secrets: never
# rendered in a page, never stored in the database.
EDGE_PROBE_HEADERS_BY_ENVIRONMENT = env.json("EDGE_PROBE_HEADERS_BY_ENVIRONMENT", default={})
CELERY_BEAT_SCHEDULE["monitoring-observe"] = _every(
    OBSERVE_INTERVAL_SECONDS, "monitoring.tasks.observe_environments"
)
CELERY_BEAT_SCHEDULE["monitoring-cohort-samples"] = _every(
    COHORT_SAMPLE_INTERVAL_SECONDS, "monitoring.tasks.sample_cohorts"
)
CELERY_BEAT_SCHEDULE["monitoring-prune-checks"] = _every(
    PRUNE_INTERVAL_SECONDS, "monitoring.tasks.prune_checks"
)
# --- end of monitoring settings ---------------------------------------------------------------

# --- Metrics: Logpush ingestion, alert rules, PagerDuty ----------------------------------------
# See docs/metrics.md and docs/configuration.md. Where each environment's logs are (bucket and
# prefixes, or a directory) is set per environment in the admin; credentials only here.
# R2's S3 API endpoint; empty means https://<environment's account id>.r2.cloudflarestorage.com
R2_ENDPOINT_URL = env.str("R2_ENDPOINT_URL", default="").rstrip("/")
R2_ACCESS_KEY_ID = env.str("R2_ACCESS_KEY_ID", default="")
R2_SECRET_ACCESS_KEY = env.str("R2_SECRET_ACCESS_KEY", default="")
# How often beat looks for new Logpush objects: one list call per dataset after the newest key
# counted, nothing else when nothing is new. Rules are judged right after an ingestion that adds
# data, so this sets how soon a landed file can fire a rule.
METRICS_INGEST_INTERVAL_SECONDS = env.float("METRICS_INGEST_INTERVAL_SECONDS", default=5.0)
# How often a look lists every object under the prefixes instead (objects whose names sort before
# the newest one counted, rewritten objects).
METRICS_FULL_LISTING_SECONDS = env.float("METRICS_FULL_LISTING_SECONDS", default=60.0)
METRICS_EVALUATE_INTERVAL_SECONDS = env.float("METRICS_EVALUATE_INTERVAL_SECONDS", default=60.0)
# Objects last modified longer ago than this are not listed for ingestion (a new source does not
# read a bucket's whole history).
METRICS_LOOKBACK_HOURS = env.float("METRICS_LOOKBACK_HOURS", default=48.0)
# Child processes that fetch and parse a backlog of objects in parallel (1: in the task itself).
METRICS_INGEST_PROCESSES = env.int("METRICS_INGEST_PROCESSES", default=2)
# Minutes of log data held back from alert rules after the newest log line, for files of the same
# minutes still on their way.
METRICS_ALERT_SETTLE_MINUTES = env.int("METRICS_ALERT_SETTLE_MINUTES", default=1)
# A minute not settled yet may still prove a breach: its 5xx counted against the most requests it
# can have, this many times the busiest of the cohort's last settled minutes (0: minutes are
# judged only once settled).
METRICS_PARTIAL_VOLUME_MARGIN = env.float("METRICS_PARTIAL_VOLUME_MARGIN", default=1.5)
# A firing rule triggers the automatic emergency stop only for log data at most this old.
METRICS_AUTO_STOP_MAX_AGE_MINUTES = env.float("METRICS_AUTO_STOP_MAX_AGE_MINUTES", default=15.0)
# Bearer token that lets a Prometheus scraper read /metrics/prometheus without a login.
METRICS_PROMETHEUS_TOKEN = env.str("METRICS_PROMETHEUS_TOKEN", default="")
# PagerDuty Events API v2: the routing key of the service (empty: nothing is sent).
PAGERDUTY_ROUTING_KEY = env.str("PAGERDUTY_ROUTING_KEY", default="")
PAGERDUTY_EVENTS_URL = env.str(
    "PAGERDUTY_EVENTS_URL", default="https://events.pagerduty.com/v2/enqueue"
)
CELERY_BEAT_SCHEDULE["metrics-ingest-logs"] = _every(
    METRICS_INGEST_INTERVAL_SECONDS, "metrics.tasks.ingest_all_logs"
)
CELERY_BEAT_SCHEDULE["metrics-evaluate-alerts"] = _every(
    METRICS_EVALUATE_INTERVAL_SECONDS, "metrics.tasks.evaluate_all_alerts"
)
# --- end of metrics settings ------------------------------------------------------------------

# --- Preview suite and production pre-flight ---------------------------------------------------
# See docs/preview-and-preflight.md and docs/configuration.md.
# The suite's checks (not the restore of its emergency check, which always runs) end after this.
PREVIEW_SUITE_TIMEOUT_SECONDS = env.float("PREVIEW_SUITE_TIMEOUT_SECONDS", default=300.0)
# How long the emergency check waits for the edge to report its emergency flag, and again for the
# restore: the propagation allowance plus the time to take over a dead writer's KV lease.
PREVIEW_SUITE_EDGE_WAIT_SECONDS = env.float(
    "PREVIEW_SUITE_EDGE_WAIT_SECONDS",
    default=PROPAGATION_ALLOWANCE_SECONDS + KV_WRITE_LEASE_SECONDS,
)
# A worker holds a run for this long and renews it while it works; a dead worker's run is taken
# over (restore finished, run recorded as interrupted) by a retry or the sweep after it expires.
PREVIEW_SUITE_LEASE_SECONDS = env.float(
    "PREVIEW_SUITE_LEASE_SECONDS", default=6 * HTTP_TIMEOUT_SECONDS
)
# The pre-flight accepts a passed preview suite of the current build at most this old.
PREVIEW_SUITE_MAX_AGE_HOURS = env.float("PREVIEW_SUITE_MAX_AGE_HOURS", default=24.0)
# A pre-flight attestation (team notified, runbook reviewed, on-call, engineers available for the
# next 4 h) counts for this long after it was given.
PREFLIGHT_ATTESTATION_MAX_AGE_HOURS = env.float("PREFLIGHT_ATTESTATION_MAX_AGE_HOURS", default=4.0)
# Link to the rollback runbook shown on the pre-flight checklist (empty: its path is named).
ROLLBACK_RUNBOOK_URL = env.str("ROLLBACK_RUNBOOK_URL", default="")
CELERY_BEAT_SCHEDULE["preview-suite-sweep"] = _every(
    SWEEP_INTERVAL_SECONDS, "rollout.tasks.sweep_preview_runs"
)
# --- end of preview suite and pre-flight settings ---------------------------------------------

# --- Audit chain: its key and its checkpoints ---------------------------------------------------
# See docs/security.md ("The audit trail") and docs/configuration.md.
# Each entry's hash is an HMAC-SHA256 under this key, which never enters the database: someone
# who can write to the database but not read the key cannot forge a chain that verifies. Set the
# key itself (AUDIT_HMAC_KEY) or a file holding it (AUDIT_HMAC_KEY_FILE, e.g. a mounted secret);
# at least AUDIT_HMAC_KEY_MIN_LENGTH characters. Generate one with
#   python -c "import secrets; print(secrets.token_urlsafe(48))"
AUDIT_HMAC_KEY_MIN_LENGTH = 32
# The embedded demo makes its key once in var/ (scripts/demo).
AUDIT_HMAC_KEY_FILE = env.str(
    "AUDIT_HMAC_KEY_FILE", default=str(VAR_DIR / "audit-hmac-key") if _embedded else ""
)
AUDIT_HMAC_KEY = env.str("AUDIT_HMAC_KEY", default="")
if not AUDIT_HMAC_KEY and AUDIT_HMAC_KEY_FILE:
    try:
        AUDIT_HMAC_KEY = Path(AUDIT_HMAC_KEY_FILE).read_text().strip()
    except OSError:
        AUDIT_HMAC_KEY = ""  # reported by the system check rollout.E601
# Stored on every entry sealed with the key, so that a rotated-out key can still verify it.
AUDIT_HMAC_KEY_ID = env.str("AUDIT_HMAC_KEY_ID", default="k1")
# Keys no longer used for new entries but still needed to verify older ones: "id:key,id:key".
AUDIT_HMAC_OLD_KEYS = dict(
    item.split(":", 1) for item in env.list("AUDIT_HMAC_OLD_KEYS", default=[]) if ":" in item
)
# Where the chain's head (newest entry id and hash) is recorded outside the database: an
# append-only local file (one JSON line per checkpoint) and/or an S3/R2 bucket (one object per
# checkpoint, credentials R2_* below). Either or both; none means deleted newest entries and a
# truncated table cannot be detected.
AUDIT_CHECKPOINT_FILE = env.str(
    "AUDIT_CHECKPOINT_FILE", default=str(VAR_DIR / "audit-checkpoints.jsonl") if _embedded else ""
)
AUDIT_CHECKPOINT_BUCKET = env.str("AUDIT_CHECKPOINT_BUCKET", default="")
AUDIT_CHECKPOINT_PREFIX = env.str("AUDIT_CHECKPOINT_PREFIX", default="audit-checkpoints/")
# R2's S3 endpoint for the checkpoint bucket; empty means R2_ENDPOINT_URL.
AUDIT_CHECKPOINT_ENDPOINT_URL = env.str("AUDIT_CHECKPOINT_ENDPOINT_URL", default="")
# Besides every emergency stop and every decision, the head is checkpointed this often: the
# longest stretch of newest entries whose deletion could go unnoticed.
AUDIT_CHECKPOINT_INTERVAL_SECONDS = env.float("AUDIT_CHECKPOINT_INTERVAL_SECONDS", default=300.0)
CELERY_BEAT_SCHEDULE["audit-checkpoint"] = _every(
    AUDIT_CHECKPOINT_INTERVAL_SECONDS, "rollout.tasks.checkpoint_audit"
)
# --- end of audit chain settings ----------------------------------------------------------------

# --- The token API (/api/v1) -------------------------------------------------------------------
# Requests per token per fixed window, e.g. "120/min" (per s, min or hour); past it 429 with
# Retry-After. Counted in the default cache: shared by every web process with CACHE_URL on Redis,
# per process otherwise (the embedded mode). A malformed value stops the start (check api.E001).
API_RATE_LIMIT = env.str("API_RATE_LIMIT", default="120/min")
