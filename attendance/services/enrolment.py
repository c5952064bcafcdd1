"""Face enrolment: every write about a student's face data, and course memberships.

A video goes through three steps. `enrolment_create` checks what can be checked at once (consent,
who uploads for whom, size, length, that it is a video), saves it and records it as queued; on
commit a Celery task calls `enrolment_video_process`, which claims the job with a conditional
status change, reads sampled frames, keeps one person's usable faces, embeds them in batches and,
in one transaction, stores the embeddings, makes the enrolment ready (superseding the previous one)
and rebuilds every index of the student's courses. A rejected video is stored as failed with a
message telling the student what to do; the previous enrolment is untouched until a new one is
ready. A crash leaves the row queued or processing, from where it is picked up again.
"""

from __future__ import annotations

import errno
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any

import cv2
import numpy as np
from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from attendance import ml
from attendance.models import Course, CourseMembership, FaceEmbedding, FaceEnrolment, User, enrolment_video_path
from attendance.services.indexes import course_index_rebuild, student_courses_index_rebuild
from recognition import (
    EmptyVideoError,
    Face,
    ImageError,
    NotAVideoError,
    RecognitionError,
    VideoError,
    VideoTooLargeError,
    VideoTooLongError,
    VideoTruncatedError,
    face_quality,
    iter_frames,
    load_image,
    probe_video,
)

logger = logging.getLogger(__name__)

# --- Pipeline thresholds -----------------------------------------------------------------------
# Measured on ../shared/faces/videos with YuNet + dlib (scripts in the enrolment tests' comments):
# the talking-head clip passes every one of them in every sampled frame but a few, and each
# rejection below was produced on purpose (blurred, darkened, shrunk copies of that clip, the
# stage clip, a still photo) to see where recognition starts to suffer.

# 4 frames a second sees a slow head turn (left, right) in several poses without embedding
# near-identical neighbours; 48 frames caps the work for a 30 s upload at 2 s between samples.
SAMPLE_FPS = 4.0
MAX_SAMPLED_FRAMES = 48
# Frames are shrunk to this longer side before detection: a webcam face stays well above the
# minimum size, and a 4K phone video costs no more than 720p.
MAX_FRAME_SIDE = 1280

# A face whose box's longer side is below 60 px carries too little detail: dlib's embedding of
# the talking head shrunk to 50 px moved 0.16 from the full-size one (the match threshold is 0.27).
MIN_FACE_SIZE = 60
# Variance of the Laplacian of the face aligned to 112x112 grey. The sharp clip scores 1100-2600;
# Gaussian blur of sigma 4 brings it to ~75 and moves the embedding by 0.17, sigma 6 to ~30 and
# 0.25 (about the match threshold). Below 60 a face is too blurred to teach anything.
MIN_SHARPNESS = 60.0
# recognition's frontal score: 1 facing the camera, ~0.35 at the "turn slightly" poses the page
# asks for, 0 in profile. Below 0.3 the head is turned further than we ask and the landmarks
# behind alignment become unreliable.
MIN_FRONTAL = 0.3
# Mean grey level (0-255) of the aligned face crop. The clip darkened to a mean of ~18 was still
# detected but its faces were the ones that also failed sharpness; below 40 a face is too dark to
# trust, and a video whose frames average below this is reported as "too dark".
MIN_BRIGHTNESS = 40.0
# A second face counts when it is at least a third of the main face's size: a photo on the wall
# behind the student, or someone across the room, is much smaller and does not.
SECOND_FACE_MIN_RATIO = 1 / 3
# A second face in more than 20% of sampled frames (over 1.5 s of an 8 s clip) is someone beside
# or behind the student, not a passer-by, who crosses the frame in well under a second. The stage
# clip has a second face in 29% of its frames; the talking head in none.
MAX_SECOND_FACE_FRACTION = 0.2
# At least 40% of the sampled frames must give a usable face, and at least 5 distinct views
# survive: fewer, and the gallery is one pose that a later check-in photo may not match.
MIN_USABLE_FRACTION = 0.4
MIN_EMBEDDINGS = 5
# Near duplicates: two aligned crops, shrunk to 32x32 grey and normalised, with a correlation
# above 0.98 are the same picture again. Successive samples of the talking head correlate at most
# 0.96; a still photo filmed for a few seconds at >= 0.99 (camera noise only).
DUPLICATE_CORRELATION = 0.98
# More than this many views add little to a k-NN gallery and slow every search; the kept views
# are spread evenly over the clip so that every pose is represented.
MAX_EMBEDDINGS = 24
EMBED_BATCH_SIZE = 8
# One person: every kept embedding should lie near their medoid. The same person's faces in the
# talking head lie within 0.25 of it (dlib), the stage clip's different people at 0.45-0.59; 1.5x
# the match threshold (0.40 for dlib) separates them. Over 20% of views that far away means
# another person was the main face in a good part of the video.
SAME_PERSON_FACTOR = 1.5
MAX_OTHER_PERSON_FRACTION = 0.2
# A job is tried this many times (a worker crash, a database hiccup) before it is failed for good:
# a video that kills the worker every time must not loop forever.
MAX_ATTEMPTS = 3


