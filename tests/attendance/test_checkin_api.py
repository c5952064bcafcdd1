"""The check-in API with real faces: confirmations across snapshots, strangers, groups, races, marks."""

from __future__ import annotations

import io
import json
import threading
from datetime import timedelta

import numpy as np
import pytest
from django.urls import reverse
from django.utils import timezone
from PIL import Image
from rest_framework.test import APIClient

from attendance.checkin import services as checkin_service
from attendance.models import AttendanceChange, AttendanceRecord, Course, CourseMembership, Session
from attendance.sessions.services import session_close, session_kiosk_token_create, session_open
from recognition import load_image
from tests.attendance.factories_faces import (
    enrol_with_vectors,
    jpeg,
    katie_enrolment_vectors,
    katie_probe_jpegs,
    person_images,
    person_vectors,
)
from tests.conftest import FACES_DIR, kiosk_pair

# Liveness off: these tests are about recognition and confirmations, and re-send the same frames
# (a frozen face, which liveness refuses); test_checkin_liveness.py tests liveness at check-in.
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("fresh_redis", "liveness_off")]


@pytest.fixture
def classroom(course, lecturer, make_user):
    """Katie (enrolled from the video's first half) and two other enrolled students on the course."""
    katie = make_user("student", first_name="Katie", last_name="Hill")
    enrol_with_vectors(student=katie, vectors=katie_enrolment_vectors(), courses=[course])
    for person in ("john_salley", "yale_subject01"):
        other = make_user("student", first_name=person, last_name="Example")
        enrol_with_vectors(student=other, vectors=person_vectors(person), courses=[course])
    session = session_open(course=course, by=lecturer)
    return katie, session


def checkin_url(session: Session) -> str:
    return reverse("api-session-checkin", args=[session.pk])


def post_image(client: APIClient, session: Session, data: bytes, **extra: str):
    return client.post(checkin_url(session), data=data, content_type="image/jpeg", **extra)


def lecturer_client(lecturer) -> APIClient:
    client = APIClient()
    client.force_authenticate(lecturer)
    return client


def test_an_enrolled_student_is_marked_present_only_after_the_configured_number_of_snapshots(
    classroom, lecturer, settings
):
    settings.ROLLCALL_CHECKIN_CONFIRMATIONS = 3
    katie, session = classroom
    client = lecturer_client(lecturer)
    probes = katie_probe_jpegs()
    outcomes = []
    for i, frame in enumerate(probes[:3]):
        response = post_image(client, session, frame)
        assert response.status_code == 200, response.content
        (face,) = response.json()["faces"]
        assert face["student_id"] == katie.pk and face["name"] == "Katie Hill"
        outcomes.append(face["outcome"])
        exists = AttendanceRecord.objects.filter(session=session, student=katie).exists()
        assert exists == (i == 2), f"after snapshot {i + 1}"
    assert outcomes == ["confirming", "confirming", "marked"]
    record = AttendanceRecord.objects.get(session=session, student=katie)
    assert (record.status, record.method) == ("present", "face")
    assert 0 < record.confidence < 0.27
    # Later snapshots find her already recorded and create nothing more.
    again = post_image(client, session, probes[5]).json()["faces"][0]
    assert again["outcome"] == "recorded" and again["record_status"] == "present"
    assert AttendanceRecord.objects.filter(session=session).count() == 1


def test_every_probe_frame_of_the_second_half_recognises_the_enrolled_student(classroom):
    katie, session = classroom
    hits = 0
    probes = katie_probe_jpegs()
    for frame in probes:
        result = checkin_service.session_check_in(session=session, image_bytes=frame, now=0.0)
        assert len(result.faces) == 1
        hits += result.faces[0].student_id == katie.pk
    assert hits == len(probes)


@pytest.mark.parametrize("person", ["yale_subject14", "john_simm"])
def test_a_stranger_marks_nobody_and_comes_back_unknown(classroom, lecturer, settings, person):
    settings.ROLLCALL_CHECKIN_CONFIRMATIONS = 1
    _, session = classroom
    client = lecturer_client(lecturer)
    for path in person_images(person, folder="unknown")[:4]:
        # A face chip alone is not a webcam frame: put it in a room-sized picture.
        face = load_image(path)
        frame = np.full((480, 640, 3), 110, dtype=np.uint8)
        frame[120 : 120 + face.shape[0], 240 : 240 + face.shape[1]] = face
        response = post_image(client, session, jpeg(frame))
        assert response.status_code == 200
        (found,) = response.json()["faces"]
        assert found["outcome"] == "unknown" and found["name"] == "Unknown" and found["student_id"] is None
    assert not AttendanceRecord.objects.filter(session=session).exists()


