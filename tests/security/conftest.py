"""Two courses side by side, each with its lecturer, student, sessions, records, enrolment video and
check-in snapshot: everything one side may try to reach on the other by changing an id.

Side A is the attacker's, side B the victim's. Ids are taken from rows created here, never
guessed, so that a request for B's row is a request for a row that exists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from rest_framework.authtoken.models import Token

from tests.conftest import kiosk_pair

PASSWORD = "pw-for-tests-only"


@dataclass
class Side:
    lecturer: object
    student: object
    course: object
    session: object  # open, with a kiosk token
    scheduled: object  # not opened yet
    closed: object
    enrolment: object  # ready, its video kept in media
    snapshot: object
    kiosk_token: str  # the kiosk link's token: it paired the kiosk below and pairs nothing more
    kiosk_secret: str  # the paired kiosk's device secret: what posts check-ins


@dataclass
class World:
    admin: object
    a: Side
    b: Side
    tokens: dict[str, str] = field(default_factory=dict)

    def user(self, role: str) -> object | None:
        return {
            "admin": self.admin, "lecturer_a": self.a.lecturer, "lecturer_b": self.b.lecturer,
            "student_a": self.a.student, "student_b": self.b.student, "anonymous": None,
        }[role]

    def media_files(self) -> list[str]:
        return [self.a.enrolment.video.name, self.b.enrolment.video.name,  # type: ignore[attr-defined]
                self.a.snapshot.image.name, self.b.snapshot.image.name]  # type: ignore[attr-defined]


def _side(name: str, make_user: Callable[..., object], admin: object) -> Side:
    from attendance.models import (
        AttendanceRecord,
        CheckinSnapshot,
        Course,
        CourseMembership,
        FaceEnrolment,
        Session,
    )
    from attendance.sessions.services import session_kiosk_token_create

    lecturer = make_user("lecturer", username=f"lecturer_{name}")
    student = make_user("student", username=f"student_{name}", student_number=f"S-{name}-001",
                        last_name=f"Victim{name.upper()}")
    course = Course.objects.create(code=f"SEC-{name.upper()}", title=f"Course {name}", term="2026-autumn")
    course.lecturers.add(lecturer)  # type: ignore[arg-type]
    CourseMembership.objects.create(course=course, student=student)
    now = timezone.now()
    session = Session.objects.create(course=course, status=Session.Status.OPEN, opened_at=now, title="Open")
    scheduled = Session.objects.create(course=course, status=Session.Status.SCHEDULED, title="Later")
    closed = Session.objects.create(course=course, status=Session.Status.CLOSED, opened_at=now, closed_at=now,
                                    title="Done")
    token = session_kiosk_token_create(session=session, by=lecturer)  # type: ignore[arg-type]
    kiosk_secret = kiosk_pair(token).secret
    AttendanceRecord.objects.create(session=session, student=student, status="present", method="face")
    AttendanceRecord.objects.create(session=closed, student=student, status="late", method="manual",
                                    marked_by=lecturer)
    enrolment = FaceEnrolment.objects.create(
        student=student, status=FaceEnrolment.Status.READY, consent_given_at=now, backbone="dlib", attempts=1,
        started_at=now, finished_at=now,
    )
    # Kept, as with ROLLCALL_KEEP_ENROLMENT_VIDEOS=true; upload_to puts it under enrolments/<student>/.
    enrolment.video.save("face.mp4", ContentFile(b"\x00\x00\x00\x18ftypmp42 an enrolment video"))
    snapshot = CheckinSnapshot.objects.create(session=session, taken_at=now)
    snapshot.image.save("frame.jpg", ContentFile(b"\xff\xd8\xff\xe0 a check-in frame"))
    snapshot.students.set([student])  # type: ignore[list-item]
    return Side(lecturer, student, course, session, scheduled, closed, enrolment, snapshot, token, kiosk_secret)


@pytest.fixture
def world(db: None, make_user: Callable[..., object], admin_user: object) -> Iterator[World]:
    world = World(admin=admin_user, a=_side("a", make_user, admin_user), b=_side("b", make_user, admin_user))
    for role in ("admin", "lecturer_a", "lecturer_b", "student_a", "student_b"):
        world.tokens[role] = Token.objects.create(user=world.user(role)).key  # type: ignore[misc]
    yield world
    for name in world.media_files():
        if name:
            default_storage.delete(name)


@pytest.fixture(autouse=True)
def _fresh_rate_counters() -> Iterator[None]:
    """Rate-limit counters live in Redis, which tests share: each test starts from nothing."""
    from attendance.platform.redis import redis_client

    def clear() -> None:
        client = redis_client()
        for pattern in ("rollcall:login-failures:*", "rollcall:rate:checkin:*"):
            for name in client.scan_iter(pattern):
                client.delete(name)

    clear()
    yield
    clear()


def media_path(name: str) -> Path:
    return Path(default_storage.path(name))