# --- Errors ------------------------------------------------------------------------------------

class EnrolmentError(Exception):
    """An enrolment step refused: `code` for programs, `message` for the student (what to do)."""

    status_code = 400

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class EnrolmentPermissionError(EnrolmentError):
    status_code = 403


class EnrolmentConflictError(EnrolmentError):
    status_code = 409


class EnrolmentUnavailableError(EnrolmentError):
    """The server cannot take the upload now (its media disk is full or failing): nothing was kept."""

    status_code = 503


class EnrolmentRejected(EnrolmentError):
    """The pipeline refused the video: stored on the enrolment as failed, never retried."""


MESSAGES = {
    "no_face": (
        "No face was visible in most of the video. Record again facing the camera, with your whole "
        "face inside the oval, in good light."
    ),
    "several_people": (
        "More than one person appears in the video. Record again with only you in view: nobody "
        "beside or behind you."
    ),
    "too_dark": (
        "The video is too dark to see your face clearly. Record again with a light in front of you "
        "(not behind you)."
    ),
    "too_blurred": (
        "Your face is blurred in most of the video. Hold the camera still, wipe the lens and record "
        "again in good light."
    ),
    "face_too_small": (
        "Your face is too small in most of the video. Move closer, so that your face fills the oval, "
        "and record again."
    ),
    "face_turned": (
        "Your face is turned away from the camera in most of the video. Look at the camera, turning "
        "your head only slightly left and right, and record again."
    ),
    "too_still": (
        "The video shows almost the same picture all the way through. Record again and turn your "
        "head slightly left and right when the page asks."
    ),
    "processing_error": (
        "The server could not process this video after several tries. Upload it again; if that "
        "fails too, ask an administrator."
    ),
    "video_missing": "The uploaded video is no longer on the server. Upload or record it again.",
}


def _rejected(code: str) -> EnrolmentRejected:
    return EnrolmentRejected(code, MESSAGES[code])


def _video_error_code(exc: VideoError) -> str:
    if isinstance(exc, EmptyVideoError):
        return "empty_video"
    if isinstance(exc, VideoTruncatedError):
        return "truncated"
    if isinstance(exc, NotAVideoError):
        return "not_a_video"
    if isinstance(exc, VideoTooLongError):
        return "too_long"
    if isinstance(exc, VideoTooLargeError):
        return "too_large"
    return "bad_video"


# --- Progress ----------------------------------------------------------------------------------

