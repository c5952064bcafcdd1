"""Alignment to a canonical crop, and quality measures that order faces sensibly."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from recognition import Face, FaceDetector, align_face, face_quality, frontal_score, load_image
from recognition.align import ARCFACE_TEMPLATE, DLIB_TEMPLATE, similarity_transform


@pytest.fixture(scope="module")
def portrait(faces_dir: Path, detector: FaceDetector) -> tuple[np.ndarray, Face]:
    rgb = load_image(faces_dir / "people" / "yale_subject02" / "normal.png")
    return rgb, detector.detect(rgb)[0]


def test_the_similarity_transform_recovers_a_known_rotation_scale_and_shift():
    angle, scale, shift = np.deg2rad(20), 1.7, np.array([5.0, -3.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = np.random.default_rng(0).uniform(0, 100, (5, 2))
    dst = scale * src @ rotation.T + shift
    matrix = similarity_transform(src, dst)
    assert np.allclose(matrix[:, :2], scale * rotation) and np.allclose(matrix[:, 2], shift)


def test_the_similarity_transform_never_mirrors():
    src = ARCFACE_TEMPLATE * 112
    mirrored = src * [-1, 1]  # a mirrored face must not be "aligned" by flipping it back
    assert np.linalg.det(similarity_transform(src, mirrored)[:, :2]) > 0


@pytest.mark.parametrize(("template", "size"), [(ARCFACE_TEMPLATE, 112), (DLIB_TEMPLATE, 150)])
def test_aligned_landmarks_land_on_the_template(portrait, template, size):
    rgb, face = portrait
    crop = align_face(rgb, face, size=size, template=template)
    assert crop.shape == (size, size, 3) and crop.dtype == np.uint8
    matrix = similarity_transform(face.landmarks, template * size)
    moved = np.c_[face.landmarks, np.ones(5)] @ matrix.T
    # Five points, four degrees of freedom: a real face fits the template within a few pixels.
    assert np.abs(moved - template * size).max() < 0.06 * size


def test_a_margin_shows_more_around_the_same_face(portrait):
    rgb, face = portrait
    tight = align_face(rgb, face, size=112)
    wide = align_face(rgb, face, size=112 + 2 * 28, margin=0.25)
    # The middle of the wide crop is the tight crop (the same pixels per face width).
    assert np.abs(wide[28:-28, 28:-28].astype(int) - tight.astype(int)).mean() < 6


def test_a_face_much_larger_than_the_crop_is_shrunk_without_aliasing(portrait):
    rgb, face = portrait
    big = cv2.resize(rgb, None, fx=6, fy=6, interpolation=cv2.INTER_CUBIC)
    big_face = Face(tuple(np.multiply(face.box, 6)), face.landmarks * 6, face.score)
    small, from_big = align_face(rgb, face, size=96), align_face(big, big_face, size=96)
    assert np.abs(small.astype(int) - from_big.astype(int)).mean() < 8


def test_a_face_at_the_image_edge_still_gives_a_full_crop(portrait):
    rgb, face = portrait
    x = int(face.landmarks[:, 0].mean())
    half = rgb[:, x:]  # cut through the middle of the face
    shifted = Face(face.box, face.landmarks - [x, 0], face.score)
    assert align_face(half, shifted, size=112).shape == (112, 112, 3)


def test_sharpness_falls_when_the_face_is_blurred(portrait):
    rgb, face = portrait
    sharp = face_quality(rgb, face).sharpness
    blurred = face_quality(cv2.GaussianBlur(rgb, (0, 0), 3), face).sharpness
    assert blurred < sharp / 3


def test_size_is_the_longer_side_of_the_box(portrait):
    rgb, face = portrait
    assert face_quality(rgb, face).size == max(face.box[2], face.box[3])


def test_the_frontal_faces_of_the_yale_set_score_high(faces_dir: Path, detector: FaceDetector):
    scores = []
    for person in sorted((faces_dir / "people").glob("yale_*")):
        rgb = load_image(person / "normal.png")
        scores.append(face_quality(rgb, detector.detect(rgb)[0]).frontal)
    assert min(scores) > 0.6


def test_turning_or_nodding_lowers_the_frontal_score():
    frontal = ARCFACE_TEMPLATE * 112
    assert frontal_score(frontal) > 0.95
    turned = frontal.copy()
    turned[2, 0] += 12  # nose towards one eye: the head turned
    nodding = frontal.copy()
    nodding[2, 1] -= 15  # nose up near the eyes
    profile = frontal.copy()
    profile[2, 0] = frontal[1, 0] + 5  # nose outside the eyes
    assert frontal_score(turned) < 0.6
    assert frontal_score(nodding) < 0.5
    assert frontal_score(profile) == 0.0
    rolled = frontal @ np.array([[0.8, -0.6], [0.6, 0.8]]).T  # in-plane tilt: alignment fixes it
    assert frontal_score(rolled) == pytest.approx(frontal_score(frontal))
