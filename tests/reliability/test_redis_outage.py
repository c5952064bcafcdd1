"""Redis stopped during live check-in, and during an enrolment upload.

The app (gunicorn, and a Celery worker) runs against a redis-server of this test's own, which is
killed and started again on the same port; the shared Redis is never touched. While it is down the
check-in API answers 503 with a sentence and the check-in page (Chromium) shows it; once it is back,
check-in resumes in the same web server process, and no attendance record is lost or duplicated.
An upload made while it is down is kept, and processed once it is back.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from attendance.courses.services import course_membership_add
from attendance.enrolment.progress import UNSENT
from attendance.models import AttendanceRecord, FaceEmbedding, FaceEnrolment
from attendance.sessions.services import session_open
from tests.attendance.factories_faces import (
    KATIE_VIDEO,
    enrol_with_vectors,
    katie_enrolment_vectors,
    person_images,
    person_vectors,
)
from tests.browser import screenshot, write_y4m
from tests.conftest import REPO_ROOT
from tests.reliability.conftest import EnvWorker, Gunicorn, api_token, multipart, redis_env, request, wait_for
from tests.videos import video_frames

pytestmark = [pytest.mark.slow]


@pytest.fixture
def classroom(transactional_db, course, lecturer, make_user):
    katie = make_user("student", first_name="Katie", last_name="Hill")
    enrol_with_vectors(student=katie, vectors=katie_enrolment_vectors(), courses=[course])
    yale = make_user("student", first_name="Yale", last_name="Subject")
    enrol_with_vectors(student=yale, vectors=person_vectors("yale_subject01"), courses=[course])
    session = session_open(course=course, by=lecturer)
    return katie, yale, session


def _post_snapshot(server: Gunicorn, session_pk: int, token: str, image: bytes):
    return request("POST", server.url + reverse("api-session-checkin", args=[session_pk]), body=image,
                   headers={"Content-Type": "image/jpeg", "Authorization": f"Token {token}",
                            "Accept": "application/json"})


@pytest.mark.browser
def test_check_in_answers_503_while_redis_is_down_and_resumes_in_the_same_server_when_it_returns(
    classroom, own_redis, lecturer, tmp_path, browser_with_camera
):
    katie, yale, session = classroom
    token = api_token(lecturer)
    # Liveness off: the test replays the same frames (a frozen face, rightly refused); it tests Redis.
    server = Gunicorn(tmp_path / "gunicorn.log", env=redis_env(own_redis.url, ROLLCALL_LIVENESS_LECTURER="off"),
                      workers=1, threads=4)
    server.start()
    try:
        # Before the outage: a student is marked through the API (three agreeing snapshots).
        yale_photos = [p.read_bytes() for p in person_images("yale_subject01")[:3]]
        outcomes = [_post_snapshot(server, session.pk, token, photo).json()["faces"][0]["outcome"]
                    for photo in yale_photos]
        assert outcomes == ["confirming", "confirming", "marked"], outcomes

        # The lecturer's browser, signed in, its camera on Katie (never marked before the outage).
        cookie = _session_cookie(lecturer)
        browser = browser_with_camera(write_y4m(video_frames(KATIE_VIDEO, start_s=4.0), tmp_path / "katie.y4m"))
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.add_cookies([{"name": "sessionid", "value": cookie, "url": server.url}])
        page = context.new_page()

        own_redis.stop()
        outage_started = time.monotonic()
        reply = _post_snapshot(server, session.pk, token, yale_photos[0])
        assert reply.status == 503, reply.text
        assert reply.json()["code"] == "redis_unavailable"
        assert "Redis" in reply.json()["detail"] and "Traceback" not in reply.text
        assert reply.headers.get("retry-after") == "5"
        state = request("GET", server.url + reverse("api-session-state", args=[session.pk]),
                        headers={"Authorization": f"Token {token}"})
        assert state.status == 503, state.text

        page.goto(f"{server.url}/sessions/{session.pk}/check-in/")
        page.wait_for_selector("#banner:not([hidden])", timeout=30_000)
        banner = page.inner_text("#banner")
        assert "not answering right now" in banner and "Retrying in" in banner, banner
        screenshot(page, "checkin-redis-down")
        page.wait_for_timeout(3000)
        assert not AttendanceRecord.objects.filter(session=session, student=katie).exists()

        own_redis.start()  # same port, empty: the confirmations counted before are gone
        outage_s = time.monotonic() - outage_started
        row = f'#roster tr[data-student="{katie.pk}"]'
        page.wait_for_selector(f'{row}[data-status="present"]', timeout=60_000)
        page.wait_for_selector("#banner", state="hidden", timeout=20_000)
        recovered_s = time.monotonic() - outage_started - outage_s
        screenshot(page, "checkin-redis-back")

        # The same web server process and worker throughout: nothing was restarted.
        assert server.process is not None and server.process.poll() is None
        assert server.log().count("Booting worker") == 1
        # Nothing lost, nothing twice: the mark made before the outage stands and is not repeated.
        again = _post_snapshot(server, session.pk, token, yale_photos[1]).json()["faces"][0]
        assert (again["student_id"], again["outcome"]) == (yale.pk, "recorded")
        records = list(AttendanceRecord.objects.filter(session=session).values_list("student_id", "method"))
        assert sorted(records) == sorted([(katie.pk, "face"), (yale.pk, "face")])
        context.close()
    finally:
        server.stop()
    print(f"\nRedis down {outage_s:.1f} s; check-in page marked the student {recovered_s:.1f} s after it returned")


def _session_cookie(user: object) -> str:
    client = Client()
    client.force_login(user)  # type: ignore[arg-type]
    return str(client.cookies["sessionid"].value)


def test_an_upload_made_while_redis_is_down_is_kept_and_processed_once_it_returns(
    transactional_db, own_redis, course, make_user, tmp_path
):
    from django.conf import settings

    student = make_user("student", first_name="Katie", last_name="Hill")
    course_membership_add(course=course, student=student)
    token = api_token(student)
    env = redis_env(own_redis.url, DJANGO_SETTINGS_MODULE="config.settings_test")
    server = Gunicorn(tmp_path / "gunicorn.log", env=env, workers=1, threads=2)
    server.start()
    body, content_type = multipart({"consent": "true"}, {"video": ("katie.mp4", KATIE_VIDEO.read_bytes(), "video/mp4")})
    own_redis.stop()
    try:
        # The student uploads through the API while the web server's Redis is down.
        started = time.monotonic()
        reply = request("POST", server.url + reverse("api-enrolment-create"), body=body, timeout=60, headers={
            "Content-Type": content_type, "Authorization": f"Token {token}", "Accept": "application/json"})
        seconds = time.monotonic() - started
    finally:
        server.stop()
    assert reply.status == 202, reply.text[:500]
    # Promptly: the student is not kept waiting on a broker that is not there.
    assert seconds < 10, seconds
    enrolment = FaceEnrolment.objects.get(student=student)
    assert enrolment.status == FaceEnrolment.Status.QUEUED and enrolment.progress.get(UNSENT) is True
    video = Path(settings.MEDIA_ROOT) / enrolment.video.name
    assert video.is_file() and video.stat().st_size == KATIE_VIDEO.stat().st_size

    own_redis.start()
    worker = EnvWorker(tmp_path / "worker.log", env)
    worker.start()
    try:
        # What Celery beat sends every 5 minutes; the unsent upload goes at once, whatever its age.
        sweep = subprocess.run([sys.executable, "-m", "celery", "-A", "config", "call",
                                "attendance.enrolment_requeue_stale"],
                               cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert sweep.returncode == 0, sweep.stderr[-2000:]
        wait_for(lambda: FaceEnrolment.objects.get(pk=enrolment.pk).status not in FaceEnrolment.ACTIVE_STATUSES,
                 timeout=240, what="the worker to process the upload made during the outage")
    finally:
        worker.stop()
    enrolment.refresh_from_db()
    assert enrolment.status == FaceEnrolment.Status.READY, (enrolment.error_code, worker.log()[-2000:])
    assert enrolment.attempts == 1 and UNSENT not in enrolment.progress
    assert FaceEmbedding.objects.filter(enrolment=enrolment).count() == enrolment.progress["embeddings"] >= 5
    print(f"\nupload accepted (202) in {seconds:.1f} s with Redis down; processed after it returned")