STAGE_LABELS = {
    "queued": "Queued: waiting for a worker",
    "reading": "Reading frames",
    "detecting": "Finding faces",
    "embedding": "Embedding faces",
    "indexing": "Updating the course index",
    "done": "Done",
    "failed": "Failed",
    "retrying": "Waiting to try again after a server error",
}
# Where each stage starts on the page's progress bar, in percent.
_STAGE_START = {"queued": 0, "retrying": 0, "reading": 5, "detecting": 10, "embedding": 50, "indexing": 92, "done": 100}
_STAGE_END = {"reading": 10, "detecting": 50, "embedding": 92, "indexing": 99}


def progress_payload(stage: str, *, done: int = 0, total: int = 0, **counters: int) -> dict[str, Any]:
    """What FaceEnrolment.progress holds: the stage, a sentence for the page, a percentage and counters."""
    label = STAGE_LABELS[stage]
    if total:
        if stage == "detecting":
            label = f"Finding faces: frame {done} of {total}"
        elif stage == "embedding":
            label = f"Embedding face {done} of {total}"
        elif stage == "indexing":
            label = f"Updating the index of {total} course{'s' if total != 1 else ''}"
    start = _STAGE_START.get(stage, 100)
    end = _STAGE_END.get(stage, start)
    percent = start + (end - start) * (min(done, total) / total if total else 0)
    return {"stage": stage, "label": label, "percent": round(percent), "done": done, "total": total, **counters}


class _ClaimLost(Exception):
    """The row is no longer ours: withdrawn, or reclaimed after we were presumed dead."""


class _Progress:
    """Writes progress to the claimed row, at most every 0.3 s (and at every stage change); the
    write is conditional on our claim, so it also notices when the job is no longer ours."""

    def __init__(self, enrolment: FaceEnrolment) -> None:
        self.enrolment_id = enrolment.pk
        self.attempt = enrolment.attempts
        self.stage = ""
        self.last_write = 0.0
        self.counters: dict[str, int] = {}

    def __call__(self, stage: str, *, done: int = 0, total: int = 0, **counters: int) -> None:
        self.counters.update(counters)
        now = time.monotonic()
        if stage == self.stage and now - self.last_write < 0.3 and done < total:
            return
        self.stage, self.last_write = stage, now
        payload = progress_payload(stage, done=done, total=total, **self.counters)
        updated = FaceEnrolment.objects.filter(
            pk=self.enrolment_id, status=FaceEnrolment.Status.PROCESSING, attempts=self.attempt
        ).update(progress=payload)
        if not updated:
            raise _ClaimLost


# --- Creating an enrolment ---------------------------------------------------------------------

def _check_who(*, student: User, by: User) -> None:
    if not by.is_active:
        raise EnrolmentPermissionError("forbidden", "Your account is inactive.")
    if by.pk != student.pk and not by.is_admin:
        raise EnrolmentPermissionError(
            "forbidden",
            "You can only enrol your own face. An administrator can enrol a student on their behalf.",
        )
    if not student.is_student:
        raise EnrolmentError("not_a_student", f"{student.display_name} is not a student: only students enrol a face.")


def max_upload_bytes() -> int:
    return int(settings.ROLLCALL_ENROLMENT_MAX_UPLOAD_MB) * 1024 * 1024