def test_a_group_photo_returns_one_entry_per_face_and_no_student_twice(classroom, lecturer):
    _, session = classroom
    meta = json.loads((FACES_DIR / "group" / "faces.json").read_text())
    client = lecturer_client(lecturer)
    for name in ("016_8.jpg", "000_5.jpg"):
        response = post_image(client, session, (FACES_DIR / "group" / name).read_bytes())
        assert response.status_code == 200
        body = response.json()
        assert len(body["faces"]) == meta[name]["faces"]
        named = [f["student_id"] for f in body["faces"] if f["student_id"] is not None]
        assert len(named) == len(set(named))
        for face in body["faces"]:
            x, y, w, h = face["box"]
            assert 0 <= x and 0 <= y and x + w <= body["width"] and y + h <= body["height"] and w > 0 and h > 0


def test_a_photo_without_a_face_returns_no_faces(classroom, lecturer):
    _, session = classroom
    negative = next((FACES_DIR / "negative").iterdir()).read_bytes()
    response = post_image(lecturer_client(lecturer), session, negative)
    assert response.status_code == 200 and response.json()["faces"] == []


def test_two_faces_of_one_frame_never_get_the_same_student(classroom, lecturer, settings):
    """Katie twice side by side: one face is her, the other must be someone else or Unknown."""
    settings.ROLLCALL_CHECKIN_CONFIRMATIONS = 1
    katie, session = classroom
    frame = load_image(katie_probe_jpegs()[0])
    double = np.concatenate([frame, frame[:, ::-1]], axis=1)
    response = post_image(lecturer_client(lecturer), session, jpeg(double))
    faces = response.json()["faces"]
    assert len(faces) == 2
    assert [f["student_id"] for f in faces].count(katie.pk) == 1


def test_sightings_older_than_the_window_do_not_count_towards_the_confirmations(classroom, settings):
    settings.ROLLCALL_CHECKIN_CONFIRMATIONS = 3
    settings.ROLLCALL_CHECKIN_WINDOW_SECONDS = 10
    katie, session = classroom
    probes = katie_probe_jpegs()
    for now, frame in [(1000.0, probes[0]), (1005.0, probes[1]), (1020.0, probes[2]), (1025.0, probes[3])]:
        result = checkin_service.session_check_in(session=session, image_bytes=frame, now=now)
        assert result.faces[0].outcome == "confirming"
    assert not AttendanceRecord.objects.filter(session=session).exists()
    result = checkin_service.session_check_in(session=session, image_bytes=probes[4], now=1027.0)
    assert result.faces[0].outcome == "marked" and result.marked == [katie.pk]


def test_a_late_arrival_is_marked_late_after_the_courses_minutes(classroom, course, settings):
    settings.ROLLCALL_CHECKIN_CONFIRMATIONS = 1
    katie, session = classroom
    course.late_after_minutes = 5
    course.save()
    Session.objects.filter(pk=session.pk).update(opened_at=timezone.now() - timedelta(minutes=20))
    session.refresh_from_db()
    result = checkin_service.session_check_in(session=session, image_bytes=katie_probe_jpegs()[0])
    assert result.faces[0].record_status == "late"
    assert AttendanceRecord.objects.get(session=session, student=katie).status == "late"


