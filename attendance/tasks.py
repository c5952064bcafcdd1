"""Celery tasks: ids in, one service call, retry policy on the decorator."""

from __future__ import annotations

from typing import Any

from celery import shared_task


@shared_task(name="attendance.ping")
def ping(value: int) -> int:
    """Round-trip check used by the health tests: proves a worker runs tasks and results return."""
    return value + 1


@shared_task(name="attendance.beat_heartbeat", ignore_result=True)
def beat_heartbeat() -> None:
    """Celery beat sends this every ROLLCALL_BEAT_HEARTBEAT_SECONDS. Its work is done as beat sends
    it (attendance/platform/health.py: beat_heartbeat_record); the worker has nothing left to do."""


@shared_task(name="attendance.snapshots_delete_expired", acks_late=True)
def snapshots_delete_expired() -> int:
    """Celery beat runs this hourly: check-in snapshots older than the retention period are deleted."""
    from attendance.privacy.services import snapshots_delete_expired as delete_expired

    return delete_expired()


@shared_task(name="attendance.roster_uploads_prune", acks_late=True)
def roster_uploads_prune() -> int:
    """Celery beat runs this hourly: roster files uploaded and never imported go after a day."""
    from attendance.campus.uploads import upload_prune

    return upload_prune()


@shared_task(name="attendance.roster_import_job", acks_late=True, reject_on_worker_lost=True)
def roster_import_job(token: str, user_id: int, kind: str, remove_absent: bool = False) -> str:
    """A large roster file's preview or import (campus.import_jobs), its progress beside the upload.
    Safe to deliver twice: a finished job is not run again, and the import plans again inside its
    one transaction, so a second run after a crash writes what the first did not."""
    from attendance.campus.import_jobs import job_run

    return job_run(token=token, user_id=user_id, kind=kind, remove_absent=remove_absent)


@shared_task(name="attendance.face_data_retention", acks_late=True)
def face_data_retention() -> int:
    """Celery beat runs this hourly: notices before, and deletion after, the face data retention period."""
    from attendance.privacy.retention import face_data_retention_sweep

    return face_data_retention_sweep().students_deleted


@shared_task(name="attendance.warnings_check", acks_late=True)
def warnings_check() -> int:
    """Celery beat runs this every ten minutes: new crossings below a course's threshold are recorded
    with their emails, then every email due is sent (those the SMTP server did not take wait for the
    next run). Safe to run twice at once: the database allows one open warning per student and course,
    and a row is locked while its email is sent."""
    from attendance.warnings.delivery import warning_emails_send
    from attendance.warnings.services import warnings_check as check

    check()
    return warning_emails_send().sent


@shared_task(name="attendance.warning_digests", acks_late=True)
def warning_digests() -> int:
    """Celery beat runs this hourly: the first run of the week from Monday 07:00 writes and sends the
    lecturers' weekly digests (their key stops a second one that week)."""
    from attendance.warnings.delivery import warning_emails_send
    from attendance.warnings.services import warning_digests_queue

    warning_digests_queue()
    return warning_emails_send().sent


@shared_task(
    name="attendance.enrolment_process",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=3,
)
def enrolment_process(self: Any, enrolment_id: int) -> str:
    """Turn a queued enrolment video into embeddings and rebuild the student's course indexes.

    Safe to deliver twice (the service claims the row with a conditional update). A rejected video
    is not an error here: it ends as a failed enrolment with its reason. Anything else (the
    database or the model failing) is retried with backoff; after the last try the enrolment is
    failed by the service, and the stale sweep catches a worker that died without a word.
    """
    from attendance.enrolment.processing import enrolment_video_process

    try:
        enrolment = enrolment_video_process(enrolment_id=enrolment_id)
    except Exception as exc:
        raise self.retry(exc=exc, countdown=min(60, 5 * 2**self.request.retries)) from exc
    return "skipped" if enrolment is None else str(enrolment.status)


@shared_task(name="attendance.enrolment_requeue_stale", acks_late=True)
def enrolment_requeue_stale() -> int:
    """Celery beat runs this every few minutes: jobs whose worker died, or whose message was lost,
    are sent again."""
    from attendance.enrolment.services import enrolment_requeue_stale as requeue

    return requeue()


@shared_task(name="attendance.course_index_rebuild", acks_late=True, max_retries=3, bind=True)
def course_index_rebuild(self: Any, course_id: int) -> int:
    """Rebuild one course's FAISS index from the database; returns its vector count."""
    from attendance.courses.indexes import course_index_rebuild as rebuild
    from attendance.models import Course

    course = Course.objects.filter(pk=course_id).first()
    if course is None:
        return 0
    try:
        return rebuild(course=course)
    except Exception as exc:
        raise self.retry(exc=exc, countdown=10) from exc


@shared_task(name="attendance.sessions_close_due", acks_late=True)
def sessions_close_due() -> int:
    """Celery beat runs this every minute: open sessions past their end close themselves."""
    from attendance.sessions.autoclose import sessions_close_due as close_due

    return close_due()
