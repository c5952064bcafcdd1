"""The detector that ships in installed packages (dlib HOG + 5-point shape predictor): it finds the
test faces and gives YuNet's five landmarks, in YuNet's order, close to where YuNet puts them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recognition import FaceDetector, face_quality, load_image
from recognition.align import ARCFACE_TEMPLATE, align_face, similarity_transform
from recognition.detect_dlib import DlibFaceDetector, yunet_points
from recognition.liveness import head_yaw

from .conftest import image_paths


@pytest.fixture(scope="module")
def dlib_detector() -> DlibFaceDetector:
    return DlibFaceDetector()


def _matching(faces: list, box: tuple[float, float, float, float]):  # type: ignore[no-untyped-def]
    x, y, w, h = box
    for face in faces:
        fx, fy, fw, fh = face.box
        if x <= fx + fw / 2 <= x + w and y <= fy + fh / 2 <= y + h:
            return face
    return None


def test_it_finds_nearly_every_face_yunet_finds_with_landmarks_where_yunet_puts_them(
    faces_dir: Path, detector: FaceDetector, dlib_detector: DlibFaceDetector
):
    paths = image_paths(faces_dir / "people")
    found, errors = 0, []
    for path in paths:
        rgb = load_image(path)
        reference = detector.detect(rgb)
        if not reference:
            continue
        ours = _matching(dlib_detector.detect(rgb), reference[0].box)
        if ours is None:
            continue
        found += 1
        assert ours.landmarks.shape == (5, 2) and ours.landmarks.dtype == np.float32
        # Each point's distance to YuNet's, in the template's units (fractions of the aligned crop).
        to_template = similarity_transform(reference[0].landmarks, ARCFACE_TEMPLATE)
        mapped = np.hstack([ours.landmarks, np.ones((5, 1))]) @ to_template.T
        errors.append(np.linalg.norm(mapped - ARCFACE_TEMPLATE, axis=1))
    yunet_count = sum(1 for p in paths if detector.detect(load_image(p)))
    assert found >= 0.95 * yunet_count, (found, yunet_count)
    mean_error = np.mean(errors, axis=0)
    # Eyes are measured (corner midpoints); nose and mouth are placed from them: a few per cent
    # of the crop, where the test faces' own spread about the template is about 2 per cent.
    assert mean_error[:2].max() < 0.04, mean_error
    assert mean_error.max() < 0.06, mean_error


def test_the_landmarks_are_in_yunet_order_and_the_crop_is_frontal(faces_dir: Path, dlib_detector: DlibFaceDetector):
    rgb = load_image(image_paths(faces_dir / "people")[0])
    faces = dlib_detector.detect(rgb)
    assert len(faces) == 1
    right_eye, left_eye, nose, right_mouth, left_mouth = faces[0].landmarks
    assert right_eye[0] < nose[0] < left_eye[0]
    assert right_mouth[0] < left_mouth[0]
    assert max(right_eye[1], left_eye[1]) < nose[1] < min(right_mouth[1], left_mouth[1])
    assert face_quality(rgb, faces[0]).frontal > 0.6
    assert align_face(rgb, faces[0], size=112).shape == (112, 112, 3)


def test_a_turned_head_reads_as_turned_because_the_nose_keeps_its_measured_offset():
    # dlib's five points of a frontal face (image-right eye corners, image-left eye corners, nose).
    frontal = np.array([[160.0, 100], [140, 100], [60, 100], [80, 100], [110, 150]])
    turned = frontal.copy()
    turned[4, 0] += 15  # the nose bottom moves towards the subject's left: a head turned that way
    assert abs(head_yaw(yunet_points(frontal))) < abs(head_yaw(yunet_points(turned)))


def test_group_photos_and_a_padded_tight_crop(faces_dir: Path, dlib_detector: DlibFaceDetector, group_photos: dict):
    counts = {p.name: (len(dlib_detector.detect(load_image(p))), truth["faces"]) for p, truth in group_photos.items()}
    # HOG misses some small and turned faces that YuNet finds; most of each group is still found.
    assert all(found >= 0.5 * truth for found, truth in counts.values()), counts
    rgb = load_image(image_paths(faces_dir / "people")[0])
    x, y, w, h = (round(v) for v in dlib_detector.detect(rgb)[0].box)
    tight = np.ascontiguousarray(rgb[max(0, y) : y + h, max(0, x) : x + w])
    assert dlib_detector.detect(tight, pad=0.25), "the padded tight crop should show one face"
