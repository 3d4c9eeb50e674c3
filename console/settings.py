"""Settings for Tool Router Console: one module, every knob from the environment."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)
# Production: HTTPS only, HSTS, secure __Host- cookies, and a real secret key or no start at all.
SECURE = env.bool("DJANGO_SECURE", default=False)
_DEV_SECRET_KEY = "django-insecure-dev-only-key-change-me-in-production"
# The literal dev key is refused by `check --deploy`; production sets DJANGO_SECRET_KEY.
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default=_DEV_SECRET_KEY)
if SECURE and (SECRET_KEY == _DEV_SECRET_KEY or len(set(SECRET_KEY)) < 5 or len(SECRET_KEY) < 50):
    raise ImproperlyConfigured(
        "DJANGO_SECURE is on: set DJANGO_SECRET_KEY to at least 50 random characters."
    )
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # allauth's passkey list shows "added 3 days ago".
    "django.contrib.humanize",
    "django_htmx",
    "axes",
    # Sign-in for the console and the admin: passwords, MFA (TOTP, recovery codes, passkeys) and
    # single sign-on over OpenID Connect (README "Sign-in").
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "django_tasks",
    "django_tasks_db",
    "sessions_app",
]

MIDDLEWARE = [
    # First: a peer that is not a trusted proxy loses the forwarding headers before anything
    # (SecurityMiddleware's HTTPS redirect included) reads them.
    "sessions_app.middleware.UntrustedProxyHeadersMiddleware",
    # Before WhiteNoise and the HTTPS redirect, so static files and redirects carry it too.
    "sessions_app.middleware.PermissionsPolicyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "sessions_app.middleware.RequestIdMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "sessions_app.middleware.RejectMalformedInputMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "sessions_app.middleware.StaffSessionTimeoutMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Sign-in flows (allauth): asks again before sensitive actions (ReauthenticationRequired).
    "allauth.account.middleware.AccountMiddleware",
    # With MFA_REQUIRED, a staff user without a second factor enrols before any other page.
    "sessions_app.signin.middleware.MfaEnrolmentMiddleware",
    # The sign-in pages' CSP form-action also allows the SSO provider (the button's redirect).
    "sessions_app.signin.middleware.SsoFormActionMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a lock-out into its response.
    "axes.middleware.AxesMiddleware",
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
                "sessions_app.context_processors.console",
                "sessions_app.signin.context.signin",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock at BEGIN, so two writers queue instead of failing mid-way;
    # the busy timeout lets them wait for each other.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20}
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# One cache for every web process and every machine: a table in the database above (created by
# `migrate`, sessions_app.signals). A per-process LocMem cache would let each gunicorn worker ask
# Composio on its own, and a file cache is neither shared between machines nor atomic in `add`;
# the table's primary key makes `add` (the check-now limit, the one-filler lock) atomic.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "console_cache",
        "KEY_PREFIX": "trc",
        "OPTIONS": {"MAX_ENTRIES": env.int("CACHE_MAX_ENTRIES", default=100_000)},
    }
}

# --- Transport and cookies -----------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
if env.bool("DJANGO_BEHIND_TLS_PROXY", default=False):
    # The proxy terminates TLS and says so in X-Forwarded-Proto. A client's own copy never gets
    # here: UntrustedProxyHeadersMiddleware drops it from any peer outside TRUSTED_PROXIES.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
if SECURE:
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env.bool("DJANGO_HSTS_PRELOAD", default=True)
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    # __Host- cookies are only accepted over HTTPS, for this exact host, path /.
    SESSION_COOKIE_NAME = "__Host-sessionid"
    CSRF_COOKIE_NAME = "__Host-csrftoken"

AUTHENTICATION_BACKENDS = [
    # First, so a locked-out (username, IP) pair is refused before the password is checked.
    "axes.backends.AxesStandaloneBackend",
    # ModelBackend with the staff user's permission sets kept in the shared cache,
    # forgotten on every ORM change to them (sessions_app/principals.py).
    "sessions_app.principals.CachedPermissionsBackend",
    # allauth's (passkey sign-in), for authenticating only: it answers no permission question, so
    # a permission a user lacks costs no uncached query (sessions_app/signin/backends.py).
    "sessions_app.signin.backends.SignInOnlyBackend",
]
# How long a staff user's cached permission sets live at most (seconds): the bound on a change
# made to the auth tables with raw SQL (no signal; `manage.py forget_permissions` applies it at
# once). 0: no cache, three queries a request as with Django's ModelBackend.
PERMISSION_CACHE_SECONDS = env.int("PERMISSION_CACHE_SECONDS", default=300)

# --- Login protection (django-axes) ------------------------------------------------------------
# Lock the (username, IP) pair, never the username alone: nobody can lock staff out from afar.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("LOGIN_COOLOFF_HOURS", default=0.25)  # hours
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "sessions_app.middleware.axes_client_ip"
AXES_USERNAME_CALLABLE = "sessions_app.middleware.axes_username"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False


def _networks(cidrs: list[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """The CIDRs as networks; a typo (or host bits set, `10.0.0.1/8`) stops the start."""
    try:
        return tuple(ipaddress.ip_network(cidr.strip()) for cidr in cidrs if cidr.strip())
    except ValueError as error:
        raise ImproperlyConfigured(f"DJANGO_TRUSTED_PROXIES: {error}") from error


# The reverse proxies whose X-Forwarded-For/-Proto/-Ssl and X-Request-ID the console believes, by
# the peer's REMOTE_ADDR (empty: none; every client is its own REMOTE_ADDR). gunicorn.conf.py
# reads the same variable for gunicorn's forwarded_allow_ips.
TRUSTED_PROXIES = _networks(env.list("DJANGO_TRUSTED_PROXIES", default=[]))
# How many of those proxies append to X-Forwarded-For (0: use REMOTE_ADDR).
TRUSTED_PROXY_COUNT = env.int("DJANGO_TRUSTED_PROXY_COUNT", default=0)

# --- Staff sessions ----------------------------------------------------------------------------
SESSION_IDLE_TIMEOUT = env.int("SESSION_IDLE_TIMEOUT", default=30 * 60)  # seconds
SESSION_ABSOLUTE_TIMEOUT = env.int("SESSION_ABSOLUTE_TIMEOUT", default=12 * 3600)  # seconds
SESSION_COOKIE_AGE = SESSION_ABSOLUTE_TIMEOUT
# Sessions are read from the shared cache (one query) and written to both it and django_session,
# so a culled or cleared cache entry falls back to the table; logout deletes both.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "landing"  # each role's own page: sessions_app.navigation.landing_url
LOGOUT_REDIRECT_URL = "login"

# --- Sign-in: django-allauth (README "Sign-in", docs/security.md) ---------------------------------
# Staff accounts are made by administrators (or by SSO, below); nobody signs up.
ACCOUNT_ADAPTER = "sessions_app.signin.adapters.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"username"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "password1*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
# No "remember me" box: the session lasts SESSION_ABSOLUTE_TIMEOUT at most, as before.
ACCOUNT_SESSION_REMEMBER = True
ACCOUNT_LOGOUT_REDIRECT_URL = LOGOUT_REDIRECT_URL
ACCOUNT_PREVENT_ENUMERATION = True
# An SSO person whose email a password account already has gets an SSO account of their own
# (never linked by email, never stuck on a sign-up form).
ACCOUNT_UNIQUE_EMAIL = False
# django-axes limits password (and TOTP, recovery-code) guessing per (username, IP); allauth's own
# failed-login limit would answer first and hide the lock-out page. Sign-ins (failed or not) per
# client IP stay limited by allauth (its "login" rate, django-allauth's syntax: "30/m/ip"; empty:
# none). allauth counts them under a cache lock it waits 1 s for, then answers 429: many staff
# signing in at once from one address (the load benchmark) need it empty.
ACCOUNT_RATE_LIMITS = {"login_failed": False, "login": env.str("LOGIN_RATE", default="30/m/ip")}
ACCOUNT_REAUTHENTICATION_METHODS = ("password", "mfa")
SOCIALACCOUNT_ADAPTER = "sessions_app.signin.adapters.SocialAccountAdapter"

# MFA: TOTP with recovery codes, and WebAuthn passkeys.
MFA_ADAPTER = "sessions_app.signin.adapters.MFAAdapter"
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes", "webauthn"]
MFA_FORMS = {
    "authenticate": "sessions_app.signin.forms.AuthenticateForm",
    "reauthenticate": "sessions_app.signin.forms.ReauthenticateForm",
}
MFA_TOTP_ISSUER = "Tool Router Console"
# Keys that encrypt the TOTP keys and recovery-code seeds at rest (sessions_app.signin.mfa_secrets):
# the first encrypts, all decrypt (rotation: put the new one first). Empty: SECRET_KEY.
MFA_SECRET_KEYS = env.list("MFA_SECRET_KEYS", default=[])
MFA_PASSKEY_LOGIN_ENABLED = True
# Browsers treat http://localhost as secure; plain http elsewhere only outside production.
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = not SECURE
# Staff without a second factor are sent to enrol before any page. On in production.
MFA_REQUIRED = env.bool("MFA_REQUIRED", default=SECURE)
# Ask for the password or a second factor again before revealing an MCP URL, sending a reconnect
# link or starting a bulk job, unless the last sign-in or check is this recent (seconds).
STEP_UP_REQUIRED = env.bool("STEP_UP_REQUIRED", default=MFA_REQUIRED)
STEP_UP_SECONDS = env.int("STEP_UP_SECONDS", default=900)
ACCOUNT_REAUTHENTICATION_TIMEOUT = STEP_UP_SECONDS

# Single sign-on over OpenID Connect: on when SSO_ISSUER_URL is set.
SSO_ISSUER_URL = env.str("SSO_ISSUER_URL", default="")
SSO_CLIENT_ID = env.str("SSO_CLIENT_ID", default="")
SSO_CLIENT_SECRET = env.str("SSO_CLIENT_SECRET", default="")
# The scopes asked for (add the one that releases the groups claim, e.g. "groups" on Okta).
SSO_SCOPES = env.list("SSO_SCOPES", default=["openid", "profile", "email"])
# The button's label on the sign-in page.
SSO_PROVIDER_NAME = env.str("SSO_PROVIDER_NAME", default="Company SSO")
# Email domains whose people may be provisioned (empty: nobody).
SSO_ALLOWED_DOMAINS = [d.lower().lstrip("@") for d in env.list("SSO_ALLOWED_DOMAINS", default=[])]
# The claim that lists the person's groups, and "group=Role,group=Role" onto the console's roles.
SSO_GROUPS_CLAIM = env.str("SSO_GROUPS_CLAIM", default="groups")
SSO_ROLE_MAP = env.dict("SSO_ROLE_MAP", default={})
# Password sign-in off for everyone but these superusers (break-glass; README "Sign-in").
SSO_ONLY = env.bool("SSO_ONLY", default=False)
SSO_BREAK_GLASS_USERS = env.list("SSO_BREAK_GLASS_USERS", default=[])
# An SSO sign-in whose amr (or acr) claim shows the provider's own MFA counts as a second factor.
SSO_TRUST_PROVIDER_MFA = env.bool("SSO_TRUST_PROVIDER_MFA", default=False)
SSO_MFA_AMR_VALUES = env.list("SSO_MFA_AMR_VALUES", default=["mfa", "otp", "hwk"])
SSO_MFA_ACR_VALUES = env.list("SSO_MFA_ACR_VALUES", default=[])
SOCIALACCOUNT_ONLY = False
SOCIALACCOUNT_AUTO_SIGNUP = True
SOCIALACCOUNT_LOGIN_ON_GET = False
SOCIALACCOUNT_STORE_TOKENS = False
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False
SOCIALACCOUNT_PROVIDERS = {
    "openid_connect": {
        # allauth's OpenID Connect provider plus a nonce (sessions_app.signin.oidc).
        # Its one app is built from the SSO_* settings above (SocialAccountAdapter.list_apps).
        "provider_class": "sessions_app.signin.oidc.ConsoleOIDCProvider",
        "OAUTH_PKCE_ENABLED": True,
    }
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Production serves compressed, content-hashed files through WhiteNoise (after collectstatic).
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if env.bool("DJANGO_STATIC_MANIFEST", default=SECURE)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Outside production WhiteNoise finds files in place (no collectstatic needed to develop or test).
WHITENOISE_USE_FINDERS = WHITENOISE_AUTOREFRESH = not SECURE
# Files served at the site's root: the favicon browsers ask the admin pages for (no 404 logged).
WHITENOISE_ROOT = BASE_DIR / "webroot"

# --- Content Security Policy (django-csp) ------------------------------------------------------
# No inline script anywhere: htmx and the console's own scripts are files served from 'self'.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "form-action": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "sessions_app.middleware.RequestIdLogFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"}
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # The SDK logs request details at INFO; keep it quiet unless asked.
        "composio": {"level": "WARNING"},
        "composio_client": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "console.request": {"level": "INFO", "filters": ["request_id"]},
        # At DEBUG it logs every unresolved template variable with the whole template context,
        # which may hold a revealed MCP URL.
        "django.template": {"level": "INFO"},
        # django-axes logs every login attempt at INFO; the audit trail already records them.
        "axes": {"level": "WARNING"},
    },
}

# --- Composio -------------------------------------------------------------------------------
# With no COMPOSIO_API_KEY the console talks to the bundled emulator and says so in the UI.
COMPOSIO_API_KEY = env.str("COMPOSIO_API_KEY", default="")
COMPOSIO_BASE_URL = env.str("COMPOSIO_BASE_URL", default="")
COMPOSIO_EMULATOR_URL = env.str("COMPOSIO_EMULATOR_URL", default="http://127.0.0.1:9900")
COMPOSIO_EMULATOR_API_KEY = env.str("COMPOSIO_EMULATOR_API_KEY", default="emulator-local-key")
COMPOSIO_CONNECT_TIMEOUT = env.float("COMPOSIO_CONNECT_TIMEOUT", default=3.0)
COMPOSIO_READ_TIMEOUT = env.float("COMPOSIO_READ_TIMEOUT", default=10.0)
# Retries for calls that are safe to repeat (reads, delete); create and update are never retried.
COMPOSIO_SAFE_RETRIES = env.int("COMPOSIO_SAFE_RETRIES", default=2)
# Key for fingerprints of MCP URLs in logs and the audit trail (defaults to SECRET_KEY).
MCP_FINGERPRINT_KEY = env.str("MCP_FINGERPRINT_KEY", default="") or SECRET_KEY

# --- The audit chain (docs/audit.md) -----------------------------------------------------------
# HMAC keys that sign the audit chain, never stored in the database. Either one key with its id,
# or "k2:secret2,k1:secret1": the first signs new events, the others still verify the events they
# signed (rotation). Neither set: a public dev key that `check --deploy` refuses, and that
# production (DJANGO_SECURE) never falls back to.
AUDIT_HMAC_KEYS = env.str("AUDIT_HMAC_KEYS", default="")
AUDIT_HMAC_KEY = env.str("AUDIT_HMAC_KEY", default="")
AUDIT_HMAC_KEY_ID = env.str("AUDIT_HMAC_KEY_ID", default="k1")
# Where `manage.py anchor_audit` appends the chain head (ship it off the host in production).
AUDIT_ANCHOR_PATH = env.str(
    "AUDIT_ANCHOR_PATH", default=str(BASE_DIR / "var" / "audit-anchors.jsonl")
)
# Where `manage.py seed_demo` keeps the demo accounts' passwords (mode 0600; --renew-passwords).
DEMO_PASSWORDS_PATH = env.str(
    "DEMO_PASSWORDS_PATH", default=str(BASE_DIR / "var" / "demo-passwords.json")
)
# How often the task workers anchor the chain once `anchor_audit --schedule` has booked it.
AUDIT_HOUSEKEEPING_SECONDS = env.int("AUDIT_HOUSEKEEPING_SECONDS", default=300)
# How often the task workers check stored sessions against Composio once `verify_sessions
# --schedule` has booked it (seconds), and the most sessions one such run checks.
DRIFT_VERIFY_SECONDS = env.int("DRIFT_VERIFY_SECONDS", default=3600)
DRIFT_VERIFY_BATCH = env.int("DRIFT_VERIFY_BATCH", default=500)
# A periodic run still "running" after this many seconds lost its worker (killed: django-tasks'
# database backend never finishes its row); `--schedule` marks it failed and books a new chain.
PERIODIC_TASK_DEAD_AFTER_SECONDS = env.int("PERIODIC_TASK_DEAD_AFTER_SECONDS", default=3600)
# Users needing attention (`manage.py sweep_attention`, `tool_router.attention`): this many failed
# tool executions in the last 24 hours put a user on the page; how often the task workers sweep
# once `sweep_attention --schedule` has booked it (seconds), the most users one run checks, and
# the longest a sweep waits for the shared Composio budget before stopping (it continues next run).
ATTENTION_FAILED_EXECUTIONS = env.int("ATTENTION_FAILED_EXECUTIONS", default=3)
ATTENTION_SWEEP_SECONDS = env.int("ATTENTION_SWEEP_SECONDS", default=900)
ATTENTION_SWEEP_BATCH = env.int("ATTENTION_SWEEP_BATCH", default=500)
ATTENTION_SWEEP_MAX_WAIT_SECONDS = env.float("ATTENTION_SWEEP_MAX_WAIT_SECONDS", default=5.0)

# --- Background work ---------------------------------------------------------------------------
# The database backend: `manage.py db_worker` processes claim tasks with SKIP LOCKED, so several
# workers on several machines share one PostgreSQL. TASKS_BACKEND=immediate runs tasks inline.
TASKS = {
    "default": {
        "BACKEND": {
            "database": "django_tasks_db.DatabaseBackend",
            "immediate": "django_tasks.backends.immediate.ImmediateBackend",
        }[env.str("TASKS_BACKEND", default="database")],
    }
}

# Bulk jobs (also read from the environment by worker processes; see docs/bulk.md).
BULK_RATE_PER_MINUTE = env.int("BULK_RATE_PER_MINUTE", default=1200)  # under Composio's 2,000/min
# Runner slots per job (worker processes that may work on one job at once), and the Composio
# calls each runner keeps in flight: with N worker processes, up to min(N, slots) x this many,
# all paced by the one rate budget below.
BULK_CONCURRENCY = env.int("BULK_CONCURRENCY", default=8)
# Threads of one runner (one db_worker process), each with its own database connection. More
# than BULK_CONCURRENCY, so one item's database work overlaps other items' calls. 1: no pool
# (the runner works in the worker's own thread, one item at a time). 20: on 2 CPUs one process
# reached 0.88 of the ceiling with 20 threads, 0.82 with 12 (docs/bulk.md, Benchmark).
BULK_THREADS = env.int("BULK_THREADS", default=20)
BULK_MAX_ATTEMPTS = env.int("BULK_MAX_ATTEMPTS", default=5)
BULK_RETRY_BACKOFF_SECONDS = env.float("BULK_RETRY_BACKOFF_SECONDS", default=2.0)
BULK_DEFAULT_RETRY_AFTER = env.int("BULK_DEFAULT_RETRY_AFTER", default=10)
BULK_LEASE_SECONDS = env.int("BULK_LEASE_SECONDS", default=120)
# Requests that may go out at once after a quiet spell (0: one second's worth of the rate).
BULK_RATE_BURST = env.float("BULK_RATE_BURST", default=0)
# The most a web request waits for its turn at Composio (the budget above, which web calls share
# with bulk jobs, or another request's check of the same session) before it answers "try again
# in N s" and sends nothing (seconds).
COMPOSIO_WEB_MAX_WAIT_SECONDS = env.float("COMPOSIO_WEB_MAX_WAIT_SECONDS", default=2.0)
# How long one runner task works before handing its slot on to a fresh task (seconds).
BULK_SLICE_SECONDS = env.float("BULK_SLICE_SECONDS", default=30)
# A slot whose runner has not been heard from for this long is re-armed by a stand-in (seconds).
BULK_DEADMAN_SECONDS = env.float("BULK_DEADMAN_SECONDS", default=180)

# --- Console behaviour -------------------------------------------------------------------------
TOOL_ROUTER_MAX_TOOLKITS = env.int("TOOL_ROUTER_MAX_TOOLKITS", default=25)
TOOL_ROUTER_SYNC_LIMIT = env.int("TOOL_ROUTER_SYNC_LIMIT", default=20)
SUPPORT_REVEALS_PER_HOUR = env.int("SUPPORT_REVEALS_PER_HOUR", default=30)
# Refusals of one staff user and operation within this many seconds are one audit event plus one
# counted summary (sessions_app.refusals); 0 writes an event per refusal.
REFUSAL_COALESCE_SECONDS = env.int("REFUSAL_COALESCE_SECONDS", default=60)
SUPPORT_SEARCH_LIMIT = env.int("SUPPORT_SEARCH_LIMIT", default=25)
# How long a revealed MCP URL stays on screen before it masks itself again (seconds).
SUPPORT_REVEAL_SECONDS = env.int("SUPPORT_REVEAL_SECONDS", default=60)
# The end-user CSV import: the largest file and row count it takes, and how long a checked file
# waits on the server for its confirmation (seconds).
END_USER_IMPORT_MAX_BYTES = env.int("END_USER_IMPORT_MAX_BYTES", default=8 * 1024 * 1024)
END_USER_IMPORT_MAX_ROWS = env.int("END_USER_IMPORT_MAX_ROWS", default=100_000)
END_USER_IMPORT_STAGED_SECONDS = env.int("END_USER_IMPORT_STAGED_SECONDS", default=3600)
# How long a session's connection status is served from the shared cache (seconds).
CONNECTION_STATUS_CACHE_SECONDS = env.int("CONNECTION_STATUS_CACHE_SECONDS", default=30)
# "Check now" skips that cache at most once per this many seconds per staff user and session.
CONNECTION_CHECK_NOW_SECONDS = env.int("CONNECTION_CHECK_NOW_SECONDS", default=10)
# Reconnect links support sends an end user: where Composio sends the user back after the connect
# page (empty: Composio's own page), how many links one staff user may create per hour, and how
# long a created link stays on screen before it hides itself (seconds).
CONNECT_LINK_CALLBACK_URL = env.str("CONNECT_LINK_CALLBACK_URL", default="")
CONNECT_LINKS_PER_HOUR = env.int("CONNECT_LINKS_PER_HOUR", default=20)
CONNECT_LINK_SECONDS = env.int("CONNECT_LINK_SECONDS", default=120)
# A page of a user's recent tool executions (and its chart) is shared by every web process for
# this long: opening the panel again, or from another tab, asks Composio nothing.
SUPPORT_EXECUTIONS_CACHE_SECONDS = env.int("SUPPORT_EXECUTIONS_CACHE_SECONDS", default=30)
# A session's Composio config history, as read for its admin page, is shared by every web process
# for this long: opening the page again asks Composio nothing.
CONFIG_HISTORY_CACHE_SECONDS = env.int("CONFIG_HISTORY_CACHE_SECONDS", default=30)
# A pending intent older than this no longer blocks its end user (it is marked unknown).
TOOL_ROUTER_OPERATION_STALE_SECONDS = env.int("TOOL_ROUTER_OPERATION_STALE_SECONDS", default=600)
# reconcile_sessions leaves intents younger than this alone: their caller may still be finishing.
TOOL_ROUTER_RECONCILE_SETTLE_SECONDS = env.int("TOOL_ROUTER_RECONCILE_SETTLE_SECONDS", default=60)
