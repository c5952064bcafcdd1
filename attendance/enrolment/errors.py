"""Enrolment's errors: a code for programs and a sentence for the student saying what to do."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

from django.utils import formats
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

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

    def __init__(self, code: str, message: str, *, refusal: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        # recognition's refusal of a video ({"reason": ..., "params": ...}): kept with a failed enrolment,
        # so that the reason is said in each reader's language, not parsed back out of the English.
        self.refusal = refusal


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
    "no_face": _(
        "No face was visible in most of the video. Record again facing the camera, with your whole "
        "face inside the oval, in good light."
    ),
    "several_people": _(
        "More than one person appears in the video. Record again with only you in view: nobody "
        "beside or behind you."
    ),
    "too_dark": _(
        "The video is too dark to see your face clearly. Record again with a light in front of you "
        "(not behind you)."
    ),
    "too_blurred": _(
        "Your face is blurred in most of the video. Hold the camera still, wipe the lens and record "
        "again in good light."
    ),
    "face_too_small": _(
        "Your face is too small in most of the video. Move closer, so that your face fills the oval, "
        "and record again."
    ),
    "face_turned": _(
        "Your face is turned away from the camera in most of the video. Look at the camera, turning "
        "your head only slightly left and right, and record again."
    ),
    "too_still": _(
        "The video shows almost the same picture all the way through. Record again and turn your "
        "head slightly left and right when the page asks."
    ),
    "processing_error": _(
        "The server could not process this video after several tries. Upload it again; if that "
        "fails too, ask an administrator."
    ),
    "video_missing": _("The uploaded video is no longer on the server. Upload or record it again."),
}


def rejected(code: str) -> EnrolmentRejected:
    return EnrolmentRejected(code, str(MESSAGES[code]))


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


def _english_video_message(message: str) -> str:
    # recognition's messages name the stored file (a random name); say "the video" instead.
    for prefix in ("The file", "It"):
        if message.startswith(prefix):
            return message
    first, _sep, rest = message.partition(" ")
    return f"The video{(' ' + rest) if rest else ''}" if PurePosixPath(first).suffix else message


# Failures stored before refusals kept their reason: the refusal read back from the English
# recognition/ wrote (pattern, reason, the names of its numbers), said as VIDEO_REFUSALS says it.
_STORED_REFUSALS: list[tuple[re.Pattern[str], str, tuple[str, ...]]] = [
    (re.compile(r" is empty \(0 bytes\): upload or record the video again\.$"), "empty", ()),
    (re.compile(r" is an? (\w+) image, not a video: "), "image", ("format",)),
    (re.compile(r" looks like a video but cannot be opened: "), "cannot_open", ()),
    (re.compile(r" is not a video this server reads: "), "unreadable", ()),
    (re.compile(r" can no longer be opened: "), "reopen_failed", ()),
    (re.compile(r" has no picture \(an audio file\?\): "), "no_picture", ()),
    (re.compile(r" claims (\d+)x(\d+) pixels, "), "too_many_pixels", ("width", "height")),
    (re.compile(r" claims (\d+) frames, more than this server decodes \((\d+)\)"), "too_many_frames_claimed",
     ("claimed", "limit")),
    (re.compile(r" contains no video frames: "), "no_frames", ()),
    (re.compile(r" is longer than (\d+) seconds: "), "too_long", ("limit",)),
    (re.compile(r" has more than (\d+) frames: "), "too_many_frames", ("limit",)),
]
# The upload's own limits (this module's sentences), stored in English the same way.
_STORED_LIMITS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (re.compile(r"^The video is (\d+) seconds long; the limit is (\d+) seconds\."),
     lambda m: too_long_message(int(m[1]), int(m[2]))),
    (re.compile(r"^The video is (\d+) MB, over the (\d+) MB limit\."),
     lambda m: too_large_message(int(m[1]), int(m[2]))),
]


def too_long_message(duration_s: float, limit: int) -> str:
    return gettext(
        "The video is %(duration)s seconds long; the limit is %(limit)s seconds. Record a shorter clip: "
        "about 8 seconds, turning your head slightly left and right, is enough."
    ) % {"duration": f"{duration_s:.0f}", "limit": limit}


def too_large_message(size_mb: float, limit_mb: int) -> str:
    return gettext(
        "The video is %(size)s MB, over the %(limit)s MB limit. Record a shorter clip (about 10 seconds is "
        "enough) or at a lower resolution."
    ) % {"size": f"{size_mb:.0f}", "limit": limit_mb}


def _localized_video_message(english: str) -> str | None:
    for pattern, reason, names in _STORED_REFUSALS:
        if match := pattern.search(english):
            return _refusal_message({"reason": reason, "params": dict(zip(names, match.groups(), strict=True))})
    for pattern, message in _STORED_LIMITS:
        if match := pattern.search(english):
            return message(match)
    return None


def _count(shown: Any) -> int:
    """The plural's number back from its shown form ("1.000" in Croatian)."""
    digits = "".join(ch for ch in str(shown) if ch.isdigit())
    return int(digits) if digits else 0


