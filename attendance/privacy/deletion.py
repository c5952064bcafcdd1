"""Deleting rows that hold face data or files: courses, sessions, check-in snapshots, enrolments.

A plain delete (the Django admin's, a cascade) drops the rows and leaves what lies beside them:
snapshot images and enrolment videos in storage, a course's index files, and course indexes still
holding the vectors of a deleted enrolment. These services delete those too, once the deletion
commits, and the admin calls them instead of its own delete.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import F, QuerySet
from redis.exceptions import RedisError

from attendance.courses.indexes import course_index_files_delete
from attendance.models import CheckinSnapshot, Course, CourseMembership, FaceEmbedding, FaceEnrolment, Session
from attendance.platform.redis import session_state_clear
from attendance.privacy.services import schedule_index_rebuild, stored_files_delete

logger = logging.getLogger(__name__)


def checkin_snapshots_delete(*, snapshots: QuerySet[CheckinSnapshot]) -> int:
    """Delete check-in snapshots, rows and image files; returns how many."""
    with transaction.atomic():
        rows = list(snapshots.select_for_update().values_list("pk", "image"))
        CheckinSnapshot.objects.filter(pk__in=[pk for pk, _ in rows]).delete()
        names = [image for _, image in rows if image]
        transaction.on_commit(lambda: stored_files_delete(names))
    return len(rows)


def sessions_delete(*, sessions: QuerySet[Session]) -> int:
    """Delete sessions with their records, their snapshots' image files and their live check-in
    state; returns how many."""
    with transaction.atomic():
        ids = list(sessions.select_for_update().values_list("pk", flat=True))
        checkin_snapshots_delete(snapshots=CheckinSnapshot.objects.filter(session_id__in=ids))
        Session.objects.filter(pk__in=ids).delete()
        # Their live state in Redis too: sightings (sealed embeddings), doubtful matches, challenges.
        transaction.on_commit(lambda: _forget_live_state(ids))
    return len(ids)


def _forget_live_state(session_ids: list[int]) -> None:
    try:
        for session_id in session_ids:
            session_state_clear(session_id=session_id)
    except RedisError as exc:  # it expires within minutes anyway
        logger.warning("could not delete the live state of deleted sessions %s: %s", session_ids, exc)


def course_delete(*, course: Course) -> None:
    """Delete a course with its sessions, records and snapshot files, and its index files."""
    course_id = course.pk
    with transaction.atomic():
        if Course.objects.select_for_update().filter(pk=course_id).first() is None:
            return  # deleted already
        sessions_delete(sessions=Session.objects.filter(course_id=course_id))
        Course.objects.filter(pk=course_id).delete()
        transaction.on_commit(lambda: course_index_files_delete(course_id=course_id))


def _indexes_without(student_ids: set[int]) -> None:
    """Move the index versions of these students' courses (in the caller's transaction, so no search
    uses an index holding vectors deleted in it) and rebuild them after the commit."""
    course_ids = sorted(
        set(CourseMembership.objects.filter(student_id__in=student_ids).values_list("course_id", flat=True))
    )
    Course.objects.filter(pk__in=course_ids).update(index_version=F("index_version") + 1)
    schedule_index_rebuild(course_ids)


def face_embeddings_delete(*, embeddings: QuerySet[FaceEmbedding]) -> int:
    """Delete embeddings and take them out of their students' course indexes; returns how many."""
    with transaction.atomic():
        rows = list(embeddings.select_for_update().values_list("pk", "student_id"))
        FaceEmbedding.objects.filter(pk__in=[pk for pk, _ in rows]).delete()
        _indexes_without({student for _, student in rows})
    return len(rows)


def face_enrolment_delete(*, enrolment: FaceEnrolment) -> None:
    """Delete one enrolment: its video file, its embeddings, and its vectors from the indexes of
    the student's courses (their versions move in the same transaction, so no search uses an index
    that still holds them; the rebuilds follow the commit)."""
    with transaction.atomic():
        locked = FaceEnrolment.objects.select_for_update().filter(pk=enrolment.pk).first()
        if locked is None:
            return
        video = locked.video.name if locked.video else ""
        had_vectors = FaceEmbedding.objects.filter(enrolment=locked).exists()
        locked.delete()
        if had_vectors:
            _indexes_without({locked.student_id})
        transaction.on_commit(lambda: stored_files_delete([video] if video else []))
