"""Face enrolment: taking an upload, sending it to a worker, photos in bulk, and the stale sweep."""

from __future__ import annotations

import errno
import logging
from collections.abc import Sequence
from datetime import timedelta
from functools import partial
from pathlib import Path, PurePosixPath

import numpy as np
from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from attendance import jobs, ml
from attendance.courses.indexes import student_courses_index_rebuild
from attendance.enrolment import consent as consent_text
from attendance.enrolment.errors import (
    EnrolmentConflictError,
    EnrolmentError,
    EnrolmentPermissionError,
    EnrolmentRejected,
    EnrolmentUnavailableError,
    student_video_message,
    too_large_message,
    video_error_code,
)
from attendance.enrolment.processing import DURATION_SLACK_S, RULES, check_duration, embedding_rows, supersede_ready
from attendance.enrolment.progress import UNSENT, progress_payload
from attendance.models import AccessEvent, FaceEmbedding, FaceEnrolment, User, enrolment_video_path
from attendance.platform import biometric
from attendance.platform.access_trail import access_event_record
from recognition import ImageError, VideoError, load_image, probe_video

logger = logging.getLogger(__name__)
# A PNG (or any non-JPEG) photo is decoded whole: bounded so that one small file cannot take gigabytes.
ENROLMENT_IMAGE_MAX_FULL_DECODE_PIXELS = 16_000_000


def _check_who(*, student: User, by: User) -> None:
    if not by.is_active:
        raise EnrolmentPermissionError(code="forbidden", message=_("Your account is inactive."))
    if by.pk != student.pk and not by.is_admin:
        raise EnrolmentPermissionError(
            code="forbidden",
            message=_("You can only enrol your own face. An administrator can enrol a student on their behalf."),
        )
    if not student.is_student:
        raise EnrolmentError(
            code="not_a_student",
            message=_("%(name)s is not a student: only students enrol a face.") % {"name": student.display_name},
        )


def _check_consent(*, consent: bool, version: str | None, what: str) -> str:
    """The version of the text consented to; refuses no consent, or consent to an older text."""
    if not consent:
        raise EnrolmentError(code="consent_required", message=what)
    if consent_text.consent_outdated(version):
        raise EnrolmentError(
            code="consent_outdated",
            message=_("The consent text has changed since this page was opened. Read it again (reload the page) and "
              "tick the box to consent to the new text."),
        )
    return consent_text.consent_version()


def _check_key() -> None:
    try:
        biometric.keyring()
    except biometric.BiometricKeyError as exc:
        logger.error("enrolment refused, the biometric key is not usable: %s", exc)
        raise EnrolmentUnavailableError(code="face_data_locked", message=_(
            "Face enrolment is stopped on this server right now: the key that protects face data is not "
            "available, so nothing was stored. An administrator needs to restore it; try again later."
        )) from exc


def _record_on_behalf(*, enrolment: FaceEnrolment, student: User, by: User, how: str) -> None:
    if by.pk != student.pk:
        access_event_record(
            kind=AccessEvent.Kind.ENROLMENT_ON_BEHALF, actor=by, subject=student,
            detail=f"enrolment {enrolment.pk} from {how}, consent text {enrolment.consent_version}",
        )


def max_upload_bytes() -> int:
    return int(settings.ROLLCALL_ENROLMENT_MAX_UPLOAD_MB) * 1024 * 1024


