"""CSRF on every form and session-authenticated write; sign-in and check-in rate limits."""

from __future__ import annotations

import re
from functools import partial
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from attendance.models import Session
from tests.conftest import REPO_ROOT
from tests.security.conftest import PASSWORD, World
from tests.security.test_access import NOT_IDS, PROBES, all_urls, client_for

UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


def _url(name: str, params: set[str], world: World) -> str | None:
    if not name or name.endswith(":"):  # the admin's unnamed redirects to a row's change page
        return None
    if name in PROBES:
        return reverse(name, kwargs=PROBES[name].kwargs(world))
    if name == "kiosk":
        return reverse(name, args=[world.b.kiosk_token])
    if not params:
        return reverse(name)
    values = {"object_id": str(world.b.student.pk), "id": str(world.b.student.pk),  # type: ignore[attr-defined]
              "app_label": "attendance"}
    if set(params) <= set(values):
        return reverse(name, kwargs={p: values[p] for p in params})
    return None


def _refused_for_csrf(response: Any, retry_with_token: Any) -> bool:
    if response.status_code == 405:
        return True
    # A token-only endpoint (provisioning) does not take the session cookie at all: signed in as an
    # admin, the browser's request is still not authenticated, so there is nothing to forge.
    if response.status_code == 401 and response.get("WWW-Authenticate") == "Token":
        return True
    if response.status_code == 403 and b"CSRF" in response.content:
        return True
    # Some views render a bare "403 Forbidden" (the Swagger page): it was about the token if the same
    # request with one is turned away as a method the view does not take.
    return response.status_code == 403 and retry_with_token().status_code == 405


FORM = "application/x-www-form-urlencoded"
CSRF_SECRET = "s3cr3t" * 5 + "ab"  # 32 characters: the cookie's unmasked form, also valid as a header


def _with_token(client: Client, method: str, url: str) -> Any:
    client.cookies["csrftoken"] = CSRF_SECRET
    try:
        return client.generic(method, url, data=b"title=probe", content_type=FORM, HTTP_X_CSRFTOKEN=CSRF_SECRET)
    finally:
        del client.cookies["csrftoken"]


def test_every_unsafe_request_with_a_session_and_no_csrf_token_is_refused(world: World):
    """Signed in as an admin (who may do everything), no write goes through without the token."""
    urls = []
    for name, _, params in all_urls():
        url = _url(name, params, world)
        if url is not None:
            urls.append(url)
    assert len(urls) > 60 and len(set(urls)) == len(urls)
    assert set(PROBES) | set(NOT_IDS) <= {name for name, _, _ in all_urls()}
    before = list(Session.objects.order_by("pk").values_list("pk", "status", "kiosk_token"))
    client = client_for(world, "admin", enforce_csrf_checks=True)
    let_through = []
    for url in urls:
        for method in UNSAFE:
            response = client.generic(method, url, data=b"title=probe", content_type=FORM)
            if not _refused_for_csrf(response, partial(_with_token, client, method, url)):
                let_through.append(f"{method} {url}: {response.status_code}")
    assert not let_through, "writes accepted without a CSRF token:\n" + "\n".join(let_through)
    assert list(Session.objects.order_by("pk").values_list("pk", "status", "kiosk_token")) == before


def test_the_same_writes_go_through_with_the_csrf_token(world: World):
    """The control: the refusals above are about the token, not the writes themselves."""
    client = client_for(world, "lecturer_b", enforce_csrf_checks=True)
    client.get(reverse("session-checkin", args=[world.b.session.pk]))  # type: ignore[attr-defined]
    token = client.cookies["csrftoken"].value
    page = client.post(reverse("session-kiosk", args=[world.b.session.pk]), HTTP_X_CSRFTOKEN=token)  # type: ignore[attr-defined]
    assert page.status_code == 302
    api = client.post(reverse("api-session-close", args=[world.b.session.pk]), HTTP_X_CSRFTOKEN=token)  # type: ignore[attr-defined]
    assert api.status_code == 200
    assert Session.objects.get(pk=world.b.session.pk).status == Session.Status.CLOSED  # type: ignore[attr-defined]


def test_signing_in_needs_the_csrf_token(world: World):
    client = Client(enforce_csrf_checks=True)
    data = {"username": world.b.lecturer.username, "password": PASSWORD}  # type: ignore[attr-defined]
    assert client.post(reverse("login"), data).status_code == 403
    client.get(reverse("login"))
    data["csrfmiddlewaretoken"] = client.cookies["csrftoken"].value
    assert client.post(reverse("login"), data).status_code == 302


def test_a_token_authenticated_api_call_needs_no_csrf_token(world: World):
    """CSRF protects cookies a browser sends by itself; an Authorization header is never ambient."""
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("api-session-close", args=[world.b.session.pk]),  # type: ignore[attr-defined]
                           HTTP_AUTHORIZATION=f"Token {world.tokens['lecturer_b']}")
    assert response.status_code == 200


