"""The sign-in page with and without OpenID Connect, and its settings as a deployment reads them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.urls import reverse

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.django_db


def test_without_openid_connect_there_is_no_provider_button_and_its_pages_are_404(client):
    page = client.get(reverse("login")).content.decode()
    assert "Sign in with" not in page
    assert client.get(reverse("oidc_authentication_init")).status_code == 404
    assert client.get(reverse("oidc_authentication_callback")).status_code == 404


def test_with_openid_connect_the_button_names_the_provider_and_keeps_next(client, settings):
    settings.ROLLCALL_OIDC_ENABLED = True
    settings.ROLLCALL_OIDC_PROVIDER_NAME = "Microsoft"
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = "https://login.example/authorize"

    page = client.get(reverse("login") + "?next=/reports/").content.decode()

    assert "Sign in with Microsoft" in page
    assert 'href="/oidc/authenticate/?next=/reports/"' in page
    start = client.get(reverse("oidc_authentication_init") + "?next=/reports/")
    assert start.status_code == 302 and start["Location"].startswith("https://login.example/authorize?")
    assert "code_challenge_method=S256" in start["Location"] and "nonce=" in start["Location"]


def _settings_in_a_fresh_process(**env: str) -> subprocess.CompletedProcess[str]:
    code = "import django; django.setup(); from django.conf import settings as s; print(s.AUTHENTICATION_BACKENDS)"
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings_test", **env},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_openid_connect_without_its_endpoints_stops_the_start_naming_them():
    result = _settings_in_a_fresh_process(OIDC_OP_AUTHORIZATION_ENDPOINT="https://login.example/authorize")
    assert result.returncode != 0
    assert "OIDC_OP_TOKEN_ENDPOINT" in result.stderr and "OIDC_RP_CLIENT_ID" in result.stderr


def test_a_configured_provider_puts_its_backend_before_local_passwords():
    result = _settings_in_a_fresh_process(
        OIDC_OP_AUTHORIZATION_ENDPOINT="https://p/authorize",
        OIDC_OP_TOKEN_ENDPOINT="https://p/token",
        OIDC_OP_USER_ENDPOINT="https://p/userinfo",
        OIDC_OP_JWKS_ENDPOINT="https://p/jwks",
        OIDC_RP_CLIENT_ID="rollcall",
        OIDC_RP_CLIENT_SECRET="s3cret",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == (
        "['attendance.sso.backends.OpenIDConnectBackend', 'attendance.sso.backends.LocalPasswordBackend']"
    )
