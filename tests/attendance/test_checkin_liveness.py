"""Liveness at check-in, with real frames: live faces still marked, a frozen picture and an
unanswered head-turn challenge never.

Katie: enrolled from the talking-head video's first half, probed with its second half (as in
test_checkin_api.py). Tran: enrolled from pad/live/tranvanluyt__real.mp4 after 11 s (frontal),
probed with its first seconds: frontal until ~1.9 s, then a turn to his own left (yaw +0.5 at
~2.1 s, +1.0 by 2.7 s; tests/recognition/test_liveness_challenge.py reads those off the clip).
Each snapshot's clock is the clip's own time, so a challenge's deadline falls where the clip says.
The direction the server asks is random; tests that need one direction fix it.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from attendance.checkin import lists as checkin_lists
from attendance.checkin import liveness as checkin_liveness
from attendance.checkin import services as checkin_service
from attendance.models import AttendanceRecord, Course
from attendance.sessions.services import session_kiosk_token_create, session_open
from recognition.liveness import PASSIVE_THRESHOLD, Challenge
from tests.attendance.factories_faces import (
    enrol_with_vectors,
    jpeg,
    katie_enrolment_vectors,
    katie_probe_jpegs,
    video_frames_rgb,
)
from tests.conftest import FACES_DIR, kiosk_pair

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("fresh_redis")]

TRAN_VIDEO = FACES_DIR / "pad" / "live" / "tranvanluyt__real.mp4"
T0 = 1_000_000.0  # the server clock at the clip's 0 s


@cache
def tran_vectors() -> np.ndarray:
    from tests.attendance.factories_faces import _largest_face_vectors

    return _largest_face_vectors(video_frames_rgb(TRAN_VIDEO, start_s=11.0, step=15))


@cache
def tran_snapshots() -> tuple[tuple[float, bytes], ...]:
    """(clip time, JPEG) every 0.4 s of the clip's first 4.4 s, as the kiosk page would send them."""
    frames = video_frames_rgb(TRAN_VIDEO, end_s=4.4, step=12)  # 30 fps: 12 frames = 0.4 s
    return tuple((round(i * 0.4, 1), jpeg(rgb)) for i, rgb in enumerate(frames))


@pytest.fixture
def katie_session(course, lecturer, make_user):
    katie = make_user("student", first_name="Katie", last_name="Hill")
    enrol_with_vectors(student=katie, vectors=katie_enrolment_vectors(), courses=[course])
    return katie, session_open(course=course, by=lecturer)


@pytest.fixture
def tran_session(course, lecturer, make_user, settings):
    settings.ROLLCALL_CHECKIN_CONFIRMATIONS = 3
    tran = make_user("student", first_name="Tran", last_name="Van Luyt")
    enrol_with_vectors(student=tran, vectors=tran_vectors(), courses=[course])
    return tran, session_open(course=course, by=lecturer)


def ask(monkeypatch, direction: str) -> None:
    """The server's next challenges ask this way (it draws at random otherwise)."""
    monkeypatch.setattr(checkin_liveness, "_issue", lambda now: Challenge(direction, now, now + 6.0))


def kiosk_check_in(session, snapshots):
    return [checkin_service.session_check_in(session=session, image_bytes=data, now=T0 + t, kiosk=True).faces
            for t, data in snapshots]


def outcomes(results) -> list[str]:
    return [faces[0].outcome if faces else "-" for faces in results]


def test_the_talking_head_is_still_marked_with_passive_liveness_and_the_record_keeps_its_score(
    katie_session, settings
):
    settings.ROLLCALL_CHECKIN_CONFIRMATIONS = 3
    katie, session = katie_session
    assert settings.ROLLCALL_LIVENESS_LECTURER == "passive"  # the shipped default
    seen = []
    for i, frame in enumerate(katie_probe_jpegs()[:8]):
        result = checkin_service.session_check_in(session=session, image_bytes=frame, now=T0 + 0.4 * i)
        assert result.liveness == "passive"
        seen.append(result.faces[0].outcome)
        if result.marked:
            break
    assert seen[-1] == "marked", seen
    assert set(seen[:-1]) <= {"confirming"}, seen  # no challenge on the lecturer's page
    record = AttendanceRecord.objects.get(session=session, student=katie)
    assert record.method == "face" and PASSIVE_THRESHOLD <= record.liveness_score <= 1.0
    assert record.liveness_checks == ["passive", "motion"]