def test_a_match_in_the_doubtful_band_is_offered_to_the_lecturer_and_never_marked(classroom, lecturer, settings):
    settings.ROLLCALL_CHECKIN_CONFIRMATIONS = 1
    # 0.0135-0.27 with dlib's threshold: every probe of Katie (0.13-0.23) falls in the band.
    settings.ROLLCALL_CHECKIN_DOUBTFUL_BAND = 0.95
    katie, session = classroom
    client = lecturer_client(lecturer)
    for frame in katie_probe_jpegs()[:4]:
        face = post_image(client, session, frame).json()["faces"][0]
        assert (face["outcome"], face["student_id"]) == ("doubtful", katie.pk)
    assert not AttendanceRecord.objects.filter(session=session).exists()
    state = client.get(reverse("api-session-state", args=[session.pk])).json()
    assert [d["student_id"] for d in state["doubtful"]] == [katie.pk]
    # The lecturer confirms: a manual, audited mark, and the match leaves the list.
    response = client.post(reverse("api-session-marks", args=[session.pk]),
                           {"student": katie.pk, "status": "present", "reason": "Confirmed a doubtful face match"},
                           format="json")
    assert response.status_code == 200 and response.json()["method"] == "manual"
    state = client.get(reverse("api-session-state", args=[session.pk])).json()
    assert state["doubtful"] == []


def test_a_dismissed_doubtful_match_leaves_the_list(classroom, lecturer, settings):
    settings.ROLLCALL_CHECKIN_DOUBTFUL_BAND = 0.99
    katie, session = classroom
    client = lecturer_client(lecturer)
    post_image(client, session, katie_probe_jpegs()[0])
    state_url = reverse("api-session-state", args=[session.pk])
    assert client.get(state_url).json()["doubtful"][0]["name"] == "Katie Hill"
    response = client.delete(reverse("api-session-doubtful-dismiss", args=[session.pk, katie.pk]))
    assert response.status_code == 204
    assert client.get(state_url).json()["doubtful"] == []


@pytest.mark.django_db(transaction=True)
def test_concurrent_snapshots_create_one_record(course, lecturer, make_user, settings):
    settings.ROLLCALL_CHECKIN_CONFIRMATIONS = 1
    katie = make_user("student", first_name="Katie", last_name="Hill")
    enrol_with_vectors(student=katie, vectors=katie_enrolment_vectors(), courses=[course])
    session = session_open(course=course, by=lecturer)
    frame = katie_probe_jpegs()[0]
    checkin_service.session_check_in(session=session, image_bytes=katie_probe_jpegs()[1], now=0)  # warm up
    AttendanceRecord.objects.all().delete()
    from attendance.platform.redis import redis_client

    redis_client().flushdb()
    barrier = threading.Barrier(4)
    results: list[object] = []

    def post() -> None:
        from django.db import connection

        client = lecturer_client(lecturer)
        barrier.wait()
        try:
            results.append(post_image(client, session, frame))
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert [r.status_code for r in results] == [200] * 4  # type: ignore[attr-defined]
    outcomes = sorted(r.json()["faces"][0]["outcome"] for r in results)  # type: ignore[attr-defined]
    assert outcomes.count("marked") == 1 and set(outcomes) <= {"marked", "recorded"}
    assert AttendanceRecord.objects.filter(session=session, student=katie).count() == 1


def test_a_lecturers_unmark_is_final_for_the_camera(classroom, lecturer, settings):
    settings.ROLLCALL_CHECKIN_CONFIRMATIONS = 1
    katie, session = classroom
    client = lecturer_client(lecturer)
    post_image(client, session, katie_probe_jpegs()[0])
    assert AttendanceRecord.objects.get(session=session, student=katie).method == "face"
    marks = reverse("api-session-marks", args=[session.pk])
    response = client.post(marks, {"student": katie.pk, "status": "absent", "reason": "Her twin"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "absent" and response.json()["method"] == "manual"
    change = AttendanceChange.objects.get(record__student=katie)
    assert (change.old_status, change.new_status, change.changed_by, change.reason) == (
        "present", "absent", lecturer, "Her twin")
    face = post_image(client, session, katie_probe_jpegs()[1]).json()["faces"][0]
    assert face["outcome"] == "recorded" and face["record_status"] == "absent"
    assert AttendanceRecord.objects.get(session=session, student=katie).status == "absent"


def test_the_state_lists_every_student_with_their_record_and_counts(classroom, lecturer, settings):
    settings.ROLLCALL_CHECKIN_CONFIRMATIONS = 1
    katie, session = classroom
    client = lecturer_client(lecturer)
    post_image(client, session, katie_probe_jpegs()[0])
    state = client.get(reverse("api-session-state", args=[session.pk])).json()
    assert state["session"]["status"] == "open" and state["session"]["arrival_status"] == "present"
    by_id = {s["student_id"]: s for s in state["students"]}
    assert len(by_id) == 3
    assert by_id[katie.pk]["status"] == "present" and by_id[katie.pk]["method"] == "face"
    assert by_id[katie.pk]["confidence"] is not None and by_id[katie.pk]["face_enrolled"] is True
    assert state["counts"] == {"present": 1, "late": 0, "absent": 0, "excused": 0, "unmarked": 2}
    assert not any("photo" in key or "image" in key for key in by_id[katie.pk])


# --- Who may post, and what -------------------------------------------------------------------

@pytest.fixture
def blank_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 90, 90)).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.mark.parametrize("who", ["anonymous", "student", "other_lecturer"])
def test_others_get_403(course, lecturer, make_user, blank_jpeg, who):
    session = session_open(course=course, by=lecturer)
    client = APIClient()
    if who == "student":
        user = make_user("student")
        CourseMembership.objects.create(course=course, student=user)
        client.force_authenticate(user)
    elif who == "other_lecturer":
        client.force_authenticate(make_user("lecturer"))
    response = post_image(client, session, blank_jpeg)
    assert response.status_code == 403
    assert "lecturer of this course" in response.json()["detail"]
    assert client.get(reverse("api-session-state", args=[session.pk])).status_code == 403
    marks = client.post(reverse("api-session-marks", args=[session.pk]), {"student": 1, "status": "present"},
                        format="json")
    assert marks.status_code == 403


