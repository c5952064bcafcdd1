"""Decoding ahead in a background thread gives exactly the frames, errors and cleanup of plain decoding."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from recognition import VideoTruncatedError, iter_frames, read_frames


def test_prefetched_frames_equal_the_plain_ones(talking_video: Path):
    plain = read_frames(talking_video, target_fps=4.0, max_frames=12, max_side=256)
    ahead = list(iter_frames(talking_video, target_fps=4.0, max_frames=12, max_side=256, prefetch=3))
    assert [f.index for f in ahead] == [f.index for f in plain]
    assert [f.time_s for f in ahead] == [f.time_s for f in plain]
    assert all(np.array_equal(a.image, p.image) for a, p in zip(ahead, plain, strict=True))


def test_decoding_runs_ahead_of_a_slow_consumer(talking_video: Path):
    frames = iter_frames(talking_video, target_fps=4.0, max_frames=6, max_side=128, prefetch=2)
    first = next(frames)
    time.sleep(0.5)  # the decoder fills its queue meanwhile
    started = time.perf_counter()
    second, third = next(frames), next(frames)
    assert time.perf_counter() - started < 0.05
    assert first.index < second.index < third.index
    frames.close()  # type: ignore[attr-defined]


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
