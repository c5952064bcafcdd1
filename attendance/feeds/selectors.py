"""Which sessions a feed shows, and the feed behind a token (if it may still be served)."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from attendance.feeds.services import feed_can_own
from attendance.models import CalendarFeed, Session

HISTORY = timedelta(days=365)  # a year back is enough for any term; calendar apps re-download it all


def feed_by_token(token: str) -> CalendarFeed | None:
    """The feed, or None: an unknown token, or an owner who may no longer see it (left the course)."""
    feed = CalendarFeed.objects.select_related("owner", "course").filter(token=token).first()
    if feed is None or not feed_can_own(owner=feed.owner, course=feed.course):
        return None
    return feed


def feed_sessions(*, feed: CalendarFeed) -> QuerySet[Session]:
    owner = feed.owner
    if feed.course is not None:
        sessions = Session.objects.filter(course=feed.course)
    elif owner.is_lecturer:
        sessions = Session.objects.filter(course__lecturers=owner)
    else:
        # A student sees the course's sessions, except those of another group's series.
        sessions = Session.objects.filter(course__memberships__student=owner).filter(
            Q(series__isnull=True) | Q(series__students__isnull=True) | Q(series__students=owner)
        )
    since = timezone.now() - HISTORY
    return (
        sessions.filter(Q(scheduled_start__gte=since) | Q(scheduled_start__isnull=True, opened_at__gte=since))
        .exclude(scheduled_start__isnull=True, opened_at__isnull=True)
        .select_related("course")
        .distinct()
        .order_by("scheduled_start", "opened_at", "pk")
    )
