"""Check-in never names or marks a student who is not on the session's course (hypothesis).

The course index is a cache: a membership deleted without a rebuild (in the admin, or by a script)
leaves that student's faces in it. Whatever the index holds, only current members may come back.
The camera is replaced by a stub that returns one chosen embedding per snapshot, so each generated
case is a database round trip, not a model run.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attendance.checkin.services import session_check_in
from attendance.models import AttendanceRecord, CourseMembership
from attendance.sessions.services import session_open
from recognition import Face

STUDENTS = 6
VIEWS = 4
DIM = 128  # the dlib space the test settings use


def _unit(rng: np.random.Generator, centre: np.ndarray | None = None, spread: float = 0.0) -> np.ndarray:
    # Noise of about `spread` in length, whatever the dimension.
    vector = rng.normal(size=DIM) if centre is None else centre + spread * rng.normal(size=DIM) / np.sqrt(DIM)
    return (vector / np.linalg.norm(vector)).astype(np.float32)


@dataclass
class Gallery:
    session: object
    course: object
    students: list
    centres: list[np.ndarray]


@pytest.fixture
def gallery(db, course, lecturer, make_user) -> Gallery:
    from tests.attendance.factories_faces import enrol_with_vectors

    rng = np.random.default_rng(7)
    students, centres = [], []
    for _ in range(STUDENTS):
        student = make_user("student")
        centre = _unit(rng)
        views = np.stack([_unit(rng, centre, 0.02) for _ in range(VIEWS)])
        enrol_with_vectors(student=student, vectors=views, courses=[course])
        students.append(student)
        centres.append(centre)
    return Gallery(session_open(course=course, by=lecturer), course, students, centres)


class OneFaceCamera:
    """Stands in for the recognizer's detector and embedding: every snapshot shows one face with this
    embedding, in the served space (``embedder``, the real one: its name and size pick the index)."""

    def __init__(self) -> None:
        from attendance import ml

        self.vector = np.zeros(DIM, np.float32)
        self.embedder = ml.embedder()

    def embed_faces(self, rgb: np.ndarray, *, pad: float = 0.0) -> list[tuple[Face, np.ndarray]]:
        return [(Face(box=(4.0, 4.0, 20.0, 20.0), landmarks=np.zeros((5, 2), np.float32), score=0.99), self.vector)]


SNAPSHOT = cv2.imencode(".png", np.full((32, 32, 3), 128, np.uint8))[1].tobytes()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(removed=st.sets(st.integers(0, STUDENTS - 1), max_size=STUDENTS), probe=st.integers(0, STUDENTS - 1),
       noise=st.floats(0.0, 0.05), seed=st.integers(0, 2**16))
def test_only_students_on_the_course_are_named_or_marked(gallery, monkeypatch, settings, removed, probe, noise,
                                                          seed):
    settings.ROLLCALL_CHECKIN_CONFIRMATIONS = 1
    settings.ROLLCALL_CHECKIN_DOUBTFUL_BAND = 0.0
    # Liveness off: a stand-in camera of 20 px faces on a blank frame; this tests who may be named.
    settings.ROLLCALL_LIVENESS_LECTURER = "off"
    camera = OneFaceCamera()
    monkeypatch.setattr("attendance.ml.recognizer", lambda: camera)
    course, session = gallery.course, gallery.session
    gone = [gallery.students[i] for i in removed]
    # Taken off the course behind the index's back: the rows go, the index file stays as it was.
    CourseMembership.objects.filter(course=course, student__in=gone).delete()
    try:
        camera.vector = _unit(np.random.default_rng(seed), gallery.centres[probe], noise)
        result = session_check_in(session=session, image_bytes=SNAPSHOT)
        members = set(CourseMembership.objects.filter(course=course).values_list("student_id", flat=True))
        named = {face.student_id for face in result.faces if face.student_id is not None}
        assert named <= members, f"named {named - members}, who are not on the course"
        assert set(result.marked) <= members
        assert not AttendanceRecord.objects.filter(session=session).exclude(student_id__in=members).exists()
        if probe not in removed:  # the control: a member's own face is still recognised and marked
            assert result.marked == [gallery.students[probe].pk]
    finally:
        AttendanceRecord.objects.filter(session=session).delete()
        for student in gone:
            CourseMembership.objects.get_or_create(course=course, student=student)
