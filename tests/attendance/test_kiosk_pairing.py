"""The kiosk link pairs one device, once: the device then posts with a secret of its own, in an
HttpOnly cookie, and the link's token (in the QR code everyone in the room can photograph) posts
nothing. A new link, a revoke or the close stops the paired device at once."""

from __future__ import annotations

import hashlib
import io
import json
import threading

import pytest
from django.db import connections
from django.test import Client
from django.urls import reverse
from PIL import Image

from attendance.checkin.api import KIOSK_COOKIE
from attendance.models import Session
from attendance.sessions.services import (
    session_close,
    session_kiosk_token_create,
    session_kiosk_token_revoke,
    session_open,
)
from tests.conftest import kiosk_pair


@pytest.fixture
def open_session(course, lecturer) -> Session:
    return session_open(course=course, by=lecturer)


@pytest.fixture
def token(open_session, lecturer) -> str:
    return session_kiosk_token_create(session=open_session, by=lecturer)


@pytest.fixture
def blank_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 90, 90)).save(buffer, "JPEG")
    return buffer.getvalue()


def _post(client: Client, session: Session, body: bytes = b"not an image", **extra: str):
    """A snapshot; b"not an image" is answered 400 once let in, so 400 means "allowed", 403 "refused"."""
    return client.post(reverse("api-session-checkin", args=[session.pk]), data=body, content_type="image/jpeg",
                       **extra)


def test_the_links_token_cannot_post_snapshots_before_or_after_pairing(open_session, token):
    assert _post(Client(), open_session, HTTP_X_KIOSK_TOKEN=token).status_code == 403
    device = kiosk_pair(token)
    assert _post(Client(), open_session, HTTP_X_KIOSK_TOKEN=token).status_code == 403
    photographed = Client()
    photographed.cookies[KIOSK_COOKIE] = token  # the token where the device secret goes
    assert _post(photographed, open_session).status_code == 403
    assert _post(device.client, open_session).status_code == 400  # the control: the device is let in


def test_opening_the_link_pairs_nothing_until_the_device_starts_the_kiosk(open_session, token):
    # A chat app previewing the pasted link, or a browser prefetching it, only GETs it.
    for _ in range(2):
        page = Client().get(reverse("kiosk", args=[token]))
        assert page.status_code == 200 and "Use this device as the kiosk?" in page.content.decode()
        assert KIOSK_COOKIE not in page.cookies and page["Referrer-Policy"] == "strict-origin"
    open_session.refresh_from_db()
    assert open_session.kiosk_device_hash is None
    assert kiosk_pair(token).secret  # a third browser still can


