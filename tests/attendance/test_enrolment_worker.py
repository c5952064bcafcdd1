"""The whole path with a real Celery worker (a subprocess, not eager mode): the talking-head video is
uploaded through the API, processed by the worker, and the course index then finds the student.
"""

from __future__ import annotations

import time

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from attendance import ml
from attendance.courses.indexes import clear_cache, course_index_get
from attendance.courses.services import course_membership_add
from attendance.enrolment.services import enrolment_images_create
from attendance.models import FaceEmbedding, FaceEnrolment
from tests.attendance.enrolment_videos import KATIE_VIDEO
from tests.attendance.factories_faces import person_images
from tests.videos import video_frames

pytestmark = pytest.mark.slow


def test_a_real_worker_enrols_the_talking_head_and_the_course_index_finds_her(
    celery_worker_process, client, make_user, course
):
    katie = make_user("student", first_name="Katie", last_name="Hill")
    someone_else = make_user("student")
    for student in (katie, someone_else):
        course_membership_add(course=course, student=student)
    enrolment_images_create(student=someone_else, images=person_images("john_salley")[:3], by=someone_else,
                            consent=True)

    client.force_login(katie)
    video = SimpleUploadedFile(KATIE_VIDEO.name, KATIE_VIDEO.read_bytes(), content_type="video/mp4")
    response = client.post(reverse("api-enrolment-create"), {"video": video, "consent": "true"})
    assert response.status_code == 202, response.content
    status_url = response.json()["status_url"]
    stored = FaceEnrolment.objects.get(pk=response.json()["id"]).video.name

    stages: list[str] = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        status = client.get(status_url).json()
        stages.append(status["stage"])
        if status["finished"]:
            break
        time.sleep(0.25)
    else:
        pytest.fail(f"not finished after 180 s; stages {stages[-5:]}\n{celery_worker_process.log()[-3000:]}")
    assert status["status"] == "ready", (status, celery_worker_process.log()[-3000:])
    assert {"detecting", "embedding"} & set(stages), stages  # the page saw real progress
    assert status["embeddings"] >= 10 and status["counters"]["embeddings"] == status["embeddings"]
    assert FaceEmbedding.objects.filter(student=katie, backbone=ml.embedder_name()).count() == status["embeddings"]
    assert not default_storage.exists(stored)

    clear_cache()
    index = course_index_get(course=course)
    assert set(index.student_of.values()) == {katie.pk, someone_else.pk}
    threshold = ml.recognition_params().threshold
    for frame in video_frames(KATIE_VIDEO, start_s=5.0)[::40]:  # the second half, a few frames apart
        found = ml.recognizer().embed_faces(frame[:, :, ::-1].copy())
        assert len(found) == 1
        nearest = index.index.search(found[0][1][None, :], k=1)[0][0]
        assert index.student_of[nearest.id] == katie.pk and nearest.distance < threshold
