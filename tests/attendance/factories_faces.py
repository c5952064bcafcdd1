"""Real faces for check-in tests, embedded once per test run.

Enrolling through a video and a worker takes many seconds; most check-in tests only need a student
whose embeddings are in the database and a course index built from them. The vectors come from the
same detector and embedder the app uses (attendance.ml), from the first half of the talking-head
video (t < 4 s) or from labelled photos, and are cached for the whole run: dlib is slowish on two
cores. Probe frames come from the video's second half, which enrolment never saw.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import cv2
import numpy as np
from django.db import transaction
from django.utils import timezone

from tests.conftest import FACES_DIR
from tests.videos import video_frames

KATIE_VIDEO = FACES_DIR / "videos" / "katie_hill_talking.mp4"
ENROL_END_S = 4.0
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def video_frames_rgb(
    path: Path, *, start_s: float = 0.0, end_s: float | None = None, step: int = 1
) -> list[np.ndarray]:
    return video_frames(path, start_s=start_s, end_s=end_s, step=step, rgb=True)


def jpeg(rgb: np.ndarray, *, quality: int = 85) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return data.tobytes()


def _largest_face_vectors(images: list[np.ndarray], *, pad: float = 0.0) -> np.ndarray:
    from attendance import ml

    recognizer = ml.recognizer()
    vectors = []
    for rgb in images:
        found = recognizer.embed_faces(rgb) or (recognizer.embed_faces(rgb, pad=pad) if pad else [])
        if found:
            _, vector = max(found, key=lambda pair: pair[0].box[2] * pair[0].box[3])
            vectors.append(vector)
    assert vectors, "no face found in the enrolment images"
    return np.stack(vectors).astype(np.float32)


@cache
def katie_enrolment_vectors() -> np.ndarray:
    """Embeddings of every fifth frame of the video's first four seconds (20 views)."""
    return _largest_face_vectors(video_frames_rgb(KATIE_VIDEO, end_s=ENROL_END_S, step=5))


@cache
def katie_probe_jpegs() -> tuple[bytes, ...]:
    """JPEG snapshots from the second half of the video, a few frames apart, as a webcam page sends them."""
    return tuple(jpeg(rgb) for rgb in video_frames_rgb(KATIE_VIDEO, start_s=ENROL_END_S, step=7))


def person_images(person: str, *, folder: str = "people") -> list[Path]:
    return sorted(p for p in (FACES_DIR / folder / person).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


@cache
def person_vectors(person: str) -> np.ndarray:
    from recognition import load_image

    # The john_* photos are chips cropped tight to the face: the detector needs a border around them.
    return _largest_face_vectors([load_image(path) for path in person_images(person)], pad=0.25)


def enrol_with_vectors(*, student: object, vectors: np.ndarray, courses: list[object] | None = None) -> object:
    """A ready enrolment holding these embeddings, as the enrolment pipeline would leave it, with the
    student put on the courses and the courses' indexes rebuilt."""
    from attendance import ml
    from attendance.courses.indexes import course_index_rebuild
    from attendance.enrolment.processing import embedding_rows
    from attendance.models import CourseMembership, FaceEmbedding, FaceEnrolment

    now = timezone.now()
    enrolment = FaceEnrolment.objects.create(
        student=student, status=FaceEnrolment.Status.READY, consent_given_at=now, backbone=ml.embedder_name(),
        started_at=now, finished_at=now, attempts=1,
    )
    with transaction.atomic():  # rows are sealed inside the transaction that stores them
        FaceEmbedding.objects.bulk_create(embedding_rows(enrolment, vectors, [None] * len(vectors),
                                                         [None] * len(vectors)))
    for course in courses or []:
        CourseMembership.objects.get_or_create(course=course, student=student)
        course_index_rebuild(course=course)
    return enrolment
