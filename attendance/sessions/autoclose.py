"""Sessions that close themselves: at their planned end, or some hours after an unplanned opening.

Run every minute by Celery beat (attendance.tasks.sessions_close_due). Each session goes through
the same `session_close` as the lecturer's button, so its absences are written exactly as by hand;
a session a lecturer closes at the same moment is simply skipped (the close is idempotent per row).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from attendance.models import Session
from attendance.sessions.services import SessionError, session_close

logger = logging.getLogger(__name__)


def sessions_due_to_close(*, now: datetime | None = None) -> QuerySet[Session]:
    """Open sessions past their end: the planned end when they were opened before it, else opened_at
    plus ROLLCALL_SESSION_AUTO_CLOSE_HOURS (a session opened after its planned end, say for a
    make-up class, is not closed the minute it opens)."""
    now = now or timezone.now()
    planned = Q(scheduled_end__isnull=False, opened_at__lt=F("scheduled_end"), scheduled_end__lte=now)
    due = planned
    hours = settings.ROLLCALL_SESSION_AUTO_CLOSE_HOURS
    if hours:
        unplanned = Q(scheduled_end__isnull=True) | Q(opened_at__gte=F("scheduled_end"))
        due |= unplanned & Q(opened_at__lte=now - timedelta(hours=hours))
    return Session.objects.filter(due, status=Session.Status.OPEN).order_by("pk")


def sessions_close_due(*, now: datetime | None = None) -> int:
    """Close every open session past its end; returns how many this call closed."""
    closed = 0
    for session in sessions_due_to_close(now=now):
        try:
            result = session_close(session=session, by=None)
        except SessionError:
            continue  # closed by a lecturer (or another beat run) a moment ago
        closed += 1
        logger.info("session %s closed itself at its end; %s marked absent", session.pk, result.marked_absent)
    return closed
