"""Video frames: evenly sampled, rotated as the file says, and clear errors for bad files."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

import recognition.video as video
from recognition import (
    EmptyVideoError,
    FaceDetector,
    NotAVideoError,
    VideoError,
    VideoTooLargeError,
    VideoTruncatedError,
    iter_frames,
    probe_video,
    read_frames,
)


def test_the_talking_video_is_probed_without_decoding_it(talking_video: Path):
    info = probe_video(talking_video)
    assert (info.width, info.height, info.fps, info.frame_count) == (512, 512, 25.0, 200)
    assert info.duration_s == pytest.approx(8.0)
    assert info.rotation == 0


def test_frames_are_sampled_evenly_at_the_target_rate(talking_video: Path):
    frames = read_frames(talking_video, target_fps=5.0, max_frames=120)
    assert len(frames) == 40  # 8 s at 5 fps
    assert [f.index for f in frames] == [2 + 5 * i for i in range(40)]
    assert frames[1].time_s - frames[0].time_s == pytest.approx(0.2)
    assert all(f.image.shape == (512, 512, 3) and f.image.dtype == np.uint8 for f in frames)


def test_the_frame_cap_spreads_frames_over_the_whole_video(talking_video: Path):
    frames = read_frames(talking_video, target_fps=25.0, max_frames=8, max_side=256)
    assert len(frames) == 8
    assert frames[0].time_s < 1.0 and frames[-1].time_s > 7.0
    assert np.diff([f.index for f in frames]).min() == 25
    assert frames[0].image.shape == (256, 256, 3)


def test_frames_are_rgb(talking_video: Path):
    frame = next(iter_frames(talking_video, max_frames=1))
    capture = cv2.VideoCapture(str(talking_video))
    for _ in range(frame.index + 1):
        ok, bgr = capture.read()
    capture.release()
    assert ok and np.array_equal(frame.image, bgr[:, :, ::-1])


@pytest.mark.slow
def test_every_sampled_frame_of_the_talking_video_has_one_face(
    talking_video: Path,
    detector: FaceDetector,
):
    frames = read_frames(talking_video, target_fps=2.0)
    assert len(frames) == 16
    assert [len(detector.detect(f.image)) for f in frames] == [1] * 16


def set_rotation(path: Path) -> None:
    """Set an MP4's display matrix to "rotate 90 degrees clockwise", as a phone filming upright
    writes over its sideways sensor pixels; the picture data is untouched."""
    data = bytearray(path.read_bytes())
    box = data.find(b"tkhd")
    matrix_at = box + 4 + (40 if data[box + 4] == 0 else 52)
    data[matrix_at : matrix_at + 36] = struct.pack(">9i", 0, 65536, 0, -65536, 0, 0, 0, 0, 1 << 30)
    path.write_bytes(bytes(data))


def test_rotation_metadata_is_honoured(talking_video: Path, tmp_path: Path, detector: FaceDetector):
    phone = tmp_path / "phone.mp4"
    writer = cv2.VideoWriter(str(phone), cv2.VideoWriter.fourcc(*"mp4v"), 25, (256, 256))
    for frame in read_frames(talking_video, target_fps=25.0, max_frames=10, max_side=256):
        sideways = np.ascontiguousarray(np.rot90(frame.image))  # stored turned a quarter left
        writer.write(cv2.cvtColor(sideways, cv2.COLOR_RGB2BGR))
    writer.release()
    set_rotation(phone)
    assert probe_video(phone).rotation == 90

    capture = cv2.VideoCapture(str(phone))
    capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)
    stored = [capture.read()[1] for _ in range(10)]
    capture.release()
    frames = read_frames(phone, target_fps=25.0)
    assert len(frames) == 10
    for frame in frames:
        expected = cv2.rotate(stored[frame.index], cv2.ROTATE_90_CLOCKWISE)[:, :, ::-1]
        assert np.array_equal(frame.image, expected)
    # Upright again: one face, its eyes level.
    faces = detector.detect(frames[0].image)
    assert len(faces) == 1
    right_eye, left_eye = faces[0].landmarks[0], faces[0].landmarks[1]
    assert left_eye[0] - right_eye[0] > 3 * abs(left_eye[1] - right_eye[1])


def test_a_webm_without_a_reliable_frame_count_is_counted_by_decoding(
    talking_video: Path,
    tmp_path: Path,
):
    path = tmp_path / "clip.webm"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"VP90"), 10, (128, 128))
    if not writer.isOpened():
        pytest.skip("this OpenCV build cannot write WebM")
    for frame in read_frames(talking_video, target_fps=3.0, max_frames=20, max_side=128):
        writer.write(cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR))
    writer.release()
    info = probe_video(path)
    assert info.frame_count == 20
    assert len(read_frames(path, target_fps=5.0)) == 10
    # Given the probe, the frames are not counted again and the same ones are sampled.
    counted: list[int] = []
    real_count = video._count_frames

    def count(*args, **kwargs):
        counted.append(1)
        return real_count(*args, **kwargs)

    video._count_frames = count  # type: ignore[assignment]
    try:
        again = list(iter_frames(path, target_fps=5.0, info=info))
    finally:
        video._count_frames = real_count  # type: ignore[assignment]
    assert counted == []
    assert [f.time_s for f in again] == [f.time_s for f in read_frames(path, target_fps=5.0)]


def test_a_text_file_is_not_a_video(tmp_path: Path):
    path = tmp_path / "lecture.mp4"
    path.write_text("hello, this is not a video\n" * 100)
    with pytest.raises(NotAVideoError, match="MP4 or WebM"):
        read_frames(path)


def test_a_photo_is_not_a_video(faces_dir: Path):
    with pytest.raises(NotAVideoError, match="JPEG image"):
        read_frames(faces_dir / "group" / "000_5.jpg")


def test_a_zero_byte_file_is_empty(tmp_path: Path):
    path = tmp_path / "upload.webm"
    path.write_bytes(b"")
    with pytest.raises(EmptyVideoError, match="0 bytes"):
        probe_video(path)


def test_a_missing_file_is_a_video_error(tmp_path: Path):
    with pytest.raises(VideoError, match="No video file"):
        read_frames(tmp_path / "nowhere.mp4")


def test_a_truncated_mp4_is_reported_as_incomplete(talking_video: Path, tmp_path: Path):
    path = tmp_path / "cut.mp4"
    data = talking_video.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # its index (moov) is at the end, so it is gone
    with pytest.raises(VideoTruncatedError, match="incomplete"):
        read_frames(path)


def test_a_video_that_ends_early_raises_instead_of_returning_part(
    talking_video: Path,
    tmp_path: Path,
):
    # AVI keeps its frame count at the front: a cut-off AVI opens, then runs out of frames.
    full = tmp_path / "full.avi"
    writer = cv2.VideoWriter(str(full), cv2.VideoWriter.fourcc(*"MJPG"), 25, (256, 256))
    for frame in read_frames(talking_video, target_fps=25.0, max_frames=40, max_side=256):
        writer.write(cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR))
    writer.release()
    cut = tmp_path / "cut.avi"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    assert probe_video(cut).frame_count == 40
    with pytest.raises(VideoTruncatedError, match="ends after"):
        read_frames(cut, target_fps=25.0)


def test_errors_come_before_the_first_frame_is_asked_for(tmp_path: Path):
    path = tmp_path / "x.mp4"
    path.write_text("not a video")
    with pytest.raises(NotAVideoError):
        iter_frames(path)  # no next(): opening alone raises


def test_absurd_resolutions_and_lengths_are_refused_before_decoding(
    talking_video: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setattr(video, "MAX_VIDEO_PIXELS", 256 * 256)
    with pytest.raises(VideoTooLargeError, match="512x512"):
        probe_video(talking_video)
    monkeypatch.setattr(video, "MAX_VIDEO_PIXELS", 8192 * 4320)
    monkeypatch.setattr(video, "MAX_VIDEO_FRAMES", 100)
    with pytest.raises(VideoTooLargeError, match="200 frames"):
        read_frames(talking_video)


def test_a_copy_keeps_working_after_the_original_is_moved(talking_video: Path, tmp_path: Path):
    # Frames are decoded lazily from the opened file: the generator owns the capture.
    copy = tmp_path / "copy.mp4"
    shutil.copy(talking_video, copy)
    frames = iter_frames(copy, max_frames=2)
    copy.rename(tmp_path / "moved.mp4")
    assert len(list(frames)) == 2


@pytest.mark.parametrize("bad", [{"target_fps": 0.0}, {"max_frames": 0}, {"max_side": 0}])
def test_nonsense_parameters_are_rejected(talking_video: Path, bad: dict[str, float]):
    with pytest.raises(ValueError):
        read_frames(talking_video, **bad)  # type: ignore[arg-type]