def test_an_admin_may_post(course, admin_user, lecturer, blank_jpeg):
    session = session_open(course=course, by=lecturer)
    client = APIClient()
    client.force_authenticate(admin_user)
    response = post_image(client, session, blank_jpeg)
    assert response.status_code == 200 and response.json()["faces"] == []


@pytest.mark.parametrize("superuser", [True, False], ids=["superuser", "admin-role-only"])
def test_an_admin_reads_the_live_list_and_marks_by_hand(course, lecturer, make_user, superuser):
    """The check-in page's roster (its state poll and its buttons) for an admin who teaches nothing:
    a Django superuser, and an admin by role alone (as Manage > Add a person makes one)."""
    session = session_open(course=course, by=lecturer)
    student = make_user("student")
    CourseMembership.objects.create(course=course, student=student)
    client = APIClient()
    client.force_authenticate(make_user("admin", is_superuser=superuser, is_staff=superuser))
    state = client.get(reverse("api-session-state", args=[session.pk]))
    assert state.status_code == 200, state.content
    assert [s["student_id"] for s in state.json()["students"]] == [student.pk]
    marked = client.post(reverse("api-session-marks", args=[session.pk]), {"student": student.pk, "status": "late"},
                         format="json")
    assert marked.status_code == 200 and marked.json()["status"] == "late", marked.content


def test_a_paired_kiosk_posts_for_its_own_open_session_only(course, lecturer, blank_jpeg):
    session = session_open(course=course, by=lecturer)
    other = session_open(course=course, by=lecturer)
    kiosk = kiosk_pair(session_kiosk_token_create(session=session, by=lecturer)).header
    client = APIClient()
    assert post_image(client, session, blank_jpeg, **kiosk).status_code == 200
    refused = post_image(client, other, blank_jpeg, **kiosk)
    assert refused.status_code == 403 and "kiosk link" in refused.json()["detail"]
    # The kiosk reads nothing: no class list at the door.
    assert client.get(reverse("api-session-state", args=[session.pk]), **kiosk).status_code == 403
    session_close(session=session, by=lecturer)
    dead = post_image(client, session, blank_jpeg, **kiosk)
    assert dead.status_code == 403 and "no longer valid" in dead.json()["detail"]


def test_a_closed_session_gets_409_with_a_message(course, lecturer, blank_jpeg):
    session = session_open(course=course, by=lecturer)
    session_close(session=session, by=lecturer)
    response = post_image(lecturer_client(lecturer), session, blank_jpeg)
    assert response.status_code == 409
    assert "closed" in response.json()["detail"]


