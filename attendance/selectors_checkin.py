"""Reads behind the course page, the check-in page and its live list."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from attendance.models import AttendanceRecord, Course, FaceEnrolment, Session, User


@dataclass(frozen=True)
class RosterEntry:
    """One student of the course as the live list shows them: no photo, only what the lecturer needs."""

    student_id: int
    name: str
    student_number: str
    face_enrolled: bool
    status: str | None
    method: str | None
    marked_at: datetime | None
    confidence: float | None


def session_for_kiosk_token(*, token: str) -> Session | None:
    """The open session a kiosk token belongs to, or None for an unknown, revoked or closed one."""
    if not token or len(token) > 64:
        return None
    return Session.objects.select_related("course").filter(kiosk_token=token, status=Session.Status.OPEN).first()


def course_sessions(*, course: Course) -> QuerySet[Session]:
    """The course's sessions, newest first, with how many students each has present, late and absent."""
    return course.sessions.annotate(
        present_count=Count("records", filter=Q(records__status=AttendanceRecord.Status.PRESENT)),
        late_count=Count("records", filter=Q(records__status=AttendanceRecord.Status.LATE)),
        absent_count=Count("records", filter=Q(records__status=AttendanceRecord.Status.ABSENT)),
    ).order_by("-opened_at", "-scheduled_start", "-id")


def course_students(*, course: Course) -> QuerySet[User]:
    ready = FaceEnrolment.objects.filter(student=OuterRef("pk"), status=FaceEnrolment.Status.READY)
    return (
        User.objects.filter(memberships__course=course)
        .annotate(face_enrolled=Exists(ready))
        .order_by("last_name", "first_name", "username")
    )


def session_roster(*, session: Session) -> list[RosterEntry]:
    """Every student of the session's course, with their record in this session if there is one."""
    records = {record.student_id: record for record in AttendanceRecord.objects.filter(session=session)}
    entries = []
    for student in course_students(course=session.course):
        record = records.get(student.pk)
        entries.append(
            RosterEntry(
                student_id=student.pk,
                name=student.display_name,
                student_number=student.student_number,
                face_enrolled=bool(getattr(student, "face_enrolled", False)),
                status=record.status if record else None,
                method=record.method if record else None,
                marked_at=record.marked_at if record else None,
                confidence=record.confidence if record else None,
            )
        )
    return entries