def enrolment_create(
    *, student: User, video: File, consent: bool, by: User, schedule: bool = True,
    consent_version: str | None = None,
) -> FaceEnrolment:
    """Check and save an uploaded video, record it as queued and, once committed, hand it to a worker.

    Everything that can be told at once is checked before anything is stored: who uploads for whom,
    consent (to the current text: `consent_version` is the one the page showed, None for now), the
    file's size, that it is a video and not longer than the limit, and that the biometric key is
    there. `schedule=False` leaves the processing to the caller (enrol_folder runs it in-process).
    """
    _check_who(student=student, by=by)
    agreed = _check_consent(
        consent=consent, version=consent_version,
        what=_("Tick the consent box first: without consent nothing is stored or processed."),
    )
    _check_key()
    size = video.size or 0
    if size == 0:
        raise EnrolmentError(
            code="empty_file",
            message=_("The file is empty (0 bytes): record or choose the video again."),
        )
    limit_mb = settings.ROLLCALL_ENROLMENT_MAX_UPLOAD_MB
    if size > max_upload_bytes():
        raise EnrolmentError(code="too_large", message=too_large_message(size / 1024 / 1024, limit_mb))
    if FaceEnrolment.objects.filter(student=student, status__in=FaceEnrolment.ACTIVE_STATUSES).exists():
        raise _in_progress()

    # The file goes to media storage first; checking it needs a real file for FFmpeg to open.
    name = _save_video(
        enrolment_video_path(FaceEnrolment(student=student), PurePosixPath(video.name or "video").name), video
    )
    try:
        _check_video_file(Path(default_storage.path(name)))
        with transaction.atomic():
            # The student's row lock serialises two uploads for one student (two tabs, a
            # double click); the partial unique constraint is the last line of defence.
            User.objects.select_for_update().filter(pk=student.pk).first()
            if FaceEnrolment.objects.filter(student=student, status__in=FaceEnrolment.ACTIVE_STATUSES).exists():
                raise _in_progress()
            try:
                with transaction.atomic():
                    enrolment = FaceEnrolment.objects.create(
                        student=student,
                        status=FaceEnrolment.Status.QUEUED,
                        consent_given_at=timezone.now(),
                        consent_version=agreed,
                        video=name,
                        progress=progress_payload("queued"),
                        created_by=by,
                    )
            except IntegrityError:
                raise _in_progress() from None
            _record_on_behalf(enrolment=enrolment, student=student, by=by, how="a video")
            if schedule:
                transaction.on_commit(lambda: _schedule(enrolment.pk))
    except BaseException:
        default_storage.delete(name)
        raise
    logger.info("enrolment %s of student %s queued by %s (%d bytes)", enrolment.pk, student.pk, by.pk, size)
    return enrolment


def _save_video(name: str, video: File) -> str:
    """Store the upload under its (random, unique) name; on a full or failing disk, remove whatever
    part was written and say so. Django's storage leaves a half-written file behind on ENOSPC."""
    try:
        return default_storage.save(name, video)
    except OSError as exc:
        try:
            default_storage.delete(name)
        except OSError:
            logger.exception("could not remove the half-written upload %s", name)
        logger.error("enrolment upload %s not stored: %s", name, exc)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise EnrolmentUnavailableError(
                code="storage_full",
                message=_("The server has no room to store your video right now, so nothing was kept. Try again later; "
                  "if this keeps happening, tell an administrator (the media disk is full)."),
            ) from exc
        raise EnrolmentUnavailableError(
            code="storage_error",
            message=_("The server could not store your video, so nothing was kept. Try again later; if this keeps "
              "happening, tell an administrator."),
        ) from exc


def _in_progress() -> EnrolmentConflictError:
    return EnrolmentConflictError(
        code="in_progress",
        message=_("A video of yours is already being processed. Wait until it finishes (this page shows its "
          "progress); then you can record again if you need to."),
    )


def _check_video_file(path: Path) -> None:
    try:
        # A WebM's frames are counted by decoding them: stop as soon as it is over the limit.
        info = probe_video(path, max_duration_s=settings.ROLLCALL_ENROLMENT_MAX_SECONDS + DURATION_SLACK_S)
    except VideoError as exc:
        raise EnrolmentError(video_error_code(exc), student_video_message(exc)) from exc
    check_duration(info.duration_s)


def _schedule(enrolment_id: int) -> None:
    """Send the job to a worker. Runs after commit: the row and the video are stored by then, so a
    broker that cannot be reached (Redis down) must not fail the upload or lose it. The row is
    flagged unsent instead, and the stale sweep sends it on its next run once Redis is back."""
    try:
        jobs.send(jobs.ENROLMENT_PROCESS, enrolment_id)
    except Exception as exc:  # kombu and redis-py raise several unrelated types for "unreachable"
        logger.warning("enrolment %s stays queued, not sent to a worker (%s: %s); the stale sweep will send it",
                       enrolment_id, type(exc).__name__, exc)
        try:
            FaceEnrolment.objects.filter(pk=enrolment_id, status=FaceEnrolment.Status.QUEUED).update(
                progress={**progress_payload("queued"), UNSENT: True}
            )
        except Exception:  # the database too: the sweep still finds the row once it is old enough
            logger.exception("enrolment %s: could not flag it unsent", enrolment_id)


