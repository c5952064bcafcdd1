"""Enrolment in a real browser: Chromium's fake camera plays the talking-head video, the student
records on the "Enrol my face" page (MediaRecorder), sends it, and the page follows the processing
until it reports success.

Processing: the Celery task runs in a thread of the test process (enrolment_process.apply, started
where the app would send it to the broker), so the page sees real progress without a worker
subprocess; the real-worker path is tests/attendance/test_enrolment_worker.py.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from tests.attendance.enrolment_videos import KATIE_VIDEO
from tests.browser import login, screenshot, write_y4m
from tests.videos import video_frames

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture
def task_in_a_thread(monkeypatch):
    from attendance.enrolment import services as service
    from attendance.tasks import enrolment_process

    threads: list[threading.Thread] = []

    def schedule(enrolment_id: int) -> None:
        def work() -> None:
            try:
                enrolment_process.apply(args=[enrolment_id])
            finally:
                connection.close()

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        threads.append(thread)

    monkeypatch.setattr(service, "_schedule", schedule)
    yield threads
    for thread in threads:
        thread.join(timeout=120)


def test_a_student_records_in_the_browser_and_is_enrolled(
    live_server, browser_with_camera, make_user, course, tmp_path, task_in_a_thread
):
    from django.urls import reverse
    from django.utils import timezone

    from attendance.courses.services import course_membership_add
    from attendance.models import FaceEnrolment

    katie = make_user("student", first_name="Katie", last_name="Hill")
    course_membership_add(course=course, student=katie)
    # An earlier video was refused: its line must not stay beside the new "Ready" (issue 16).
    FaceEnrolment.objects.create(student=katie, status="failed", consent_given_at=timezone.now(),
                                 finished_at=timezone.now(), error_message="No face was found in the video.")
    camera = write_y4m(video_frames(KATIE_VIDEO), tmp_path / "katie.y4m")
    context = browser_with_camera(camera).new_context(viewport={"width": 1100, "height": 1000})  # type: ignore[attr-defined]
    page = context.new_page()
    base = live_server.url
    login(page, base, katie.username)
    page.click("nav >> text=Enrol my face")
    page.wait_for_url(base + reverse("enrolment"))

    # Recording without consent is refused on the page, before anything is sent.
    page.click("#camera-start")
    page.wait_for_function("document.getElementById('preview').videoWidth > 0")
    page.click("#record-start")
    assert "Tick the consent box first" in page.inner_text("#banner")

    page.check("#consent")
    page.click("#record-start")
    page.wait_for_selector("#prompt:not([hidden])")
    page.wait_for_selector("#prompt:has-text('left')", timeout=15_000)
    screenshot(page, "enrol-recording")
    page.wait_for_selector("#recorded:not([hidden])", timeout=30_000)
    page.click("#send-recording")
    page.wait_for_selector("#progress-card:not([hidden])")
    page.wait_for_selector("#result:not([hidden])", timeout=180_000)
    screenshot(page, "enrol-done")
    result = page.inner_text("#result")
    enrolment = FaceEnrolment.objects.get(student=katie, status__in=["ready", "queued", "processing"])
    assert page.get_attribute("#result", "data-status") == "ready", (result, enrolment.error_message)
    assert "your face is enrolled" in result
    assert page.locator("#last-failure").count() == 0
    assert page.inner_text("#current-status .badge-ready") == "Ready"
    assert enrolment.status == "ready" and enrolment.video.name == ""
    assert f"{enrolment.embeddings.count()} face views stored" in result
    assert enrolment.embeddings.count() >= 5
    assert enrolment.progress["embeddings"] == enrolment.embeddings.count()
