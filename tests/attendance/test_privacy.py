from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone

from attendance.courses.selectors import student_has_face_data
from attendance.models import (
    AttendanceChange,
    AttendanceRecord,
    CheckinSnapshot,
    Course,
    CourseMembership,
    FaceEmbedding,
    FaceEnrolment,
    Session,
)
from attendance.privacy import services as privacy
from tests.conftest import FACES_DIR


def _vector(seed: int) -> bytes:
    v = np.random.default_rng(seed).standard_normal(128).astype("<f4")
    return (v / np.linalg.norm(v)).astype("<f4").tobytes()


def _enrol(student, *, status="ready", video=True, embeddings=3):
    enrolment = FaceEnrolment.objects.create(
        student=student, status=status, consent_given_at=timezone.now(), backbone="dlib",
    )
    if video:
        enrolment.video.save("clip.mp4", ContentFile(b"not really a video"), save=True)
    FaceEmbedding.objects.bulk_create([
        FaceEmbedding(enrolment=enrolment, student=student, backbone="dlib", dim=128, vector=_vector(i))
        for i in range(embeddings)
    ])
    return enrolment


def _snapshot(session, *students, taken_at=None):
    snapshot = CheckinSnapshot.objects.create(session=session, taken_at=taken_at or timezone.now(),
                                              image=ContentFile(b"jpeg bytes", name="frame.jpg"))
    snapshot.students.set(students)
    return snapshot


@pytest.fixture
def rebuilt(monkeypatch):
    """Record index rebuilds instead of building (the real index is exercised by the slow test below)."""
    calls: list[list[int]] = []
    monkeypatch.setattr(privacy, "_rebuild_course_indexes", lambda course_ids: calls.append(sorted(course_ids)))
    return calls


@pytest.fixture
def classroom(course, lecturer, make_user):
    student = make_user("student", username="sam")
    other = make_user("student", username="olive")
    for person in (student, other):
        CourseMembership.objects.create(course=course, student=person)
    session = Session.objects.create(course=course, status="closed", opened_at=timezone.now(), closed_at=timezone.now())
    record = AttendanceRecord.objects.create(session=session, student=student, status="late", method="manual",
                                             marked_by=lecturer)
    AttendanceChange.objects.create(record=record, changed_by=lecturer, old_status="absent", new_status="late",
                                    reason="bus strike")
    AttendanceRecord.objects.create(session=session, student=other, status="present", method="face", confidence=0.3)
    return student, other, session


def test_withdrawal_deletes_face_data_and_keeps_attendance(
    classroom, course, rebuilt, django_capture_on_commit_callbacks
):
    student, other, session = classroom
    old = _enrol(student, status="superseded")
    ready = _enrol(student)
    others = _enrol(other)
    with_both = _snapshot(session, student, other)
    only_other = _snapshot(session, other)
    files = [old.video.name, ready.video.name, with_both.image.name]
    assert all(default_storage.exists(name) for name in files)
    second_course = Course.objects.create(code="ZZ9", title="Other", term="2026-autumn")
    CourseMembership.objects.create(course=second_course, student=student)
    versions = dict(Course.objects.values_list("pk", "index_version"))

    with django_capture_on_commit_callbacks(execute=True):
        result = privacy.consent_withdraw(student=student, by=student)

    assert (result.embeddings_deleted, result.videos_deleted, result.snapshots_deleted) == (6, 2, 1)
    assert not FaceEmbedding.objects.filter(student=student).exists()
    assert set(FaceEnrolment.objects.filter(student=student).values_list("status", "video")) == {("withdrawn", "")}
    assert not any(default_storage.exists(name) for name in files)
    assert not CheckinSnapshot.objects.filter(pk=with_both.pk).exists()
    # Everyone else's data is untouched.
    assert FaceEmbedding.objects.filter(student=other).count() == 3
    assert default_storage.exists(others.video.name) and default_storage.exists(only_other.image.name)
    # Attendance history stays, with its audit trail.
    record = AttendanceRecord.objects.get(student=student)
    assert record.status == "late" and record.changes.get().reason == "bus strike"
    # Every course the student takes is rebuilt after commit, and its version moved inside the transaction.
    assert rebuilt == [sorted([course.pk, second_course.pk])]
    after = dict(Course.objects.values_list("pk", "index_version"))
    assert after == {pk: version + 1 for pk, version in versions.items()}
    assert not student_has_face_data(student=student)


