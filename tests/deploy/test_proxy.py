"""nginx in front of gunicorn, both real, on loopback: the config nginx itself accepts, HTTPS only,
HSTS, static files from the proxy, body limits answered in the app's own words, and the client's
real address behind the proxy (a forged X-Forwarded-For does not move the sign-in limit)."""

from __future__ import annotations

import functools
import http.client
import json
import socket
import uuid
from pathlib import Path

import pytest
from django.urls import reverse

from tests.deploy.conftest import (
    CHECKIN_MAX_MB,
    ENROLMENT_MAX_MB,
    Certificate,
    Nginx,
    Stack,
    declared_only,
    https_request,
    render_template,
    tls_connection,
)
from tests.reliability.conftest import api_token

pytestmark = pytest.mark.slow

MB = 1024 * 1024


def test_the_rendered_config_passes_nginxs_own_check(certificate: Certificate, static_root: Path, tmp_path):
    nginx = Nginx(tmp_path / "nginx", upstream="127.0.0.1:9", certificate=certificate, static_root=static_root)
    rendered = (nginx.folder / "rollcall.conf").read_text()
    assert "${" not in rendered  # every variable of the template is given a value
    assert f"client_max_body_size {ENROLMENT_MAX_MB * MB + 64 * 1024};" in rendered
    checked = nginx.test_config()
    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr and "test is successful" in checked.stderr

    # The control: nginx -t really reads the certificate the config names.
    broken = Nginx(tmp_path / "broken", upstream="127.0.0.1:9", certificate=certificate, static_root=static_root,
                   ROLLCALL_TLS_CERT=str(tmp_path / "missing.pem"))
    assert broken.test_config().returncode != 0


def test_the_limits_follow_the_apps_settings():
    rendered = render_template({"ROLLCALL_ENROLMENT_MAX_UPLOAD_MB": "120", "ROLLCALL_CHECKIN_MAX_IMAGE_MB": "2",
                                "ROLLCALL_PUBLIC_HTTPS_PORT": "443"})
    assert f"client_max_body_size {120 * MB + 64 * 1024};" in rendered
    assert f"client_max_body_size {2 * MB + 64 * 1024};" in rendered
    assert "The video is over the 120 MB limit." in rendered
    assert "https://$host$request_uri" in rendered  # no port in the redirect on 443
    with pytest.raises(RuntimeError, match="ROLLCALL_CHECKIN_MAX_IMAGE_MB=4MB is not a whole number"):
        render_template({"ROLLCALL_CHECKIN_MAX_IMAGE_MB": "4MB"})


def test_plain_http_is_redirected_to_https_and_https_answers_with_hsts(stack: Stack):
    nginx = stack.nginx
    plain = http.client.HTTPConnection("127.0.0.1", nginx.http_port, timeout=10)
    plain.request("GET", "/login/?next=/courses/", headers={"Host": "localhost"})
    answer = plain.getresponse()
    assert answer.status == 301
    assert answer.getheader("Location") == f"https://localhost:{nginx.https_port}/login/?next=/courses/"
    plain.close()
    health = http.client.HTTPConnection("127.0.0.1", nginx.http_port, timeout=10)
    health.request("GET", "/proxy-health")  # the compose healthcheck's, the one plain-HTTP answer
    assert health.getresponse().read() == b"ok\n"
    health.close()

    page = https_request(nginx, stack.certificate, "GET", "/login/")
    assert page.status == 200 and "Sign in" in page.text
    assert page.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"
    assert "server" not in page.headers or "nginx/" not in page.headers["server"]  # no version on show

    # Static files come from collectstatic's output through nginx (compressed when asked), with HSTS too.
    css = https_request(nginx, stack.certificate, "GET", "/static/css/rollcall.css",
                        headers={"Accept-Encoding": "gzip"})
    assert css.status == 200 and css.headers["content-encoding"] == "gzip"
    assert css.headers["strict-transport-security"].startswith("max-age=31536000")
    assert "max-age=3600" in css.headers["cache-control"]
    assert '"GET /static/css/rollcall.css' not in stack.gunicorn.log()


