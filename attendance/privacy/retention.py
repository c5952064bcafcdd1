"""Face data ends when its purpose ends: deleted ROLLCALL_BIOMETRIC_RETENTION_DAYS after a student
was last on a course, with an email ROLLCALL_BIOMETRIC_NOTICE_DAYS before (where there is an address).

Run hourly by Celery beat. Each run starts the clock (FaceRetention) of students with face data and
no course, stops it for those back on a course, sends due notices once (claimed with a conditional
update, so two sweeps never send two), and deletes what is due. A student with an address is never
deleted sooner than the notice period after their notice went out, so a beat that was down does not
delete without warning; the three-year cap of the settings still bounds the whole.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from attendance.models import (
    AccessEvent,
    AttendanceRecord,
    CourseMembership,
    FaceEmbedding,
    FaceEnrolment,
    FaceRetention,
    User,
)
from attendance.platform.access_trail import access_event_record
from attendance.platform.language import supported
from attendance.privacy.services import face_data_delete

logger = logging.getLogger(__name__)

RETENTION_PROGRESS = {
    "stage": "withdrawn", "label": gettext_noop("Face data deleted: no course for the retention period"),
    "percent": 100, "done": 0, "total": 0,
}


@dataclass(frozen=True)
class RetentionSweep:
    clocks_started: int
    clocks_stopped: int
    notices_sent: int
    students_deleted: int


@dataclass(frozen=True)
class RetentionDue:
    student: User
    no_course_since: datetime
    notice_sent_at: datetime | None
    delete_after: datetime


def _holders() -> QuerySet[User]:
    """Students with face data: embeddings, or an enrolment still holding its video."""
    return User.objects.filter(
        Exists(FaceEmbedding.objects.filter(student=OuterRef("pk")))
        | Exists(FaceEnrolment.objects.filter(student=OuterRef("pk")).exclude(video=""))
    )


def _on_a_course() -> Exists:
    return Exists(CourseMembership.objects.filter(student=OuterRef("student")))


def delete_after(retention: FaceRetention) -> datetime:
    """When a clock's face data is due for deletion."""
    due = retention.no_course_since + timedelta(days=settings.ROLLCALL_BIOMETRIC_RETENTION_DAYS)
    if retention.notice_sent_at is not None:
        due = max(due, retention.notice_sent_at + timedelta(days=settings.ROLLCALL_BIOMETRIC_NOTICE_DAYS))
    return due


def retention_due(*, within_days: int | None = None, now: datetime | None = None) -> list[RetentionDue]:
    """Running clocks, soonest deletion first (only those due within `within_days`, if given)."""
    now = now or timezone.now()
    rows = [
        RetentionDue(student=r.student, no_course_since=r.no_course_since, notice_sent_at=r.notice_sent_at,
                     delete_after=delete_after(r))
        for r in FaceRetention.objects.select_related("student")
    ]
    if within_days is not None:
        rows = [r for r in rows if r.delete_after <= now + timedelta(days=within_days)]
    return sorted(rows, key=lambda r: r.delete_after)


def _notice_text(retention: FaceRetention, *, student: User, when: datetime) -> tuple[str, str]:
    """The retention notice in the student's language (their saved one, else the site's)."""
    with translation.override(supported(student.language) or settings.LANGUAGE_CODE):
        context = {
            "name": student.display_name,
            "since": formats.date_format(timezone.localtime(retention.no_course_since), "DATE_FORMAT"),
            "when": formats.date_format(timezone.localtime(when), "DATE_FORMAT"),
        }
        subject = _("Rollcall will delete your face data")
        body = (
            _("Dear %(name)s,") % context + "\n\n"
            + _("you have been on no course in Rollcall since %(since)s. Your face data (the encrypted face "
                "embeddings used to take attendance by camera) will be deleted on or after %(when)s. Your "
                "attendance history is kept.") % context + "\n\n"
            + _("Nothing needs doing. If you join a course again before then, your face data stays in use; to "
                "delete it now, sign in and choose 'Withdraw consent'.") + "\n"
        )
        return str(subject), body


