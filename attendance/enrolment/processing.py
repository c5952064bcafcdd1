"""Processing a queued enrolment video in a worker: claim, judge, embed, store."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone, translation

from attendance import ml
from attendance.courses.indexes import student_courses_index_rebuild
from attendance.enrolment.errors import (
    EnrolmentError,
    EnrolmentRejected,
    rejected,
    student_video_message,
    too_long_message,
    video_error_code,
    video_refusal,
)
from attendance.enrolment.progress import UNSENT, ClaimLost, Progress, progress_payload
from attendance.models import FaceEmbedding, FaceEnrolment
from attendance.platform import biometric
from attendance.spaces.services import space_record
from recognition import VideoError, probe_video
from recognition.enrol import (
    EnrolmentRejection,
    EnrolmentRules,
    View,
    embed_views,
    expected_samples,
    one_person,
    video_views,
)

logger = logging.getLogger(__name__)


# A job is tried this many times (a worker crash, a database hiccup) before it is failed for good:
# a video that kills the worker every time must not loop forever.
MAX_ATTEMPTS = 3
# The judgement's thresholds: recognition.enrol's measured defaults.
RULES = EnrolmentRules()


def check_duration(duration_s: float) -> None:
    limit = settings.ROLLCALL_ENROLMENT_MAX_SECONDS
    if duration_s > limit + DURATION_SLACK_S:
        raise EnrolmentError(code="too_long", message=too_long_message(duration_s, limit))


# Half a second of slack: a browser's "10 s" recording often comes out at 10.2 s.
DURATION_SLACK_S = 0.5


def _claim(enrolment_id: int) -> FaceEnrolment | None:
    """Take the job: queued, or processing but abandoned (started longer ago than the stale limit,
    which exceeds the task's hard time limit, so its worker is certainly gone). Exactly one caller
    gets a row back; a duplicate delivery gets None and does nothing."""
    now = timezone.now()
    stale_before = now - timedelta(minutes=settings.ROLLCALL_ENROLMENT_STALE_MINUTES)
    claimable = Q(status=FaceEnrolment.Status.QUEUED) | Q(
        status=FaceEnrolment.Status.PROCESSING, started_at__lt=stale_before
    )
    updated = FaceEnrolment.objects.filter(claimable, pk=enrolment_id).update(
        status=FaceEnrolment.Status.PROCESSING,
        started_at=now,
        attempts=F("attempts") + 1,
        progress=progress_payload("reading"),
    )
    if not updated:
        return None
    return FaceEnrolment.objects.select_related("student").get(pk=enrolment_id)


@translation.override("en-gb")  # what it stores (reason, progress) is English, shown translated
def enrolment_video_process(*, enrolment_id: int, rebuild_indexes: bool = True) -> FaceEnrolment | None:
    """Process a queued enrolment video; returns the enrolment, or None when there was nothing to
    do (already done, taken by another worker, withdrawn).

    Idempotent: the claim is a conditional update, results are written in one transaction that
    also checks the claim is still ours. A rejected video ends failed with its reason. Any other
    error puts the job back to queued (failed after MAX_ATTEMPTS) and is raised for the task's
    retry. `rebuild_indexes=False` leaves the course indexes to the caller (bulk enrolment).
    """
    try:
        biometric.keyring()
    except biometric.BiometricKeyError as exc:
        # Nothing could be stored: the job stays queued, and the stale sweep sends it again until
        # an admin restores the key. The video is kept until then.
        logger.error("enrolment %s left queued: %s", enrolment_id, exc)
        return None
    problem = ml.models_problem()
    if problem is not None:
        # A model outage is the server's, not the video's: no attempt is used up. The job waits,
        # marked unsent, so the stale sweep sends it again every few minutes until the models load.
        waiting = {**progress_payload("waiting_models"), UNSENT: True}
        FaceEnrolment.objects.filter(pk=enrolment_id, status=FaceEnrolment.Status.QUEUED).update(progress=waiting)
        logger.error("enrolment %s waits for the recognition models: %s", enrolment_id, problem)
        return None
    enrolment = _claim(enrolment_id)
    if enrolment is None:
        logger.info("enrolment %s: nothing to claim (done, taken or withdrawn)", enrolment_id)
        return None
    if enrolment.attempts > MAX_ATTEMPTS:
        logger.error("enrolment %s: failing after %d attempts", enrolment.pk, enrolment.attempts - 1)
        return _fail(enrolment, rejected("processing_error"))
    progress = Progress(enrolment)
    try:
        if not enrolment.video.name or not default_storage.exists(enrolment.video.name):
            raise rejected("video_missing")
        views = _video_views(Path(enrolment.video.path), progress=progress)
        vectors = _embed(views, progress=progress)
        views, vectors = one_person(views, vectors, threshold=ml.recognition_params().threshold, rules=RULES)
        course_count = enrolment.student.memberships.count() if rebuild_indexes else 0
        progress("indexing", total=course_count)
        _store(enrolment, views, vectors, rebuild_indexes=rebuild_indexes)
    except ClaimLost:
        logger.warning("enrolment %s was withdrawn or reclaimed while processing: result discarded", enrolment.pk)
        return None
    except EnrolmentError as exc:
        return _fail(enrolment, exc)
    except EnrolmentRejection as exc:
        return _fail(enrolment, rejected(exc.code))
    except VideoError as exc:
        return _fail(enrolment, EnrolmentRejected(video_error_code(exc), student_video_message(exc),
                                                  refusal=video_refusal(exc)))
    except BaseException:
        _release(enrolment)
        raise
    enrolment.refresh_from_db()
    logger.info("enrolment %s ready: %d embeddings", enrolment.pk, len(vectors))
    return enrolment


def _video_views(path: Path, *, progress: Callable[..., None]) -> list[View]:
    progress("reading")
    info = probe_video(path)
    try:
        check_duration(info.duration_s)
    except EnrolmentError as exc:
        raise EnrolmentRejected(exc.code, exc.message) from None
    total = expected_samples(info.duration_s, RULES)
    progress("detecting", done=0, total=total, frames_total=total)
    views, _ = video_views(
        path, detector=ml.detector(), crop=ml.embedder().crop, info=info, rules=RULES,
        progress=lambda done, total, **counters: progress("detecting", done=done, total=total, **counters),
    )
    return views


def _embed(views: Sequence[View], *, progress: Callable[..., None]) -> np.ndarray:
    progress("embedding", done=0, total=len(views), to_embed=len(views))
    return embed_views(
        views, ml.embedder(), rules=RULES,
        progress=lambda done, total: progress("embedding", done=done, total=total, embedded=done),
    )


def embedding_rows(
    enrolment: FaceEnrolment, vectors: np.ndarray, times: Sequence[float | None], qualities: Sequence[float | None]
) -> list[FaceEmbedding]:
    """The rows of an enrolment's embeddings, each vector sealed with the current biometric key,
    for the caller's transaction to store (biometric.sealing_keyring says why inside it). The first
    enrolment records the site's embedding space (inside the caller's transaction)."""
    space_record(embedder=ml.embedder())
    space, dim = ml.embedder_name(), int(vectors.shape[1])
    ring = biometric.sealing_keyring()
    rows = []
    for vector, t, q in zip(vectors, times, qualities, strict=True):
        key_id, sealed = biometric.vector_encrypt(vector, student_id=enrolment.student_id, backbone=space, ring=ring)
        rows.append(FaceEmbedding(
            enrolment=enrolment, student_id=enrolment.student_id, backbone=space, dim=dim,
            vector=sealed, key_id=key_id, frame_time=t, quality=q,
        ))
    return rows


def _store(enrolment: FaceEnrolment, views: list[View], vectors: np.ndarray, *, rebuild_indexes: bool) -> None:
    """Make the new enrolment ready and the old one superseded, with the indexes, in one transaction."""
    with transaction.atomic():
        locked = FaceEnrolment.objects.select_for_update().get(pk=enrolment.pk)
        if locked.status != FaceEnrolment.Status.PROCESSING or locked.attempts != enrolment.attempts:
            raise ClaimLost
        supersede_ready(student_id=enrolment.student_id, keep=enrolment.pk)
        FaceEmbedding.objects.bulk_create(
            embedding_rows(locked, vectors, [v.time_s for v in views], [v.quality for v in views])
        )
        locked.status = FaceEnrolment.Status.READY
        locked.backbone = ml.embedder_name()
        locked.finished_at = timezone.now()
        locked.error_code = locked.error_message = ""
        locked.progress = progress_payload("done", embeddings=len(vectors))
        _drop_video(locked)
        locked.save()
        if rebuild_indexes:
            student_courses_index_rebuild(student=enrolment.student)


def supersede_ready(*, student_id: int, keep: int) -> None:
    old = FaceEnrolment.objects.select_for_update().filter(student_id=student_id, status=FaceEnrolment.Status.READY)
    old = old.exclude(pk=keep)
    FaceEmbedding.objects.filter(enrolment__in=old).delete()
    for enrolment in old.exclude(video=""):
        _drop_video(enrolment, even_if_kept=True)  # only a ready enrolment's video is re-embedded
        enrolment.save(update_fields=["video"])
    old.update(status=FaceEnrolment.Status.SUPERSEDED, progress=progress_payload("done", embeddings=0))


def _drop_video(enrolment: FaceEnrolment, *, even_if_kept: bool = False) -> None:
    """Forget the source video (after commit, so a rollback keeps it for the retry). With
    ROLLCALL_KEEP_ENROLMENT_VIDEOS a ready enrolment's video is kept (``manage.py reembed`` uses it);
    a failed or superseded one's serves nothing and goes (``even_if_kept``)."""
    name = enrolment.video.name
    if (settings.ROLLCALL_KEEP_ENROLMENT_VIDEOS and not even_if_kept) or not name:
        return
    enrolment.video = ""  # type: ignore[assignment]
    transaction.on_commit(lambda: default_storage.delete(name))