def test_starting_the_kiosk_pairs_and_redirects_to_a_page_without_the_token(
    open_session, token, blank_jpeg, liveness_off
):
    browser = Client()
    response = browser.post(reverse("kiosk", args=[token]))
    assert response.status_code == 303
    assert response["Location"] == reverse("kiosk-page") and token not in response["Location"]
    cookie = response.cookies[KIOSK_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/"
    assert not cookie["max-age"] and not cookie["expires"]  # gone when the browser closes
    secret = cookie.value
    assert secret and secret != token and len(secret) >= 40
    # Only the secret's hash is kept: a leaked row or backup lets nobody post.
    open_session.refresh_from_db()
    assert open_session.kiosk_device_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in json.dumps(list(Session.objects.filter(pk=open_session.pk).values()), default=str)
    posted = _post(browser, open_session, blank_jpeg)
    assert posted.status_code == 200, posted.content
    assert _post(Client(), open_session, blank_jpeg, HTTP_X_KIOSK_TOKEN=secret).status_code == 200  # not a browser


def test_the_cookie_is_secure_when_the_session_cookie_is(open_session, token, settings):
    settings.SESSION_COOKIE_SECURE = True
    assert Client().post(reverse("kiosk", args=[token])).cookies[KIOSK_COOKIE]["secure"]


def test_a_second_browser_opening_the_link_is_refused_in_plain_words_and_cannot_post(open_session, token):
    first = kiosk_pair(token)
    another_kiosk = Client()
    another_kiosk.cookies[KIOSK_COOKIE] = "a-cookie-of-another-kiosk"
    for other, method in ((Client(), "get"), (another_kiosk, "post")):
        refused = getattr(other, method)(reverse("kiosk", args=[token]))
        assert refused.status_code == 409
        page = refused.content.decode()
        assert "already opened on another device" in page and "make a new link" in page
        assert KIOSK_COOKIE not in refused.cookies
        assert _post(other, open_session).status_code == 403
        assert other.get(reverse("kiosk-page")).status_code == 404
    # The first device is not disturbed, and coming back to the link only sends it on again.
    assert _post(first.client, open_session).status_code == 400
    again = first.client.get(reverse("kiosk", args=[token]))
    assert again.status_code == 303 and KIOSK_COOKIE not in again.cookies
    assert first.client.get(again["Location"]).status_code == 200
    assert _post(first.client, open_session).status_code == 400


@pytest.mark.parametrize("stop", ["new link", "revoke", "close"])
def test_a_new_link_a_revoke_or_the_close_stops_the_paired_device_at_once(open_session, token, lecturer, stop):
    device = kiosk_pair(token)
    assert _post(device.client, open_session).status_code == 400
    if stop == "new link":
        session_kiosk_token_create(session=open_session, by=lecturer)
    elif stop == "revoke":
        session_kiosk_token_revoke(session=open_session, by=lecturer)
    else:
        session_close(session=open_session, by=lecturer)
    refused = _post(device.client, open_session)
    assert refused.status_code == 403 and "no longer valid" in refused.json()["detail"]
    assert _post(Client(), open_session, **device.header).status_code == 403
    page = device.client.get(reverse("kiosk-page"))
    assert page.status_code == 404 and "no longer works" in page.content.decode()
    assert Session.objects.get(pk=open_session.pk).kiosk_device_hash is None


def test_the_kiosk_page_without_a_paired_cookie_is_the_expired_page(open_session, token):
    assert Client().get(reverse("kiosk-page")).status_code == 404
    stranger = Client()
    stranger.cookies[KIOSK_COOKIE] = "x" * 43
    page = stranger.get(reverse("kiosk-page"))
    assert page.status_code == 404 and "no longer works" in page.content.decode()


def test_the_kiosk_page_and_its_configuration_carry_no_credential(open_session, token):
    device = kiosk_pair(token)
    page = device.client.get(reverse("kiosk-page"))
    assert page.status_code == 200
    html = page.content.decode()
    config = json.loads(html.split('id="checkin-config" type="application/json">')[1].split("<")[0])
    assert config["kiosk"] is True and config["checkinUrl"] == reverse("api-session-checkin", args=[open_session.pk])
    assert "kioskToken" not in config and "kioskHeader" not in config
    assert token not in html and device.secret not in html


def test_the_check_in_page_says_whether_a_kiosk_is_connected(client, open_session, token, lecturer):
    client.force_login(lecturer)
    url = reverse("session-checkin", args=[open_session.pk])
    before = client.get(url).content.decode()
    assert "Open this link on the kiosk device." in before and "A kiosk is connected." not in before
    kiosk_pair(token)
    after = client.get(url).content.decode()
    assert "A kiosk is connected." in after and "Open this link on the kiosk device." not in after


@pytest.mark.django_db(transaction=True)
def test_two_devices_opening_one_link_at_once_pair_only_one(course, lecturer, monkeypatch):
    """The pairing reads the row, makes a secret, writes its hash: without the row lock both devices
    read "not paired" and both get a secret. A slow secret widens that window so the race shows."""
    from attendance.sessions import services

    session = session_open(course=course, by=lecturer)
    token = session_kiosk_token_create(session=session, by=lecturer)
    make_secret = services.secrets.token_urlsafe

    def slow_secret(nbytes: int | None = None) -> str:
        threading.Event().wait(0.3)
        return make_secret(nbytes)

    monkeypatch.setattr(services.secrets, "token_urlsafe", slow_secret)
    barrier = threading.Barrier(2)
    answers: list[int] = []
    errors: list[BaseException] = []

    def open_link() -> None:
        try:
            barrier.wait(timeout=10)
            answers.append(Client().post(reverse("kiosk", args=[token])).status_code)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=open_link) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert sorted(answers) == [303, 409]