def test_every_post_form_in_the_templates_carries_the_csrf_token():
    forms = 0
    missing = []
    for template in sorted((REPO_ROOT / "templates").rglob("*.html")):
        text = template.read_text()
        for match in re.finditer(r"<form\b[^>]*>(.*?)</form>", text, flags=re.DOTALL | re.IGNORECASE):
            if not re.search(r"method=[\"']?post", match.group(0)[:200], flags=re.IGNORECASE):
                continue
            forms += 1
            if "{% csrf_token %}" not in match.group(1):
                missing.append(f"{template.relative_to(REPO_ROOT)}: {match.group(0)[:80]!r}")
    assert forms >= 5, "found too few forms: the pattern above no longer matches the templates"
    assert not missing, "POST forms without {% csrf_token %}:\n" + "\n".join(missing)


def test_every_script_that_writes_sends_the_csrf_header():
    for script in sorted((REPO_ROOT / "static" / "js").glob("*.js")):
        text = script.read_text()
        if re.search(r"method:\s*[\"'](POST|DELETE|PUT|PATCH)", text):
            assert "X-CSRFToken" in text, f"{script.name} posts without the X-CSRFToken header"


# --- Sign-in limit -----------------------------------------------------------------------------

@pytest.fixture
def frozen_clock(monkeypatch):
    """The limits count in fixed windows; a test that straddled a window's end would see the count
    reset, so time stands still in these tests."""
    import attendance.checkin.api
    import attendance.platform.login_limit

    now = 1_900_000_000.0 + 30
    for module in (attendance.platform.login_limit, attendance.checkin.api):
        monkeypatch.setattr(module.time, "time", lambda: now)
    return now


def _sign_in(client: Client, username: str, password: str, address: str = "10.0.0.1") -> Any:
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address)


def test_signing_in_is_refused_after_too_many_wrong_passwords(world: World, settings, frozen_clock):
    settings.ROLLCALL_LOGIN_MAX_FAILURES = 3
    username = world.b.lecturer.username  # type: ignore[attr-defined]
    client = Client()
    for _ in range(3):
        response = _sign_in(client, username, "wrong")
        assert response.status_code == 200
        assert b"did not match" in response.content
    blocked = _sign_in(client, username, PASSWORD)  # even the right password, while blocked
    assert blocked.status_code == 429
    assert b"Too many failed sign-ins" in blocked.content
    assert 0 < int(blocked["Retry-After"]) <= settings.ROLLCALL_LOGIN_WINDOW_SECONDS
    assert "_auth_user_id" not in client.session
    # The block is on that account (and address): someone else, elsewhere, signs in as usual.
    other = _sign_in(Client(), world.a.lecturer.username, PASSWORD, address="10.0.0.2")  # type: ignore[attr-defined]
    assert other.status_code == 302


def test_one_address_guessing_at_many_accounts_is_refused(world: World, settings, frozen_clock):
    settings.ROLLCALL_LOGIN_MAX_FAILURES = 2  # an address gets 5x: 10 failures
    for n in range(10):
        assert _sign_in(Client(), f"guess{n}", "wrong", address="10.9.9.9").status_code == 200
    assert _sign_in(Client(), world.a.student.username, PASSWORD, address="10.9.9.9").status_code == 429  # type: ignore[attr-defined]
    assert _sign_in(Client(), world.a.student.username, PASSWORD, address="10.9.9.8").status_code == 302  # type: ignore[attr-defined]


def test_the_api_token_endpoint_shares_the_sign_in_limit(world: World, settings, frozen_clock):
    settings.ROLLCALL_LOGIN_MAX_FAILURES = 3
    username = world.b.student.username  # type: ignore[attr-defined]
    url = reverse("api-token")
    for _ in range(2):
        assert Client().post(url, {"username": username, "password": "wrong"}).status_code == 400
    _sign_in(Client(), username, "wrong")  # the page and the API count together
    response = Client().post(url, {"username": username, "password": PASSWORD})
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.json()["detail"]
    assert "Retry-After" in response


def test_the_sign_in_limit_window_ends(world: World, settings, monkeypatch):
    import attendance.platform.login_limit

    settings.ROLLCALL_LOGIN_MAX_FAILURES = 1
    settings.ROLLCALL_LOGIN_WINDOW_SECONDS = 60
    now = [1_900_000_020.0]
    monkeypatch.setattr(attendance.platform.login_limit.time, "time", lambda: now[0])
    username = world.b.lecturer.username  # type: ignore[attr-defined]
    _sign_in(Client(), username, "wrong")
    assert _sign_in(Client(), username, PASSWORD).status_code == 429
    now[0] += 60
    assert _sign_in(Client(), username, PASSWORD).status_code == 302


# --- Check-in limit ----------------------------------------------------------------------------

def test_check_in_is_rate_limited_per_session_and_sender(world: World, settings, frozen_clock):
    settings.ROLLCALL_CHECKIN_RATE_PER_MINUTE = 3
    url = reverse("api-session-checkin", args=[world.b.session.pk])  # type: ignore[attr-defined]
    kiosk = Client(HTTP_X_KIOSK_TOKEN=world.b.kiosk_secret)
    for _ in range(3):
        assert kiosk.post(url, data=b"not an image", content_type="image/jpeg").status_code == 400
    flooded = kiosk.post(url, data=b"not an image", content_type="image/jpeg")
    assert flooded.status_code == 429
    assert "Too many snapshots" in flooded.json()["detail"]
    assert "Retry-After" in flooded
    # Another sender (the lecturer's laptop) has its own allowance.
    lecturer = client_for(world, "lecturer_b")
    assert lecturer.post(url, data=b"not an image", content_type="image/jpeg").status_code == 400