# recognition's refusals by reason (VideoError.reason and .params), in the reader's language.
VIDEO_REFUSALS: dict[str, Callable[[dict[str, Any]], str]] = {
    "missing": lambda p: gettext("The uploaded video is no longer on the server. Upload or record it again."),
    "empty": lambda p: gettext("The video is empty (0 bytes): upload or record the video again."),
    "image": lambda p: gettext("The video is a %(format)s image, not a video: upload a video (MP4 or WebM), "
                               "or add the picture as a photo instead.") % {"format": p["format"]},
    "cannot_open": lambda p: gettext("The video looks like a video but cannot be opened: it is probably incomplete "
                                     "(an interrupted upload) or damaged. Upload or record it again."),
    "unreadable": lambda p: gettext("The video is not a video this server reads: send an MP4 or WebM."),
    "reopen_failed": lambda p: gettext("The video can no longer be opened: upload or record it again."),
    "no_picture": lambda p: gettext("The video has no picture (an audio file?): upload a video."),
    "too_many_pixels": lambda p: gettext(
        "The video claims %(width)sx%(height)s pixels, more than this server decodes (8K): record at a lower "
        "resolution.") % {"width": p["width"], "height": p["height"]},
    "too_many_frames_claimed": lambda p: gettext(
        "The video claims %(claimed)s frames, more than this server decodes (%(limit)s): upload a shorter clip."
    ) % {"claimed": p["claimed"], "limit": p["limit"]},
    "no_frames": lambda p: gettext("The video contains no video frames: record the video again."),
    "too_long": lambda p: gettext("The video is longer than %(limit)s seconds: record a shorter clip.")
    % {"limit": p["limit"]},
    "too_many_frames": lambda p: gettext("The video has more than %(limit)s frames: upload a shorter clip.")
    % {"limit": p["limit"]},
    "ends_early": lambda p: ngettext(
        "The video ends after %(done)s of its %(total)s frame: it is cut off or damaged. Upload or record it again.",
        "The video ends after %(done)s of its %(total)s frames: it is cut off or damaged. Upload or record it again.",
        _count(p["total"])) % {"done": p["done"], "total": p["total"]},
    "frame_undecodable": lambda p: gettext("Frame %(frame)s of the video cannot be decoded: the file is damaged. "
                                           "Upload or record it again.") % {"frame": p["frame"]},
    "frame_count_unreadable": lambda p: gettext(
        "The video does not say how many frames it has: record it again with a camera or a browser."),
}


def video_refusal(exc: VideoError) -> dict[str, Any] | None:
    """What to keep of recognition's refusal to say it again later: its reason and numbers."""
    reason = getattr(exc, "reason", "")
    return {"reason": reason, "params": dict(getattr(exc, "params", {}))} if reason in VIDEO_REFUSALS else None


def _shown(value: Any) -> Any:
    """A refusal's number in the reader's format (no grouping, as the English has always shown it)."""
    return formats.number_format(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _refusal_message(refusal: Any) -> str | None:
    """The stored refusal's sentence in the active language, or None when it cannot be read back."""
    if not isinstance(refusal, dict):
        return None
    reason, params = refusal.get("reason"), refusal.get("params") or {}
    if not isinstance(reason, str) or reason not in VIDEO_REFUSALS or not isinstance(params, dict):
        return None
    try:
        return VIDEO_REFUSALS[reason]({k: _shown(v) for k, v in params.items()})
    except (KeyError, TypeError, ValueError):  # without the numbers its sentence needs: the English instead
        return None


def student_video_message(exc: VideoError) -> str:
    """recognition's refusal of a video, for the student, in the active language."""
    said = _refusal_message(video_refusal(exc))
    if said is not None:
        return said
    english = _english_video_message(str(exc))
    return _localized_video_message(english) or english


def failure_message(code: str, stored: str, refusal: Any = None) -> str:
    """A failed enrolment's reason in the reader's language: the row keeps the code, the English and,
    for a refused video, the refusal's reason and numbers (read first; failures stored before them are
    matched on the English)."""
    if code in MESSAGES:
        return str(MESSAGES[code])
    return _refusal_message(refusal) or _localized_video_message(stored) or stored