def test_liveness_off_marks_without_a_score(katie_session, settings):
    settings.ROLLCALL_CHECKIN_CONFIRMATIONS = 1
    settings.ROLLCALL_LIVENESS_LECTURER = "off"
    katie, session = katie_session
    result = checkin_service.session_check_in(session=session, image_bytes=katie_probe_jpegs()[0], now=T0)
    assert result.marked == [katie.pk] and result.faces[0].liveness_score is None
    record = AttendanceRecord.objects.get(session=session, student=katie)
    assert record.liveness_score is None and record.liveness_checks == []


def test_the_same_frame_sent_again_is_a_frozen_picture_and_marks_nobody(katie_session, lecturer, settings):
    settings.ROLLCALL_CHECKIN_CONFIRMATIONS = 3
    katie, session = katie_session
    client = APIClient()
    client.force_authenticate(lecturer)
    frame = katie_probe_jpegs()[2]
    faces = [client.post(reverse("api-session-checkin", args=[session.pk]), data=frame,
                         content_type="image/jpeg").json()["faces"][0] for _ in range(3)]
    assert [f["outcome"] for f in faces] == ["confirming", "confirming", "not_live"], faces
    assert faces[0]["liveness_score"] >= PASSIVE_THRESHOLD  # a live picture: only its stillness gives it away
    assert "frozen" in faces[2]["reason"]
    assert not AttendanceRecord.objects.filter(session=session).exists()
    state = client.get(reverse("api-session-state", args=[session.pk])).json()
    assert [(s["student_id"], s["name"]) for s in state["not_live"]] == [(katie.pk, "Katie Hill")]
    # The confirmations start again: the same frame keeps being refused.
    again = [client.post(reverse("api-session-checkin", args=[session.pk]), data=frame,
                         content_type="image/jpeg").json()["faces"][0]["outcome"] for _ in range(3)]
    assert again[-1] == "not_live" and not AttendanceRecord.objects.filter(session=session).exists()
    # Marked by hand: off the "possible photo" lines.
    client.post(reverse("api-session-marks", args=[session.pk]), {"student": katie.pk, "status": "present"},
                format="json")
    assert client.get(reverse("api-session-state", args=[session.pk])).json()["not_live"] == []


def test_a_challenge_answered_with_a_real_turn_in_time_marks(tran_session, monkeypatch):
    tran, session = tran_session
    ask(monkeypatch, "left")
    results = kiosk_check_in(session, tran_snapshots())
    seen = outcomes(results)
    assert seen[:3] == ["confirming", "confirming", "challenge"], seen
    challenge = results[2][0].challenge
    assert challenge == {"prompt": "Turn your head to your left", "direction": "left", "seconds_left": 6.0,
                         "seconds": 6.0}
    assert "marked" in seen, seen
    marked_at = seen.index("marked")
    assert set(seen[3:marked_at]) <= {"challenge"}
    assert 2.0 <= tran_snapshots()[marked_at][0] <= 3.2  # when he turned, not before
    record = AttendanceRecord.objects.get(session=session, student=tran)
    assert record.liveness_checks == ["passive", "motion", "challenge"]
    assert record.liveness_score is not None and record.liveness_score >= PASSIVE_THRESHOLD


def test_a_turn_the_wrong_way_fails_and_a_new_challenge_follows(tran_session, monkeypatch):
    _, session = tran_session
    ask(monkeypatch, "right")
    results = kiosk_check_in(session, tran_snapshots())
    seen = outcomes(results)
    assert "challenge_failed" in seen and "marked" not in seen, seen
    failed = results[seen.index("challenge_failed")][0]
    assert failed.reason == "turned the wrong way"
    assert not AttendanceRecord.objects.filter(session=session).exists()
    names = [s.name for s in checkin_lists.session_not_live(session=session, now=T0 + 5)]
    assert names == ["Tran Van Luyt"]
    # Later he faces the camera again: a new prompt (a retry) once his face is confirmed again. (A
    # prompt issued while he still looked away, and never answered, may fail first.)
    retry = kiosk_check_in(session, [(20.0 + t, data) for t, data in tran_snapshots()[:6]])
    seen = outcomes(retry)
    assert "challenge" in seen and "marked" not in seen, seen
    fresh = retry[seen.index("challenge")][0].challenge
    assert fresh is not None and fresh["seconds_left"] == 6.0


