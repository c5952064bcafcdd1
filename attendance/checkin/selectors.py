"""Reads for the live check-in: the roster of a session and the paired kiosk device's session."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.utils.translation import pgettext

from attendance.models import AttendanceRecord, Session
from attendance.sessions.selectors import course_students
from attendance.sessions.services import kiosk_device_hash

# How a record was marked, in the words of the live list (lower case, after the status badge).
METHOD_WORDS: dict[str, Callable[[], str]] = {
    AttendanceRecord.Method.FACE: lambda: pgettext("how a record was marked", "face"),
    AttendanceRecord.Method.MANUAL: lambda: pgettext("how a record was marked", "manual"),
    AttendanceRecord.Method.AUTO: lambda: pgettext("how a record was marked", "at closing"),
}


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

    @property
    def status_label(self) -> str:
        """The record's status in the reader's language ("Present", "Late"...)."""
        return str(AttendanceRecord.Status(self.status).label) if self.status else ""

    @property
    def method_label(self) -> str:
        """How the record was marked, as the live list writes it (the same words as checkin.js)."""
        return METHOD_WORDS[self.method]() if self.method in METHOD_WORDS else (self.method or "")


def session_for_kiosk_link(*, token: str) -> Session | None:
    """The open session a kiosk link belongs to, paired or not; None for an unknown, replaced,
    revoked or closed link."""
    if not token or len(token) > 64:
        return None
    return Session.objects.select_related("course").filter(kiosk_token=token, status=Session.Status.OPEN).first()


def session_for_kiosk_device(*, secret: str) -> Session | None:
    """The open session whose paired kiosk holds this device secret, or None (no secret, a wrong one,
    a replaced or revoked link, a closed session: each clears or never had the hash)."""
    if not secret or len(secret) > 64:
        return None
    return (Session.objects.select_related("course")
            .filter(kiosk_device_hash=kiosk_device_hash(secret), status=Session.Status.OPEN).first())


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
