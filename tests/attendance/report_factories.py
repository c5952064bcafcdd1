"""Rows for the report, permission and privacy tests: a small known course and a large generated one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from attendance.models import AttendanceChange, AttendanceRecord, Course, CourseMembership, Session, User

Status = AttendanceRecord.Status
Method = AttendanceRecord.Method


def at(day: int, hour: int, minute: int = 0, month: int = 10) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


@dataclass
class KnownCourse:
    course: Course
    lecturer: User
    alice: User
    bob: User
    cleo: User
    zoe: User
    intro: Session
    faces: Session
    third: Session
    upcoming: Session


def known_course(make_user) -> KnownCourse:
    """CV101 with four students and three held sessions; the expected rates are in test_reports.py.

    Names carry a comma, double quotes, a formula-like first name and a non-ASCII letter, so that
    the CSV's quoting, escaping and encoding are all exercised.
    """
    lecturer = make_user("lecturer", username="ada", first_name="Ada", last_name="Lovelace")
    course = Course.objects.create(code="CV101", title="Computer Vision", term="2026-autumn")
    course.lecturers.add(lecturer)
    alice = make_user("student", username="alice", first_name="Alice", last_name="Zephyr", student_number="S001")
    bob = make_user("student", username="bob", first_name="Bob", last_name="O'Neil, Jr.", student_number="S002")
    cleo = make_user("student", username="cleo", first_name="=Cleo", last_name='Dupont "CD"', student_number="S003")
    zoe = make_user("student", username="zoe", first_name="Zoë", last_name="Young", student_number="S004")
    for student in (alice, bob, zoe):
        CourseMembership.objects.create(course=course, student=student, joined_at=at(1, 0, month=9))
    CourseMembership.objects.create(course=course, student=cleo, joined_at=at(3, 12))  # after the first session

    intro = Session.objects.create(
        course=course, title="Intro", status=Session.Status.CLOSED, scheduled_start=at(1, 9),
        opened_at=at(1, 9), closed_at=at(1, 10, 30), opened_by=lecturer,
    )
    faces = Session.objects.create(
        course=course, title="Faces", status=Session.Status.CLOSED, scheduled_start=at(8, 9),
        opened_at=at(8, 9), closed_at=at(8, 10, 30), opened_by=lecturer,
    )
    third = Session.objects.create(
        course=course, title="", status=Session.Status.OPEN, scheduled_start=at(15, 9), opened_at=at(15, 9, 1),
        opened_by=lecturer,
    )
    upcoming = Session.objects.create(course=course, title="Later", scheduled_start=at(22, 9))

    def record(session, student, status, method, when, confidence=None, by=None):
        return AttendanceRecord.objects.create(
            session=session, student=student, status=status, method=method, marked_at=when,
            confidence=confidence, marked_by=by,
        )

    record(intro, alice, Status.PRESENT, Method.FACE, at(1, 9, 2), 0.312)
    record(intro, bob, Status.ABSENT, Method.AUTO, at(1, 10, 30), by=lecturer)
    record(intro, zoe, Status.PRESENT, Method.FACE, at(1, 9, 4), 0.288)
    record(faces, alice, Status.LATE, Method.FACE, at(8, 9, 14), 0.35)
    bob_faces = record(faces, bob, Status.EXCUSED, Method.MANUAL, at(8, 8), by=lecturer)
    AttendanceChange.objects.create(
        record=bob_faces, changed_by=lecturer, changed_at=at(8, 8), old_status="", new_status=Status.EXCUSED,
        reason="Doctor's note",
    )
    cleo_faces = record(faces, cleo, Status.PRESENT, Method.MANUAL, at(8, 9, 20), by=lecturer)
    AttendanceChange.objects.create(
        record=cleo_faces, changed_by=lecturer, changed_at=at(8, 9, 20), old_status=Status.ABSENT,
        new_status=Status.PRESENT, reason="Camera missed her",
    )
    record(faces, zoe, Status.ABSENT, Method.AUTO, at(8, 10, 30), by=lecturer)
    record(third, alice, Status.PRESENT, Method.FACE, at(15, 9, 3), 0.301)
    record(third, cleo, Status.LATE, Method.FACE, at(15, 9, 25), 0.402)
    return KnownCourse(course, lecturer, alice, bob, cleo, zoe, intro, faces, third, upcoming)


def large_course(make_user, *, students: int, sessions: int, code: str = "BIG1") -> tuple[Course, list[Session]]:
    """A course with every student marked at every session (a spread of statuses), in a few queries."""
    lecturer = make_user("lecturer")
    course = Course.objects.create(code=code, title="Big lecture", term="2026-autumn")
    course.lecturers.add(lecturer)
    people = User.objects.bulk_create([
        User(username=f"{code.lower()}-s{i:04d}", first_name=f"First{i}", last_name=f"Last{i:04d}",
             student_number=f"{code}-{i:04d}", role=User.Role.STUDENT)
        for i in range(students)
    ])
    CourseMembership.objects.bulk_create([
        CourseMembership(course=course, student=p, joined_at=at(1, 0, month=9)) for p in people
    ])
    start = at(1, 9)
    held = Session.objects.bulk_create([
        Session(course=course, title=f"Week {j + 1}", status=Session.Status.CLOSED,
                scheduled_start=start + timedelta(days=7 * j), opened_at=start + timedelta(days=7 * j),
                closed_at=start + timedelta(days=7 * j, hours=1))
        for j in range(sessions)
    ])
    cycle = [Status.PRESENT, Status.PRESENT, Status.LATE, Status.ABSENT, Status.PRESENT, Status.EXCUSED]
    AttendanceRecord.objects.bulk_create([
        AttendanceRecord(session=s, student=p, status=cycle[(i * 7 + j) % len(cycle)],
                         method=Method.FACE, marked_at=s.scheduled_start)
        for j, s in enumerate(held) for i, p in enumerate(people)
    ], batch_size=5000)
    return course, held