def test_a_turn_after_the_deadline_fails_as_late(tran_session, monkeypatch):
    _, session = tran_session
    ask(monkeypatch, "left")
    snapshots = tran_snapshots()
    frontal = [s for s in snapshots if s[0] <= 1.6]
    turned = [s for s in snapshots if s[0] >= 2.8]
    # The prompt at the third snapshot (0.8 s); frontal frames until after its 6 s, then the turn.
    early = kiosk_check_in(session, frontal[:3])
    assert outcomes(early)[-1] == "challenge"
    waiting = kiosk_check_in(session, [(1.2 + 1.2 * i, data) for i, (_, data) in enumerate(frontal[3:])])
    assert set(outcomes(waiting)) == {"challenge"}
    late = kiosk_check_in(session, [(7.2, turned[0][1])])
    assert outcomes(late) == ["challenge_failed"] and late[0][0].reason == "turned too late"
    assert not AttendanceRecord.objects.filter(session=session).exists()


def test_a_face_that_does_not_turn_fails_when_the_time_is_up(tran_session, monkeypatch):
    _, session = tran_session
    ask(monkeypatch, "left")
    frontal = [s for s in tran_snapshots() if s[0] <= 1.6]
    # Frontal frames throughout, 1.5 s apart after the prompt (0.8 s): the last one is past its 6 s.
    times = [0.0, 0.4, 0.8, 2.3, 3.8, 5.3, 6.9]
    results = kiosk_check_in(session, [(t, frontal[i % len(frontal)][1]) for i, t in enumerate(times)])
    seen = outcomes(results)
    assert seen[2:6] == ["challenge"] * 4 and seen[6] == "challenge_failed", seen
    assert results[6][0].reason == "did not turn"
    assert not AttendanceRecord.objects.filter(session=session).exists()


def test_the_kiosk_gets_the_kiosk_policy_and_the_lecturer_the_lecturers(tran_session, lecturer, settings):
    _, session = tran_session
    device = kiosk_pair(session_kiosk_token_create(session=session, by=lecturer))
    url = reverse("api-session-checkin", args=[session.pk])
    _, frame = tran_snapshots()[0]
    kiosk = APIClient().post(url, data=frame, content_type="image/jpeg", **device.header).json()
    client = APIClient()
    client.force_authenticate(lecturer)
    page = client.post(url, data=tran_snapshots()[1][1], content_type="image/jpeg").json()
    assert (kiosk["liveness"], page["liveness"]) == ("passive+challenge", "passive")
    # A course's own policy wins over both site settings.
    Course.objects.filter(pk=session.course_id).update(liveness="off")
    session.refresh_from_db()
    kiosk = device.client.post(url, data=frame, content_type="image/jpeg").json()  # the cookie, as a browser
    assert kiosk["liveness"] == "off" and kiosk["faces"][0]["liveness_score"] is None


def test_warming_up_loads_the_liveness_models_when_a_policy_needs_them(db, settings):
    from attendance import ml
    from attendance.courses.warmup import warm_up

    ml.reset()
    warm_up()  # the site defaults: passive on the lecturer's page, the challenge at the kiosk
    assert ml.liveness()._models is not None


def test_the_course_admin_page_edits_the_courses_liveness(client, admin_user, course):
    client.force_login(admin_user)
    page = client.get(reverse("admin:attendance_course_change", args=[course.pk])).content.decode()
    assert 'name="liveness"' in page and "Passive and a head-turn challenge" in page


def test_without_its_models_liveness_degrades_says_so_and_check_in_still_marks(
    katie_session, settings, tmp_path, monkeypatch
):
    from attendance import ml

    katie, session = katie_session
    settings.ROLLCALL_CHECKIN_CONFIRMATIONS = 2
    settings.ROLLCALL_LIVENESS_LECTURER = "passive"
    settings.ROLLCALL_LIVENESS_MODEL_DIR = tmp_path  # empty, and no download in tests' reach
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # unroutable: the download fails at once
    ml.reset()
    try:
        client = APIClient()
        client.force_login(session.course.lecturers.first())
        url = reverse("api-session-checkin", args=[session.pk])
        answers = [client.post(url, data=probe, content_type="image/jpeg").json() for probe in katie_probe_jpegs()[:2]]
        problem = ml.liveness_problem()
    finally:
        ml.reset()
    assert all(a["liveness"] == "unavailable" for a in answers)
    assert answers[0]["notice"].startswith("Liveness checks are not available on this server right now")
    assert str(tmp_path) not in answers[0]["notice"]
    record = AttendanceRecord.objects.get(session=session, student=katie)
    assert record.liveness_checks == [] and record.liveness_score is None  # marked as with liveness off
    assert problem is not None and str(tmp_path) in problem  # the operator's detail, for health and the log


