"""Rollcall settings.

Every value comes from the environment (see .env.example for the full list) with a default that
works for a one-machine development run. Malformed values raise ImproperlyConfigured at start.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import (
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_optional_str,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent
# A relative ROLLCALL_VAR_DIR (.env.example's ./var) is taken from the checkout, not from whatever
# directory a process was started in; an absolute one is kept as it is.
VAR_DIR = BASE_DIR / env_str("ROLLCALL_VAR_DIR", "var")

DEBUG = env_bool("DEBUG", False)

def _local_secret_key() -> str:
    """A random key kept in VAR_DIR, so a one-machine install is safe without configuring one."""
    path = VAR_DIR / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(50)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # the web server and a worker started together: the first one won
            return path.read_text().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(key)
        return key


SECRET_KEY = env_optional_str("SECRET_KEY") or _local_secret_key()
if len(SECRET_KEY) < 32:
    raise ImproperlyConfigured("SECRET_KEY must be at least 32 characters long")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc served locally: no CDN on an offline campus network
    "attendance",
]

MIDDLEWARE = [
    # First: everything after it (sign-in limits, logs) sees the client's address, not the proxy's.
    "config.proxy.ForwardedClientMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language: the chooser's cookie, else the browser's Accept-Language, else LANGUAGE_CODE (and see below).
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # PostgreSQL or Redis out of reach: 503 with a sentence instead of a 500 (attendance/platform/middleware.py).
    "attendance.platform.middleware.ServiceUnavailableMiddleware",
    # The language (after LocaleMiddleware's cookie / Accept-Language / LANGUAGE_CODE): a signed-in person's
    # saved choice above all three, the same on every device. Reading request.user loads the session from the
    # database: with the database out of reach it keeps the browser's language and the view's 503 follows.
    "attendance.platform.language.UserLanguageMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "attendance.platform.context_processors.navigation",
                "attendance.platform.language.language_menu",
            ],
        },
    },
]

# SQLite is the embedded default so that one machine can run the app with no database server;
# production sets DATABASE_URL to PostgreSQL (docker-compose.yml does).
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
try:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is malformed: {exc}") from None
# A database that stops answering (packets dropped, not a refused connection) must fail a request in
# seconds, with a 503, rather than hold a web worker until gunicorn kills it.
DATABASE_CONNECT_TIMEOUT = env_int("DATABASE_CONNECT_TIMEOUT", 5, minimum=1)
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = DATABASE_CONNECT_TIMEOUT

AUTH_USER_MODEL = "attendance.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Who may sign in and how (local passwords, LDAP, OpenID Connect): AUTHENTICATION_BACKENDS and the rest.
from config.sso import *  # noqa: E402, F403

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
# Every page, message, email and API error is in both (locale/hr holds the Croatian catalogue).
LANGUAGES = [("en-gb", "English"), ("hr", "Hrvatski")]
# Ours first; then Croatian for Django REST framework's own messages (it ships none).
LOCALE_PATHS = [BASE_DIR / "locale", BASE_DIR / "config" / "locale_rest_framework"]
# Dates in templates use the named formats (DATE_FORMAT, SHORT_DATETIME_FORMAT...), set per language in
# config/formats/<language>/formats.py, never a literal "j M Y" that would put English order in Croatian.
FORMAT_MODULE_PATH = ["config.formats"]
LANGUAGE_COOKIE_NAME = "rollcall_language"
LANGUAGE_COOKIE_AGE = 365 * 24 * 3600
LANGUAGE_COOKIE_SAMESITE = "Lax"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
# Media holds enrolment videos: it is never served from a public URL, only through views that
# check permission, so there is deliberately no MEDIA_URL route in config/urls.py.
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "/media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Uploads larger than this stream to a temporary file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 10 * 1024 * 1024, minimum=1024)

# --- Redis, cache and Celery -------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(f"REDIS_URL={REDIS_URL!r} must start with redis://, rediss:// or unix://")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "rollcall",
    }
}

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", REDIS_URL)
# JSON only: tasks take ids, never pickled objects (a pickle from the broker is code execution).
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_RESULT_EXPIRES = 3600
# acks_late + reject_on_worker_lost: a worker that dies mid-task leaves the message on the broker
# for the next worker, so a crash loses no enrolment. Tasks are idempotent to make that safe.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 540, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 600, minimum=1)
# Redis redelivers an unacknowledged task after this long; it must exceed the longest task.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT + 300}
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Periodic work for `celery beat` (run beside the worker by ./rollcall up and docker-compose.yml).
# Its state file is an absolute path in VAR_DIR: a relative one is taken from beat's working
# directory, and beat died at start when ROLLCALL_VAR_DIR was outside the checkout (issue 21).
CELERY_BEAT_SCHEDULE_FILENAME = env_str("CELERY_BEAT_SCHEDULE_FILENAME", str(VAR_DIR / "celerybeat-schedule"))
ROLLCALL_BEAT_HEARTBEAT_SECONDS = env_int("ROLLCALL_BEAT_HEARTBEAT_SECONDS", 60, minimum=1, maximum=3600)
CELERY_BEAT_SCHEDULE = {
    "delete-expired-checkin-snapshots": {
        "task": "attendance.snapshots_delete_expired",
        "schedule": 3600.0,  # hourly: retention is counted in days, so an hour late is harmless
    },
    "delete-expired-face-data": {
        "task": "attendance.face_data_retention",
        "schedule": 3600.0,  # hourly: notices and deletions are due by the day
    },
    "attendance-warnings": {
        "task": "attendance.warnings_check",
        "schedule": 600.0,  # a student who falls below hears within ten minutes of the session closing
    },
    "attendance-warning-digests": {
        "task": "attendance.warning_digests",
        "schedule": 3600.0,  # the first run of each week from Monday 07:00 sends it; its key stops a second
    },
    "prune-roster-uploads": {
        "task": "attendance.roster_uploads_prune",
        "schedule": 3600.0,  # hourly: an uploaded roster (personal data) not imported is kept a day at most
    },
    "close-ended-sessions": {
        "task": "attendance.sessions_close_due",
        # A session closes within this many seconds of its end (60: a minute).
        "schedule": float(env_int("ROLLCALL_SESSION_AUTO_CLOSE_CHECK_SECONDS", 60, minimum=1, maximum=3600)),
    },
    "beat-heartbeat": {
        # Beat's own sign of life for /healthz and the admin overview (attendance/platform/health.py):
        # missing after three intervals. Expires unrun after one, so no heap of them waits for a worker.
        "task": "attendance.beat_heartbeat",
        "schedule": float(ROLLCALL_BEAT_HEARTBEAT_SECONDS),
        "options": {"expires": float(ROLLCALL_BEAT_HEARTBEAT_SECONDS)},
    },
    "requeue-stale-enrolments": {
        "task": "attendance.enrolment_requeue_stale",
        "schedule": 300.0,  # a dead worker's job waits at most the stale limit plus five minutes
    },
}

# --- Recognition -------------------------------------------------------------------------------
# The paper uses CLIP; `dlib` is a face-specific model that runs fully offline. `auto`: CLIP where its
# weights are on this machine (checkpoint or cache), else dlib (recognition/choice.py).
ROLLCALL_BACKBONE = env_choice("ROLLCALL_BACKBONE", "auto", ["auto", "clip", "dlib"])
ROLLCALL_CLIP_MODEL = env_str("ROLLCALL_CLIP_MODEL", "ViT-B-32")
ROLLCALL_CLIP_PRETRAINED = env_str("ROLLCALL_CLIP_PRETRAINED", "openai")
ROLLCALL_CLIP_CHECKPOINT = env_optional_str("ROLLCALL_CLIP_CHECKPOINT")
if ROLLCALL_CLIP_CHECKPOINT and not Path(ROLLCALL_CLIP_CHECKPOINT).is_file():
    raise ImproperlyConfigured(f"ROLLCALL_CLIP_CHECKPOINT={ROLLCALL_CLIP_CHECKPOINT!r} is not a file")
ROLLCALL_DEVICE = env_str("ROLLCALL_DEVICE", "cpu")
# How the dlib backbone runs its network: `torch` (dlib's network converted to torch: the same
# descriptors, several times faster, on ROLLCALL_DEVICE) or `dlib` (dlib's own code, the reference).
ROLLCALL_DLIB_ENGINE = env_choice("ROLLCALL_DLIB_ENGINE", "torch", ["torch", "dlib"])
# Threads each process gives OpenCV, torch and FAISS together (recognition.runtime). Every gunicorn
# worker and Celery worker child is one process: on 2 cores with 2 web workers, 1 each; more and their
# OpenMP pools stall each other (see BENCHMARKS.md).
ROLLCALL_INFERENCE_THREADS = env_int("ROLLCALL_INFERENCE_THREADS", 1, minimum=1, maximum=256)
ROLLCALL_MODEL_DIR = Path(env_str("ROLLCALL_MODEL_DIR", str(VAR_DIR / "models")))
# `auto`: YuNet where its file is in place or can be downloaded, else dlib's HOG detector with its
# 5-point landmarks (in the installed face-recognition-models package).
ROLLCALL_DETECTOR = env_choice("ROLLCALL_DETECTOR", "auto", ["auto", "yunet", "dlib"])
ROLLCALL_DETECTOR_MODEL = Path(
    env_str("ROLLCALL_DETECTOR_MODEL", str(ROLLCALL_MODEL_DIR / "face_detection_yunet_2023mar.onnx"))
)
# The two MiniFASNet liveness models; fetched from upstream into this folder on first use (sha256 checked).
ROLLCALL_LIVENESS_MODEL_DIR = Path(env_str("ROLLCALL_LIVENESS_MODEL_DIR", str(ROLLCALL_MODEL_DIR)))
ROLLCALL_INDEX_DIR = Path(env_str("ROLLCALL_INDEX_DIR", str(VAR_DIR / "indexes")))
# Empty means "the backbone's calibrated default" (recognition.BACKBONE_DEFAULTS).
ROLLCALL_K1 = env_int("ROLLCALL_K1", 0, minimum=0, maximum=100) or None
ROLLCALL_K2 = env_int("ROLLCALL_K2", 0, minimum=0, maximum=100) or None
ROLLCALL_THRESHOLD = env_float("ROLLCALL_THRESHOLD", None, minimum=0.0, maximum=2.0)
# What a course's calibrated threshold may let through: the estimated chance that a stranger is
# named by its gallery (recognition.calibrate). 0.1%: about one stranger in a thousand tries.
ROLLCALL_CALIBRATION_TARGET_FAR: float = (
    env_float("ROLLCALL_CALIBRATION_TARGET_FAR", 0.001, minimum=1e-6, maximum=0.5) or 0.001
)
if ROLLCALL_K1 and ROLLCALL_K2 and ROLLCALL_K1 >= ROLLCALL_K2:
    raise ImproperlyConfigured(f"ROLLCALL_K1 ({ROLLCALL_K1}) must be smaller than ROLLCALL_K2 ({ROLLCALL_K2})")

# --- Enrolment ---------------------------------------------------------------------------------
ROLLCALL_ENROLMENT_MAX_UPLOAD_MB = env_int("ROLLCALL_ENROLMENT_MAX_UPLOAD_MB", 50, minimum=1)
ROLLCALL_ENROLMENT_MAX_SECONDS = env_int("ROLLCALL_ENROLMENT_MAX_SECONDS", 30, minimum=1)
ROLLCALL_ENROLMENT_STALE_MINUTES = env_int("ROLLCALL_ENROLMENT_STALE_MINUTES", 15, minimum=1)
ROLLCALL_KEEP_ENROLMENT_VIDEOS = env_bool("ROLLCALL_KEEP_ENROLMENT_VIDEOS", False)

# --- Check-in ----------------------------------------------------------------------------------
ROLLCALL_CHECKIN_INTERVAL_MS = env_int("ROLLCALL_CHECKIN_INTERVAL_MS", 400, minimum=100)
ROLLCALL_CHECKIN_CONFIRMATIONS = env_int("ROLLCALL_CHECKIN_CONFIRMATIONS", 3, minimum=1)
ROLLCALL_CHECKIN_WINDOW_SECONDS = env_int("ROLLCALL_CHECKIN_WINDOW_SECONDS", 10, minimum=1)
ROLLCALL_CHECKIN_MAX_IMAGE_MB = env_int("ROLLCALL_CHECKIN_MAX_IMAGE_MB", 4, minimum=1)
ROLLCALL_CHECKIN_RATE_PER_MINUTE = env_int("ROLLCALL_CHECKIN_RATE_PER_MINUTE", 600, minimum=1)
# Matches closer to the threshold than this fraction of it are shown to the lecturer to confirm, never
# marked by themselves (dlib: 0.243-0.27; CLIP: 0.738-0.82). 0 turns the doubtful band off.
ROLLCALL_CHECKIN_DOUBTFUL_BAND = env_float("ROLLCALL_CHECKIN_DOUBTFUL_BAND", 0.1, minimum=0.0, maximum=0.5)
# Liveness (photos, screens, replays held up to the camera): off, passive (MiniFASNet on every snapshot
# plus the frozen-face check) or challenge (passive, then a random head turn the next snapshots must
# show). A course's own setting overrides both.
LIVENESS_POLICIES = ["off", "passive", "challenge"]
ROLLCALL_LIVENESS_LECTURER = env_choice("ROLLCALL_LIVENESS_LECTURER", "passive", LIVENESS_POLICIES)
ROLLCALL_LIVENESS_KIOSK = env_choice("ROLLCALL_LIVENESS_KIOSK", "challenge", LIVENESS_POLICIES)
ROLLCALL_LATE_AFTER_MINUTES = env_int("ROLLCALL_LATE_AFTER_MINUTES", 10, minimum=0)
# An open session closes itself at its planned end; one with no planned end (started by hand, or
# opened after its planned end) this many hours after it was opened. 0: only planned ends close.
# The largest document (PDF, PNG or JPEG) a student may attach to an excuse.
ROLLCALL_EXCUSE_MAX_UPLOAD_MB = env_int("ROLLCALL_EXCUSE_MAX_UPLOAD_MB", 5, minimum=1, maximum=50)
ROLLCALL_SESSION_AUTO_CLOSE_HOURS = env_int("ROLLCALL_SESSION_AUTO_CLOSE_HOURS", 4, minimum=0, maximum=48)
ROLLCALL_STORE_SNAPSHOTS = env_bool("ROLLCALL_STORE_SNAPSHOTS", False)
ROLLCALL_SNAPSHOT_RETENTION_DAYS = env_int("ROLLCALL_SNAPSHOT_RETENTION_DAYS", 7, minimum=0)
ROLLCALL_LOW_ATTENDANCE_RATE = env_float("ROLLCALL_LOW_ATTENDANCE_RATE", 0.75, minimum=0.0, maximum=1.0)
# The app's address as its users reach it, for the links in emails (attendance warnings). Unset in
# production, the admin's home page says so (not an error at start: builds, checks and tests run
# production settings without it).
ROLLCALL_SITE_URL_SET = env_optional_str("ROLLCALL_SITE_URL") is not None
ROLLCALL_SITE_URL = env_str("ROLLCALL_SITE_URL", "http://127.0.0.1:8000").rstrip("/")
if not ROLLCALL_SITE_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured(f"ROLLCALL_SITE_URL={ROLLCALL_SITE_URL!r} must start with http:// or https://")
# A warning email the SMTP server refused for now (4xx) is tried again with a growing pause, this many times.
ROLLCALL_WARNING_EMAIL_ATTEMPTS = env_int("ROLLCALL_WARNING_EMAIL_ATTEMPTS", 8, minimum=1, maximum=50)
# An unreachable SMTP server (refused, timed out) does not count as a try: the email waits for it, but
# no longer than this many days after it was written.
ROLLCALL_WARNING_EMAIL_MAX_AGE_DAYS = env_int("ROLLCALL_WARNING_EMAIL_MAX_AGE_DAYS", 3, minimum=1, maximum=60)

# --- Biometric data (PRIVACY.md) -----------------------------------------------------------------
# AES-256-GCM keys for embeddings and index files: ROLLCALL_BIOMETRIC_KEY (base64, comma-separated,
# the first seals) or a file of such lines (a compose secret in production). Only a development run
# (./rollcall up) sets ROLLCALL_BIOMETRIC_KEY_GENERATE, which writes a key file on first use.
ROLLCALL_BIOMETRIC_KEY = env_optional_str("ROLLCALL_BIOMETRIC_KEY")
ROLLCALL_BIOMETRIC_KEY_FILE = Path(env_str("ROLLCALL_BIOMETRIC_KEY_FILE", str(VAR_DIR / "biometric.key")))
ROLLCALL_BIOMETRIC_KEY_GENERATE = env_bool("ROLLCALL_BIOMETRIC_KEY_GENERATE", False)
# Face data of a student on no course is deleted this many days after they left their last one.
# 180: a student between two terms, on a semester abroad or a leave of one term keeps their enrolment;
# longer has no purpose. BIPA allows at most three years after the last interaction: never above 1095.
ROLLCALL_BIOMETRIC_RETENTION_DAYS = env_int("ROLLCALL_BIOMETRIC_RETENTION_DAYS", 180, minimum=1, maximum=1095)
# The student is emailed this many days before the deletion (when they have an address).
ROLLCALL_BIOMETRIC_NOTICE_DAYS = env_int("ROLLCALL_BIOMETRIC_NOTICE_DAYS", 14, minimum=0, maximum=365)
if ROLLCALL_BIOMETRIC_NOTICE_DAYS >= ROLLCALL_BIOMETRIC_RETENTION_DAYS:
    raise ImproperlyConfigured("ROLLCALL_BIOMETRIC_NOTICE_DAYS must be smaller than ROLLCALL_BIOMETRIC_RETENTION_DAYS")

# --- Email (retention notices, attendance warnings) -------------------------------------------
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
# Seconds before a silent SMTP server is given up on (the email is retried later); Django's default waits forever.
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "rollcall@localhost")


# --- REST framework ----------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Rollcall API",
    "DESCRIPTION": "Face-recognition attendance: courses, sessions, check-in and enrolment.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Deep links put a link inside each operation's expand button (axe: nested-interactive, a
    # screen reader announces one control inside another); without them the path is plain text.
    "SWAGGER_UI_SETTINGS": {"deepLinking": False},
    # Sessions and attendance records both have a "status"; name the two enums instead of hashing them.
    "ENUM_NAME_OVERRIDES": {
        "SessionStatusEnum": "attendance.models.Session.Status",
        "AttendanceStatusEnum": "attendance.models.AttendanceRecord.Status",
    },
}

# --- Security ----------------------------------------------------------------------------------
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
LANGUAGE_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
# Only once the domain is to be submitted to the browsers' preload list: hard to take back.
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# `check --deploy` asks for preloading whenever HSTS is on (W021). Not preloading is a decision, not an
# oversight: the list takes a whole registered domain with its subdomains (a university's, where
# Rollcall is one host) and leaving it takes months; a campus-only name cannot be on it at all.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
# Reverse proxies in front of gunicorn whose X-Forwarded-For entries are believed (config/proxy.py):
# 1 behind the nginx of docker-compose.yml, 0 (ignore the header) when gunicorn faces clients itself.
ROLLCALL_TRUSTED_PROXY_HOPS = env_int("ROLLCALL_TRUSTED_PROXY_HOPS", 0, minimum=0, maximum=5)
# The proxy terminates TLS and says so in X-Forwarded-Proto (nginx overwrites whatever a client sent).
BEHIND_TLS_PROXY = env_bool("BEHIND_TLS_PROXY", ROLLCALL_TRUSTED_PROXY_HOPS > 0)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_TLS_PROXY else None
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Failed sign-ins (page and API token) allowed per account in each window; an address gets five times
# as many (attendance/platform/login_limit.py). Past that: 429 until the window ends.
ROLLCALL_LOGIN_MAX_FAILURES = env_int("ROLLCALL_LOGIN_MAX_FAILURES", 10, minimum=1)
ROLLCALL_LOGIN_WINDOW_SECONDS = env_int("ROLLCALL_LOGIN_WINDOW_SECONDS", 900, minimum=1)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # faiss logs which CPU build it loads, at INFO, once per process and library: dozens of lines
    # at each start that say nothing about the app. Its warnings and errors still show.
    "loggers": {"faiss": {"level": "WARNING"}},
}
