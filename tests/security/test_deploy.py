"""`manage.py check --deploy` is clean with production settings, and is not with development ones."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT


def _check_deploy(tmp_path: Path, **environment: str) -> subprocess.CompletedProcess[str]:
    # Only what a production .env sets (plus PATH): nothing of the test run leaks in.
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "DJANGO_SETTINGS_MODULE": "config.settings",
           "ROLLCALL_VAR_DIR": str(tmp_path / "var"), **environment}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )


def production_environment() -> dict[str, str]:
    """What README's production notes and docker-compose.yml set: the secret from the environment,
    TLS at a proxy in front, HSTS for a year."""
    return {
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "attendance.example.edu",
        "CSRF_TRUSTED_ORIGINS": "https://attendance.example.edu",
        "DATABASE_URL": "postgres://rollcall:secret@127.0.0.1:5432/rollcall",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "BEHIND_TLS_PROXY": "true",
        "SECURE_SSL_REDIRECT": "true",
        "SECURE_HSTS_SECONDS": "31536000",
        "SECURE_HSTS_PRELOAD": "true",
    }


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    result = _check_deploy(tmp_path, **production_environment())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_settings_take_the_secret_from_the_environment(tmp_path):
    environment = production_environment()
    code = "from django.conf import settings as s; print(s.SECRET_KEY == __import__('os').environ['SECRET_KEY'], " \
           "s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS)"
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=REPO_ROOT, env={"PATH": os.environ.get("PATH", ""), "DJANGO_SETTINGS_MODULE": "config.settings",
                            "ROLLCALL_VAR_DIR": str(tmp_path / "var"), **environment},
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "False", "True", "True", "31536000"]
    assert not (tmp_path / "var" / "secret_key").exists()  # no key was made up on disk


def test_check_deploy_fails_with_development_settings(tmp_path):
    """The control: the check really looks. DEBUG on, no HSTS, no redirect and any host are refused."""
    result = _check_deploy(tmp_path, DEBUG="true", SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="*")
    assert result.returncode != 0
    for warning in ("security.W018", "security.W004", "security.W008"):
        assert warning in result.stderr + result.stdout, warning


def test_a_short_secret_key_stops_the_app(tmp_path):
    environment = {**production_environment(), "SECRET_KEY": "too-short"}
    result = _check_deploy(tmp_path, **environment)
    assert result.returncode != 0
    assert "SECRET_KEY must be at least 32 characters" in result.stderr
