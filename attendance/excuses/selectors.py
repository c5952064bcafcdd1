"""Reads about excuses: a lecturer's to decide, a student's own, and who may see a document."""

from __future__ import annotations

from django.db.models import QuerySet

from attendance import permissions
from attendance.models import Excuse, User


def excuses_visible_to(user: User) -> QuerySet[Excuse]:
    """A student's own excuses; those of a managed course's records for lecturers and admins."""
    qs = Excuse.objects.select_related("record__session__course", "student", "decided_by")
    if user.is_student:
        return qs.filter(student=user)
    return qs.filter(record__session__course__in=permissions.courses_managed_by(user))


def excuses_inbox(*, user: User) -> tuple[QuerySet[Excuse], QuerySet[Excuse]]:
    """(waiting for a decision, oldest first; the last 50 decided, newest first)."""
    visible = excuses_visible_to(user)
    pending = visible.filter(status=Excuse.Status.PENDING).order_by("created_at")
    decided = visible.exclude(status=Excuse.Status.PENDING).order_by("-decided_at")[:50]
    return pending, decided