def test_withdrawal_stops_an_enrolment_that_is_still_processing(classroom, rebuilt):
    student, _, _ = classroom
    queued = _enrol(student, status="queued", embeddings=0)
    privacy.consent_withdraw(student=student, by=student)
    queued.refresh_from_db()
    assert queued.status == "withdrawn" and queued.progress["stage"] == "withdrawn"


def test_only_the_student_or_an_admin_can_withdraw_consent(classroom, lecturer, admin_user, rebuilt):
    student, other, _ = classroom
    _enrol(student)
    for who in (lecturer, other):
        with pytest.raises(privacy.PrivacyError, match="Only the student, or an admin"):
            privacy.consent_withdraw(student=student, by=who)
    assert FaceEmbedding.objects.filter(student=student).exists()
    privacy.consent_withdraw(student=student, by=admin_user)
    assert not FaceEmbedding.objects.filter(student=student).exists()


def test_a_student_withdraws_consent_from_their_page_after_confirming(client, classroom, rebuilt):
    student, _, _ = classroom
    _enrol(student)
    client.force_login(student)
    page = client.get(reverse("withdraw-consent"))
    assert page.status_code == 200 and "attendance history is kept" in page.content.decode().lower()
    unconfirmed = client.post(reverse("withdraw-consent"), {})
    assert unconfirmed.status_code == 400
    assert "Tick the box to confirm" in unconfirmed.content.decode()
    assert FaceEmbedding.objects.filter(student=student).exists()
    done = client.post(reverse("withdraw-consent"), {"confirm": "1"}, follow=True)
    assert done.redirect_chain[-1][0] == reverse("my-attendance")
    assert "Your face data has been deleted: 3 face embedding(s)" in done.content.decode()
    assert not FaceEmbedding.objects.filter(student=student).exists()


def test_an_admin_withdraws_consent_on_request_after_typing_the_username(client, classroom, admin_user, rebuilt):
    student, _, _ = classroom
    _enrol(student)
    client.force_login(admin_user)
    url = reverse("student-withdraw-consent", args=[student.pk])
    wrong = client.post(url, {"confirm_username": "olive"})
    assert wrong.status_code == 400 and "type &#x27;sam&#x27; exactly" in wrong.content.decode()
    done = client.post(url, {"confirm_username": "sam"})
    assert done.status_code == 302 and done["Location"] == reverse("student-report", args=[student.pk])
    assert not FaceEmbedding.objects.filter(student=student).exists()


def test_a_lecturer_cannot_withdraw_a_students_consent_through_the_page(client, classroom, lecturer, rebuilt):
    student, _, _ = classroom
    _enrol(student)
    client.force_login(lecturer)
    response = client.post(reverse("student-withdraw-consent", args=[student.pk]), {"confirm_username": "sam"})
    assert response.status_code == 403
    assert FaceEmbedding.objects.filter(student=student).count() == 3


