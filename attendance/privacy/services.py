"""Biometric data: consent withdrawal, a student's data export, and the retention of check-in snapshots.

Withdrawal deletes every piece of face data the student left behind (embeddings, enrolment videos,
check-in snapshots showing them) and takes them out of every course index. Attendance history is
not biometric data and stays. Files are deleted only after the database commit, so a rolled-back
withdrawal never leaves rows pointing at missing files.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Count, F
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from redis.exceptions import RedisError

from attendance import permissions
from attendance.courses.indexes import course_index_rebuild
from attendance.models import (
    AccessEvent,
    AttendanceChange,
    AttendanceRecord,
    CheckinSnapshot,
    Course,
    CourseMembership,
    Excuse,
    FaceEmbedding,
    FaceEnrolment,
    Session,
    User,
)
from attendance.platform.access_trail import access_event_record
from attendance.platform.redis import redis_client, sightings_pattern

logger = logging.getLogger(__name__)


# The shape of FaceEnrolment.progress that the enrolment page reads (stage, label, percent, counters).
WITHDRAWN_PROGRESS = {
    "stage": "withdrawn", "label": gettext_noop("Consent withdrawn: face data deleted"), "percent": 100, "done": 0,
    "total": 0,
}


class PrivacyError(Exception):
    """A privacy request that cannot be carried out; the message says why."""


@dataclass(frozen=True)
class WithdrawalResult:
    embeddings_deleted: int
    videos_deleted: int
    snapshots_deleted: int
    enrolments_withdrawn: int
    course_ids: list[int]


def stored_files_delete(names: Iterable[str]) -> None:
    """Delete files from storage, after their rows are gone (call it on commit)."""
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            # The row is gone; a file left behind is logged loudly for an operator to remove.
            logger.exception("could not delete %s", name)


def _rebuild_course_indexes(course_ids: list[int]) -> None:
    """Rebuild each course's index without the student. Called after commit.

    The versions were already bumped inside the withdrawal's transaction, so even if a rebuild here
    fails, every process drops its cached index and rebuilds from the database before searching.
    """
    for course in Course.objects.filter(pk__in=course_ids):
        try:
            course_index_rebuild(course=course)
        except Exception:
            logger.exception("index of course %s not rebuilt after a withdrawal; it rebuilds on next use", course.pk)


def schedule_index_rebuild(course_ids: list[int]) -> None:
    if course_ids:
        transaction.on_commit(lambda: _rebuild_course_indexes(course_ids))


def consent_withdraw(*, student: User, by: User) -> WithdrawalResult:
    """Delete a student's face data and take them out of every course index; keep their attendance."""
    if not permissions.can_withdraw_consent_for(by, student):
        raise PrivacyError(_("Only the student, or an admin acting on their request, can withdraw their consent."))
    result = face_data_delete(student=student, progress=WITHDRAWN_PROGRESS)
    logger.info(
        "consent withdrawn for student %s by user %s: %d embeddings, %d videos, %d snapshots",
        student.pk, by.pk, result.embeddings_deleted, result.videos_deleted, result.snapshots_deleted,
    )
    return result


ACCOUNT_DELETED_PROGRESS = {
    "stage": "withdrawn", "label": gettext_noop("Account deleted: face data deleted"), "percent": 100, "done": 0,
    "total": 0,
}


def face_data_delete_before_account(*, student: User) -> WithdrawalResult:
    """What a withdrawal deletes, before an account is deleted (the admin's delete): the row's
    cascade would drop the embeddings but leave the video and snapshot files, the course index files
    and every process's cached index holding them. Also rebuilds the courses the student has
    attendance in, which they may have left."""
    past = AttendanceRecord.objects.filter(student=student).values_list("session__course_id", flat=True)
    return face_data_delete(student=student, progress=ACCOUNT_DELETED_PROGRESS, also_course_ids=set(past))