def enrolment_requeue_stale() -> int:
    """Hand abandoned jobs to a worker again; returns how many.

    Processing for longer than the stale limit means the worker died (a crash, SIGKILL, a lost
    machine); queued for that long means the task message was lost (a flushed broker). Both are
    safe to send again: the claim is conditional, so a duplicate does nothing.
    """
    cutoff = timezone.now() - timedelta(minutes=settings.ROLLCALL_ENROLMENT_STALE_MINUTES)
    with transaction.atomic():
        stale = list(
            FaceEnrolment.objects.select_for_update(skip_locked=True)
            .annotate(last_touched=Coalesce("started_at", "created_at"))
            .filter(
                Q(status=FaceEnrolment.Status.PROCESSING, started_at__lt=cutoff)
                | Q(status=FaceEnrolment.Status.QUEUED, last_touched__lt=cutoff)
                # Never sent (the broker was down at upload): no message can be on its way.
                | Q(status=FaceEnrolment.Status.QUEUED, **{f"progress__{UNSENT}": True})
            )
            .values_list("pk", flat=True)
        )
        FaceEnrolment.objects.filter(pk__in=stale, status=FaceEnrolment.Status.PROCESSING).update(
            status=FaceEnrolment.Status.QUEUED, progress=progress_payload("retrying")
        )
        FaceEnrolment.objects.filter(
            pk__in=stale, status=FaceEnrolment.Status.QUEUED, **{f"progress__{UNSENT}": True}
        ).update(progress=progress_payload("queued"))
        for enrolment_id in stale:
            transaction.on_commit(partial(_schedule, enrolment_id))
    if stale:
        logger.warning("requeued %d stale enrolment(s): %s", len(stale), stale)
    return len(stale)


def enrolment_images_create(
    *, student: User, images: Sequence[Path], by: User, consent: bool, rebuild_indexes: bool = True
) -> FaceEnrolment:
    """Enrol a student from photos at once (no video, no worker): pilots and evaluations import
    labelled folders this way. The largest face of each photo is used; photos cropped tight to
    the face (150x150 chips) are detected with padding added around them."""
    _check_who(student=student, by=by)
    agreed = _check_consent(consent=consent, version=None, what="Enrolling from photos needs the student's consent.")
    _check_key()
    detector, embedder = ml.detector(), ml.embedder()
    crops: list[np.ndarray] = []
    names: list[str] = []
    for path in images:
        try:
            rgb = load_image(path, max_full_decode_pixels=ENROLMENT_IMAGE_MAX_FULL_DECODE_PIXELS)
        except ImageError:
            continue
        # Tight chips give YuNet no context around the face; padding with repeated edges finds it.
        faces = detector.detect(rgb) or detector.detect(rgb, pad=0.25)
        if not faces:
            continue
        main = max(faces, key=lambda f: f.size)
        crops.append(embedder.crop(rgb, main))
        names.append(path.name)
    if not crops:
        raise EnrolmentRejected(code="no_face", message=ngettext(
            "No face was found in the %(n)s photo.", "No face was found in any of the %(n)s photos.", len(images)
        ) % {"n": len(images)})
    vectors = np.concatenate(
        [embedder.encode(crops[i : i + RULES.embed_batch_size]) for i in range(0, len(crops), RULES.embed_batch_size)]
    ).astype(np.float32)
    now = timezone.now()
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=student.pk).first()
        if FaceEnrolment.objects.filter(student=student, status__in=FaceEnrolment.ACTIVE_STATUSES).exists():
            raise _in_progress()
        supersede_ready(student_id=student.pk, keep=0)
        enrolment = FaceEnrolment.objects.create(
            student=student, status=FaceEnrolment.Status.READY, consent_given_at=now, created_by=by,
            consent_version=agreed, backbone=ml.embedder_name(), started_at=now, finished_at=now, attempts=1,
            progress=progress_payload("done", embeddings=len(vectors), photos=len(images)),
        )
        FaceEmbedding.objects.bulk_create(embedding_rows(enrolment, vectors, [None] * len(crops), [None] * len(crops)))
        _record_on_behalf(enrolment=enrolment, student=student, by=by, how=f"{len(crops)} photos")
        if rebuild_indexes:
            student_courses_index_rebuild(student=student)
    return enrolment
