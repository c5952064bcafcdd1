"""End to end with real faces: enrol photos or a video, then identify new pictures."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from recognition import (
    BACKBONE_DEFAULTS,
    DlibEmbedder,
    Face,
    FaceDetector,
    Gallery,
    ImageError,
    Recognizer,
    load_image,
    read_frames,
)

pytestmark = pytest.mark.slow  # dlib embeds every face: ~0.15 s each on one core


@pytest.fixture(scope="module")
def recognizer(detector: FaceDetector, dlib_embedder: DlibEmbedder) -> Recognizer:
    return Recognizer(detector, dlib_embedder)


class CountingEmbedder:
    """Wraps an embedder to count its encode calls."""

    def __init__(self, inner: DlibEmbedder) -> None:
        self.inner = inner
        self.calls: list[int] = []
        self.name, self.backbone = inner.name, inner.backbone
        self.dim, self.crop_size = inner.dim, inner.crop_size

    def crop(self, rgb: np.ndarray, face: object) -> np.ndarray:
        return self.inner.crop(rgb, face)  # type: ignore[arg-type]

    def encode(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        self.calls.append(len(crops))
        return self.inner.encode(crops)


def cut_out(rgb: np.ndarray, face: Face) -> np.ndarray:
    """The face with half its size around it: a portrait of that one person."""
    x, y, w, h = (int(v) for v in face.box)
    return rgb[max(0, y - h // 2) : y + h + h // 2, max(0, x - w // 2) : x + w + w // 2]


def test_all_faces_of_a_frame_are_embedded_in_one_batch(
    detector: FaceDetector,
    dlib_embedder: DlibEmbedder,
    faces_dir: Path,
):
    counting = CountingEmbedder(dlib_embedder)
    found = Recognizer(detector, counting).embed_faces(
        load_image(faces_dir / "group" / "000_5.jpg"),
    )
    assert counting.calls == [5]
    assert len(found) == 5 and all(vector.shape == (128,) for _, vector in found)
    assert [face.score for face, _ in found] == sorted((f.score for f, _ in found), reverse=True)


def test_a_gallery_enrolled_from_folders_identifies_new_photos_and_rejects_strangers(
    recognizer: Recognizer,
    faces_dir: Path,
    tmp_path: Path,
):
    held_out = {}
    for person in sorted((faces_dir / "people").glob("john_*")):
        photos = sorted(person.iterdir())
        (tmp_path / person.name).mkdir()
        for photo in photos[:6]:
            shutil.copy(photo, tmp_path / person.name / photo.name)
        held_out[person.name] = photos[6:]
    (tmp_path / "notes.txt").write_text("ignored: not a folder of photos")

    gallery = Gallery(recognizer)
    assert gallery.add_folder(tmp_path) == 24
    defaults = BACKBONE_DEFAULTS["dlib"]
    assert (gallery.k1, gallery.k2, gallery.threshold) == (
        defaults.k1,
        defaults.k2,
        defaults.threshold,
    )

    results = {}
    for name, photos in held_out.items():
        for photo in photos:
            results[(name, photo.name)] = gallery.identify(photo)
    assert all(len(found) == 1 for found in results.values())
    correct = [found[0][1].label == name for (name, _), found in results.items()]
    assert np.mean(correct) >= 0.9
    strangers = sorted((faces_dir / "unknown" / "john_simm").iterdir())
    unknown = [gallery.identify(photo)[0][1].is_unknown for photo in strangers]
    assert np.mean(unknown) >= 0.9


def test_a_photo_without_a_face_cannot_be_enrolled(recognizer: Recognizer, faces_dir: Path):
    gallery = Gallery(recognizer)
    negative = next((faces_dir / "negative").iterdir())
    with pytest.raises(ImageError, match="No face found"):
        gallery.add("nobody", negative)
    assert len(gallery) == 0 and gallery.identify(negative) == []


def test_everyone_in_a_group_photo_is_told_apart(recognizer: Recognizer, faces_dir: Path):
    rgb = load_image(faces_dir / "group" / "000_5.jpg")
    gallery = Gallery(recognizer)
    for number, (face, _) in enumerate(recognizer.embed_faces(rgb)):
        # Each person enrolled from their own cut-out, with the surroundings a portrait has.
        enrolled = gallery.add(f"person{number}", cut_out(rgb, face))
        assert enrolled.size > 0.8 * face.size  # the cut-out's own face, not a neighbour's
    identified = gallery.identify(rgb)
    assert len(identified) == 5
    assert sorted(str(match.label) for _, match in identified) == [f"person{i}" for i in range(5)]


def test_two_faces_never_get_the_same_person_even_when_both_pass_the_threshold(
    recognizer: Recognizer,
    faces_dir: Path,
):
    rgb = load_image(faces_dir / "group" / "010_2.jpg")
    enrolled = recognizer.embed_faces(rgb)[0][0]
    gallery = Gallery(recognizer, threshold=2.0)  # everyone is within 2.0 of everyone
    gallery.add("ann", cut_out(rgb, enrolled))
    matches = [match for _, match in gallery.identify(rgb)]
    # Both pass the threshold; the face she was enrolled from is nearer and keeps her.
    assert [m.label for m in matches] == ["ann", None]


def test_enrolled_from_the_first_half_of_a_video_recognised_in_the_second(
    recognizer: Recognizer,
    talking_video: Path,
    faces_dir: Path,
):
    frames = read_frames(talking_video, target_fps=2.0)
    gallery = Gallery(recognizer)
    for frame in frames:
        if frame.time_s < 4.0:
            gallery.add("katie", frame.image)
    for person in sorted((faces_dir / "people").glob("yale_subject0[1-3]")):
        for photo in sorted(person.iterdir())[:3]:
            gallery.add(person.name, photo)
    probes = [frame for frame in frames if frame.time_s >= 4.0]
    labels = [gallery.identify(frame.image)[0][1].label for frame in probes]
    assert len(probes) == 8 and labels == ["katie"] * 8