def enrolment_create(
    *, student: User, video: File, consent: bool, by: User, schedule: bool = True
) -> FaceEnrolment:
    """Check and save an uploaded video, record it as queued and, once committed, hand it to a worker.

    Everything that can be told at once is checked before anything is stored: who uploads for whom,
    consent, the file's size, that it is a video and not longer than the limit. `schedule=False`
    leaves the processing to the caller (the enrol_folder command runs it in-process).
    """
    _check_who(student=student, by=by)
    if not consent:
        raise EnrolmentError(
            "consent_required",
            "Tick the consent box first: without consent nothing is stored or processed.",
        )
    size = video.size or 0
    if size == 0:
        raise EnrolmentError("empty_file", "The file is empty (0 bytes): record or choose the video again.")
    limit_mb = settings.ROLLCALL_ENROLMENT_MAX_UPLOAD_MB
    if size > max_upload_bytes():
        raise EnrolmentError(
            "too_large",
            f"The video is {size / 1024 / 1024:.0f} MB, over the {limit_mb} MB limit. Record a shorter "
            f"clip (about 10 seconds is enough) or at a lower resolution.",
        )
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
                        video=name,
                        progress=progress_payload("queued"),
                        created_by=by,
                    )
            except IntegrityError:
                raise _in_progress() from None
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
                "storage_full",
                "The server has no room to store your video right now, so nothing was kept. Try again later; "
                "if this keeps happening, tell an administrator (the media disk is full).",
            ) from exc
        raise EnrolmentUnavailableError(
            "storage_error",
            "The server could not store your video, so nothing was kept. Try again later; if this keeps "
            "happening, tell an administrator.",
        ) from exc


def _in_progress() -> EnrolmentConflictError:
    return EnrolmentConflictError(
        "in_progress",
        "A video of yours is already being processed. Wait until it finishes (this page shows its "
        "progress); then you can record again if you need to.",
    )


def _check_video_file(path: Path) -> None:
    try:
        # A WebM's frames are counted by decoding them: stop as soon as it is over the limit.
        info = probe_video(path, max_duration_s=settings.ROLLCALL_ENROLMENT_MAX_SECONDS + DURATION_SLACK_S)
    except VideoError as exc:
        raise EnrolmentError(_video_error_code(exc), _student_video_message(exc)) from exc
    _check_duration(info.duration_s)


def _check_duration(duration_s: float) -> None:
    limit = settings.ROLLCALL_ENROLMENT_MAX_SECONDS
    if duration_s > limit + DURATION_SLACK_S:
        raise EnrolmentError(
            "too_long",
            f"The video is {duration_s:.0f} seconds long; the limit is {limit} seconds. Record a shorter "
            f"clip: about 8 seconds, turning your head slightly left and right, is enough.",
        )


# Half a second of slack: a browser's "10 s" recording often comes out at 10.2 s.
DURATION_SLACK_S = 0.5


def _student_video_message(exc: VideoError) -> str:
    # recognition's messages name the stored file (a random name); say "the video" instead.
    message = str(exc)
    for prefix in ("The file", "It"):
        if message.startswith(prefix):
            return message
    first, _, rest = message.partition(" ")
    return f"The video{(' ' + rest) if rest else ''}" if PurePosixPath(first).suffix else message


def _schedule(enrolment_id: int) -> None:
    """Send the job to a worker. Runs after commit: the row and the video are stored by then, so a
    broker that cannot be reached (Redis down) must not fail the upload or lose it. The row is
    flagged unsent instead, and the stale sweep sends it on its next run once Redis is back."""
    from attendance.tasks import enrolment_process

    try:
        # ignore_result: nobody waits on this result (progress lives on the row), and asking for it
        # makes Celery subscribe to the result backend first, which with Redis down retries for
        # about 20 s and then leaves this process's result consumer broken until a restart.
        enrolment_process.apply_async((enrolment_id,), ignore_result=True)
    except Exception as exc:  # kombu and redis-py raise several unrelated types for "unreachable"
        logger.warning("enrolment %s stays queued, not sent to a worker (%s: %s); the stale sweep will send it",
                       enrolment_id, type(exc).__name__, exc)
        try:
            FaceEnrolment.objects.filter(pk=enrolment_id, status=FaceEnrolment.Status.QUEUED).update(
                progress={**progress_payload("queued"), UNSENT: True}
            )
        except Exception:  # the database too: the sweep still finds the row once it is old enough
            logger.exception("enrolment %s: could not flag it unsent", enrolment_id)


# Marks, in FaceEnrolment.progress, a queued job whose task message never reached the broker.
UNSENT = "unsent"


# --- Processing --------------------------------------------------------------------------------

