"""Face detection with what ships in installed packages: dlib's HOG face detector and the 5-point
shape predictor of face-recognition-models. The fallback for a machine where YuNet cannot be had.

dlib's 5-point model marks the two corners of each eye and the bottom of the nose; the app (the
aligner, the quality score, the liveness challenge) wants YuNet's five points: both eye centres,
the nose tip and both mouth corners. Eye centres are the corners' midpoints; the nose tip and the
mouth corners are placed by a similarity transform fitted from the eyes and the nose bottom onto
where they sit in ARCFACE_TEMPLATE's frame (DLIB5_IN_ARCFACE), keeping the measured nose bottom's
sideways offset so that a turned head still reads as turned.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from .align import ARCFACE_TEMPLATE, similarity_transform
from .detect import detector_input
from .embed_dlib import _face_recognition_models_dir
from .errors import ModelUnavailableError
from .types import Face

SHAPE_PREDICTOR_FILENAME = "shape_predictor_5_face_landmarks.dat"

DLIB5_IN_ARCFACE = np.array(
    [[0.3359, 0.4725], [0.6489, 0.4677], [0.4982, 0.7034]],
    dtype=np.float64,
)
"""Where dlib's right eye centre, left eye centre and nose bottom fall in ARCFACE_TEMPLATE's frame
(fractions of the crop side): the mean over the 183 faces of ../shared/faces/people that both
detectors find, each mapped by the similarity that puts its YuNet landmarks on the template (spread
about 0.02 per coordinate). tests/recognition/test_detect_dlib.py checks that the derived five
points still land near YuNet's."""


def shape_predictor_path() -> Path:
    """dlib's 5-point landmark model inside the installed face-recognition-models package."""
    path = _face_recognition_models_dir() / SHAPE_PREDICTOR_FILENAME
    if not path.is_file():
        raise ModelUnavailableError(
            f"dlib's 5-point landmark model is missing: {path} (reinstall face-recognition-models)."
        )
    return path


def available() -> bool:
    """Whether this detector can be built here (dlib and face-recognition-models installed)."""
    try:
        import dlib  # noqa: F401

        shape_predictor_path()
    except (ImportError, ModelUnavailableError):
        return False
    return True


def yunet_points(shape: np.ndarray) -> np.ndarray:
    """YuNet's five landmarks (right eye, left eye, nose tip, right and left mouth corner) from
    dlib's five (0-1: the image-right eye's corners, 2-3: the image-left eye's, 4: nose bottom)."""
    points = np.asarray(shape, dtype=np.float64).reshape(5, 2)
    right_eye = (points[2] + points[3]) / 2.0  # the subject's right eye: smaller x, as in YuNet
    left_eye = (points[0] + points[1]) / 2.0
    measured = np.stack([right_eye, left_eye, points[4]])
    to_template = np.vstack([similarity_transform(measured, DLIB5_IN_ARCFACE), [0.0, 0.0, 1.0]])
    back = np.linalg.inv(to_template)[:2]
    template = np.hstack([ARCFACE_TEMPLATE, np.ones((5, 1))]) @ back.T
    # The nose tip keeps the measured nose bottom's offset from where the fit puts it: the fit
    # centres the face, the offset is the yaw that quality and the liveness challenge read.
    nose_bottom_fit = np.append(DLIB5_IN_ARCFACE[2], 1.0) @ back.T
    nose = template[2] + (points[4] - nose_bottom_fit)
    return np.stack([right_eye, left_eye, nose, template[3], template[4]]).astype(np.float32)


class DlibFaceDetector:
    """Finds faces with dlib's HOG detector and marks them with its 5-point shape predictor.

    Same interface as FaceDetector (``detect(rgb, pad=...)`` returning Face objects with YuNet's
    landmarks, best first); ``score`` is dlib's detection margin (larger is surer, not 0-1).
    ``upsample``: how many times the image is doubled before detecting: HOG finds faces from
    about 80 px, so once finds them from 40 px. Construction reads nothing; the models load on
    first use. Calls are serialised.
    """

    def __init__(
        self,
        *,
        predictor_path: str | os.PathLike[str] | None = None,
        min_face_size: int = 32,
        max_side: int = 960,
        upsample: int = 1,
        threshold: float = 0.0,
    ) -> None:
        self.predictor_path = Path(predictor_path) if predictor_path else None
        self.min_face_size = min_face_size
        self.max_side = max_side
        self.upsample = upsample
        self.threshold = threshold
        self._models: tuple[Any, Any] | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return "dlib-hog+shape_predictor_5"

    def _load(self) -> tuple[Any, Any]:
        if self._models is None:
            try:
                import dlib
            except ImportError as exc:
                raise ModelUnavailableError("dlib is not installed: pip install dlib.") from exc
            path = self.predictor_path or shape_predictor_path()
            try:
                predictor = dlib.shape_predictor(str(path))
            except RuntimeError as exc:
                raise ModelUnavailableError(f"{path} is not a usable dlib shape predictor ({exc}).") from exc
            self._models = (dlib.get_frontal_face_detector(), predictor)
        return self._models

    def load(self) -> None:
        with self._lock:
            self._load()

    def detect(self, rgb: np.ndarray, *, pad: float = 0.0) -> list[Face]:
        """Every face in an RGB (or grey) uint8 image, best score first (see FaceDetector.detect)."""
        prepared = detector_input(rgb, pad=pad, max_side=self.max_side)
        if prepared is None:
            return []
        image, border, padded_w, padded_h = prepared
        image = np.ascontiguousarray(image)
        with self._lock:
            hog, predictor = self._load()
            rects, scores, _ = hog.run(image, self.upsample, self.threshold)
            shapes = [predictor(image, rect) for rect in rects]
        sx, sy = padded_w / image.shape[1], padded_h / image.shape[0]
        faces = []
        for rect, score, shape in zip(rects, scores, shapes, strict=True):
            x, y = rect.left() * sx - border, rect.top() * sy - border
            w, h = rect.width() * sx, rect.height() * sy
            if max(w, h) < self.min_face_size:
                continue
            raw = np.array([[shape.part(i).x, shape.part(i).y] for i in range(5)], dtype=np.float64)
            points = yunet_points(raw * (sx, sy) - border)
            faces.append(Face(box=(float(x), float(y), float(w), float(h)), landmarks=points, score=float(score)))
        faces.sort(key=lambda face: face.score, reverse=True)
        return faces

