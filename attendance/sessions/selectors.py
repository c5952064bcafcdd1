"""Reads about a course's sessions and students."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from attendance.models import AttendanceRecord, Course, FaceEnrolment, Session, User
from attendance.sessions.services import session_arrival_status, session_late_after


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


def session_info(session: Session) -> dict[str, Any]:
    """The session as the API describes it, with what a student arriving now is marked."""
    return {
        "id": session.pk, "course_id": session.course_id, "title": str(session), "status": session.status,
        "opened_at": session.opened_at, "closed_at": session.closed_at, "starts_at": session.starts_at,
        "ends_at": session.scheduled_end,
        "late_after_minutes": int(session_late_after(session=session).total_seconds() // 60),
        "arrival_status": session_arrival_status(session=session),
    }
