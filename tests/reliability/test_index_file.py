"""A course's index file lost or damaged on disk: the next check-in rebuilds it from the database.

The file is only a cache of the stored embeddings. Whatever happens to it (deleted by a clean-up
script, overwritten with garbage, cut short by a crash, on a disk that is full) the first snapshot
after a web worker starts must still recognise the enrolled student: never a crash, and never an
empty index that silently marks nobody.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from attendance.courses.indexes import clear_cache, course_index_get, course_index_path, index_file_load
from attendance.models import AttendanceRecord, FaceEmbedding
from attendance.sessions.services import session_open
from tests.attendance.factories_faces import enrol_with_vectors, katie_enrolment_vectors, katie_probe_jpegs

# Liveness off: these tests are about the index file, not liveness (tested in test_checkin_liveness.py).
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("fresh_redis", "liveness_off")]


@pytest.fixture
def katie_on_course(course, lecturer, make_user):
    katie = make_user("student", first_name="Katie", last_name="Hill")
    enrol_with_vectors(student=katie, vectors=katie_enrolment_vectors(), courses=[course])
    session = session_open(course=course, by=lecturer)
    return katie, session


def _check_in_until_marked(lecturer, session, katie) -> list[dict]:
    client = APIClient()
    client.force_authenticate(lecturer)
    faces = []
    for frame in katie_probe_jpegs()[:3]:
        response = client.post(reverse("api-session-checkin", args=[session.pk]), data=frame,
                               content_type="image/jpeg")
        assert response.status_code == 200, response.content
        (face,) = response.json()["faces"]
        faces.append(face)
    return faces


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "deleted":
        path.unlink()
    elif how == "garbage":
        path.write_bytes(b"\x89not an index at all\x00" * 200)
    elif how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "bit_flipped":
        flipped = bytearray(data)
        flipped[-100] ^= 0xFF  # inside the vectors: only the checksum can tell
        path.write_bytes(bytes(flipped))
    else:
        raise AssertionError(how)


@pytest.mark.parametrize("how", ["deleted", "garbage", "truncated", "empty", "bit_flipped"])
def test_a_damaged_index_file_is_rebuilt_from_the_database_by_the_next_check_in(
    katie_on_course, course, lecturer, how
):
    from attendance import ml

    katie, session = katie_on_course
    path = course_index_path(course_id=course.pk)
    assert path.is_file()
    _damage(path, how)
    clear_cache()  # a web worker that starts after the damage: nothing in memory to fall back on

    faces = _check_in_until_marked(lecturer, session, katie)

    # Recognised from the first snapshot on (the rebuilt index is whole, not empty) and marked once.
    assert [f["student_id"] for f in faces] == [katie.pk] * 3, faces
    assert [f["outcome"] for f in faces] == ["confirming", "confirming", "marked"], faces
    assert AttendanceRecord.objects.filter(session=session, student=katie).count() == 1
    # The file on disk is whole again, for this version, with exactly the course's embeddings.
    rebuilt = index_file_load(path, space=ml.embedder_name(), dim=ml.embedder().dim)  # encrypted at rest
    stored = set(FaceEmbedding.objects.filter(student=katie).values_list("id", flat=True))
    assert set(int(i) for i in rebuilt.ids()) == stored and len(stored) == len(katie_enrolment_vectors())


def test_a_full_index_disk_does_not_stop_check_in(katie_on_course, course, lecturer, settings, small_disk):
    katie, session = katie_on_course
    disk = small_disk("indexes", 256)
    settings.ROLLCALL_INDEX_DIR = disk.path
    disk.fill()
    clear_cache()

    faces = _check_in_until_marked(lecturer, session, katie)

    # The index was rebuilt in memory (its file could not be written) and check-in went on.
    assert [f["outcome"] for f in faces] == ["confirming", "confirming", "marked"], faces
    assert not course_index_path(course_id=course.pk).exists()
    assert len(course_index_get(course=course)) == len(katie_enrolment_vectors())
    assert AttendanceRecord.objects.filter(session=session, student=katie).count() == 1


def test_repairing_a_missing_file_removes_the_older_versions_files(
    katie_on_course, course, django_capture_on_commit_callbacks
):
    """A withdrawal bumps the version and its rebuild fails: the old file (which still holds the
    student) must not outlive the repair that the next check-in makes."""
    from attendance.models import Course

    old = course_index_path(course_id=course.pk)
    assert old.is_file()
    Course.objects.filter(pk=course.pk).update(index_version=course.index_version + 1)  # no file for it
    course.refresh_from_db()
    clear_cache()
    with django_capture_on_commit_callbacks(execute=True):
        course_index_get(course=course)
    assert course_index_path(course_id=course.pk).is_file() and not old.is_file()
