"""Enrolment's errors: a code for programs and a sentence for the student saying what to do."""

from __future__ import annotations

from pathlib import PurePosixPath

from recognition import (
    EmptyVideoError,
    NotAVideoError,
    VideoError,
    VideoTooLargeError,
    VideoTooLongError,
    VideoTruncatedError,
)


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


def rejected(code: str) -> EnrolmentRejected:
    return EnrolmentRejected(code, MESSAGES[code])


def video_error_code(exc: VideoError) -> str:
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


def student_video_message(exc: VideoError) -> str:
    # recognition's messages name the stored file (a random name); say "the video" instead.
    message = str(exc)
    for prefix in ("The file", "It"):
        if message.startswith(prefix):
            return message
    first, _, rest = message.partition(" ")
    return f"The video{(' ' + rest) if rest else ''}" if PurePosixPath(first).suffix else message