def test_oversized_uploads_are_refused_at_the_proxy_with_the_apps_own_message(
    stack: Stack, transactional_db, lecturer, course, settings
):
    from attendance.enrolment.api import too_large_message
    from attendance.sessions.services import session_open

    settings.ROLLCALL_ENROLMENT_MAX_UPLOAD_MB = ENROLMENT_MAX_MB
    nginx, certificate, server = stack.nginx, stack.certificate, stack.gunicorn
    proxy = functools.partial(tls_connection, nginx, certificate)
    proxy_host = f"localhost:{nginx.https_port}"
    bare = functools.partial(socket.create_connection, ("127.0.0.1", server.port), 10)
    multipart = "multipart/form-data; boundary=x"
    api = reverse("api-enrolment-create")

    # One byte over the app's limit (the file's and 64 KiB for the form): nginx refuses it from the
    # Content-Length, in the words the app itself uses for it when asked directly.
    over = ENROLMENT_MAX_MB * MB + 64 * 1024 + 1
    proxy_answer = declared_only(proxy, proxy_host, api, over, multipart)
    app_answer = declared_only(bare, f"127.0.0.1:{server.port}", api, over, multipart)
    assert proxy_answer.status == app_answer.status == 413
    assert proxy_answer.headers["content-type"] == "application/json"
    assert proxy_answer.json() == app_answer.json() == {"code": "too_large", "message": too_large_message()}
    assert f"{ENROLMENT_MAX_MB} MB limit" in proxy_answer.json()["message"]
    assert proxy_answer.headers["strict-transport-security"].startswith("max-age=")
    assert declared_only(proxy, proxy_host, api, 500 * MB, multipart).json() == proxy_answer.json()

    # The enrolment page without JavaScript: a page, with the same sentence.
    page = declared_only(proxy, proxy_host, reverse("enrolment"), over, multipart)
    assert page.status == 413 and page.headers["content-type"].startswith("text/html")
    assert "<h1>The video is too large</h1>" in page.text and too_large_message() in page.text
    assert 'href="/enrol/"' in page.text

    # A check-in snapshot is small: its own limit, and the check-in API's message.
    session = session_open(course=course, by=lecturer)
    checkin = reverse("api-session-checkin", args=[session.pk])
    token = {"Authorization": f"Token {api_token(lecturer)}"}
    snapshot_over = CHECKIN_MAX_MB * MB + 64 * 1024 + 1
    proxy_refusal = declared_only(proxy, proxy_host, checkin, snapshot_over, "image/jpeg", token)
    app_refusal = declared_only(bare, f"127.0.0.1:{server.port}", checkin, snapshot_over, "image/jpeg", token)
    assert proxy_refusal.status == app_refusal.status == 413
    assert proxy_refusal.json() == app_refusal.json()
    assert f"{CHECKIN_MAX_MB} MB limit" in proxy_refusal.json()["detail"]

    # Per path: a body of that size is fine for an enrolment video. It reaches the app, which
    # answers about what is in it (no credentials here), not about its size.
    upload = https_request(nginx, certificate, "POST", api, body=b"x" * snapshot_over,
                           headers={"Content-Type": multipart, "Accept": "application/json"})
    assert upload.status == 401, upload.text


def _failed_token_request(stack: Stack, *, source: str, forged: str | None) -> int:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if forged is not None:
        headers["X-Forwarded-For"] = forged
    body = json.dumps({"username": f"nobody-{uuid.uuid4().hex[:8]}", "password": "wrong"}).encode()
    return https_request(stack.nginx, stack.certificate, "POST", reverse("api-token"), body=body, headers=headers,
                         source=source).status


def test_a_forged_x_forwarded_for_does_not_move_the_sign_in_limit(stack: Stack, transactional_db, fresh_redis):
    # gunicorn runs with ROLLCALL_LOGIN_MAX_FAILURES=2: one address may fail 10 times (5x), across
    # accounts. Each attempt names a new account and claims a new address in X-Forwarded-For.
    address_limit = 2 * 5
    statuses = [_failed_token_request(stack, source="127.0.0.2", forged=f"203.0.113.{n}")
                for n in range(address_limit)]
    assert statuses == [400] * address_limit
    assert _failed_token_request(stack, source="127.0.0.2", forged="198.51.100.77") == 429
    assert _failed_token_request(stack, source="127.0.0.2", forged=None) == 429
    # The limit is the client's, not the proxy's: another machine behind the same nginx still may try.
    assert _failed_token_request(stack, source="127.0.0.3", forged="127.0.0.2") == 400