def test_a_student_downloads_their_own_data_as_json(client, classroom, course):
    student, _, _ = classroom
    _enrol(student)
    client.force_login(student)
    response = client.get(reverse("my-data-export"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="rollcall-sam-')
    data = json.loads(response.content)
    assert data["profile"]["username"] == "sam"
    assert [c["code"] for c in data["courses"]] == [course.code]
    assert data["face_enrolments"][0]["status"] == "ready"
    assert data["face_enrolments"][0]["embeddings_stored"] == 3 and data["face_enrolments"][0]["video_stored"]
    assert len(data["attendance"]) == 1
    assert data["attendance"][0]["status"] == "late"
    assert data["attendance"][0]["changes"][0]["reason"] == "bus strike"
    assert "olive" not in response.content.decode()  # nobody else's data
    assert "vector" not in response.content.decode()


# --- Snapshot retention -----------------------------------------------------------------------

def test_retention_deletes_snapshots_older_than_the_setting_with_their_files(
    classroom, settings, django_capture_on_commit_callbacks
):
    student, _, session = classroom
    settings.ROLLCALL_SNAPSHOT_RETENTION_DAYS = 7
    now = timezone.now()
    old = _snapshot(session, student, taken_at=now - timedelta(days=8))
    older = _snapshot(session, taken_at=now - timedelta(days=30))
    fresh = _snapshot(session, student, taken_at=now - timedelta(days=6))
    old_files = [old.image.name, older.image.name]

    from attendance.tasks import snapshots_delete_expired

    with django_capture_on_commit_callbacks(execute=True):  # files go once the deletion is committed
        deleted = snapshots_delete_expired.apply().get()
    assert deleted == 2
    assert list(CheckinSnapshot.objects.values_list("pk", flat=True)) == [fresh.pk]
    assert not any(default_storage.exists(n) for n in old_files)
    assert default_storage.exists(fresh.image.name)


def test_check_in_snapshots_are_not_stored_unless_the_setting_turns_them_on(classroom, settings):
    student, other, session = classroom
    settings.ROLLCALL_STORE_SNAPSHOTS = False
    assert privacy.checkin_snapshot_store(session=session, jpeg=b"frame", students=[student]) is None
    assert not CheckinSnapshot.objects.exists()
    settings.ROLLCALL_STORE_SNAPSHOTS = True
    kept = privacy.checkin_snapshot_store(session=session, jpeg=b"frame", students=[student, other])
    assert kept is not None and set(kept.students.all()) == {student, other}
    assert default_storage.open(kept.image.name).read() == b"frame"


def test_celery_beat_runs_the_retention_task_periodically():
    from config.celery import app

    app.loader.import_default_modules()
    entry = settings.CELERY_BEAT_SCHEDULE["delete-expired-checkin-snapshots"]
    assert entry["task"] == "attendance.snapshots_delete_expired" and entry["task"] in app.tasks
    assert 0 < float(entry["schedule"]) <= 24 * 3600


# --- The real index -----------------------------------------------------------------------------

PEOPLE = ("john_savage", "john_salley", "john_schneider")


def _photos(person: str) -> list[Path]:
    return sorted((FACES_DIR / "people" / person).glob("*.jpg"))


@pytest.mark.slow
def test_withdrawal_removes_the_student_from_search_results(
    course, make_user, monkeypatch, django_capture_on_commit_callbacks
):
    """Real faces, the real enrolment and index services: the student's face is found before and
    never after, even by a process holding the index in memory and when the rebuild itself fails."""
    from attendance import ml
    from attendance.courses import indexes
    from attendance.enrolment.services import enrolment_images_create
    from recognition import load_image

    if not FACES_DIR.is_dir():
        pytest.fail(f"the shared faces are missing at {FACES_DIR}; set ROLLCALL_FACES_DIR")
    students = {}
    for person in PEOPLE:
        student = make_user("student", username=person)
        CourseMembership.objects.create(course=course, student=student)
        with django_capture_on_commit_callbacks(execute=True):
            enrolment_images_create(student=student, images=_photos(person)[:8], by=student, consent=True)
        students[person] = student
    probes = {person: _photos(person)[-1] for person in PEOPLE}  # not used for enrolment

    def found(person: str) -> list[int]:
        """Students behind every vector of the course index, nearest first, for the person's probe."""
        index = indexes.course_index_get(course=course)
        faces = ml.recognizer().embed_faces(load_image(probes[person]), pad=0.25)
        assert faces, f"no face found in {probes[person]}"
        neighbours = index.index.search(np.asarray([faces[0][1]], dtype=np.float32), max(len(index), 1))[0]
        return [index.student_of[n.id] for n in neighbours]

    savage, schneider = students["john_savage"], students["john_schneider"]
    assert found("john_savage")[0] == savage.pk
    assert found("john_schneider")[0] == schneider.pk

    with django_capture_on_commit_callbacks(execute=True):
        privacy.consent_withdraw(student=savage, by=savage)
    assert savage.pk not in found("john_savage")  # the whole index searched: none of his vectors is left
    assert found("john_salley")[0] == students["john_salley"].pk

    # A rebuild that fails after commit must not leave his neighbour's face searchable either.
    def broken(*, course):
        raise OSError("disk full")

    monkeypatch.setattr(indexes, "course_index_rebuild", broken)
    with django_capture_on_commit_callbacks(execute=True):
        privacy.consent_withdraw(student=schneider, by=schneider)
    monkeypatch.undo()
    remaining = found("john_schneider")
    assert schneider.pk not in remaining and savage.pk not in remaining
    assert set(remaining) == {students["john_salley"].pk}
    # A process starting afresh reads the same from disk.
    indexes.clear_cache()
    assert set(found("john_schneider")) == {students["john_salley"].pk}


def test_deleting_a_student_in_the_django_admin_deletes_their_face_files_and_rebuilds_their_courses(
    classroom, course, rebuilt, make_user, client, django_capture_on_commit_callbacks
):
    student, other, _session = classroom
    enrolment = _enrol(student)
    video = enrolment.video.name
    others = _enrol(other)
    left = Course.objects.create(code="OLD1", title="Left last term", term="2026-spring")
    old_session = Session.objects.create(course=left)
    AttendanceRecord.objects.create(session=old_session, student=student, status="present", method="face")
    versions = dict(Course.objects.values_list("pk", "index_version"))
    superuser = make_user("admin", username="root", is_staff=True, is_superuser=True)
    client.force_login(superuser)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:attendance_user_delete", args=[student.pk]), {"post": "yes"})

    assert response.status_code == 302 and not type(student).objects.filter(pk=student.pk).exists()
    assert not default_storage.exists(video)
    assert rebuilt == [sorted([course.pk, left.pk])]  # its course, and the one it has attendance in
    after = dict(Course.objects.values_list("pk", "index_version"))
    assert after[course.pk] == versions[course.pk] + 1 and after[left.pk] == versions[left.pk] + 1
    assert FaceEmbedding.objects.filter(student=other).count() == 3 and default_storage.exists(others.video.name)


def test_taking_a_student_off_a_course_in_the_django_admin_takes_their_face_out_of_its_index(
    classroom, course, make_user, client
):
    from attendance.courses.indexes import clear_cache, course_index_get
    from tests.attendance.factories_faces import enrol_with_vectors

    student, other, _session = classroom
    for seed, person in enumerate((student, other)):
        vectors = np.frombuffer(b"".join(_vector(seed * 10 + i) for i in range(3)), dtype="<f4").reshape(3, 128)
        enrol_with_vectors(student=person, vectors=vectors, courses=[course])
    clear_cache()
    assert set(course_index_get(course=course).student_of.values()) == {student.pk, other.pk}
    superuser = make_user("admin", username="root2", is_staff=True, is_superuser=True)
    client.force_login(superuser)
    membership = CourseMembership.objects.get(course=course, student=student)
    response = client.post(reverse("admin:attendance_coursemembership_delete", args=[membership.pk]), {"post": "yes"})
    assert response.status_code == 302 and not CourseMembership.objects.filter(pk=membership.pk).exists()
    course.refresh_from_db()
    clear_cache()
    assert set(course_index_get(course=course).student_of.values()) == {other.pk}
