"""Liveness in a real browser: replays and a still photo mark nobody; a live face answering the
kiosk's head-turn prompt is marked, one that does not answer is not.

People are enrolled from their live clips (pad/live: frames the cameras below never play, where
it matters); the cameras play the attacks of pad/screen, a still frame jittered a few pixels per
frame, or frames a test draws on a canvas (a test-driven camera) from the live clip of
tranvanluyt: facing forward, then turned the way the page asks. Each wait is bounded.
"""

from __future__ import annotations

import base64
import json
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import pytest
from django.urls import reverse

from tests.attendance.factories_faces import (
    _largest_face_vectors,
    enrol_with_vectors,
    katie_enrolment_vectors,
    video_frames_rgb,
)
from tests.browser import login, screenshot, write_y4m
from tests.conftest import FACES_DIR
from tests.videos import video_frames

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.usefixtures("fresh_redis")]

PAD = FACES_DIR / "pad"
KATIE_VIDEO = FACES_DIR / "videos" / "katie_hill_talking.mp4"
TRAN_LIVE = PAD / "live" / "tranvanluyt__real.mp4"


@cache
def live_vectors(clip: str) -> np.ndarray:
    return _largest_face_vectors(video_frames_rgb(PAD / "live" / clip, step=15))


def _enrol(make_user, course, first: str, last: str, vectors: np.ndarray) -> object:
    student = make_user("student", first_name=first, last_name=last)
    enrol_with_vectors(student=student, vectors=vectors, courses=[course])
    return student


def _lecturer_page(browser, live_server, lecturer, session):
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    login(page, live_server.url, lecturer.username)
    page.goto(live_server.url + reverse("session-checkin", args=[session.pk]))
    return page


def _jittered_still(path: Path) -> Path:
    """One frame of Katie, shifted and turned a few pixels per frame: a photo held in a hand."""
    still = video_frames(KATIE_VIDEO, start_s=5.0, end_s=5.1)[0]
    h, w = still.shape[:2]
    rng = np.random.default_rng(7)
    frames = []
    for _ in range(250):
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-3, 3), 1.0)
        matrix[:, 2] += rng.uniform(-4, 4, 2)
        frames.append(cv2.warpAffine(still, matrix, (w, h), borderMode=cv2.BORDER_REFLECT))
    return write_y4m(frames, path)


@pytest.mark.parametrize("clip", ["tranvanluyt__fake.mp4", "zubair__fake.mp4"])
def test_a_replay_on_a_screen_marks_nobody_and_the_lecturer_sees_a_possible_photo(
    live_server, browser_with_camera, lecturer, course, make_user, tmp_path, clip
):
    from attendance.models import AttendanceRecord
    from attendance.sessions.services import session_open

    person = clip.split("__")[0]
    student = _enrol(make_user, course, person.title(), "Replayed", live_vectors(
        {"tranvanluyt": "tranvanluyt__real.mp4", "zubair": "zubair__real.mov"}[person]))
    session = session_open(course=course, by=lecturer)
    # zubair__fake.mp4's first ~35 frames show the live person too (pad/README.md): not an attack.
    start = 2.0 if person == "zubair" else 0.0
    y4m = write_y4m(video_frames(PAD / "screen" / clip, start_s=start, end_s=start + 12.0), tmp_path / "replay.y4m")
    page = _lecturer_page(browser_with_camera(y4m), live_server, lecturer, session)
    if person == "tranvanluyt":
        page.wait_for_selector(f'#not-live-list li[data-student="{student.pk}"]', timeout=30_000)
        assert f"Possible photo or screen of {student.display_name}" in page.inner_text("#not-live")
        page.wait_for_timeout(3000)
    else:
        # Measured: the phone replay is recognised only weakly (distance 0.24-0.29 against dlib's
        # 0.27, so doubtful or unknown: liveness is judged on surely recognised faces only), and
        # YuNet loses the face after ~4 s of it. It marks nobody, but gets no "possible photo" line.
        page.wait_for_function("document.getElementById('overlay').dataset.faces === '1'", timeout=30_000)
        page.wait_for_timeout(12_000)
    screenshot(page, f"liveness-replay-{person}")
    assert not AttendanceRecord.objects.filter(session=session).exists()


def test_a_jittered_still_photo_with_the_challenge_marks_nobody_and_the_lecturer_sees_it(
    live_server, browser_with_camera, lecturer, course, make_user, tmp_path
):
    """A digital still of a live frame passes the passive models (it is no recapture: scores
    ~1.0, like a forged camera stream), and shifting it beats the frozen-face check: only the
    challenge stops it. The course asks for the challenge on the lecturer's page too."""
    from attendance.models import AttendanceRecord
    from attendance.sessions.services import session_open

    course.liveness = "challenge"
    course.save()
    katie = _enrol(make_user, course, "Katie", "Hill", katie_enrolment_vectors())
    session = session_open(course=course, by=lecturer)
    page = _lecturer_page(browser_with_camera(_jittered_still(tmp_path / "still.y4m")), live_server, lecturer,
                          session)
    page.wait_for_selector("#challenge[data-state=asking]", timeout=30_000)
    assert "Turn your head to your" in page.inner_text("#challenge")
    page.wait_for_selector(f'#not-live-list li[data-student="{katie.pk}"]', timeout=20_000)
    screenshot(page, "liveness-still-photo")
    assert "Possible photo or screen of Katie Hill" in page.inner_text("#not-live")
    assert not AttendanceRecord.objects.filter(session=session).exists()


