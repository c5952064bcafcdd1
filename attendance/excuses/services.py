"""Asking for an excuse and deciding on it. Every step is written to the record's audit trail
(AttendanceChange): the request and a decline keep the status and say so in the reason; an
approval is a manual change to "excused" through `attendance_record_set`, like any correction."""

from __future__ import annotations

from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from attendance import permissions
from attendance.excuses.documents import DocumentError, document_check
from attendance.models import AttendanceChange, AttendanceRecord, Excuse, User
from attendance.sessions.records import attendance_record_set

EXCUSABLE = (AttendanceRecord.Status.ABSENT, AttendanceRecord.Status.LATE)
REASON_MAX = 2000
NOTE_MAX = 500


class ExcuseError(Exception):
    """An excuse that cannot be asked for or decided; the message says why and what to do."""


class ExcusePermissionError(ExcuseError):
    pass


def _trail(record: AttendanceRecord, by: User, text: str, new_status: str | None = None) -> None:
    AttendanceChange.objects.create(
        record=record,
        changed_by=by,
        changed_at=timezone.now(),
        old_status=record.status,
        new_status=new_status or record.status,
        reason=text[:500],
    )


def excuse_request(*, record: AttendanceRecord, by: User, reason: str, document: UploadedFile | None = None) -> Excuse:
    if by.pk != record.student_id:
        raise ExcusePermissionError(_("You can only ask for your own absences and late marks to be excused."))
    reason = reason.strip()
    if not reason:
        raise ExcuseError(_("Say why you were absent or late."))
    if len(reason) > REASON_MAX:
        raise ExcuseError(
            _("The reason is %(length)s characters long; keep it under %(limit)s.")
            % {"length": len(reason), "limit": REASON_MAX}
        )
    checked = None
    if document is not None:
        try:
            checked = document_check(document)
        except DocumentError as exc:
            raise ExcuseError(str(exc)) from None
    with transaction.atomic():
        record = AttendanceRecord.objects.select_for_update().get(pk=record.pk)
        if record.status not in EXCUSABLE:
            raise ExcuseError(
                _("Only an absence or a late mark can be excused; this one is %(status)s.")
                % {"status": record.get_status_display().lower()}
            )
        if record.excuses.filter(status=Excuse.Status.PENDING).exists():
            raise ExcuseError(_("You have already asked for this one; wait for the lecturer's answer."))
        excuse = Excuse(record=record, student_id=record.student_id, reason=reason, record_status=record.status)
        if checked is not None:
            excuse.document_type = checked.content_type
            excuse.document.save(f"document{checked.extension}", ContentFile(checked.content), save=False)
        try:
            with transaction.atomic():
                excuse.save()
        except IntegrityError:  # the same request sent twice at once
            if excuse.document:
                excuse.document.delete(save=False)
            raise ExcuseError(_("You have already asked for this one; wait for the lecturer's answer.")) from None
        _trail(record, by, f"Excuse requested: {reason}")
    return excuse


def can_decide(user: User, excuse: Excuse) -> bool:
    return permissions.can_manage_course(user, excuse.record.session.course)


def excuse_decide(*, excuse: Excuse, by: User, approve: bool, note: str = "") -> Excuse:
    """Approve (the record becomes excused) or decline (it stays as it was), with a note to the student."""
    if not can_decide(by, excuse):
        raise ExcusePermissionError(_("Only a lecturer of this course can decide on its excuses."))
    note = note.strip()
    if len(note) > NOTE_MAX:
        raise ExcuseError(
            _("The note is %(length)s characters long; keep it under %(limit)s.")
            % {"length": len(note), "limit": NOTE_MAX}
        )
    with transaction.atomic():
        excuse = (
            Excuse.objects.select_for_update().select_related("record__session__course", "student").get(pk=excuse.pk)
        )
        if excuse.status != Excuse.Status.PENDING:
            raise ExcuseError(
                _("This excuse was already %(status)s.") % {"status": excuse.get_status_display().lower()}
            )
        record = AttendanceRecord.objects.select_for_update().get(pk=excuse.record_id)
        if approve:
            if record.status != excuse.record_status:
                raise ExcuseError(
                    _("The record was changed to %(status)s since the student asked; "
                      "decline this excuse or correct the record by hand.")
                    % {"status": record.get_status_display().lower()}
                )
            attendance_record_set(
                session=excuse.record.session,
                student=excuse.student,
                status=AttendanceRecord.Status.EXCUSED,
                by=by,
                reason=f"Excuse approved: {note}" if note else "Excuse approved",
            )
        else:
            _trail(record, by, f"Excuse declined: {note}" if note else "Excuse declined")
        excuse.status = Excuse.Status.APPROVED if approve else Excuse.Status.DECLINED
        excuse.decided_by, excuse.decided_at, excuse.note = by, timezone.now(), note
        excuse.save(update_fields=["status", "decided_by", "decided_at", "note"])
    return excuse