def _notice(retention: FaceRetention, *, now: datetime) -> bool:
    student = retention.student
    if not student.email:
        return False
    # Claim first: a second sweep running at the same time finds the notice taken and sends nothing.
    if not FaceRetention.objects.filter(pk=retention.pk, notice_sent_at__isnull=True).update(notice_sent_at=now):
        return False
    retention.notice_sent_at = now
    when = delete_after(retention)
    try:
        subject, body = _notice_text(retention, student=student, when=when)
        send_mail(subject, body, None, [student.email])
    except Exception:
        # Not sent: release the claim so the next sweep tries again, and the deletion waits for it.
        FaceRetention.objects.filter(pk=retention.pk).update(notice_sent_at=None)
        logger.exception("retention notice to student %s not sent; retried next sweep", student.pk)
        return False
    return True


def face_data_retention_sweep(*, now: datetime | None = None) -> RetentionSweep:
    now = now or timezone.now()
    holders = _holders()
    stopped, _ = FaceRetention.objects.filter(
        _on_a_course() | ~Q(student__in=holders.values("pk"))
    ).delete()
    started = 0
    # Any holder, whatever their role now: a student made a lecturer keeps no course as a student,
    # so their face data serves nothing (and they could no longer withdraw it themselves).
    for student_id in holders.exclude(
        Exists(CourseMembership.objects.filter(student=OuterRef("pk")))
    ).exclude(Exists(FaceRetention.objects.filter(student=OuterRef("pk")))).values_list("pk", flat=True):
        _, created = FaceRetention.objects.get_or_create(student_id=student_id, defaults={"no_course_since": now})
        started += created
    notice_days = settings.ROLLCALL_BIOMETRIC_NOTICE_DAYS
    notice_from = now - timedelta(days=settings.ROLLCALL_BIOMETRIC_RETENTION_DAYS - notice_days)
    notices = sum(
        _notice(r, now=now)
        for r in FaceRetention.objects.select_related("student").filter(
            no_course_since__lte=notice_from, notice_sent_at__isnull=True
        )
    )
    deleted = 0
    for retention in FaceRetention.objects.select_related("student").filter(
        no_course_since__lte=now - timedelta(days=settings.ROLLCALL_BIOMETRIC_RETENTION_DAYS)
    ):
        student = retention.student
        if delete_after(retention) > now or (student.email and retention.notice_sent_at is None and notice_days):
            continue  # told first: the notice period runs from the notice
        _retention_delete(retention, now=now)
        deleted += 1
    if started or stopped or notices or deleted:
        logger.info("face data retention: %d clocks started, %d stopped, %d notices, %d students deleted",
                    started, stopped, notices, deleted)
    return RetentionSweep(clocks_started=started, clocks_stopped=stopped, notices_sent=notices,
                          students_deleted=deleted)


def _retention_delete(retention: FaceRetention, *, now: datetime) -> None:
    student = retention.student
    # Courses they left may still have them in an index file until its next rebuild: rebuild those too.
    past_courses = set(
        AttendanceRecord.objects.filter(student=student).values_list("session__course_id", flat=True).distinct()
    )
    result = face_data_delete(student=student, progress=RETENTION_PROGRESS, also_course_ids=past_courses)
    retention.delete()
    access_event_record(
        kind=AccessEvent.Kind.RETENTION_DELETION, actor=None, subject=student, actor_label="retention sweep",
        detail=f"on no course since {retention.no_course_since:%Y-%m-%d}: {result.embeddings_deleted} embeddings, "
        f"{result.videos_deleted} videos, {result.snapshots_deleted} snapshots deleted",
    )
    logger.info("face data of student %s deleted after the retention period", student.pk)
