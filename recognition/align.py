"""Aligning a detected face to a canonical crop, and measuring how usable it is."""

from __future__ import annotations

import cv2
import numpy as np

from .types import Face, FaceQuality

ARCFACE_TEMPLATE = (
    np.array(
        [
            [38.2946, 51.6963],
            [73.5318, 51.5014],
            [56.0252, 71.7366],
            [41.5493, 92.3655],
            [70.7299, 92.2041],
        ],
        dtype=np.float64,
    )
    / 112.0
)
"""Where the five landmarks sit in a face crop, as fractions of its side: the template that
InsightFace's ArcFace models are trained on (112x112), tight from brows to chin."""

DLIB_TEMPLATE = (
    np.array(
        [[45.5, 46.5], [104.0, 47.4], [74.2, 79.3], [48.4, 103.4], [100.0, 104.2]],
        dtype=np.float64,
    )
    / 150.0
)
"""Where YuNet's five landmarks fall in dlib's own 150x150 face chip (dlib.get_face_chip with
padding 0.25 after its 5-point shape predictor). Measured as the mean over the 219 faces of the
test set's people/ and unknown/ folders; dlib's ResNet expects its input framed this way."""

_QUALITY_CROP = 112


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares rotation + uniform scale + translation mapping ``src`` points onto ``dst``
    (Umeyama 1991), as a 2x3 matrix for cv2.warpAffine. Never a reflection."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1, 1] = -1.0
    rotation = u @ d @ vt
    variance = (src_c**2).sum() / len(src)
    scale = float((s * np.diag(d)).sum() / variance) if variance > 0 else 1.0
    translation = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, translation[:, None]])


def align_face(
    rgb: np.ndarray,
    face: Face,
    *,
    size: int,
    margin: float = 0.0,
    template: np.ndarray = ARCFACE_TEMPLATE,
) -> np.ndarray:
    """Warp the face so its landmarks land on ``template`` in a ``size`` x ``size`` RGB crop.

    ``margin`` widens the view around the template by that fraction of the crop on each side
    (0.25 shows a quarter of a face more on every side). Areas outside the image repeat its edge.
    """
    if size < 1:
        raise ValueError("size must be positive")
    dst = ((np.asarray(template, dtype=np.float64) - 0.5) / (1.0 + 2.0 * margin) + 0.5) * size
    matrix = similarity_transform(face.landmarks, dst)
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if scale < 0.5:
        # warpAffine samples bilinearly: shrinking a large face more than 2x would alias, so
        # shrink the region around it with area averaging first.
        rgb, matrix = _prescale(rgb, matrix, size, scale)
    return cv2.warpAffine(
        rgb,
        matrix,
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


def _prescale(
    rgb: np.ndarray,
    matrix: np.ndarray,
    size: int,
    scale: float,
) -> tuple[np.ndarray, np.ndarray]:
    inverse = cv2.invertAffineTransform(matrix)
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], dtype=np.float64)
    src = corners @ inverse.T
    height, width = rgb.shape[:2]
    x0 = int(np.clip(np.floor(src[:, 0].min()) - 2, 0, width - 1))
    y0 = int(np.clip(np.floor(src[:, 1].min()) - 2, 0, height - 1))
    x1 = int(np.clip(np.ceil(src[:, 0].max()) + 2, x0 + 1, width))
    y1 = int(np.clip(np.ceil(src[:, 1].max()) + 2, y0 + 1, height))
    factor = 2.0 * scale
    roi = rgb[y0:y1, x0:x1]
    new_w = max(1, round(roi.shape[1] * factor))
    new_h = max(1, round(roi.shape[0] * factor))
    small = cv2.resize(roi, (new_w, new_h), interpolation=cv2.INTER_AREA)
    fx, fy = new_w / roi.shape[1], new_h / roi.shape[0]
    # Source pixel (x, y) is now at ((x - x0) * fx, (y - y0) * fy); fold that into the matrix.
    to_small = np.array([[fx, 0.0, -x0 * fx], [0.0, fy, -y0 * fy], [0.0, 0.0, 1.0]])
    adjusted = np.vstack([matrix, [0.0, 0.0, 1.0]]) @ np.linalg.inv(to_small)
    return small, adjusted[:2]


def face_quality(rgb: np.ndarray, face: Face) -> FaceQuality:
    """Size, sharpness and frontal-pose score of a face (see FaceQuality for the scales)."""
    crop = align_face(rgb, face, size=_QUALITY_CROP)
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    sharpness = float(cv2.Laplacian(grey, cv2.CV_64F).var())
    return FaceQuality(size=face.size, sharpness=sharpness, frontal=frontal_score(face.landmarks))


def frontal_score(landmarks: np.ndarray) -> float:
    """1.0 when the nose sits midway between the eyes and about halfway from the eyes to the
    mouth, as in a frontal face; lower as the head turns (yaw) or nods (pitch)."""
    points = np.asarray(landmarks, dtype=np.float64)
    right_eye, left_eye, nose, right_mouth, left_mouth = points
    across = left_eye - right_eye
    eye_distance = float(np.linalg.norm(across))
    if eye_distance < 1e-6:
        return 0.0
    across /= eye_distance
    down = np.array([-across[1], across[0]])
    to_right = float((nose - right_eye) @ across)
    to_left = float((left_eye - nose) @ across)
    if to_right <= 0 or to_left <= 0:
        return 0.0  # the nose is outside the eyes: a profile
    yaw = min(to_right, to_left) / max(to_right, to_left)
    eyes = (right_eye + left_eye) / 2.0
    mouth = (right_mouth + left_mouth) / 2.0
    eye_to_mouth = float((mouth - eyes) @ down)
    if eye_to_mouth <= 0:
        return 0.0
    # 0.5: the nose tip's height between eyes and mouth in the ArcFace template (0.495).
    ratio = float((nose - eyes) @ down) / eye_to_mouth
    pitch = max(0.0, 1.0 - abs(ratio - 0.5) / 0.5)
    return float(np.clip(min(yaw, pitch), 0.0, 1.0))
