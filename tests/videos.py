"""Reading frames out of the shared test videos, for the tests that build clips or camera feeds."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def video_frames(
    path: Path, *, start_s: float = 0.0, end_s: float | None = None, step: int = 1, rgb: bool = False
) -> list[np.ndarray]:
    """Decoded frames between two times (BGR, as OpenCV writes them, unless ``rgb``), every ``step``-th."""
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    frames: list[np.ndarray] = []
    index = 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            t = index / fps
            keep = t >= start_s and index % step == 0
            index += 1
            if end_s is not None and t >= end_s:
                break
            if keep:
                frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) if rgb else frame)
    finally:
        capture.release()
    return frames
