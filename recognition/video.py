"""Reading a video file into evenly spaced RGB frames."""

from __future__ import annotations

import math
import os
import queue
import threading
from collections.abc import Generator
from pathlib import Path

import cv2
import numpy as np

from .errors import (
    EmptyVideoError,
    NotAVideoError,
    VideoError,
    VideoTooLargeError,
    VideoTooLongError,
    VideoTruncatedError,
)
from .types import Frame, VideoInfo

MAX_VIDEO_PIXELS = 8192 * 4320
"""8K is the largest frame we decode; a header claiming more is a broken or hostile file."""
MAX_VIDEO_FRAMES = 1_000_000
"""About 9 hours at 30 fps: an enrolment or check-in clip is seconds long."""

# Containers whose header frame count is unreliable: browsers' MediaRecorder writes WebM without
# a duration, so OpenCV's CAP_PROP_FRAME_COUNT is meaningless and frames must be counted.
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_IMAGE_MAGIC = {
    b"\xff\xd8\xff": "a JPEG image",
    b"\x89PNG": "a PNG image",
    b"GIF8": "a GIF image",
    b"BM": "a BMP image",
}
_ROTATIONS = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


def probe_video(path: str | os.PathLike[str], *, max_duration_s: float | None = None) -> VideoInfo:
    """Open a video and report its size, rate, length and rotation without keeping frames.

    For WebM (and any file whose header has no usable frame count) the frames are counted by
    decoding them, so every field is a real number. With ``max_duration_s`` that counting stops
    as soon as the video is known to be longer, raising VideoTooLongError: a long upload costs
    the seconds the limit allows, not the decoding of all of it.
    """
    if max_duration_s is not None and max_duration_s <= 0:
        raise ValueError("max_duration_s must be positive")
    cap, info = _open(Path(path), max_duration_s=max_duration_s)
    cap.release()
    return info


def read_frames(
    path: str | os.PathLike[str],
    *,
    target_fps: float = 5.0,
    max_frames: int = 120,
    max_side: int | None = None,
) -> list[Frame]:
    """All sampled frames as a list; see ``iter_frames``."""
    return list(iter_frames(path, target_fps=target_fps, max_frames=max_frames, max_side=max_side))


def iter_frames(
    path: str | os.PathLike[str],
    *,
    target_fps: float = 5.0,
    max_frames: int = 120,
    max_side: int | None = None,
    prefetch: int = 0,
    info: VideoInfo | None = None,
) -> Generator[Frame, None, None]:
    """Sample frames evenly: ``target_fps`` per second of video, at most ``max_frames`` spread
    over the whole file. Frames come rotated as the file's metadata asks, as RGB uint8, shrunk
    so that their longer side is at most ``max_side``.

    The file is opened and checked here, so a bad file raises before the first frame is asked
    for; frames are then decoded lazily. A file that ends early raises VideoTruncatedError.
    ``prefetch`` > 0 decodes up to that many sampled frames ahead in a background thread, so that
    decoding overlaps the caller's work on the previous frame (FFmpeg and OpenCV release the GIL);
    close the generator (``contextlib.closing``) when stopping early, to stop that thread at once.
    ``info``, from ``probe_video`` of the same file a moment ago, spares a WebM being counted again
    (a full decode), and keeps the sampling consistent with the length that was checked.
    """
    if target_fps <= 0 or max_frames < 1:
        raise ValueError("target_fps must be positive and max_frames at least 1")
    if max_side is not None and max_side < 1:
        raise ValueError("max_side must be positive")
    if prefetch < 0:
        raise ValueError("prefetch must be 0 or more")
    file = Path(path)
    if info is None:
        cap, info = _open(file)
    else:
        cap = _reopen(file)
    wanted = _sample_indices(info, target_fps=target_fps, max_frames=max_frames)
    frames = _decode(cap, info, wanted, file, max_side)
    return _prefetched(frames, prefetch) if prefetch else frames


_DONE = object()


def _prefetched(frames: Generator[Frame, None, None], depth: int) -> Generator[Frame, None, None]:
    """``frames`` consumed by a background thread at most ``depth`` ahead of the caller; its errors
    are raised here, in order, and a caller that stops early stops (and releases) the decoder."""
    ready: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for frame in frames:
                if not put(frame):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            put(exc)
        finally:
            frames.close()  # releases the capture

    worker = threading.Thread(target=produce, name="rollcall-video-decode", daemon=True)
    worker.start()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        worker.join()