def _forget_sightings(student_id: int) -> None:
    """The live check-in's recent sightings of the student in every session (Redis, kept seconds;
    their embeddings sealed): a withdrawal leaves no face data behind, not even for those seconds."""
    try:
        client = redis_client()
        names = list(client.scan_iter(match=sightings_pattern(student_id), count=1000))
        if names:
            client.delete(*names)
    except RedisError as exc:  # they expire within seconds anyway
        logger.warning("could not delete the live check-in sightings of student %s: %s", student_id, exc)


def face_data_delete(
    *, student: User, progress: dict[str, Any], also_course_ids: Iterable[int] = ()
) -> WithdrawalResult:
    """Delete every piece of a student's face data and rebuild the indexes of their courses (and of
    `also_course_ids`: courses they left, whose index may still hold them)."""
    with transaction.atomic():
        # The student row lock serialises this with a new enrolment being created for them.
        User.objects.select_for_update().filter(pk=student.pk).first()
        enrolments = list(FaceEnrolment.objects.select_for_update().filter(student=student))
        videos = [e.video.name for e in enrolments if e.video and e.video.name]
        snapshots = list(CheckinSnapshot.objects.filter(students=student).select_for_update())
        snapshot_files = [s.image.name for s in snapshots if s.image and s.image.name]
        embeddings, _ = FaceEmbedding.objects.filter(student=student).delete()
        CheckinSnapshot.objects.filter(pk__in=[s.pk for s in snapshots]).delete()
        now = timezone.now()
        # A queued or processing enrolment is withdrawn too: the worker's claim on it is then lost
        # and it stores nothing.
        withdrawn = FaceEnrolment.objects.filter(student=student).exclude(status=FaceEnrolment.Status.WITHDRAWN)
        withdrawn_count = withdrawn.update(
            status=FaceEnrolment.Status.WITHDRAWN, video="", progress=progress, finished_at=now,
            error_code="", error_message="",  # a refused video's reason no longer matters once withdrawn
        )
        FaceEnrolment.objects.filter(student=student).exclude(video="").update(video="")
        course_ids = sorted(
            {*CourseMembership.objects.filter(student=student).values_list("course_id", flat=True), *also_course_ids}
        )
        # Every process compares this version with its cached index: bumping it here, in the same
        # transaction, means no search can use an index that still holds the deleted vectors.
        Course.objects.filter(pk__in=course_ids).update(index_version=F("index_version") + 1)
        transaction.on_commit(lambda: stored_files_delete([*videos, *snapshot_files]))
        transaction.on_commit(lambda: _forget_sightings(student.pk))
        schedule_index_rebuild(course_ids)
    return WithdrawalResult(
        embeddings_deleted=embeddings, videos_deleted=len(videos), snapshots_deleted=len(snapshots),
        enrolments_withdrawn=withdrawn_count, course_ids=course_ids,
    )


# --- Export -----------------------------------------------------------------------------------

