"""Live check-in in a real browser: Chromium's fake camera plays a video to the check-in page.

The student is enrolled through the real pipeline (enrolment_create + enrolment_video_process, the
service the Celery task runs) from the first half of the talking-head video; the camera plays the
second half, which enrolment never saw. Screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from django.core.files import File

from recognition import load_image
from tests.browser import login, screenshot, write_y4m
from tests.conftest import FACES_DIR
from tests.videos import video_frames

pytestmark = [pytest.mark.slow, pytest.mark.browser]

KATIE_VIDEO = FACES_DIR / "videos" / "katie_hill_talking.mp4"
SPLIT_S = 4.0


def _write_mp4(frames: list[np.ndarray], path: Path, fps: float = 25.0) -> Path:
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def _enrol_through_the_pipeline(student: object, course: object, tmp_path: Path) -> None:
    from attendance.courses.services import course_membership_add
    from attendance.enrolment.processing import enrolment_video_process
    from attendance.enrolment.services import enrolment_create
    from attendance.models import FaceEnrolment

    course_membership_add(course=course, student=student)
    first_half = _write_mp4(video_frames(KATIE_VIDEO, end_s=SPLIT_S), tmp_path / "enrol.mp4")
    with first_half.open("rb") as handle:
        enrolment = enrolment_create(student=student, video=File(handle, name="enrol.mp4"), consent=True,
                                     by=student, schedule=False)
    enrolment_video_process(enrolment_id=enrolment.pk)
    enrolment.refresh_from_db()
    assert enrolment.status == FaceEnrolment.Status.READY, enrolment.error_message
    assert enrolment.embeddings.count() >= 5


def _stranger_y4m(path: Path) -> Path:
    """People kept out of every gallery, each photo shown for a second in a 640x480 'room'."""
    frames = []
    for person in ("john_simm", "yale_subject14"):
        for photo in sorted((FACES_DIR / "unknown" / person).iterdir())[:4]:
            face = cv2.cvtColor(load_image(photo), cv2.COLOR_RGB2BGR)
            room = np.full((480, 640, 3), 105, dtype=np.uint8)
            room[120 : 120 + face.shape[0], 200 : 200 + face.shape[1]] = face
            frames.extend([room] * 25)
    return write_y4m(frames, path)


@pytest.fixture
def katie(make_user: object) -> object:
    return make_user("student", first_name="Katie", last_name="Hill")  # type: ignore[operator]


def _open_check_in_page(browser: object, live_server: object, lecturer: object, course: object) -> object:
    from django.urls import reverse

    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    base = live_server.url  # type: ignore[attr-defined]
    login(page, base, lecturer.username)  # type: ignore[attr-defined]
    page.goto(base + reverse("course-detail", args=[course.pk]))  # type: ignore[attr-defined]
    page.fill("#id_title", "Week 3 lecture")
    page.click("text=Open a session and take attendance")
    page.wait_for_url("**/check-in/")
    return page


def test_an_enrolled_student_appears_present_on_the_check_in_page_and_the_lecturer_corrects_and_closes(
    live_server, browser_with_camera, lecturer, course, katie, make_user, tmp_path, settings
):
    from attendance.models import AttendanceChange, AttendanceRecord, CourseMembership, Session

    _enrol_through_the_pipeline(katie, course, tmp_path)
    absentee = make_user("student", first_name="Ava", last_name="Absent")
    CourseMembership.objects.create(course=course, student=absentee)
    y4m = write_y4m(video_frames(KATIE_VIDEO, start_s=SPLIT_S), tmp_path / "probe.y4m")
    page = _open_check_in_page(browser_with_camera(y4m), live_server, lecturer, course)
    session = Session.objects.get(course=course)
    assert session.status == "open"

    started = time.monotonic()
    row = f'#roster tr[data-student="{katie.pk}"]'
    page.wait_for_selector(f'{row}[data-status="present"]', timeout=30_000)
    seconds = time.monotonic() - started
    page.wait_for_function("document.getElementById('overlay').dataset.faces === '1'")
    screenshot(page, "checkin-student-present")
    assert seconds < 20, f"took {seconds:.1f} s to mark present"
    record = AttendanceRecord.objects.get(session=session, student=katie)
    assert (record.status, record.method) == ("present", "face") and record.confidence is not None
    assert "face" in page.inner_text(row) and "Katie Hill" in page.inner_text(row)
    assert "1 present" in page.inner_text("#counts")
    assert "recognised" in page.inner_text("#camera-status")
    assert page.is_hidden("#banner")

    # A mistake corrected by hand: unmark her, and the camera does not put her back.
    page.click(f'{row} button:text-is("Unmark")')
    page.wait_for_selector(f'{row}[data-status="absent"]')
    page.wait_for_timeout(2000)
    assert AttendanceRecord.objects.get(session=session, student=katie).method == "manual"
    assert page.get_attribute(row, "data-status") == "absent"
    # The second correction with a reason typed in the box: it goes into the audit row, and the
    # record keeps the camera's arrival time and distance.
    page.fill("#correction-reason", "Was in the room after all")
    page.click(f'{row} button:text-is("Present")')
    page.wait_for_selector(f'{row}[data-status="present"]')
    assert AttendanceChange.objects.filter(record__student=katie).count() == 2
    latest = AttendanceChange.objects.filter(record__student=katie).order_by("-changed_at", "-pk").first()
    assert latest is not None and latest.reason == "Was in the room after all"
    assert page.input_value("#correction-reason") == ""  # used once, then cleared
    corrected = AttendanceRecord.objects.get(session=session, student=katie)
    assert corrected.marked_at == record.marked_at and corrected.confidence == record.confidence
    screenshot(page, "checkin-after-correction")

    page.click("text=Close session")
    page.wait_for_url(f"**/courses/{course.pk}/")
    assert "1 student marked absent" in page.inner_text(".messages")
    screenshot(page, "course-after-close")
    session.refresh_from_db()
    assert session.status == "closed"
    assert AttendanceRecord.objects.get(session=session, student=absentee).method == "auto"


def test_a_strangers_video_marks_nobody(live_server, browser_with_camera, lecturer, course, katie, tmp_path):
    from attendance.models import AttendanceRecord, Session

    _enrol_through_the_pipeline(katie, course, tmp_path)
    page = _open_check_in_page(browser_with_camera(_stranger_y4m(tmp_path / "strangers.y4m")), live_server,
                               lecturer, course)
    page.wait_for_function("document.getElementById('overlay').dataset.faces === '1'", timeout=30_000)
    page.wait_for_timeout(6000)  # several seconds of strangers: more than enough snapshots to confirm anyone
    screenshot(page, "checkin-stranger")
    assert "1 face in view, 0 recognised" in page.inner_text("#camera-status")
    assert page.get_attribute(f'#roster tr[data-student="{katie.pk}"]', "data-status") == ""
    assert not AttendanceRecord.objects.filter(session=Session.objects.get(course=course)).exists()


def test_a_kiosk_at_the_door_checks_a_student_in_without_signing_in(
    live_server, browser_with_camera, lecturer, course, katie, tmp_path, settings
):
    from attendance.models import AttendanceRecord, Session

    # Passive liveness only: a recorded video cannot answer the kiosk's head-turn prompt (that is
    # its point; test_liveness_browser.py tests it). This test is about the kiosk link.
    settings.ROLLCALL_LIVENESS_KIOSK = "passive"

    _enrol_through_the_pipeline(katie, course, tmp_path)
    # The lecturer's laptop films the lectern (Chromium's test pattern, no face); the tablet at the
    # door films the students coming in.
    page = _open_check_in_page(browser_with_camera(None), live_server, lecturer, course)
    page.click("text=Make a kiosk link and QR code")
    page.wait_for_selector(".qr svg")
    kiosk_url = page.input_value("#kiosk-url")
    screenshot(page, "checkin-kiosk-link")
    assert not AttendanceRecord.objects.filter(student=katie).exists()

    y4m = write_y4m(video_frames(KATIE_VIDEO, start_s=SPLIT_S), tmp_path / "probe.y4m")
    door = browser_with_camera(y4m).new_context(viewport={"width": 1024, "height": 768}).new_page()
    door.goto(kiosk_url)
    door.click("text=Start the kiosk")  # the link pairs the device that confirms it, not whoever opens it
    door.wait_for_selector(".welcome-item", timeout=30_000)
    assert "Katie Hill" in door.inner_text("#welcome")
    screenshot(door, "kiosk-welcome")
    record = AttendanceRecord.objects.get(session=Session.objects.get(course=course), student=katie)
    assert record.method == "face"

    # Closing the session kills the link: the door page stops and says so.
    page.click("text=Close session")
    page.wait_for_url(f"**/courses/{course.pk}/")
    door.wait_for_selector("#banner:not([hidden])", timeout=15_000)
    assert "no longer valid" in door.inner_text("#banner")
    screenshot(door, "kiosk-after-close")


def test_a_doubtful_match_waits_for_the_lecturer_to_confirm_it(
    live_server, browser_with_camera, lecturer, course, katie, tmp_path, settings
):
    from attendance.models import AttendanceRecord, Session

    # A band this wide makes every one of Katie's probes doubtful (dlib: 0.0135-0.27).
    settings.ROLLCALL_CHECKIN_DOUBTFUL_BAND = 0.95
    _enrol_through_the_pipeline(katie, course, tmp_path)
    y4m = write_y4m(video_frames(KATIE_VIDEO, start_s=SPLIT_S), tmp_path / "probe.y4m")
    page = _open_check_in_page(browser_with_camera(y4m), live_server, lecturer, course)
    page.wait_for_selector(f'#doubtful-list li[data-student="{katie.pk}"]', timeout=30_000)
    page.wait_for_timeout(2000)  # a few more snapshots: still nobody marked
    screenshot(page, "checkin-doubtful")
    session = Session.objects.get(course=course)
    assert not AttendanceRecord.objects.filter(session=session).exists()
    assert "Katie Hill" in page.inner_text("#doubtful")
    page.click("#doubtful-list button:text-is(\"Confirm\")")
    page.wait_for_selector(f'#roster tr[data-student="{katie.pk}"][data-status="present"]')
    page.wait_for_selector("#doubtful", state="hidden")
    record = AttendanceRecord.objects.get(session=session, student=katie)
    assert record.method == "manual" and record.changes.get().reason.startswith("Confirmed a doubtful face match")


# Wraps the page's fetch before its scripts run: counts check-in posts and how many are in flight
# at once, and lets the test delay them or make them fail like a dropped network.
FETCH_PROBE = """
(() => {
  const realFetch = window.fetch.bind(window);
  Object.assign(window, { __posts: 0, __inFlight: 0, __maxInFlight: 0, __delayMs: 0, __fail: false });
  window.fetch = async (url, options) => {
    if (!String(url).includes("/check-in/")) return realFetch(url, options);
    window.__posts += 1;
    window.__inFlight += 1;
    window.__maxInFlight = Math.max(window.__maxInFlight, window.__inFlight);
    try {
      if (window.__delayMs) await new Promise((resolve) => setTimeout(resolve, window.__delayMs));
      if (window.__fail) throw new TypeError("Failed to fetch");
      return await realFetch(url, options);
    } finally {
      window.__inFlight -= 1;
    }
  };
})();
"""


def test_the_page_sends_one_snapshot_at_a_time_backs_off_on_failure_and_recovers(
    live_server, browser_with_camera, lecturer, course, settings
):
    settings.ROLLCALL_CHECKIN_INTERVAL_MS = 200
    browser = browser_with_camera(None)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(FETCH_PROBE)
    page = context.new_page()
    base = live_server.url
    login(page, base, lecturer.username)
    from attendance.sessions.services import session_open

    session = session_open(course=course, by=lecturer)
    page.goto(f"{base}/sessions/{session.pk}/check-in/")
    page.wait_for_function("window.__posts >= 3", timeout=20_000)

    # A slow server: the page waits for each answer instead of piling requests up.
    page.evaluate("window.__delayMs = 1500")
    page.wait_for_timeout(5000)
    assert page.evaluate("window.__maxInFlight") == 1

    # The network drops: a banner says so and the retries thin out.
    page.evaluate("window.__delayMs = 0; window.__fail = true; window.__posts = 0")
    page.wait_for_selector("#banner:not([hidden])", timeout=10_000)
    assert "Cannot reach the server" in page.inner_text("#banner")
    page.wait_for_timeout(5000)
    screenshot(page, "checkin-network-failure")
    attempts = page.evaluate("window.__posts")
    # Without backoff 5 s at 200 ms would be 25 posts; doubling from 200 ms gives about 5.
    assert 2 <= attempts <= 7, attempts

    # The network is back: the next retry succeeds and the banner goes.
    page.evaluate("window.__fail = false")
    page.wait_for_selector("#banner", state="hidden", timeout=20_000)
    assert page.evaluate("window.__maxInFlight") == 1


def test_the_live_check_in_page_speaks_croatian(live_server, browser_with_camera, lecturer, course, katie, tmp_path):
    """The words checkin.js writes (status line, counts, badges, buttons) come from the JavaScript catalog."""
    lecturer.language = "hr"
    lecturer.save(update_fields=["language"])
    _enrol_through_the_pipeline(katie, course, tmp_path)
    context = browser_with_camera(_stranger_y4m(tmp_path / "strangers.y4m")).new_context(
        viewport={"width": 1280, "height": 900})
    page = context.new_page()
    base = live_server.url
    login(page, base, lecturer.username)
    from django.urls import reverse

    page.goto(base + reverse("course-detail", args=[course.pk]))
    page.click("text=Otvori termin i evidentiraj prisutnost")
    page.wait_for_url("**/check-in/")
    page.wait_for_function("document.getElementById('overlay').dataset.faces === '1'", timeout=30_000)
    page.wait_for_timeout(1500)
    screenshot(page, "checkin-croatian")
    assert "1 lice u kadru, prepoznato: 0" in page.inner_text("#camera-status")
    assert "0 prisutnih" in page.inner_text("#counts") and "1 još nije viđen" in page.inner_text("#counts")
    row = f'#roster tr[data-student="{katie.pk}"]'
    assert page.locator(f'{row} button:text-is("Prisutan")').count() == 1
    assert page.get_attribute(f'{row} button:text-is("Zakasnio")', "aria-label") == "Zakasnio: Katie Hill"
