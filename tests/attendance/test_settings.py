from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from config import env
from tests.conftest import REPO_ROOT


@pytest.mark.parametrize(
    ("reader", "value"),
    [
        (lambda: env.env_int("X_TEST_INT", 1), "twelve"),
        (lambda: env.env_bool("X_TEST_BOOL", False), "maybe"),
        (lambda: env.env_float("X_TEST_FLOAT", 0.5), "nan"),
        (lambda: env.env_choice("X_TEST_CHOICE", "a", ["a", "b"]), "c"),
    ],
)
def test_malformed_environment_values_are_rejected(monkeypatch, reader, value):
    name = {"twelve": "X_TEST_INT", "maybe": "X_TEST_BOOL", "nan": "X_TEST_FLOAT", "c": "X_TEST_CHOICE"}[value]
    monkeypatch.setenv(name, value)
    with pytest.raises(ImproperlyConfigured, match=name):
        reader()


def test_unset_values_take_their_defaults(monkeypatch):
    monkeypatch.delenv("X_TEST_INT", raising=False)
    assert env.env_int("X_TEST_INT", 7) == 7
    monkeypatch.setenv("X_TEST_INT", " 9 ")
    assert env.env_int("X_TEST_INT", 7) == 9
    monkeypatch.setenv("X_TEST_INT", "0")
    with pytest.raises(ImproperlyConfigured, match="below the minimum"):
        env.env_int("X_TEST_INT", 7, minimum=1)


def _start_django(**overrides: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **overrides}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('started')"],
        cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=60,
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ROLLCALL_K1", "three"),
        ("ROLLCALL_BACKBONE", "facenet"),
        ("ROLLCALL_THRESHOLD", "5"),
        ("DEBUG", "perhaps"),
        ("REDIS_URL", "localhost:6379"),
        ("ROLLCALL_CHECKIN_CONFIRMATIONS", "0"),
    ],
)
def test_the_app_refuses_to_start_with_a_malformed_setting(name, value):
    result = _start_django(**{name: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert name in result.stderr


def test_k1_must_be_below_k2_at_start():
    result = _start_django(ROLLCALL_K1="5", ROLLCALL_K2="3")
    assert result.returncode != 0
    assert "ROLLCALL_K1" in result.stderr


def test_the_app_starts_with_defaults_only():
    result = _start_django()
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


def test_every_setting_read_from_the_environment_is_listed_in_env_example():
    import re

    names: set[str] = set()
    for path in [REPO_ROOT / "config" / "settings.py", REPO_ROOT / "config" / "sso.py"]:
        names |= set(re.findall(r'env_\w+\(\s*"([A-Z0-9_]+)"', path.read_text()))
    example = (REPO_ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^([A-Z0-9_]+)=", example, flags=re.MULTILINE))
    assert names, "found no settings: the pattern above no longer matches settings.py"
    assert names - listed == set()