@dataclass
class _View:
    """One usable face from one sampled frame, ready to embed."""

    time_s: float
    crop: np.ndarray
    quality: float
    signature: np.ndarray


@dataclass
class _Tally:
    """What the sampled frames showed, to explain a rejection."""

    sampled: int = 0
    no_face: int = 0
    second_face: int = 0
    brightness: list[float] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)


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


def enrolment_video_process(*, enrolment_id: int, rebuild_indexes: bool = True) -> FaceEnrolment | None:
    """Process a queued enrolment video; returns the enrolment, or None when there was nothing to
    do (already done, taken by another worker, withdrawn).

    Idempotent: the claim is a conditional update, results are written in one transaction that
    also checks the claim is still ours. A rejected video ends failed with its reason. Any other
    error puts the job back to queued (failed after MAX_ATTEMPTS) and is raised for the task's
    retry. `rebuild_indexes=False` leaves the course indexes to the caller (bulk enrolment).
    """
    enrolment = _claim(enrolment_id)
    if enrolment is None:
        logger.info("enrolment %s: nothing to claim (done, taken or withdrawn)", enrolment_id)
        return None
    if enrolment.attempts > MAX_ATTEMPTS:
        logger.error("enrolment %s: failing after %d attempts", enrolment.pk, enrolment.attempts - 1)
        return _fail(enrolment, _rejected("processing_error"))
    progress = _Progress(enrolment)
    try:
        if not enrolment.video.name or not default_storage.exists(enrolment.video.name):
            raise _rejected("video_missing")
        views = _video_views(Path(enrolment.video.path), progress=progress)
        vectors = _embed(views, progress=progress)
        views, vectors = _one_person(views, vectors)
        course_count = enrolment.student.memberships.count() if rebuild_indexes else 0
        progress("indexing", total=course_count)
        _store(enrolment, views, vectors, rebuild_indexes=rebuild_indexes)
    except _ClaimLost:
        logger.warning("enrolment %s was withdrawn or reclaimed while processing: result discarded", enrolment.pk)
        return None
    except EnrolmentError as exc:
        return _fail(enrolment, exc)
    except VideoError as exc:
        return _fail(enrolment, EnrolmentRejected(_video_error_code(exc), _student_video_message(exc)))
    except BaseException:
        _release(enrolment)
        raise
    enrolment.refresh_from_db()
    logger.info("enrolment %s ready: %d embeddings", enrolment.pk, len(vectors))
    return enrolment


def _expected_samples(duration_s: float) -> int:
    # The count recognition.iter_frames samples, so that the page can say "frame 12 of 32".
    return max(1, min(MAX_SAMPLED_FRAMES, int(duration_s * SAMPLE_FPS + 1e-6)))


def _video_views(path: Path, *, progress: Callable[..., None]) -> list[_View]:
    progress("reading")
    info = probe_video(path)
    try:
        _check_duration(info.duration_s)
    except EnrolmentError as exc:
        raise EnrolmentRejected(exc.code, exc.message) from None
    total = _expected_samples(info.duration_s)
    detector, embedder = ml.detector(), ml.embedder()
    tally = _Tally()
    views: list[_View] = []
    progress("detecting", done=0, total=total, frames_total=total)
    # Two frames decoded ahead: FFmpeg decodes the next frames on the other core while this one is
    # searched for faces (the detector and decoder both release the GIL).
    frames = iter_frames(path, target_fps=SAMPLE_FPS, max_frames=MAX_SAMPLED_FRAMES, max_side=MAX_FRAME_SIDE,
                         prefetch=2)
    with closing(frames):  # a lost claim stops the decoding thread at once
        for frame in frames:
            tally.sampled += 1
            tally.brightness.append(float(cv2.cvtColor(frame.image, cv2.COLOR_RGB2GRAY).mean()))
            view, reason = _frame_view(frame.image, frame.time_s, detector.detect(frame.image), embedder, tally)
            if view is not None:
                views.append(view)
            elif reason:
                tally.dropped[reason] += 1
            progress(
                "detecting", done=min(tally.sampled, total), total=total,
                frames_read=tally.sampled, faces_found=tally.sampled - tally.no_face, usable_faces=len(views),
            )
    _judge(tally, views)
    kept = _select(views)
    if len(kept) < MIN_EMBEDDINGS:
        raise _rejected("too_still")
    return kept


