"""The image and video readers fed mutated files raise only the documented exceptions (hypothesis).

Seeds are small valid files made here: a JPEG and a PNG of a real face, a Y4M written as the browser
tests write Chromium's fake camera (tests/browser.write_y4m), and an MP4 from OpenCV. Each case
flips bytes, cuts the file, splices in junk or rewrites a header field (a huge or zero size, a
frame count or rate that lies), then decodes it. The readers may succeed (a flipped pixel is still
an image) or raise recognition's documented errors; anything else (a bare ValueError, a struct or
index error from a decoder, a crash) fails the test. Every decoded result is checked for shape and
type, and a case must finish in seconds: a lying header must not make a reader decode forever.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
import time
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from recognition import ImageError, VideoError, iter_frames, load_image, probe_video
from tests.browser import write_y4m
from tests.conftest import FACES_DIR

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CASE_SECONDS = 10.0


def _face_rgb() -> np.ndarray:
    photos = sorted((FACES_DIR / "people").glob("*/*.jpg"))
    if photos:
        return np.asarray(Image.open(photos[0]).convert("RGB").resize((64, 64)))
    rng = np.random.default_rng(0)  # no shared faces here: any picture will do for a decoder
    return rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)


@cache
def seeds() -> dict[str, bytes]:
    rgb = _face_rgb()
    files: dict[str, bytes] = {}
    for fmt in ("JPEG", "PNG"):
        out = io.BytesIO()
        Image.fromarray(rgb).save(out, fmt)
        files[fmt.lower()] = out.getvalue()
    folder = Path(tempfile.mkdtemp(prefix="rollcall-fuzz-seeds-"))
    bgr = [np.roll(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), shift, axis=1) for shift in range(0, 40, 4)]
    files["y4m"] = write_y4m(bgr, folder / "seed.y4m", fps=10).read_bytes()
    writer = cv2.VideoWriter(str(folder / "seed.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 64))
    for frame in bgr:
        writer.write(frame)
    writer.release()
    files["mp4"] = (folder / "seed.mp4").read_bytes()
    assert all(files.values())
    return files


@st.composite
def mutated(draw, kind: str) -> bytes:
    data = bytearray(seeds()[kind])
    for _ in range(draw(st.integers(1, 4))):
        how = draw(st.sampled_from(["flip", "truncate", "splice", "header", "repeat"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if how == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif how == "truncate":
            del data[at:]
        elif how == "splice":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif how == "repeat":
            data[at:at] = data[at : at + draw(st.integers(1, 4096))]
        else:
            data = bytearray(_rewrite_header(bytes(data), kind, draw))
    return bytes(data)


HUGE = st.sampled_from([0, 1, 2, 65535, 65536, 100_000, 2**31 - 1, 2**31, 2**32 - 1])


def _rewrite_header(data: bytes, kind: str, draw) -> bytes:
    """A header field set to a value that lies: the picture's size, or the video's rate."""
    if kind == "y4m":
        field = draw(st.sampled_from([b"W", b"H", b"F"]))
        value = str(draw(HUGE)).encode() + (b":1" if field == b"F" else b"")
        return re.sub(rb"(?<= )" + field + rb"[0-9:]+", field + value, data, count=1)
    if kind == "png" and len(data) >= 24:  # IHDR: width and height, big-endian, at 16 and 20
        at = draw(st.sampled_from([16, 20]))
        return data[:at] + draw(HUGE).to_bytes(4, "big") + data[at + 4 :]
    if kind == "jpeg":
        sof = data.find(b"\xff\xc0")
        if sof >= 0 and len(data) > sof + 9:  # SOF0: height at +5, width at +7, two bytes each
            at = sof + draw(st.sampled_from([5, 7]))
            return data[:at] + (draw(HUGE) % 65536).to_bytes(2, "big") + data[at + 2 :]
    if kind == "mp4":
        for box in (b"mvhd", b"mdhd", b"stsz", b"stts", b"tkhd"):  # durations, sample counts, sizes
            found = data.find(box)
            if found >= 0 and draw(st.booleans()) and len(data) > found + 24:
                at = found + draw(st.integers(4, 20))
                return data[:at] + draw(HUGE).to_bytes(4, "big") + data[at + 4 :]
    return data


def _check_image(data: bytes) -> None:
    started = time.monotonic()
    try:
        rgb = load_image(data, max_side=256)
    except ImageError as exc:
        assert str(exc), "an ImageError without a message"
        event("refused with ImageError")
    else:
        event("decoded")
        assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
        assert 1 <= max(rgb.shape[:2]) <= 256
    assert time.monotonic() - started < CASE_SECONDS


def _check_video(data: bytes, suffix: str) -> None:
    fd, name = tempfile.mkstemp(suffix=suffix, prefix="rollcall-fuzz-")
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    started = time.monotonic()
    try:
        info = probe_video(name)
        assert info.width > 0 and info.height > 0 and info.frame_count > 0 and info.fps > 0
        frames = list(iter_frames(name, target_fps=5.0, max_frames=8, max_side=128))
        assert len(frames) <= 8
        for frame in frames:
            assert frame.image.dtype == np.uint8 and frame.image.ndim == 3 and max(frame.image.shape[:2]) <= 128
        event("read")
    except VideoError as exc:
        assert str(exc), "a VideoError without a message"
        event(f"refused with {type(exc).__name__}")
    finally:
        os.unlink(name)
    assert time.monotonic() - started < CASE_SECONDS


@pytest.mark.parametrize("kind", ["jpeg", "png"])
def test_the_seed_images_decode(kind):
    assert load_image(seeds()[kind]).shape == (64, 64, 3)


@pytest.mark.parametrize("kind", ["y4m", "mp4"])
def test_the_seed_videos_decode(kind, tmp_path):
    path = tmp_path / f"seed.{kind}"
    path.write_bytes(seeds()[kind])
    assert probe_video(path).frame_count == 10
    assert len(list(iter_frames(path, target_fps=10, max_frames=20))) >= 9


@FUZZ
@given(data=mutated("jpeg"))
def test_mutated_jpegs_decode_or_raise_image_error(data):
    _check_image(data)


@FUZZ
@given(data=mutated("png"))
def test_mutated_pngs_decode_or_raise_image_error(data):
    _check_image(data)


@FUZZ
@given(data=st.binary(max_size=2048))
def test_arbitrary_bytes_decode_or_raise_image_error(data):
    _check_image(data)


@FUZZ
@given(data=mutated("y4m"))
def test_mutated_y4m_videos_read_or_raise_video_error(data):
    _check_video(data, ".y4m")


@FUZZ
@given(data=mutated("mp4"))
def test_mutated_mp4_videos_read_or_raise_video_error(data):
    _check_video(data, ".mp4")