def test_a_session_not_yet_opened_gets_409(course, lecturer, blank_jpeg):
    session = Session.objects.create(course=course)
    response = post_image(lecturer_client(lecturer), session, blank_jpeg)
    assert response.status_code == 409 and "not been opened" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b"hello, this is text", "text/plain", "not an image"),
        (b'{"image": "x"}', "application/json", "not an image"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 200, "image/jpeg", "not an image"),
        (b"", "image/jpeg", "no body"),
    ],
)
def test_a_body_that_is_not_an_image_gets_400_with_a_message(course, lecturer, body, content_type, expected):
    session = session_open(course=course, by=lecturer)
    response = lecturer_client(lecturer).post(checkin_url(session), data=body, content_type=content_type)
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert expected in detail and "JPEG" in detail


def test_a_multipart_upload_is_accepted_and_one_without_an_image_field_is_explained(course, lecturer, blank_jpeg):
    session = session_open(course=course, by=lecturer)
    client = lecturer_client(lecturer)
    ok = client.post(checkin_url(session), {"image": io.BytesIO(blank_jpeg)}, format="multipart")
    assert ok.status_code == 200
    missing = client.post(checkin_url(session), {"photo": io.BytesIO(blank_jpeg)}, format="multipart")
    assert missing.status_code == 400 and "field named 'image'" in missing.json()["detail"]


def test_an_image_over_the_size_limit_gets_413(course, lecturer, settings):
    settings.ROLLCALL_CHECKIN_MAX_IMAGE_MB = 1
    session = session_open(course=course, by=lecturer)
    noise = np.random.default_rng(0).integers(0, 255, (1200, 1200, 3), dtype=np.uint8)
    big = jpeg(noise, quality=100)
    assert len(big) > 1.2 * 1024 * 1024
    client = lecturer_client(lecturer)
    response = post_image(client, session, big)
    assert response.status_code == 413 and "1 MB" in response.json()["detail"]
    multipart = client.post(checkin_url(session), {"image": io.BytesIO(big)}, format="multipart")
    assert multipart.status_code == 413


