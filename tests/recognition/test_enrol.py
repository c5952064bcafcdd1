"""recognition.enrol: which frames of an enrolment video are kept, and why the others are not.

The same judgement the worker runs, here with no Django: a notebook can call it on a file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from recognition import DlibEmbedder, Face, FaceDetector, load_image
from recognition.enrol import (
    EnrolmentRejection,
    EnrolmentRules,
    FrameTally,
    View,
    frame_view,
    judge,
    one_person,
    select_views,
)
from tests.conftest import REPO_ROOT
from tests.videos import video_frames

NOTEBOOK = """
import json, sys
from recognition import FaceDetector, create_embedder
from recognition.enrol import select_enrolment_faces
detector = FaceDetector(sys.argv[1])
selection = select_enrolment_faces(sys.argv[2], detector=detector, embedder=create_embedder("dlib"), threshold=0.27)
print(json.dumps({
    "django": any(name.split(".")[0] in ("django", "celery", "attendance") for name in sys.modules),
    "kept": len(selection.views),
    "norms": [float((v ** 2).sum() ** 0.5) for v in selection.vectors],
    "times": [v.time_s for v in selection.views],
    "sampled": selection.tally.sampled,
    "rejected": selection.tally.rejected,
}))
"""


@pytest.mark.slow
def test_a_script_with_no_django_judges_the_talking_head_video(faces_dir: Path, detector_model: Path):
    video = faces_dir / "videos" / "katie_hill_talking.mp4"
    env = {"PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", NOTEBOOK, str(detector_model), str(video)], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["django"] is False
    rules = EnrolmentRules()
    # 8 s at 4 frames a second: 32 samples; the clip's distinct views, at most the cap.
    assert result["sampled"] == 32
    assert rules.min_embeddings <= result["kept"] <= rules.max_embeddings
    assert np.allclose(result["norms"], 1.0, atol=1e-4)
    assert result["times"] == sorted(result["times"]) and result["times"][-1] > 4.0  # spread over the clip
    # Every sampled frame is kept, rejected with a reason, or dropped as a near-duplicate of a kept one.
    assert len(result["rejected"]) <= result["sampled"] - result["kept"]
    reasons = {"no_face", "second_face", "small", "dark", "blurred", "turned"}
    assert all(reason in reasons and 0 <= t <= 8.1 for t, reason in result["rejected"])


@pytest.fixture(scope="module")
def talking_frames(faces_dir: Path) -> list[np.ndarray]:
    return video_frames(faces_dir / "videos" / "katie_hill_talking.mp4", step=25, rgb=True)


def _judge_one(rgb: np.ndarray, detector: FaceDetector, embedder: DlibEmbedder) -> tuple[View | None, FrameTally]:
    tally = FrameTally()
    view = frame_view(rgb, 0.0, detector.detect(rgb), embedder.crop, tally)
    return view, tally


def test_a_sharp_frontal_frame_is_kept_and_its_darkened_and_blurred_copies_are_not(
    talking_frames: list[np.ndarray], detector: FaceDetector, dlib_embedder: DlibEmbedder
):
    frame = talking_frames[2]
    view, tally = _judge_one(frame, detector, dlib_embedder)
    assert view is not None and tally.rejected == [] and 0 < view.quality <= 1

    dark = (frame.astype(np.float32) * 0.12).astype(np.uint8)
    view, tally = _judge_one(dark, detector, dlib_embedder)
    assert view is None and tally.rejected[0][1] in ("dark", "no_face")

    blurred = cv2.GaussianBlur(frame, (0, 0), 8)
    view, tally = _judge_one(blurred, detector, dlib_embedder)
    assert view is None and tally.rejected == [(0.0, tally.rejected[0][1])]
    assert tally.rejected[0][1] in ("blurred", "no_face")


def test_a_photo_without_a_face_counts_as_no_face(faces_dir: Path, detector: FaceDetector,
                                                  dlib_embedder: DlibEmbedder):
    photo = next((faces_dir / "negative").iterdir())
    view, tally = _judge_one(load_image(photo), detector, dlib_embedder)
    assert view is None and tally.no_face == 1 and tally.rejected == [(0.0, "no_face")]


def test_a_second_face_of_similar_size_makes_the_frame_unusable(
    talking_frames: list[np.ndarray], detector: FaceDetector, dlib_embedder: DlibEmbedder
):
    frame = talking_frames[2]
    face = detector.detect(frame)[0]
    twin = Face(box=(face.box[0] + 5, face.box[1], face.box[2] * 0.9, face.box[3] * 0.9),
                landmarks=face.landmarks, score=face.score)
    tally = FrameTally()
    assert frame_view(frame, 1.0, [face, twin], dlib_embedder.crop, tally) is None
    assert tally.second_face == 1 and tally.rejected == [(1.0, "second_face")]


def test_the_video_is_judged_by_what_most_frames_showed():
    rules = EnrolmentRules()
    with pytest.raises(EnrolmentRejection) as raised:
        judge(FrameTally(sampled=20, second_face=5), [], rules)
    assert raised.value.code == "several_people"
    with pytest.raises(EnrolmentRejection) as raised:
        judge(FrameTally(sampled=20, no_face=12, brightness=[20.0] * 20), [], rules)
    assert raised.value.code == "too_dark"
    with pytest.raises(EnrolmentRejection) as raised:
        judge(FrameTally(sampled=20, no_face=12, brightness=[120.0] * 20), [], rules)
    assert raised.value.code == "no_face"
    tally = FrameTally(sampled=20)
    tally.dropped.update({"blurred": 9, "turned": 4})
    with pytest.raises(EnrolmentRejection) as raised:
        judge(tally, [], rules)
    assert raised.value.code == "too_blurred"
    # Enough usable views: accepted, whatever else was seen.
    views = [View(time_s=float(i), crop=np.zeros((2, 2, 3), np.uint8), quality=1.0, signature=np.ones(4))
             for i in range(8)]
    judge(FrameTally(sampled=20, no_face=3), views, rules)
    # The thresholds are arguments: a stricter rule refuses the same videos.
    with pytest.raises(EnrolmentRejection):
        judge(FrameTally(sampled=20, no_face=3), views, EnrolmentRules(min_usable_fraction=0.9))


def test_near_duplicate_views_are_kept_once_and_the_rest_spread_over_the_clip(
    talking_frames: list[np.ndarray], detector: FaceDetector, dlib_embedder: DlibEmbedder
):
    view, _ = _judge_one(talking_frames[2], detector, dlib_embedder)
    assert view is not None
    copies = [View(time_s=float(i), crop=view.crop, quality=view.quality, signature=view.signature)
              for i in range(6)]
    assert len(select_views(copies)) == 1
    others = [_judge_one(f, detector, dlib_embedder)[0] for f in talking_frames]
    distinct = [v for v in others if v is not None]
    capped = select_views(distinct, EnrolmentRules(max_embeddings=3))
    assert len(capped) == 3 and capped[0].time_s == min(v.time_s for v in select_views(distinct))


def test_one_person_refuses_a_gallery_of_two_people(faces_dir: Path, detector: FaceDetector,
                                                    dlib_embedder: DlibEmbedder):
    def views_of(person: str) -> tuple[list[View], np.ndarray]:
        photos = sorted((faces_dir / "people" / person).iterdir())[:6]
        crops = []
        for photo in photos:
            rgb = load_image(photo)
            faces = detector.detect(rgb) or detector.detect(rgb, pad=0.25)
            crops.append(dlib_embedder.crop(rgb, max(faces, key=lambda f: f.size)))
        views = [View(time_s=float(i), crop=c, quality=1.0, signature=np.ones(4)) for i, c in enumerate(crops)]
        return views, dlib_embedder.encode(crops)

    one, vectors = views_of("yale_subject01")
    kept, kept_vectors = one_person(one, vectors, threshold=0.27)
    assert len(kept) == len(kept_vectors) >= 5
    other, other_vectors = views_of("yale_subject02")
    with pytest.raises(EnrolmentRejection) as raised:
        one_person(one[:3] + other[:3], np.concatenate([vectors[:3], other_vectors[:3]]), threshold=0.27)
    assert raised.value.code == "several_people"