def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def student_data_export(*, student: User, by: User | None = None) -> dict[str, Any]:
    """Everything Rollcall holds about a student, as JSON-ready data; recorded in the access trail
    as exported by `by`.

    Face embeddings are listed by count, not as vectors: 512 floats each are useless to a person and
    are the one thing a leaked export should not contain.
    """
    memberships = CourseMembership.objects.filter(student=student).select_related("course").order_by("joined_at")
    enrolments = FaceEnrolment.objects.filter(student=student).order_by("created_at")
    embedding_counts = dict(
        FaceEmbedding.objects.filter(student=student)
        .order_by()
        .values("enrolment_id")
        .annotate(n=Count("pk"))
        .values_list("enrolment_id", "n")
    )
    records = (
        AttendanceRecord.objects.filter(student=student)
        .select_related("session__course")
        .order_by("session__course__code", "session__opened_at", "pk")
    )
    if by is not None:
        access_event_record(kind=AccessEvent.Kind.EXPORT, actor=by, subject=student, detail="data export (JSON)")
    changes: dict[int, list[dict[str, Any]]] = {}
    for change in AttendanceChange.objects.filter(record__student=student).select_related("changed_by").order_by(
        "changed_at", "pk"
    ):
        changes.setdefault(change.record_id, []).append({
            "changed_at": _iso(change.changed_at),
            "changed_by": change.changed_by.display_name if change.changed_by else None,
            "old_status": change.old_status or None,
            "new_status": change.new_status,
            "reason": change.reason,
        })
    return {
        "exported_at": _iso(timezone.now()),
        "profile": {
            "username": student.username,
            "first_name": student.first_name,
            "last_name": student.last_name,
            "email": student.email,
            "student_number": student.student_number,
            "role": student.role,
            "date_joined": _iso(student.date_joined),
            "last_login": _iso(student.last_login),
        },
        "courses": [
            {"code": m.course.code, "title": m.course.title, "term": m.course.term, "joined_at": _iso(m.joined_at)}
            for m in memberships
        ],
        "face_enrolments": [
            {
                "status": e.status,
                "consent_given_at": _iso(e.consent_given_at),
                "created_at": _iso(e.created_at),
                "finished_at": _iso(e.finished_at),
                "backbone": e.backbone,
                "video_stored": bool(e.video),
                "embeddings_stored": embedding_counts.get(e.pk, 0),
                "error_message": e.error_message,
            }
            for e in enrolments
        ],
        "checkin_snapshots_stored": CheckinSnapshot.objects.filter(students=student).count(),
        "attendance": [
            {
                "course": r.session.course.code,
                "session": r.session.title,
                "session_start": _iso(r.session.starts_at),
                "status": r.status,
                "method": r.method,
                "confidence": r.confidence,
                "marked_at": _iso(r.marked_at),
                "changes": changes.get(r.pk, []),
            }
            for r in records
        ],
        "excuses": [
            {
                "course": e.record.session.course.code,
                "session_start": _iso(e.record.session.starts_at),
                "excused_status": e.record_status,
                "reason": e.reason,
                "document_stored": e.document_type or None,
                "asked_at": _iso(e.created_at),
                "state": e.status,
                "decided_at": _iso(e.decided_at),
                "note": e.note,
            }
            for e in Excuse.objects.filter(student=student).select_related("record__session__course").order_by("pk")
        ],
    }


# --- Check-in snapshots -----------------------------------------------------------------------

def checkin_snapshot_store(
    *, session: Session, jpeg: bytes, students: Iterable[User], taken_at: datetime | None = None
) -> CheckinSnapshot | None:
    """Keep a check-in frame, with the students recognised in it, only when ROLLCALL_STORE_SNAPSHOTS is on.

    Off (the default), nothing is written and None comes back: a frame holds the faces of everyone
    in the room, recognised or not, so it is not kept without a deliberate decision to keep it.
    """
    if not settings.ROLLCALL_STORE_SNAPSHOTS:
        return None
    snapshot = CheckinSnapshot(session=session, taken_at=taken_at or timezone.now())
    snapshot.image.save(f"{uuid.uuid4().hex}.jpg", ContentFile(jpeg), save=False)
    try:
        with transaction.atomic():
            snapshot.save()
            snapshot.students.set(list(students))
    except Exception:
        stored_files_delete([snapshot.image.name] if snapshot.image.name else [])  # no row points at it
        raise
    return snapshot


# --- Snapshot retention -----------------------------------------------------------------------

def snapshots_delete_expired(*, now: datetime | None = None, batch: int = 500) -> int:
    """Delete check-in snapshots (rows and image files) older than the retention period; returns how many."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.ROLLCALL_SNAPSHOT_RETENTION_DAYS)
    deleted = 0
    while True:
        with transaction.atomic():
            expired = list(
                CheckinSnapshot.objects.select_for_update(skip_locked=True)
                .filter(taken_at__lt=cutoff)
                .order_by("taken_at")
                .values_list("pk", "image")[:batch]
            )
            if not expired:
                break
            CheckinSnapshot.objects.filter(pk__in=[pk for pk, _ in expired]).delete()
            names = [image for _, image in expired if image]
            transaction.on_commit(lambda names=names: stored_files_delete(names))  # type: ignore[misc]
        deleted += len(expired)
    if deleted:
        logger.info("deleted %d check-in snapshot(s) older than %s", deleted, cutoff.isoformat())
    return deleted