def test_without_its_models_the_kiosk_refuses_check_ins_instead_of_marking_unchecked(
    katie_session, lecturer, settings, tmp_path, monkeypatch
):
    from attendance import ml

    _, session = katie_session
    settings.ROLLCALL_CHECKIN_CONFIRMATIONS = 1
    settings.ROLLCALL_LIVENESS_MODEL_DIR = tmp_path  # empty, and no download in tests' reach
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    kiosk = kiosk_pair(session_kiosk_token_create(session=session, by=lecturer)).header
    ml.reset()
    try:
        response = APIClient().post(reverse("api-session-checkin", args=[session.pk]), data=katie_probe_jpegs()[0],
                                    content_type="image/jpeg", **kiosk)
    finally:
        ml.reset()
    assert response.status_code == 503
    detail = response.json()["detail"]
    assert detail.startswith("Check-in at this kiosk is paused") and "lecturer" in detail
    assert str(tmp_path) not in detail
    assert not AttendanceRecord.objects.filter(session=session).exists()


def test_only_a_face_that_could_be_marked_is_scored(katie_session, settings, monkeypatch):
    """Unknown faces and students already marked are answered without the liveness models."""
    from attendance import ml
    from tests.attendance.factories_faces import person_images

    settings.ROLLCALL_CHECKIN_CONFIRMATIONS = 1
    katie, session = katie_session
    scorer = ml.liveness()
    scored: list[int] = []
    real_score = scorer.score
    monkeypatch.setattr(scorer, "score", lambda rgb, faces: scored.append(len(faces)) or real_score(rgb, faces))

    first = checkin_service.session_check_in(session=session, image_bytes=katie_probe_jpegs()[0], now=T0)
    assert first.marked == [katie.pk] and first.faces[0].liveness_score is not None and scored == [1]
    again = checkin_service.session_check_in(session=session, image_bytes=katie_probe_jpegs()[1], now=T0 + 0.4)
    assert again.faces[0].outcome == "recorded" and again.faces[0].liveness_score is None
    stranger = person_images("yale_subject14", folder="unknown")[0].read_bytes()
    unknown = checkin_service.session_check_in(session=session, image_bytes=stranger, now=T0 + 0.8)
    assert [f.outcome for f in unknown.faces] == ["unknown"] and unknown.faces[0].liveness_score is None
    assert scored == [1], "the models ran for a face that could not be marked"
    # A doubtful match (here every match: the band is the whole threshold) is not scored either.
    settings.ROLLCALL_CHECKIN_DOUBTFUL_BAND = 1.0
    AttendanceRecord.objects.filter(session=session).delete()
    doubtful = checkin_service.session_check_in(session=session, image_bytes=katie_probe_jpegs()[2], now=T0 + 1.2)
    assert doubtful.faces[0].outcome == "doubtful" and doubtful.faces[0].liveness_score is None
    assert scored == [1] and doubtful.marked == []


def test_the_sightings_kept_in_redis_hold_the_embedding_sealed_and_a_withdrawal_deletes_them(
    katie_session, settings, django_capture_on_commit_callbacks
):
    import base64
    import json

    from attendance.platform import biometric
    from attendance.platform.redis import redis_client
    from attendance.privacy import services as privacy

    settings.ROLLCALL_CHECKIN_CONFIRMATIONS = 3
    katie, session = katie_session
    result = checkin_service.session_check_in(session=session, image_bytes=katie_probe_jpegs()[0], now=T0)
    assert result.faces[0].outcome == "confirming"
    name = checkin_liveness._obs_key(session.pk, katie.pk)
    (member,) = redis_client().zrange(name, 0, -1)
    stored = json.loads(member.split(b"|", 1)[1])["obs"]
    assert "embedding" not in stored and "emb32" not in stored  # no face template in the clear
    opened = biometric.unseal(base64.b64decode(stored["emb_sealed"]), context=name)
    assert len(opened) == 128 * 4  # the float32 descriptor, only with the key and under this key's name
    with pytest.raises(Exception):  # noqa: B017  (bound to the key name: another name does not open it)
        biometric.unseal(base64.b64decode(stored["emb_sealed"]), context=name + "x")
    (sighting,) = checkin_liveness.sighting_add(
        session_id=session.pk, student_id=katie.pk,
        sighting=checkin_liveness.Sighting.from_json(member.split(b"|", 1)[1], context=name), now=T0 + 0.4,
    )[0][:1]
    assert sighting.observation.embedding is not None and len(sighting.observation.embedding) == 128

    with django_capture_on_commit_callbacks(execute=True):
        privacy.consent_withdraw(student=katie, by=katie)
    assert not redis_client().exists(name)