# A camera the test drives: getUserMedia returns a canvas stream; the page draws the test's
# frames (JPEG data URLs in window.__frames[window.__mode]) onto it, cycling every 100 ms. Every
# frame is decoded before the camera starts, and a tick whose frame is not ready yet redraws the
# last one: like a real camera, it never shows the same picture twice (a canvas left undrawn
# while a new frame decodes would, and the frozen-face check rightly refuses identical snapshots).
CANVAS_CAMERA = """
(() => {
  const canvas = document.createElement("canvas");
  canvas.width = 368; canvas.height = 656;
  const ctx = canvas.getContext("2d");
  Object.assign(window, { __frames: FRAMES, __mode: "frontal" });
  const images = {};
  for (const list of Object.values(window.__frames)) {
    for (const url of list) images[url] = Object.assign(new Image(), { src: url });
  }
  let n = 0, last = null;
  setInterval(() => {
    const list = window.__frames[window.__mode] || [];
    if (!list.length) return;
    const image = images[list[n++ % list.length]];
    if (image.complete && image.naturalWidth) last = image;
    if (!last) return;
    // Up to a pixel of random jitter per frame, like a real camera's noise.
    const dx = Math.random() * 2 - 1, dy = Math.random() * 2 - 1;
    ctx.drawImage(last, dx, dy, canvas.width, canvas.height);
  }, 100);
  const ready = Promise.all(Object.values(images).map((image) => image.decode().catch(() => null)));
  navigator.mediaDevices.getUserMedia = async () => { await ready; return canvas.captureStream(10); };
})();
"""


def _data_urls(frames: list[np.ndarray]) -> list[str]:
    urls = []
    for frame in frames:
        ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
        urls.append("data:image/jpeg;base64," + base64.b64encode(data.tobytes()).decode())
    return urls


@cache
def tran_camera_frames() -> dict[str, list[str]]:
    """Facing forward (0-1.6 s), turned to his own left (2.4-3.6 s), and that turn mirrored: the
    same head turned to its right."""
    frontal = video_frames(TRAN_LIVE, end_s=1.6, step=4)
    left = video_frames(TRAN_LIVE, start_s=2.4, end_s=3.6, step=4)
    return {"frontal": _data_urls(frontal), "left": _data_urls(left),
            "right": _data_urls([np.ascontiguousarray(f[:, ::-1]) for f in left])}


@pytest.mark.parametrize("answers", [
    True,
    False,
], ids=["answers", "does-not-answer"])
def test_the_kiosk_challenge_marks_a_face_that_turns_the_asked_way_and_not_one_that_does_not(
    live_server, browser_with_camera, lecturer, course, make_user, settings, answers
):
    from attendance.models import AttendanceRecord
    from attendance.sessions.services import session_kiosk_token_create, session_open

    assert settings.ROLLCALL_LIVENESS_KIOSK == "challenge"  # the shipped default
    tran = _enrol(make_user, course, "Tran", "Van Luyt", live_vectors("tranvanluyt__real.mp4"))
    session = session_open(course=course, by=lecturer)
    token = session_kiosk_token_create(session=session, by=lecturer)
    context = browser_with_camera(None).new_context(viewport={"width": 1024, "height": 900})
    context.add_init_script(CANVAS_CAMERA.replace("FRAMES", json.dumps(tran_camera_frames())))
    door = context.new_page()
    door.goto(live_server.url + reverse("kiosk", args=[token]), wait_until="domcontentloaded")
    door.click("text=Start the kiosk")
    door.wait_for_selector("#challenge[data-state=asking]", timeout=30_000)
    direction = door.get_attribute("#challenge", "data-direction")
    assert direction in ("left", "right")
    if answers:
        # As a person does: still facing the camera for the next snapshot or two after the prompt
        # (the server needs a frontal start after it), then the turn. The prompt gives 6 s.
        door.wait_for_timeout(1500)
        door.evaluate("(mode) => { window.__mode = mode; }", direction)
    assert f"Turn your head to your {direction}" in door.inner_text("#challenge")
    # The kiosk mirrors its preview: the arrow points where the face on screen moves.
    assert door.inner_text(".challenge-arrow") == ("←" if direction == "left" else "→")
    assert "s left" in door.inner_text(".challenge-countdown")
    screenshot(door, f"kiosk-challenge-{direction}")
    if answers:
        from attendance.checkin.lists import session_not_live

        try:
            door.wait_for_selector(".welcome-item", timeout=15_000)
        except Exception as exc:
            screenshot(door, "kiosk-challenge-not-marked")
            raise AssertionError(f"not marked: {session_not_live(session=session)}") from exc
        assert "Tran Van Luyt" in door.inner_text("#welcome")
        record = AttendanceRecord.objects.get(session=session, student=tran)
        assert record.liveness_checks == ["passive", "motion", "challenge"]
    else:
        door.wait_for_selector("#challenge[data-state=failed]", timeout=15_000)
        assert "Try again" in door.inner_text("#challenge")
        screenshot(door, "kiosk-challenge-failed")
        assert not AttendanceRecord.objects.filter(session=session).exists()
