"""Decoding ahead in a background thread gives exactly the frames, errors and cleanup of plain decoding."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from recognition import VideoTruncatedError, iter_frames, read_frames
from recognition.video import _prefetched


def test_prefetched_frames_equal_the_plain_ones(talking_video: Path):
    plain = read_frames(talking_video, target_fps=4.0, max_frames=12, max_side=256)
    ahead = list(iter_frames(talking_video, target_fps=4.0, max_frames=12, max_side=256, prefetch=3))
    assert [f.index for f in ahead] == [f.index for f in plain]
    assert [f.time_s for f in ahead] == [f.time_s for f in plain]
    assert all(np.array_equal(a.image, p.image) for a, p in zip(ahead, plain, strict=True))


def test_decoding_runs_ahead_of_a_slow_consumer(talking_video: Path):
    # Counted, not timed: while the caller holds the first frame and asks for nothing, the decoder
    # has already decoded the next ``prefetch`` frames, and at most one more (held while the
    # bounded queue is full).
    decoded: list[int] = []
    ahead = threading.Event()

    def source():
        for frame in read_frames(talking_video, target_fps=4.0, max_frames=6, max_side=128):
            decoded.append(frame.index)
            if len(decoded) == 3:
                ahead.set()
            yield frame

    frames = _prefetched(source(), 2)
    first = next(frames)
    assert ahead.wait(timeout=60), f"the decoder stopped after {len(decoded)} frame(s)"
    time.sleep(0.2)  # room to run on, which the bounded queue must stop
    assert 3 <= len(decoded) <= 4  # the one handed over + 2 queued (+ 1 waiting for a free slot)
    second, third = next(frames), next(frames)
    assert [first.index, second.index, third.index] == decoded[:3]
    frames.close()


def test_a_consumer_that_stops_early_stops_the_decoder(talking_video: Path):
    before = {t.name for t in threading.enumerate()}
    frames = iter_frames(talking_video, target_fps=4.0, max_frames=30, max_side=128, prefetch=2)
    next(frames)
    frames.close()  # type: ignore[attr-defined]
    running = [t for t in threading.enumerate() if t.name == "rollcall-video-decode" and t.name not in before]
    assert not running


def test_a_truncated_video_still_raises_through_the_prefetcher(talking_video: Path, tmp_path: Path):
    full = tmp_path / "full.avi"
    writer = cv2.VideoWriter(str(full), cv2.VideoWriter.fourcc(*"MJPG"), 25, (128, 128))
    for frame in read_frames(talking_video, target_fps=25.0, max_frames=40, max_side=128):
        writer.write(cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR))
    writer.release()
    cut = tmp_path / "cut.avi"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    frames = iter_frames(cut, target_fps=25.0, prefetch=4)
    with pytest.raises(VideoTruncatedError, match="ends after"):
        list(frames)


def test_a_negative_prefetch_is_refused(talking_video: Path):
    with pytest.raises(ValueError, match="prefetch"):
        iter_frames(talking_video, prefetch=-1)