def test_too_many_snapshots_a_minute_get_429_per_session_and_sender(course, lecturer, blank_jpeg, settings):
    settings.ROLLCALL_CHECKIN_RATE_PER_MINUTE = 3
    session = session_open(course=course, by=lecturer)
    other = session_open(course=course, by=lecturer)
    client = lecturer_client(lecturer)
    codes = [post_image(client, session, blank_jpeg).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    refused = post_image(client, session, blank_jpeg)
    assert refused.status_code == 429 and 0 < int(refused["Retry-After"]) <= 60
    assert "at most 3 a minute" in refused.json()["detail"]
    assert post_image(client, other, blank_jpeg).status_code == 200  # another session has its own budget


def test_marking_a_student_not_on_the_course_is_refused_with_a_message(course, lecturer, make_user):
    session = session_open(course=course, by=lecturer)
    # A student of the lecturer's other course: known to them, so the message may name them.
    other_course = Course.objects.create(code="CS-OTHER", title="Other", term="2026-autumn")
    other_course.lecturers.add(lecturer)
    elsewhere = make_user("student")
    CourseMembership.objects.create(course=other_course, student=elsewhere)
    response = lecturer_client(lecturer).post(
        reverse("api-session-marks", args=[session.pk]), {"student": elsewhere.pk, "status": "present"}, format="json"
    )
    assert response.status_code == 400 and "not on" in response.json()["detail"]
    # A student on none of their courses: the same 404 as an unknown id, naming no one.
    outsider = make_user("student")
    response = lecturer_client(lecturer).post(
        reverse("api-session-marks", args=[session.pk]), {"student": outsider.pk, "status": "present"}, format="json"
    )
    assert response.status_code == 404 and outsider.last_name not in response.json()["detail"]


def test_marks_need_a_known_status(course, lecturer, student):
    CourseMembership.objects.create(course=course, student=student)
    session = session_open(course=course, by=lecturer)
    response = lecturer_client(lecturer).post(
        reverse("api-session-marks", args=[session.pk]), {"student": student.pk, "status": "here"}, format="json"
    )
    assert response.status_code == 400 and "status" in response.json()


def test_open_and_close_through_the_api(course, lecturer, student):
    CourseMembership.objects.create(course=course, student=student)
    client = lecturer_client(lecturer)
    created = client.post(reverse("api-course-session-start", args=[course.pk]), {"title": "API"}, format="json")
    assert created.status_code == 201 and created.json()["status"] == "open"
    session_id = created.json()["id"]
    closed = client.post(reverse("api-session-close", args=[session_id]))
    assert closed.status_code == 200 and closed.json()["marked_absent"] == 1
    again = client.post(reverse("api-session-close", args=[session_id]))
    assert again.status_code == 409 and "already closed" in again.json()["detail"]


# --- Caches -----------------------------------------------------------------------------------

def test_the_course_index_is_loaded_once_and_reloaded_only_after_it_changes(
    classroom, lecturer, make_user, monkeypatch
):
    from attendance.courses import indexes

    _, session = classroom
    indexes.clear_cache()
    loads: list[int] = []
    original = indexes._load

    def counting_load(**kwargs):
        loads.append(kwargs["version"])
        return original(**kwargs)

    monkeypatch.setattr(indexes, "_load", counting_load)
    client = lecturer_client(lecturer)
    for frame in katie_probe_jpegs()[:3]:
        post_image(client, session, frame)
    assert len(loads) == 1
    newcomer = make_user("student")
    enrol_with_vectors(student=newcomer, vectors=person_vectors("yale_subject02"), courses=[session.course])
    post_image(client, session, katie_probe_jpegs()[3])
    post_image(client, session, katie_probe_jpegs()[4])
    assert len(loads) == 2 and loads[1] > loads[0]


def test_the_openapi_schema_describes_the_check_in_api_and_the_docs_page_loads_offline(client, lecturer):
    schema = client.get("/api/schema/?format=json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    post = paths["/api/sessions/{id}/check-in/"]["post"]
    assert set(post["requestBody"]["content"]) >= {"image/jpeg", "multipart/form-data"}
    assert {"200", "400", "403", "409", "413", "429"} <= set(post["responses"])
    assert "/api/sessions/{id}/state/" in paths and "/api/sessions/{id}/marks/" in paths
    docs = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in docs and "cdn.jsdelivr.net" not in docs and "/static/drf_spectacular_sidecar/" in docs


def test_warming_up_loads_the_models_and_the_indexes_of_courses_with_an_open_session(classroom, lecturer, make_user):
    from attendance.courses import indexes
    from attendance.courses.warmup import warm_up
    from attendance.models import Course

    _, session = classroom
    quiet = Course.objects.create(code="QUIET1", title="No session today", term="2026-autumn")
    indexes.clear_cache()
    warm_up()
    assert session.course_id in indexes._cache and quiet.pk not in indexes._cache


def test_models_that_cannot_load_give_503_in_plain_words_and_the_detail_only_to_an_admin(
    course, lecturer, admin_user, monkeypatch, blank_jpeg, caplog
):
    from attendance import ml
    from recognition import ModelUnavailableError

    def unavailable():
        raise ModelUnavailableError("The face detector is missing: set ROLLCALL_DETECTOR_MODEL.")

    monkeypatch.setattr(ml, "recognizer", unavailable)
    session = session_open(course=course, by=lecturer)
    response = post_image(lecturer_client(lecturer), session, blank_jpeg)
    detail = response.json()["detail"]
    assert response.status_code == 503
    assert detail.startswith("Face recognition is not available on this server right now")
    assert "ROLLCALL_" not in detail and "/" not in detail  # no setting, no path for the lecturer
    admin = APIClient()
    admin.force_authenticate(admin_user)
    response = post_image(admin, session, blank_jpeg)
    assert response.status_code == 503 and "ROLLCALL_DETECTOR_MODEL" in response.json()["detail"]
    assert "set ROLLCALL_DETECTOR_MODEL" in caplog.text  # and in the log, for the operator


def test_a_course_with_nobody_enrolled_answers_unknown(course, lecturer, settings):
    settings.ROLLCALL_CHECKIN_CONFIRMATIONS = 1
    session = session_open(course=course, by=lecturer)
    faces = post_image(lecturer_client(lecturer), session, katie_probe_jpegs()[0]).json()["faces"]
    assert [(f["outcome"], f["name"]) for f in faces] == [("unknown", "Unknown")]


def test_the_snapshot_that_marks_a_student_is_kept_only_when_the_setting_is_on(classroom, settings):
    from attendance.models import CheckinSnapshot

    settings.ROLLCALL_CHECKIN_CONFIRMATIONS = 2
    katie, session = classroom
    probes = katie_probe_jpegs()
    settings.ROLLCALL_STORE_SNAPSHOTS = True
    checkin_service.session_check_in(session=session, image_bytes=probes[0])
    assert not CheckinSnapshot.objects.exists()  # recognised, not yet marked: nothing kept
    checkin_service.session_check_in(session=session, image_bytes=probes[1])
    snapshot = CheckinSnapshot.objects.get()
    assert list(snapshot.students.all()) == [katie] and snapshot.session == session


def test_no_snapshot_is_kept_by_default(classroom, settings):
    from attendance.models import CheckinSnapshot

    settings.ROLLCALL_CHECKIN_CONFIRMATIONS = 1
    _, session = classroom
    assert checkin_service.session_check_in(session=session, image_bytes=katie_probe_jpegs()[0]).marked
    assert not CheckinSnapshot.objects.exists()


def test_a_huge_png_snapshot_is_refused_before_it_is_decoded_and_a_jpeg_of_that_size_is_not(course, lecturer):
    from PIL import Image

    session = session_open(course=course, by=lecturer)
    client = lecturer_client(lecturer)
    huge = Image.new("RGB", (4000, 3000), (120, 110, 100))  # 12 MP: a few KB as PNG, 36 MB decoded
    png, jpg = io.BytesIO(), io.BytesIO()
    huge.save(png, format="PNG")
    huge.save(jpg, format="JPEG")
    assert len(png.getvalue()) < 200_000
    refused = client.post(checkin_url(session), data=png.getvalue(), content_type="image/png")
    assert refused.status_code == 400
    detail = refused.json()["detail"]
    assert "4000x3000" in detail and "8 MP" in detail and "JPEG" in detail
    # A JPEG decodes at a reduced scale, so its size costs nothing: checked in as usual.
    assert client.post(checkin_url(session), data=jpg.getvalue(), content_type="image/jpeg").status_code == 200


def test_a_kept_snapshot_names_every_student_recognised_in_it_so_each_ones_withdrawal_deletes_it(
    classroom, settings, django_capture_on_commit_callbacks
):
    """Not only the student it marked: a student already recorded is in the picture too."""
    import cv2
    import numpy as np

    from attendance.models import AttendanceRecord, CheckinSnapshot, User
    from attendance.privacy import services as privacy
    from recognition import load_image
    from tests.attendance.factories_faces import person_images

    settings.ROLLCALL_CHECKIN_CONFIRMATIONS = 1
    settings.ROLLCALL_STORE_SNAPSHOTS = True
    settings.ROLLCALL_LIVENESS_LECTURER = "off"
    katie, session = classroom
    john = User.objects.get(first_name="john_salley")
    AttendanceRecord.objects.create(session=session, student=john, status="present", method="manual")
    frame = load_image(katie_probe_jpegs()[0])
    chip = cv2.copyMakeBorder(load_image(person_images("john_salley")[0]), 90, 90, 90, 90, cv2.BORDER_REPLICATE)
    canvas = np.full((max(frame.shape[0], chip.shape[0]), frame.shape[1] + chip.shape[1], 3), 128, np.uint8)
    canvas[: frame.shape[0], : frame.shape[1]] = frame
    canvas[: chip.shape[0], frame.shape[1] :] = chip
    result = checkin_service.session_check_in(session=session, image_bytes=jpeg(canvas))
    assert result.marked == [katie.pk]
    assert sorted((f.outcome, f.student_id) for f in result.faces) == sorted([("marked", katie.pk),
                                                                             ("recorded", john.pk)])
    snapshot = CheckinSnapshot.objects.get()
    assert set(snapshot.students.all()) == {katie, john}
    with django_capture_on_commit_callbacks(execute=True):
        privacy.consent_withdraw(student=john, by=john)
    assert not CheckinSnapshot.objects.exists()  # "any check-in snapshot showing you" is deleted


def test_a_snapshot_cut_off_mid_upload_gets_400_not_a_server_error(course, lecturer, caplog):
    """A network cut or a closed tab while the body is read: answered as a client's error, logged
    as a line (a traceback in the log is what the cluster test forbids)."""
    from django.test import RequestFactory
    from django.urls import resolve
    from rest_framework.test import force_authenticate

    class Reset:
        def read(self, *args: object) -> bytes:
            raise ConnectionResetError(104, "Connection reset by peer")

    session = session_open(course=course, by=lecturer)
    url = checkin_url(session)
    request = RequestFactory().post(url, data=b"\xff\xd8" + b"\x00" * 5000, content_type="image/jpeg")
    request._stream = Reset()  # what Django reads the body from
    force_authenticate(request, user=lecturer)
    match = resolve(url)
    with caplog.at_level("INFO"):
        response = match.func(request, *match.args, **match.kwargs)
    assert response.status_code == 400
    assert "did not arrive whole" in str(response.data["detail"])
    assert "check-in body not read whole" in caplog.text and "Traceback" not in caplog.text


def test_a_kiosk_is_told_only_the_name_of_the_face_it_marks(classroom, lecturer, settings):
    settings.ROLLCALL_CHECKIN_CONFIRMATIONS = 1
    katie, session = classroom
    kiosk = APIClient()
    paired = kiosk_pair(session_kiosk_token_create(session=session, by=lecturer)).header
    frames = katie_probe_jpegs()
    settings.ROLLCALL_CHECKIN_DOUBTFUL_BAND = 0.95  # every probe of Katie is a doubtful match (see above)
    doubtful = post_image(kiosk, session, frames[0], **paired).json()
    [face] = doubtful["faces"]
    assert face["outcome"] == "doubtful"
    assert (face["name"], face["student_id"], face["distance"], face["votes"]) == ("", None, None, 0)
    # The lecturer's page gets the name to confirm or dismiss, even from a browser the lecturer also
    # paired as the kiosk; that browser's kiosk page (which says so) gets the kiosk's answer.
    both = lecturer_client(lecturer)
    assert post_image(both, session, frames[1]).json()["faces"][0]["name"] == "Katie Hill"
    assert post_image(both, session, frames[1], **paired).json()["faces"][0]["name"] == "Katie Hill"
    assert post_image(both, session, frames[1], HTTP_X_ROLLCALL_KIOSK="1", **paired).json()["faces"][0]["name"] == ""

    settings.ROLLCALL_CHECKIN_DOUBTFUL_BAND = 0.0
    marked = post_image(kiosk, session, frames[2], **paired).json()
    [face] = marked["faces"]
    assert (face["outcome"], face["name"], face["record_status"]) == ("marked", "Katie Hill", "present")
    assert (face["student_id"], face["distance"], face["votes"], marked["marked"]) == (None, None, 0, [])
    assert AttendanceRecord.objects.get(session=session, student=katie).status == "present"
    # Already checked in: a photo of her would get the same answer, so it names nobody.
    again = post_image(kiosk, session, frames[3], **paired).json()["faces"][0]
    assert (again["outcome"], again["name"], again["record_status"]) == ("recorded", "", None)


def test_a_kiosk_answer_names_only_a_marked_face_and_says_nothing_of_liveness_scores():
    from attendance.checkin.api import _for_kiosk

    outcomes = ["unknown", "doubtful", "confirming", "marked", "recorded", "challenge", "challenge_failed",
                "not_live"]
    assert set(outcomes) == set(checkin_service.Outcome.ALL)
    faces = [checkin_service.FaceResult(box=(0, 0, 9, 9), outcome=outcome, student_id=7, name="Katie Hill",
                                        distance=0.2, votes=2, record_status="present", liveness_score=0.9,
                                        reason="possible photo or screen (live score 0.31)")
             if outcome != "unknown" else checkin_service.FaceResult(box=(0, 0, 9, 9), outcome=outcome)
             for outcome in outcomes]
    result = _for_kiosk(checkin_service.CheckinResult(width=9, height=9, faces=faces, confirmations_needed=1,
                                                      marked=[7]))
    named = {face.outcome: face.name for face in result.faces}
    # A face still confirming may be a photo that liveness has not failed often enough yet; a
    # challenge may be asked of one that passed the passive check: neither is named.
    assert named == {"unknown": "Unknown", "doubtful": "", "not_live": "", "confirming": "", "marked": "Katie Hill",
                     "recorded": "", "challenge": "", "challenge_failed": ""}
    assert all((f.student_id, f.distance, f.votes, f.liveness_score, f.reason) == (None, None, 0, None, "")
               for f in result.faces)
    assert [f.record_status for f in result.faces if f.record_status] == ["present"]  # the marked face's only
    assert result.marked == []