def _frame_view(
    rgb: np.ndarray, time_s: float, faces: list[Face], embedder: Any, tally: _Tally
) -> tuple[_View | None, str]:
    """The frame's usable face, or None and why not."""
    if not faces:
        tally.no_face += 1
        return None, ""
    faces = sorted(faces, key=lambda f: f.size, reverse=True)
    main = faces[0]
    if len(faces) > 1 and faces[1].size >= SECOND_FACE_MIN_RATIO * main.size:
        # Which of two similar faces is the student's cannot be told: the frame is not used.
        tally.second_face += 1
        return None, "second_face"
    if main.size < MIN_FACE_SIZE:
        return None, "small"
    crop = embedder.crop(rgb, main)
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    if float(grey.mean()) < MIN_BRIGHTNESS:
        return None, "dark"
    quality = face_quality(rgb, main)
    if quality.sharpness < MIN_SHARPNESS:
        return None, "blurred"
    if quality.frontal < MIN_FRONTAL:
        return None, "turned"
    return _View(time_s=time_s, crop=crop, quality=_quality_score(quality.sharpness, quality.frontal),
                 signature=_signature(grey)), ""


def _quality_score(sharpness: float, frontal: float) -> float:
    # One number for the admin and for choosing between views: pose matters most; sharpness
    # counts up to 10x the blur floor, beyond which a sharper face is no better.
    return round(frontal * min(1.0, sharpness / (10 * MIN_SHARPNESS)), 3)


def _signature(grey: np.ndarray) -> np.ndarray:
    small = cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    small -= small.mean()
    return small / (float(np.linalg.norm(small)) + 1e-6)


def _judge(tally: _Tally, views: list[_View]) -> None:
    """Reject a video that shows more than one person or too few usable faces, saying why."""
    sampled = max(1, tally.sampled)
    if tally.second_face / sampled > MAX_SECOND_FACE_FRACTION:
        raise _rejected("several_people")
    if len(views) >= max(MIN_EMBEDDINGS, MIN_USABLE_FRACTION * sampled):
        return
    too_dark = bool(tally.brightness) and float(np.median(tally.brightness)) < MIN_BRIGHTNESS
    if tally.no_face / sampled >= 0.5:
        raise _rejected("too_dark" if too_dark else "no_face")
    reasons = {"small": "face_too_small", "dark": "too_dark", "blurred": "too_blurred",
               "turned": "face_turned", "second_face": "several_people"}
    if not tally.dropped:
        raise _rejected("no_face")
    worst = tally.dropped.most_common(1)[0][0]
    raise _rejected(reasons[worst])


def _select(views: list[_View]) -> list[_View]:
    """Drop near-duplicate views, then keep at most MAX_EMBEDDINGS spread evenly over the clip."""
    kept: list[_View] = []
    for view in sorted(views, key=lambda v: -v.quality):
        if all(float(view.signature @ other.signature) <= DUPLICATE_CORRELATION for other in kept):
            kept.append(view)
    kept.sort(key=lambda v: v.time_s)
    if len(kept) > MAX_EMBEDDINGS:
        picks = np.linspace(0, len(kept) - 1, MAX_EMBEDDINGS).round().astype(int)
        kept = [kept[i] for i in sorted(set(picks.tolist()))]
    return kept


