"""YuNet detection: counts on real group photos, boxes in the caller's pixels, model resolution."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

import recognition.detect as detect_module
import recognition.weights as weights
from recognition import (
    YUNET_SHA256,
    Face,
    FaceDetector,
    ModelUnavailableError,
    load_image,
    resolve_detector_model,
)


def test_group_photos_have_the_labelled_number_of_faces_within_one(
    detector: FaceDetector,
    group_photos: dict[Path, dict[str, Any]],
):
    counts = {}
    for path, truth in group_photos.items():
        counts[path.name] = (len(detector.detect(load_image(path))), truth["faces"])
    assert len(counts) == 8
    assert all(abs(found - truth) <= 1 for found, truth in counts.values()), counts


def in_a_box(boxes: list[tuple[float, float, float, float]], px: float, py: float) -> bool:
    return any(x <= px <= x + w and y <= py <= y + h for x, y, w, h in boxes)


def test_every_labelled_nose_lies_in_a_detected_box(
    detector: FaceDetector,
    group_photos: dict[Path, dict[str, Any]],
):
    for path, truth in group_photos.items():
        faces = detector.detect(load_image(path))
        noses = np.array(truth["noses_xy"], dtype=float)
        boxes = [f.box for f in faces]

        inside = [in_a_box(boxes, nx, ny) for nx, ny in noses]
        assert sum(inside) >= len(noses) - 1, path.name


def test_a_photo_without_people_has_no_face(detector: FaceDetector, faces_dir: Path):
    for path in (faces_dir / "negative").iterdir():
        assert detector.detect(load_image(path)) == [], path.name


def test_faces_come_sorted_by_score_with_five_landmarks_inside_the_box(
    detector: FaceDetector,
    faces_dir: Path,
):
    faces = detector.detect(load_image(faces_dir / "group" / "016_8.jpg"))
    assert [f.score for f in faces] == sorted((f.score for f in faces), reverse=True)
    for face in faces:
        x, y, w, h = face.box
        assert face.landmarks.shape == (5, 2) and face.landmarks.dtype == np.float32
        assert (face.landmarks[:, 0] > x).all() and (face.landmarks[:, 0] < x + w).all()
        assert (face.landmarks[:, 1] > y).all() and (face.landmarks[:, 1] < y + h).all()
        assert face.landmarks[0, 0] < face.landmarks[1, 0]  # the subject's right eye: image left


def closest(faces: list[Face], to: Face) -> Face:
    return min(faces, key=lambda f: float(np.abs(f.landmarks - to.landmarks).sum()))


def test_a_downscaled_detection_maps_back_to_the_callers_pixels(
    detector_model: Path,
    faces_dir: Path,
):
    rgb = load_image(faces_dir / "group" / "000_5.jpg")
    full = FaceDetector(detector_model).detect(rgb)
    small = FaceDetector(detector_model, max_side=400).detect(rgb)  # detects on half the size
    assert len(small) == len(full) == 5
    for a in full:
        b = closest(small, a)
        assert np.abs(a.landmarks - b.landmarks).max() < 0.08 * a.box[3]
        assert abs(b.box[3] / a.box[3] - 1) < 0.15


def test_a_large_image_is_detected_in_its_own_coordinates(detector: FaceDetector, faces_dir: Path):
    rgb = load_image(faces_dir / "group" / "010_2.jpg")
    big = cv2.resize(rgb, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)  # 2400 px > max_side
    faces, big_faces = detector.detect(rgb), detector.detect(big)
    assert len(big_faces) == len(faces) == 2
    for a in faces:
        b = closest(big_faces, Face(a.box, a.landmarks * 3, a.score))
        assert np.abs(a.landmarks * 3 - b.landmarks).max() < 0.08 * b.box[3]
        assert abs(b.box[3] / (3 * a.box[3]) - 1) < 0.15


def test_padding_keeps_boxes_and_landmarks_in_the_unpadded_image(
    detector: FaceDetector,
    faces_dir: Path,
):
    rgb = load_image(faces_dir / "group" / "000_5.jpg")
    plain, padded = detector.detect(rgb), detector.detect(rgb, pad=0.2)
    assert len(plain) == len(padded) == 5
    for a in plain:
        b = closest(padded, a)
        assert np.abs(a.landmarks - b.landmarks).max() < 0.08 * a.box[3]
        assert np.abs(np.subtract(a.box[:2], b.box[:2])).max() < 0.1 * a.box[3]


def test_tight_face_chips_are_found_with_and_without_padding(
    detector: FaceDetector,
    faces_dir: Path,
):
    for path in sorted((faces_dir / "people" / "john_salley").iterdir()):
        chip = load_image(path)
        plain, padded = detector.detect(chip), detector.detect(chip, pad=0.25)
        assert len(plain) == len(padded) == 1, path.name
        eyes = float(np.linalg.norm(plain[0].landmarks[0] - plain[0].landmarks[1]))
        assert np.abs(plain[0].landmarks - padded[0].landmarks).max() < 0.35 * eyes


def test_faces_below_the_minimum_size_are_dropped(detector_model: Path, faces_dir: Path):
    rgb = load_image(faces_dir / "group" / "016_8.jpg")  # eight faces, 34 to 44 px tall
    assert len(FaceDetector(detector_model, min_face_size=32).detect(rgb)) == 8
    assert len(FaceDetector(detector_model, min_face_size=40).detect(rgb)) < 8
    assert FaceDetector(detector_model, min_face_size=200).detect(rgb) == []


def test_grey_and_rgba_arrays_are_accepted_and_floats_are_not(
    detector: FaceDetector,
    faces_dir: Path,
):
    rgb = load_image(faces_dir / "group" / "010_2.jpg")
    assert len(detector.detect(rgb[:, :, 0])) == 2
    assert len(detector.detect(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]))) == 2
    with pytest.raises(ValueError, match="uint8"):
        detector.detect(rgb.astype(np.float32))


def test_a_missing_or_broken_model_file_is_a_model_error(tmp_path: Path):
    with pytest.raises(ModelUnavailableError, match="No face detector model"):
        FaceDetector(tmp_path / "absent.onnx")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx file")
    detector = FaceDetector(broken)  # construction stays cheap: nothing is loaded yet
    with pytest.raises(ModelUnavailableError, match="not a usable YuNet model"):
        detector.detect(np.zeros((64, 64, 3), np.uint8))


def test_the_detector_model_resolves_from_the_cache_when_its_checksum_matches(
    detector_model: Path,
    tmp_path: Path,
):
    assert hashlib.sha256(detector_model.read_bytes()).hexdigest() == YUNET_SHA256
    cached = tmp_path / detect_module.YUNET_FILENAME
    cached.write_bytes(detector_model.read_bytes())
    assert resolve_detector_model(tmp_path, download=False) == cached


def test_offline_and_absent_the_detector_model_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ModelUnavailableError, match="downloading is off"):
        resolve_detector_model(tmp_path, download=False)


def test_a_corrupt_cached_model_is_deleted_and_fetched_again(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    cached = tmp_path / detect_module.YUNET_FILENAME
    cached.write_bytes(b"half a download")
    monkeypatch.setattr(weights, "host_reachable", lambda url, timeout=0.8: False)
    with pytest.raises(ModelUnavailableError, match="unreachable"):
        resolve_detector_model(tmp_path)
    assert not cached.exists()


def test_a_download_with_the_wrong_checksum_leaves_no_file(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    class FakeResponse:
        def __init__(self) -> None:
            self.chunks = [b"<html>rate limited</html>", b""]

        def read(self, size: int) -> bytes:
            return self.chunks.pop(0)

        def __enter__(self) -> FakeResponse:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

    monkeypatch.setattr(weights, "host_reachable", lambda url, timeout=0.8: True)
    monkeypatch.setattr(weights.urllib.request, "urlopen", lambda url, timeout: FakeResponse())
    with pytest.raises(ModelUnavailableError, match="sha256"):
        resolve_detector_model(tmp_path)
    assert list(tmp_path.iterdir()) == []
