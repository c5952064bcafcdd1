"""Face detection with YuNet (OpenCV's cv2.FaceDetectorYN)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from .errors import ModelUnavailableError
from .types import Face
from .weights import download_file, sha256_of

YUNET_FILENAME = "face_detection_yunet_2023mar.onnx"
_ZOO = "https://github.com/opencv/opencv_zoo/raw/main/models"
YUNET_URL = f"{_ZOO}/face_detection_yunet/{YUNET_FILENAME}"
YUNET_SHA256 = "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"


class Detector(Protocol):
    """What the pipeline needs of a face detector: FaceDetector (YuNet) and DlibFaceDetector."""

    def detect(self, rgb: np.ndarray, *, pad: float = 0.0) -> list[Face]: ...


def resolve_detector_model(cache_dir: str | os.PathLike[str], *, download: bool = True) -> Path:
    """The path of the YuNet model in ``cache_dir``, downloaded from OpenCV Zoo if absent.

    A cached file with the wrong checksum (a partial or tampered download) is deleted and fetched
    again once. Without the file and without a download, raises ModelUnavailableError.
    """
    target = Path(cache_dir) / YUNET_FILENAME
    if target.is_file():
        if sha256_of(target) == YUNET_SHA256:
            return target
        target.unlink()
    if not download:
        raise ModelUnavailableError(
            f"The face detector model is not at {target} and downloading is off: copy "
            f"{YUNET_FILENAME} (sha256 {YUNET_SHA256}) there from {YUNET_URL}."
        )
    download_file(YUNET_URL, target, sha256=YUNET_SHA256, what="the face detector model")
    return target


class FaceDetector:
    """Finds faces with YuNet. Construction only checks the file; the network loads on first use.

    ``max_side``: larger images are shrunk for detection (boxes come back in the caller's
    pixels), which keeps a 4K photo from costing seconds. ``min_face_size``: faces whose box's
    longer side is smaller, in the caller's pixels, are dropped: too small to recognise.
    One detector may be shared between threads; calls are serialised.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        score_threshold: float = 0.8,
        nms_threshold: float = 0.3,
        min_face_size: int = 32,
        max_side: int = 1280,
        top_k: int = 5000,
    ) -> None:
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise ModelUnavailableError(
                f"No face detector model at {self.model_path}: set the path to "
                f"{YUNET_FILENAME}, or fetch it with resolve_detector_model()."
            )
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.min_face_size = min_face_size
        self.max_side = max_side
        self.top_k = top_k
        self._net: cv2.FaceDetectorYN | None = None
        self._lock = threading.Lock()

    def _load(self) -> cv2.FaceDetectorYN:
        if self._net is None:
            try:
                self._net = cv2.FaceDetectorYN.create(
                    str(self.model_path),
                    "",
                    (320, 320),
                    self.score_threshold,
                    self.nms_threshold,
                    self.top_k,
                )
            except cv2.error as exc:
                raise ModelUnavailableError(
                    f"{self.model_path} is not a usable YuNet model ({exc}); replace it with "
                    f"{YUNET_FILENAME} (sha256 {YUNET_SHA256})."
                ) from exc
        return self._net

    def detect(self, rgb: np.ndarray, *, pad: float = 0.0) -> list[Face]:
        """Every face in an RGB (or grey) uint8 image, best score first.

        ``pad`` adds a border of that fraction of the image's longer side (edge pixels repeated)
        before detecting: a photo cropped tight to one face, like a passport chip, otherwise
        leaves YuNet too little context. Boxes and landmarks are in the unpadded image's pixels.
        """
        prepared = detector_input(rgb, pad=pad, max_side=self.max_side)
        if prepared is None:
            return []
        image, border, padded_w, padded_h = prepared
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        with self._lock:
            net = self._load()
            net.setInputSize((bgr.shape[1], bgr.shape[0]))
            _, rows = net.detect(bgr)
        if rows is None:
            return []
        # The resize may round each side differently; undo each axis with its own factor.
        sx, sy = padded_w / bgr.shape[1], padded_h / bgr.shape[0]
        faces = []
        for row in np.asarray(rows, dtype=np.float64):
            x, y, w, h = row[0] * sx - border, row[1] * sy - border, row[2] * sx, row[3] * sy
            if max(w, h) < self.min_face_size:
                continue
            points = row[4:14].reshape(5, 2) * (sx, sy) - border
            faces.append(
                Face(
                    box=(float(x), float(y), float(w), float(h)),
                    landmarks=points.astype(np.float32),
                    score=float(row[14]),
                )
            )
        faces.sort(key=lambda face: face.score, reverse=True)
        return faces


def detector_input(rgb: np.ndarray, *, pad: float, max_side: int) -> tuple[np.ndarray, int, int, int] | None:
    """What a detector runs on: the RGB image with ``pad`` (a fraction of the longer side) of
    repeated edge pixels around it, shrunk to at most ``max_side``; with the border in pixels and
    the padded width and height, to map boxes back. None for an image too small to hold a face."""
    image = _as_rgb(rgb)
    height, width = image.shape[:2]
    if min(height, width) < 2:
        return None
    border = round(max(0.0, pad) * max(height, width))
    if border:
        image = cv2.copyMakeBorder(image, border, border, border, border, cv2.BORDER_REPLICATE)
    padded_h, padded_w = image.shape[:2]
    scale = min(1.0, max_side / max(padded_h, padded_w))
    if scale < 1.0:
        size = (max(1, round(padded_w * scale)), max(1, round(padded_h * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return image, border, padded_w, padded_h


def _as_rgb(image: np.ndarray) -> np.ndarray:
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {array.dtype}")
    if array.ndim == 2:
        return cv2.cvtColor(array, cv2.COLOR_GRAY2RGB)
    if array.ndim == 3 and array.shape[2] == 3:
        return np.ascontiguousarray(array)
    if array.ndim == 3 and array.shape[2] == 4:
        return np.ascontiguousarray(array[:, :, :3])
    raise ValueError(f"expected an H x W x 3 RGB image, got shape {array.shape}")
