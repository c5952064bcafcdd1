"""Attendance records written by people and by face recognition, and the audit trail between them.

A record a person has set by hand is final for recognition: `attendance_record_mark_face` never
changes it, whatever the camera sees afterwards. Every manual change writes an AttendanceChange
with who, when, the old and new status, the old method, arrival time and recognition
distance, and the optional reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext

from attendance import permissions
from attendance.models import AttendanceChange, AttendanceRecord, CourseMembership, Session, User
from attendance.sessions.services import session_arrival_status


class RecordError(Exception):
    """A record change that cannot be made; the message says why and what to do."""


class RecordPermissionError(RecordError):
    pass


REASON_MAX_LENGTH = AttendanceChange._meta.get_field("reason").max_length or 500


def _validate_status(status: str) -> AttendanceRecord.Status:
    try:
        return AttendanceRecord.Status(status)
    except ValueError:
        choices = ", ".join(AttendanceRecord.Status.values)
        raise RecordError(gettext("Unknown attendance status %(status)r: use one of %(choices)s.")
                          % {"status": status, "choices": choices}) from None


def _lock_record(*, session: Session, student: User) -> AttendanceRecord | None:
    return AttendanceRecord.objects.select_for_update().filter(session=session, student=student).first()


def attendance_record_set(
    *, session: Session, student: User, status: str, by: User, reason: str = ""
) -> AttendanceRecord:
    """Set a student's status for a session by hand, creating the record if needed, and audit it.

    The record becomes method=manual, so face recognition will not touch it again. Setting the
    status a record already has by hand with no reason changes nothing and writes no audit row.
    """
    new_status = _validate_status(status)
    reason = reason.strip()
    if len(reason) > REASON_MAX_LENGTH:
        raise RecordError(gettext("The reason is %(length)s characters long; keep it under %(limit)s.")
                          % {"length": len(reason), "limit": REASON_MAX_LENGTH})
    if not permissions.can_change_record(by, session):
        raise RecordPermissionError(
            gettext("Only an admin or a lecturer of this course can change its attendance records.")
        )
    on_course = CourseMembership.objects.filter(course_id=session.course_id, student=student).exists()
    now = timezone.now()
    with transaction.atomic():
        record = _lock_record(session=session, student=student)
        created = False
        if record is None:
            if not on_course:
                raise RecordError(
                    gettext("%(name)s is not on %(course)s; add them to the course first.")
                    % {"name": student.display_name, "course": session.course.code}
                )
            try:
                with transaction.atomic():  # a face check-in may insert the same row at this moment
                    record = AttendanceRecord.objects.create(
                        session=session, student=student, status=new_status,
                        method=AttendanceRecord.Method.MANUAL, marked_at=now, marked_by=by,
                    )
                created = True
            except IntegrityError:
                record = _lock_record(session=session, student=student)
                if record is None:  # pragma: no cover - the conflicting row cannot vanish under our lock
                    raise
        old_status = "" if created else record.status
        old_method = "" if created else record.method
        old_marked_at = None if created else record.marked_at
        old_confidence = None if created else record.confidence
        if not created:
            if old_status == new_status and record.method == AttendanceRecord.Method.MANUAL and not reason:
                return record  # already set by hand to this status: nothing to audit
            # The arrival time (marked_at) and recognition's distance stay as the camera saw them:
            # a correction changes the status, not when the student came in or how sure the match
            # was. Who corrected it and when is the audit row's, and marked_by's.
            record.status = new_status
            record.method = AttendanceRecord.Method.MANUAL
            record.marked_by = by
            record.save(update_fields=["status", "method", "marked_by"])
        AttendanceChange.objects.create(
            record=record, changed_by=by, changed_at=now, old_status=old_status, new_status=new_status,
            old_method=old_method, old_marked_at=old_marked_at, old_confidence=old_confidence,
            new_method=AttendanceRecord.Method.MANUAL, reason=reason,
        )
    return record


@dataclass(frozen=True)
class FaceMarkResult:
    record: AttendanceRecord
    created: bool  # False: the student already had a record, which was left as it was

    @property
    def kept_manual(self) -> bool:
        return not self.created and self.record.method == AttendanceRecord.Method.MANUAL


def attendance_record_mark_face(
    *, session: Session, student: User, distance: float, status: str | None = None, at: datetime | None = None,
    liveness_score: float | None = None, liveness_checks: Sequence[str] = (),
) -> FaceMarkResult:
    """Mark a recognised student present (or late) unless they already have a record.

    Never overwrites: a record set by hand stays as the person set it, and a student recognised
    twice keeps their first arrival time. The unique (session, student) constraint decides a race
    between the camera and a lecturer's manual mark: whichever row exists first is kept, and a
    manual mark made after a face mark replaces it through `attendance_record_set`, never the reverse.
    ``liveness_score`` and ``liveness_checks``: the liveness verdict behind the mark (None and none
    with liveness off).
    """
    at = at or timezone.now()
    new_status = _validate_status(status or session_arrival_status(session=session, at=at))
    if session.status != Session.Status.OPEN:
        raise RecordError(gettext("This session is not open: check-ins are accepted only while it is open."))
    try:
        with transaction.atomic():
            record = AttendanceRecord.objects.create(
                session=session, student=student, status=new_status, method=AttendanceRecord.Method.FACE,
                confidence=float(distance), marked_at=at,
                liveness_score=None if liveness_score is None else float(liveness_score),
                liveness_checks=[str(check) for check in liveness_checks],
            )
        return FaceMarkResult(record=record, created=True)
    except IntegrityError:
        pass  # the student already has a record (by hand, by an earlier check-in or by closing): keep it
    return FaceMarkResult(record=AttendanceRecord.objects.get(session=session, student=student), created=False)
