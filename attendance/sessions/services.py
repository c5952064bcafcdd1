"""Class sessions: opening, closing and the kiosk link that lets a tablet at the door check students in.

Every state change is a conditional update on the locked session row, so two lecturers pressing
"close" together (or a close racing a check-in) leave one consistent result.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from attendance.models import AttendanceRecord, Course, CourseMembership, Session, User
from attendance.platform.redis import session_state_clear


class SessionError(Exception):
    """A session operation that cannot be done in the session's current state; the message says why."""


class SessionClosedError(SessionError):
    pass


class KioskLinkUsedError(SessionError):
    """The kiosk link was already opened on another device: it pairs one device only."""


@dataclass(frozen=True)
class SessionCloseResult:
    session: Session
    marked_absent: int


def session_late_after(*, session: Session) -> timedelta:
    """How long after the start an arrival still counts as on time: the course's value, else the site's."""
    minutes = session.course.late_after_minutes
    if minutes is None:
        minutes = settings.ROLLCALL_LATE_AFTER_MINUTES
    return timedelta(minutes=minutes)


def session_arrival_status(*, session: Session, at: datetime | None = None) -> str:
    """Present or late for someone arriving now: late once the course's minutes after the start have passed."""
    start = session.starts_at
    at = at or timezone.now()
    if start is not None and at > start + session_late_after(session=session):
        return AttendanceRecord.Status.LATE
    return AttendanceRecord.Status.PRESENT


def session_open(*, course: Course, by: User, session: Session | None = None, title: str = "") -> Session:
    """Open a scheduled session of the course, or start a new one now when none is given."""
    now = timezone.now()
    with transaction.atomic():
        if session is None:
            return Session.objects.create(
                course=course, title=title.strip()[:200], status=Session.Status.OPEN, opened_at=now, opened_by=by
            )
        locked = Session.objects.select_for_update().select_related("course").get(pk=session.pk)
        if locked.course_id != course.pk:
            raise SessionError(gettext("This session belongs to another course."))
        if locked.status == Session.Status.OPEN:
            return locked  # a second click on "open": nothing to do
        if locked.status == Session.Status.CLOSED:
            raise SessionClosedError(gettext(
                "This session is closed and cannot be reopened; correct its records by hand or start a new session."
            ))
        locked.status = Session.Status.OPEN
        locked.opened_at = now
        locked.opened_by = by
        if title.strip():
            locked.title = title.strip()[:200]
        locked.save(update_fields=["status", "opened_at", "opened_by", "title"])
    return locked


def session_close(*, session: Session, by: User | None) -> SessionCloseResult:
    """Close an open session: the kiosk link dies and every student without a record is marked absent.

    ``by`` is None when the session closes itself at its end (sessions.autoclose). A session planned
    for a group of the course's students (its timetable series has one) marks only that group absent.
    """
    now = timezone.now()
    with transaction.atomic():
        locked = Session.objects.select_for_update().select_related("course").get(pk=session.pk)
        if locked.status == Session.Status.CLOSED:
            raise SessionClosedError(gettext("This session is already closed."))
        if locked.status != Session.Status.OPEN:
            raise SessionError(gettext("Only an open session can be closed; open it first."))
        locked.status = Session.Status.CLOSED
        locked.closed_at = now
        locked.kiosk_token = None
        locked.kiosk_device_hash = None
        locked.save(update_fields=["status", "closed_at", "kiosk_token", "kiosk_device_hash"])
        marked = set(AttendanceRecord.objects.filter(session=locked).values_list("student_id", flat=True))
        expected = CourseMembership.objects.filter(course_id=locked.course_id)
        group = locked.series.students.all() if locked.series is not None else None
        if group is not None and group.exists():
            expected = expected.filter(student__in=group)
        absent = [
            AttendanceRecord(
                session=locked, student_id=student_id, status=AttendanceRecord.Status.ABSENT,
                method=AttendanceRecord.Method.AUTO, marked_at=now, marked_by=by,
            )
            for student_id in expected.values_list("student_id", flat=True)
            if student_id not in marked
        ]
        # ignore_conflicts: a check-in that committed a record a moment ago wins over "absent".
        created = AttendanceRecord.objects.bulk_create(absent, ignore_conflicts=True)
    # Every live feature keeps its state under the session's prefix (check-in confirmations, ...).
    transaction.on_commit(lambda: session_state_clear(session_id=locked.pk))
    session.refresh_from_db()
    return SessionCloseResult(session=session, marked_absent=len(created))


def session_kiosk_token_create(*, session: Session, by: User) -> str:
    """A new kiosk link's token for this open session, replacing any earlier one: the old link stops
    working and the device it paired stops at once.

    The token is stored as is, like Django's own session keys: it only ever pairs one device
    (session_kiosk_device_pair) and is wiped the moment the session closes.
    """
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        locked = Session.objects.select_for_update().get(pk=session.pk)
        if locked.status != Session.Status.OPEN:
            raise SessionError(gettext("A kiosk link can only be made for an open session."))
        locked.kiosk_token = token
        locked.kiosk_device_hash = None
        locked.save(update_fields=["kiosk_token", "kiosk_device_hash"])
    session.kiosk_token = token
    session.kiosk_device_hash = None
    return token


def session_kiosk_token_revoke(*, session: Session, by: User) -> None:
    Session.objects.filter(pk=session.pk).update(kiosk_token=None, kiosk_device_hash=None)
    session.kiosk_token = None
    session.kiosk_device_hash = None


def kiosk_device_hash(secret: str) -> str:
    """What the database keeps of a kiosk device's secret: a leaked row or backup lets nobody post."""
    return hashlib.sha256(secret.encode()).hexdigest()


def kiosk_device_matches(session: Session, secret: str) -> bool:
    """Whether ``secret`` is the device secret of this session's paired kiosk (compared in constant time)."""
    return bool(
        secret and session.kiosk_device_hash
        and secrets.compare_digest(kiosk_device_hash(secret).encode(), session.kiosk_device_hash.encode())
    )


@dataclass(frozen=True)
class KioskPairing:
    session: Session
    # The new device's secret, to hand to it once; empty when the device was already paired.
    secret: str


def session_kiosk_device_pair(*, token: str, secret: str = "") -> KioskPairing | None:
    """Pair the device opening a kiosk link with the link's open session, the first time only.

    ``secret`` is what the device already holds (its cookie), if anything: the paired device coming
    back is let in again without a new secret. None for an unknown, revoked or closed link; a link
    already paired with another device raises KioskLinkUsedError. The row lock makes two devices
    opening one link at the same moment queue: the second sees the first's pairing and is refused.
    """
    if not token or len(token) > 64:
        return None
    with transaction.atomic():
        locked = (Session.objects.select_for_update().select_related("course")
                  .filter(kiosk_token=token, status=Session.Status.OPEN).first())
        if locked is None:
            return None
        if locked.kiosk_device_hash:
            if kiosk_device_matches(locked, secret):
                return KioskPairing(session=locked, secret="")
            raise KioskLinkUsedError(gettext(
                "This kiosk link was already opened on another device. A link works on one device only: "
                "the lecturer can make a new link on the session's check-in page."
            ))
        new_secret = secrets.token_urlsafe(32)
        locked.kiosk_device_hash = kiosk_device_hash(new_secret)
        locked.save(update_fields=["kiosk_device_hash"])
    return KioskPairing(session=locked, secret=new_secret)
