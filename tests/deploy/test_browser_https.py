"""The check-in page over https:// through nginx, in Chromium that trusts the test certificate the way
a lecturer's laptop trusts the campus authority: the camera works (browsers give it only to secure
pages) and a student is marked present. The app behind nginx is the live server of this test, with
the settings compose gives it: one trusted hop, HTTPS only, secure cookies."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest

from tests.browser import screenshot, write_y4m
from tests.deploy.conftest import Certificate, Nginx
from tests.e2e.test_checkin_browser import KATIE_VIDEO, SPLIT_S, _enrol_through_the_pipeline, _open_check_in_page
from tests.videos import video_frames

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_a_lecturer_takes_attendance_over_https_through_the_proxy(
    live_server, browser_with_camera, lecturer, course, make_user, certificate: Certificate, static_root: Path,
    faces_dir, tmp_path, settings
):
    from attendance.models import AttendanceRecord, Session

    settings.ROLLCALL_TRUSTED_PROXY_HOPS = 1
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # Were the scheme not taken from nginx, every page would redirect to itself.
    settings.SECURE_SSL_REDIRECT = True
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    katie = make_user("student", first_name="Katie", last_name="Hill")
    _enrol_through_the_pipeline(katie, course, tmp_path)

    nginx = Nginx(tmp_path / "nginx", upstream=f"127.0.0.1:{urlsplit(live_server.url).port}",
                  certificate=certificate, static_root=static_root)
    nginx.start()
    try:
        y4m = write_y4m(video_frames(KATIE_VIDEO, start_s=SPLIT_S), tmp_path / "probe.y4m")
        browser = browser_with_camera(y4m, extra_args=[
            f"--ignore-certificate-errors-spki-list={certificate.spki_sha256()}"])
        page = _open_check_in_page(browser, SimpleNamespace(url=nginx.url), lecturer, course)
        assert page.url.startswith(f"https://localhost:{nginx.https_port}/sessions/")
        assert page.evaluate("window.isSecureContext") is True
        row = f'#roster tr[data-student="{katie.pk}"]'
        page.wait_for_selector(f'{row}[data-status="present"]', timeout=45_000)
        screenshot(page, "checkin-over-https")
        session = Session.objects.get(course=course)
        record = AttendanceRecord.objects.get(session=session, student=katie)
        assert (record.status, record.method) == ("present", "face")
        assert f'"POST /api/sessions/{session.pk}/check-in/ HTTP/1.1" 200' in (nginx.folder / "access.log").read_text()
    finally:
        nginx.stop()