def _sample_indices(info: VideoInfo, *, target_fps: float, max_frames: int) -> list[int]:
    count = min(max_frames, max(1, math.floor(info.duration_s * target_fps + 1e-6)))
    step = info.frame_count / count
    # The middle of each of `count` equal slices: evenly spread, and it skips the first and last
    # frames, which are often a fade or the hand reaching for the stop button.
    return sorted({min(info.frame_count - 1, int((i + 0.5) * step)) for i in range(count)})


def _decode(
    cap: cv2.VideoCapture, info: VideoInfo, wanted: list[int], file: Path, max_side: int | None
) -> Generator[Frame, None, None]:
    try:
        targets = iter(wanted)
        target = next(targets)
        index = 0
        while True:
            # grab() without retrieve() skips the colour conversion of frames we do not keep;
            # sequential reading is slower than seeking but exact for every codec.
            if not cap.grab():
                if index >= 0.95 * info.frame_count:
                    # Headers often overstate the count by a frame or two; that is not damage.
                    return
                raise VideoTruncatedError(
                    f"{file.name} ends after {index} of its {info.frame_count} frames: it is cut "
                    "off or damaged. Upload or record it again.",
                    reason="ends_early", done=index, total=info.frame_count,
                )
            if index == target:
                ok, bgr = cap.retrieve()
                if not ok or bgr is None:
                    raise VideoTruncatedError(
                        f"Frame {index} of {file.name} cannot be decoded: the file is damaged. "
                        "Upload or record it again.",
                        reason="frame_undecodable", frame=index,
                    )
                image = _to_rgb(bgr, info, max_side)
                yield Frame(index=index, time_s=index / info.fps, image=image)
                target = next(targets, -1)
                if target < 0:
                    return
            index += 1
    finally:
        cap.release()


def _to_rgb(bgr: np.ndarray, info: VideoInfo, max_side: int | None) -> np.ndarray:
    if info.rotation in _ROTATIONS:
        bgr = cv2.rotate(bgr, _ROTATIONS[info.rotation])
    height, width = bgr.shape[:2]
    if max_side is not None and max(height, width) > max_side:
        scale = max_side / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def _open(file: Path, *, max_duration_s: float | None = None) -> tuple[cv2.VideoCapture, VideoInfo]:
    if not file.is_file():
        raise VideoError(f"No video file at {file}.", reason="missing")
    if file.stat().st_size == 0:
        raise EmptyVideoError(f"{file.name} is empty (0 bytes): upload or record the video again.", reason="empty")
    with file.open("rb") as fh:
        head = fh.read(16)
    for magic, what in _IMAGE_MAGIC.items():
        if head.startswith(magic):
            raise NotAVideoError(
                f"{file.name} is {what}, not a video: upload a video (MP4 or WebM), "
                "or add the picture as a photo instead.",
                reason="image", format=what.split()[1],
            )
    cap = cv2.VideoCapture(str(file), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        cap.release()
        if _looks_like_video(head):
            raise VideoTruncatedError(
                f"{file.name} looks like a video but cannot be opened: it is probably incomplete "
                "(an interrupted upload) or damaged. Upload or record it again.",
                reason="cannot_open",
            )
        raise NotAVideoError(f"{file.name} is not a video this server reads: send an MP4 or WebM.", reason="unreadable")
    # Rotation is applied by hand so that it does not depend on the backend's default.
    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)
    try:
        info, counted = _info(cap, file, head, max_duration_s)
    except Exception:
        cap.release()
        raise
    if not counted:
        return cap, info
    # Counting the frames consumed the capture; reopen it for decoding.
    cap.release()
    cap = cv2.VideoCapture(str(file), cv2.CAP_FFMPEG)
    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)
    return cap, info


def _reopen(file: Path) -> cv2.VideoCapture:
    """A capture of a file already probed, for decoding."""
    cap = cv2.VideoCapture(str(file), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        cap.release()
        raise VideoTruncatedError(f"{file.name} can no longer be opened: upload or record it again.",
                                  reason="reopen_failed")
    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)
    return cap