def test_a_fake_that_passes_every_other_snapshot_is_never_marked(katie_session, settings, monkeypatch):
    """Failures are not forgiven by passes in between: passes must clearly outnumber them."""
    from attendance import ml

    settings.ROLLCALL_CHECKIN_CONFIRMATIONS = 3
    katie, session = katie_session
    scores = iter([0.1, 0.99] * 4)  # the passive models' verdicts on a fake: fail, pass, fail, pass, ...
    monkeypatch.setattr(ml.liveness(), "score", lambda rgb, faces: [next(scores) for _ in faces])
    seen = [checkin_service.session_check_in(session=session, image_bytes=frame, now=T0 + 0.4 * i).faces[0]
            for i, frame in enumerate(katie_probe_jpegs()[:8])]
    assert "marked" not in [f.outcome for f in seen], [f.outcome for f in seen]
    assert seen[-1].outcome == "not_live" and "snapshots failed the live check" in seen[-1].reason
    assert not AttendanceRecord.objects.filter(session=session).exists()
    listed = checkin_liveness.suspects(session_id=session.pk, now=T0 + 3.0)
    assert [s.student_id for s in listed] == [katie.pk]  # "possible photo or screen of Katie Hill"


def test_a_real_turn_answered_by_snapshots_that_score_as_a_screen_is_not_marked(tran_session, monkeypatch):
    """A live face through the frontal stage, then the prompt answered by a replay: the answer's
    median live score fails the passive threshold."""
    from attendance import ml

    tran, session = tran_session
    ask(monkeypatch, "left")
    scorer = ml.liveness()
    real_score = scorer.score
    calls = iter(range(1000))
    # The first three snapshots (the frontal stage) keep their real scores; the rest score 0.002,
    # what the screen replays of pad/ score.
    monkeypatch.setattr(scorer, "score", lambda rgb, faces: real_score(rgb, faces) if next(calls) < 3
                        else [0.002 for _ in faces])
    seen = outcomes(kiosk_check_in(session, tran_snapshots()))
    assert seen[:3] == ["confirming", "confirming", "challenge"], seen
    assert "marked" not in seen and "challenge_failed" in seen, seen
    assert not AttendanceRecord.objects.filter(session=session, student=tran).exists()


def test_confirmations_counted_with_liveness_off_do_not_complete_a_mark_under_passive(katie_session, settings):
    settings.ROLLCALL_CHECKIN_CONFIRMATIONS = 3
    _, session = katie_session
    probes = katie_probe_jpegs()
    settings.ROLLCALL_LIVENESS_LECTURER = "off"  # two confirmations without the check...
    for i in range(2):
        assert checkin_service.session_check_in(session=session, image_bytes=probes[i], now=T0 + 0.4 * i).marked == []
    settings.ROLLCALL_LIVENESS_LECTURER = "passive"  # ...then the policy changes mid-session
    third = checkin_service.session_check_in(session=session, image_bytes=probes[2], now=T0 + 0.8)
    assert third.marked == [] and third.faces[0].outcome == "not_live", third.faces[0]
    assert not AttendanceRecord.objects.filter(session=session).exists()


def test_a_live_face_that_misses_once_at_first_is_marked_without_an_alarm(katie_session, settings, monkeypatch):
    from attendance import ml

    settings.ROLLCALL_CHECKIN_CONFIRMATIONS = 3
    katie, session = katie_session
    scores = iter([0.1] + [0.99] * 7)  # one early failure (a live face fails about 7% of snapshots)
    monkeypatch.setattr(ml.liveness(), "score", lambda rgb, faces: [next(scores) for _ in faces])
    seen = [checkin_service.session_check_in(session=session, image_bytes=frame, now=T0 + 0.4 * i).faces[0].outcome
            for i, frame in enumerate(katie_probe_jpegs()[:6])]
    assert "marked" in seen and "not_live" not in seen, seen
    assert checkin_liveness.suspects(session_id=session.pk, now=T0 + 3.0) == []
    assert AttendanceRecord.objects.filter(session=session, student=katie).exists()
