"""Videos for the enrolment tests, made from ../shared/faces: good, dark, blurred, faceless, cut off.

Each is a few seconds long so that a rejection costs about a second of processing; the talking head
is the only clip that goes through embedding.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from tests.conftest import FACES_DIR
from tests.videos import video_frames

KATIE_VIDEO = FACES_DIR / "videos" / "katie_hill_talking.mp4"
CROWD_VIDEO = FACES_DIR / "videos" / "stage_crowd.mp4"
SPLIT_S = 4.0




def write_mp4(frames: list[np.ndarray], path: Path, *, fps: float = 25.0) -> Path:
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for frame in frames:
        writer.write(frame)
    writer.release()
    assert path.stat().st_size > 0
    return path


class Clips:
    """The test clips, written once into one folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        first_three = video_frames(KATIE_VIDEO, end_s=3.0)
        self.katie_first_half = write_mp4(video_frames(KATIE_VIDEO, end_s=SPLIT_S), folder / "katie_first_half.mp4")
        self.katie_three_s = write_mp4(first_three, folder / "katie_3s.mp4")
        # Measured: a 0.12 gain leaves the face mean grey under 40 (MIN_BRIGHTNESS) in every frame.
        self.dark = write_mp4([np.clip(f * 0.12, 0, 255).astype(np.uint8) for f in first_three], folder / "dark.mp4")
        # Gaussian sigma 6 brings the aligned face's Laplacian variance to ~30, below MIN_SHARPNESS (60).
        self.blurred = write_mp4([cv2.GaussianBlur(f, (0, 0), 6) for f in first_three], folder / "blurred.mp4")
        negative = cv2.imread(str(sorted((FACES_DIR / "negative").iterdir())[0]))
        negative = cv2.resize(negative, (480, 360))
        # Slight drift from frame to frame, as a hand-held camera gives.
        self.no_face = write_mp4(
            [np.roll(negative, shift=i % 7, axis=1) for i in range(75)], folder / "no_face.mp4"
        )
        data = self.katie_three_s.read_bytes()
        self.truncated = folder / "truncated.mp4"
        self.truncated.write_bytes(data[: len(data) * 2 // 5])
        self.not_a_video = folder / "notes.mp4"
        self.not_a_video.write_text("These are my lecture notes, not a video.\n" * 50)
        self.photo = folder / "photo.mp4"
        photo = sorted((FACES_DIR / "people" / "john_salley").iterdir())[0]
        self.photo.write_bytes(photo.read_bytes())
        self.empty = folder / "empty.webm"
        self.empty.write_bytes(b"")