def _embed(views: Sequence[_View], *, progress: Callable[..., None]) -> np.ndarray:
    embedder = ml.embedder()
    total = len(views)
    progress("embedding", done=0, total=total, to_embed=total)
    chunks = []
    for start in range(0, total, EMBED_BATCH_SIZE):
        chunks.append(embedder.encode([v.crop for v in views[start : start + EMBED_BATCH_SIZE]]))
        progress("embedding", done=min(start + EMBED_BATCH_SIZE, total), total=total,
                 embedded=min(start + EMBED_BATCH_SIZE, total))
    if not chunks:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32)


def _one_person(views: list[_View], vectors: np.ndarray) -> tuple[list[_View], np.ndarray]:
    """Check that the kept faces are one person's: far-away views are dropped, too many rejected."""
    if len(vectors) < 2:
        return views, vectors
    distances = np.linalg.norm(vectors[:, None, :] - vectors[None, :, :], axis=2)
    medoid = int(distances.sum(axis=1).argmin())
    limit = SAME_PERSON_FACTOR * ml.recognition_params().threshold
    near = distances[medoid] <= limit
    if 1.0 - near.mean() > MAX_OTHER_PERSON_FRACTION:
        raise _rejected("several_people")
    keep = [i for i in range(len(views)) if near[i]]
    if len(keep) < MIN_EMBEDDINGS:
        raise _rejected("several_people")
    return [views[i] for i in keep], vectors[keep]


def _embedding_rows(
    enrolment: FaceEnrolment, vectors: np.ndarray, times: Sequence[float | None], qualities: Sequence[float | None]
) -> list[FaceEmbedding]:
    space, dim = ml.embedder_name(), int(vectors.shape[1])
    return [
        FaceEmbedding(
            enrolment=enrolment,
            student_id=enrolment.student_id,
            backbone=space,
            dim=dim,
            vector=np.ascontiguousarray(vector, dtype="<f4").tobytes(),
            frame_time=t,
            quality=q,
        )
        for vector, t, q in zip(vectors, times, qualities, strict=True)
    ]