def _fail(enrolment: FaceEnrolment, error: EnrolmentError) -> FaceEnrolment | None:
    with transaction.atomic():
        locked = FaceEnrolment.objects.select_for_update().filter(pk=enrolment.pk).first()
        if locked is None or locked.status != FaceEnrolment.Status.PROCESSING or locked.attempts != enrolment.attempts:
            return None
        locked.status = FaceEnrolment.Status.FAILED
        locked.error_code = error.code
        locked.error_message = error.message
        locked.finished_at = timezone.now()
        locked.progress = {**progress_payload("failed"), "previous": locked.progress}
        if error.refusal is not None:
            locked.progress["refusal"] = error.refusal  # said in each reader's language (errors.failure_message)
        _drop_video(locked, even_if_kept=True)
        locked.save()
    logger.info("enrolment %s failed: %s", enrolment.pk, error.code)
    return locked


def _release(enrolment: FaceEnrolment) -> None:
    """After an unexpected error: back to queued for the task's retry, or failed after the last try."""
    try:
        if enrolment.attempts >= MAX_ATTEMPTS:
            _fail(enrolment, rejected("processing_error"))
            return
        FaceEnrolment.objects.filter(
            pk=enrolment.pk, status=FaceEnrolment.Status.PROCESSING, attempts=enrolment.attempts
        ).update(status=FaceEnrolment.Status.QUEUED, progress=progress_payload("retrying"))
    except Exception:
        # The database itself may be what failed; the stale pickup will find the row instead.
        logger.exception("enrolment %s: could not release the claim", enrolment.pk)
