"""Settings for the test suite: the real PostgreSQL and Redis, throwaway media and index folders."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("DATABASE_URL", os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/rollcall"))
# Database 1 keeps test keys and queues away from a development app running on database 0.
os.environ.setdefault("REDIS_URL", os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/1"))
os.environ.setdefault("ROLLCALL_BACKBONE", "dlib")
_tmp = Path(tempfile.mkdtemp(prefix="rollcall-test-"))
os.environ.setdefault("MEDIA_ROOT", str(_tmp / "media"))
os.environ.setdefault("ROLLCALL_INDEX_DIR", str(_tmp / "indexes"))
_shared = Path(os.environ.get("ROLLCALL_SHARED_DIR", Path(__file__).resolve().parent.parent.parent / "shared"))
_shared_detector = _shared / "models" / "face_detection_yunet_2023mar.onnx"
os.environ.setdefault("ROLLCALL_DETECTOR_MODEL", str(_shared_detector))
# A throwaway key per run, generated on first use (as ./rollcall up does), read by test workers too.
os.environ.setdefault("ROLLCALL_BIOMETRIC_KEY_FILE", str(_tmp / "biometric.key"))
os.environ.setdefault("ROLLCALL_BIOMETRIC_KEY_GENERATE", "true")
# Converted models (dlib's network, the liveness models' OpenCV exports) are made afresh per run,
# outside the repository.
os.environ.setdefault("ROLLCALL_MODEL_DIR", str(_tmp / "models"))
# The MiniFASNet liveness weights sit beside it: no download in tests.
os.environ.setdefault("ROLLCALL_LIVENESS_MODEL_DIR", str(_shared / "models"))

from config.settings import *

# In memory, except for a test that points a worker subprocess at its own SMTP server (test_warnings_worker).
EMAIL_BACKEND = os.environ.get("ROLLCALL_TEST_EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
STATIC_ROOT = _tmp / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