def _store(enrolment: FaceEnrolment, views: list[_View], vectors: np.ndarray, *, rebuild_indexes: bool) -> None:
    """Make the new enrolment ready and the old one superseded, with the indexes, in one transaction."""
    with transaction.atomic():
        locked = FaceEnrolment.objects.select_for_update().get(pk=enrolment.pk)
        if locked.status != FaceEnrolment.Status.PROCESSING or locked.attempts != enrolment.attempts:
            raise _ClaimLost
        _supersede_ready(student_id=enrolment.student_id, keep=enrolment.pk)
        FaceEmbedding.objects.bulk_create(
            _embedding_rows(locked, vectors, [v.time_s for v in views], [v.quality for v in views])
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


def _supersede_ready(*, student_id: int, keep: int) -> None:
    old = FaceEnrolment.objects.select_for_update().filter(student_id=student_id, status=FaceEnrolment.Status.READY)
    old = old.exclude(pk=keep)
    FaceEmbedding.objects.filter(enrolment__in=old).delete()
    old.update(status=FaceEnrolment.Status.SUPERSEDED, progress=progress_payload("done", embeddings=0))


def _drop_video(enrolment: FaceEnrolment) -> None:
    """Forget the source video (after commit, so a rollback keeps it for the retry)."""
    name = enrolment.video.name
    if settings.ROLLCALL_KEEP_ENROLMENT_VIDEOS or not name:
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
        _drop_video(locked)
        locked.save()
    logger.info("enrolment %s failed: %s", enrolment.pk, error.code)
    return locked


def _release(enrolment: FaceEnrolment) -> None:
    """After an unexpected error: back to queued for the task's retry, or failed after the last try."""
    try:
        if enrolment.attempts >= MAX_ATTEMPTS:
            _fail(enrolment, _rejected("processing_error"))
            return
        FaceEnrolment.objects.filter(
            pk=enrolment.pk, status=FaceEnrolment.Status.PROCESSING, attempts=enrolment.attempts
        ).update(status=FaceEnrolment.Status.QUEUED, progress=progress_payload("retrying"))
    except Exception:
        # The database itself may be what failed; the stale pickup will find the row instead.
        logger.exception("enrolment %s: could not release the claim", enrolment.pk)


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


# --- Enrolment from photos (bulk import) -------------------------------------------------------

def enrolment_images_create(
    *, student: User, images: Sequence[Path], by: User, consent: bool, rebuild_indexes: bool = True
) -> FaceEnrolment:
    """Enrol a student from photos at once (no video, no worker): pilots and evaluations import
    labelled folders this way. The largest face of each photo is used; photos cropped tight to
    the face (150x150 chips) are detected with padding added around them."""
    _check_who(student=student, by=by)
    if not consent:
        raise EnrolmentError("consent_required", "Enrolling from photos needs the student's consent.")
    detector, embedder = ml.detector(), ml.embedder()
    crops: list[np.ndarray] = []
    names: list[str] = []
    for path in images:
        try:
            rgb = load_image(path)
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
        raise EnrolmentRejected("no_face", f"No face was found in any of the {len(images)} photos.")
    vectors = np.concatenate(
        [embedder.encode(crops[i : i + EMBED_BATCH_SIZE]) for i in range(0, len(crops), EMBED_BATCH_SIZE)]
    ).astype(np.float32)
    now = timezone.now()
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=student.pk).first()
        if FaceEnrolment.objects.filter(student=student, status__in=FaceEnrolment.ACTIVE_STATUSES).exists():
            raise _in_progress()
        _supersede_ready(student_id=student.pk, keep=0)
        enrolment = FaceEnrolment.objects.create(
            student=student, status=FaceEnrolment.Status.READY, consent_given_at=now, created_by=by,
            backbone=ml.embedder_name(), started_at=now, finished_at=now, attempts=1,
            progress=progress_payload("done", embeddings=len(vectors), photos=len(images)),
        )
        FaceEmbedding.objects.bulk_create(_embedding_rows(enrolment, vectors, [None] * len(crops), [None] * len(crops)))
        if rebuild_indexes:
            student_courses_index_rebuild(student=student)
    return enrolment


# --- Course memberships ------------------------------------------------------------------------

def _has_face_data(student: User) -> bool:
    return FaceEmbedding.objects.filter(student=student, enrolment__status=FaceEnrolment.Status.READY).exists()


def course_membership_add(*, course: Course, student: User, rebuild_index: bool = True) -> CourseMembership:
    """Put a student on a course; the course's index then includes their face (rebuilt at once).

    Adding someone already on the course changes nothing. A student without face data leaves
    the index as it is, so it is not rebuilt.
    """
    if not student.is_student:
        raise EnrolmentError("not_a_student", f"{student.display_name} is not a student.")
    with transaction.atomic():
        membership, created = CourseMembership.objects.get_or_create(course=course, student=student)
        if created and rebuild_index and _has_face_data(student):
            course_index_rebuild(course=course)
    return membership


def course_membership_remove(*, course: Course, student: User, rebuild_index: bool = True) -> bool:
    """Take a student off a course and their face out of its index; False if they were not on it."""
    with transaction.atomic():
        deleted, _ = CourseMembership.objects.filter(course=course, student=student).delete()
        if deleted and rebuild_index and _has_face_data(student):
            course_index_rebuild(course=course)
    return bool(deleted)


__all__ = [
    "MESSAGES",
    "EnrolmentConflictError",
    "EnrolmentError",
    "EnrolmentPermissionError",
    "EnrolmentRejected",
    "EnrolmentUnavailableError",
    "RecognitionError",
    "course_membership_add",
    "course_membership_remove",
    "enrolment_create",
    "enrolment_images_create",
    "enrolment_requeue_stale",
    "enrolment_video_process",
    "progress_payload",
]
