"""What a student sees of their warnings."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from attendance.models import AttendanceWarning, User, WarningEmail


def student_warnings(*, student: User) -> QuerySet[AttendanceWarning]:
    """The student's warnings, newest first, with the emails sent to them about each."""
    own = WarningEmail.objects.filter(recipient=student).order_by("created_at")
    return (
        AttendanceWarning.objects.filter(student=student)
        .select_related("course")
        .prefetch_related(Prefetch("emails", queryset=own, to_attr="own_emails"))
        .order_by("-crossed_at", "-pk")
    )