def _info(
    cap: cv2.VideoCapture, file: Path, head: bytes, max_duration_s: float | None = None
) -> tuple[VideoInfo, bool]:
    """The file's facts, and whether its frames had to be counted by decoding them."""
    width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    if width <= 0 or height <= 0:
        raise NotAVideoError(f"{file.name} has no picture (an audio file?): upload a video.", reason="no_picture")
    if width * height > MAX_VIDEO_PIXELS:
        raise VideoTooLargeError(
            f"{file.name} claims {width}x{height} pixels, more than this server decodes (8K): "
            "record at a lower resolution.",
            reason="too_many_pixels", width=width, height=height,
        )
    fps = float(cap.get(cv2.CAP_PROP_FPS))
    if not math.isfinite(fps) or fps <= 0 or fps > 1000:
        # A missing rate only affects the reported times; 25 is the common camera rate.
        fps = 25.0
    claimed = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    if not math.isfinite(claimed):
        raise VideoTooLargeError(
            f"{file.name} does not say how many frames it has: record it again with a camera or a browser.",
            reason="frame_count_unreadable",
        )
    if claimed > MAX_VIDEO_FRAMES:
        raise VideoTooLargeError(
            f"{file.name} claims {claimed:.0f} frames, more than this server decodes "
            f"({MAX_VIDEO_FRAMES}): upload a shorter clip.",
            reason="too_many_frames_claimed", claimed=int(claimed), limit=MAX_VIDEO_FRAMES,
        )
    counted = head.startswith(_EBML_MAGIC) or claimed <= 0
    limit = MAX_VIDEO_FRAMES
    if max_duration_s is not None:
        limit = min(limit, math.floor(max_duration_s * fps))
    if counted:
        frame_count, span_s = _count_frames(cap, file, limit, fps)
        # A browser's WebM is variable-rate and its rate field is a guess from the first frames'
        # timestamps, which a busy machine spaces unevenly (a "1000 fps" guess made an 8 s
        # recording look 0.1 s long, and one frame was judged). The timestamps are the truth.
        if frame_count > 1 and span_s > 0:
            fps = min(1000.0, max(1.0, (frame_count - 1) / span_s))
    else:
        frame_count = int(claimed)
    if frame_count == 0:
        raise EmptyVideoError(f"{file.name} contains no video frames: record the video again.", reason="no_frames")
    rotation = int(cap.get(cv2.CAP_PROP_ORIENTATION_META)) % 360
    if rotation in (90, 270):
        width, height = height, width
    info = VideoInfo(
        width=width,
        height=height,
        fps=fps,
        frame_count=frame_count,
        duration_s=frame_count / fps,
        rotation=rotation if rotation in _ROTATIONS else 0,
    )
    return info, counted


def _count_frames(cap: cv2.VideoCapture, file: Path, limit: int, fps: float) -> tuple[int, float]:
    """The number of frames, and the seconds from the first frame's timestamp to the last's."""
    count = 0
    first_ms = last_ms = 0.0
    while cap.grab():
        count += 1
        last_ms = float(cap.get(cv2.CAP_PROP_POS_MSEC))
        if count == 1:
            first_ms = last_ms
        if count > limit:
            if limit < MAX_VIDEO_FRAMES:
                raise VideoTooLongError(
                    f"{file.name} is longer than {limit / fps:.0f} seconds: record a shorter clip.",
                    reason="too_long", limit=f"{limit / fps:.0f}",
                )
            message = f"{file.name} has more than {MAX_VIDEO_FRAMES} frames: upload a shorter clip."
            raise VideoTooLargeError(message, reason="too_many_frames", limit=MAX_VIDEO_FRAMES)
    span_s = (last_ms - first_ms) / 1000 if math.isfinite(last_ms) and math.isfinite(first_ms) else 0.0
    return count, max(0.0, span_s)


def _looks_like_video(head: bytes) -> bool:
    return (
        head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide")
        or head.startswith(_EBML_MAGIC)
        or (head.startswith(b"RIFF") and head[8:12] == b"AVI ")
        or head.startswith(b"OggS")
        or head.startswith(b"\x00\x00\x01\xba")
    )
