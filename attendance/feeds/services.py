"""Creating and revoking feed URLs. The token is the whole credential (calendar apps cannot sign in),
so it is long, random and replaced, not reused, when revoked: the old URL then answers 404."""

from __future__ import annotations

import secrets

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from attendance import permissions
from attendance.models import CalendarFeed, Course, User


class FeedError(Exception):
    """A feed that cannot be made or changed; the message says why."""


def _token() -> str:
    return secrets.token_urlsafe(32)


def feed_can_own(*, owner: User, course: Course | None) -> bool:
    """A course feed: those who manage the course. A personal feed: lecturers and students."""
    if course is not None:
        return permissions.can_manage_course(owner, course)
    return owner.is_active and (owner.is_lecturer or owner.is_student)


def feed_get_or_create(*, owner: User, course: Course | None = None) -> CalendarFeed:
    if not feed_can_own(owner=owner, course=course):
        raise FeedError(
            _("Only a lecturer of this course can have its calendar.")
            if course
            else _("Calendar feeds are for lecturers and students.")
        )
    feed = CalendarFeed.objects.filter(owner=owner, course=course).first()
    if feed is not None:
        return feed
    try:
        with transaction.atomic():
            return CalendarFeed.objects.create(owner=owner, course=course, token=_token())
    except IntegrityError:  # two clicks at once: the other one made it
        return CalendarFeed.objects.get(owner=owner, course=course)


def feed_revoke(*, feed: CalendarFeed, by: User) -> CalendarFeed:
    """A new token for the feed: calendar apps subscribed with the old URL stop getting it."""
    if by.pk != feed.owner_id and not by.is_admin:
        raise FeedError(_("Only the feed's owner can reset its link."))
    feed.token = _token()
    feed.save(update_fields=["token"])
    return feed
