"""A full media disk during an enrolment upload: a clear error, nothing half-written left behind,
and the student's previous enrolment (embeddings and course index) untouched.

The media folder is a real tmpfs of 1 MB; the upload is the 3.5 MB talking-head video, so the disk
fills up part-way through writing it (ENOSPC), as a real full disk does.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files import File
from django.core.files.uploadedfile import TemporaryUploadedFile

from attendance.courses.indexes import clear_cache, course_index_get
from attendance.enrolment.errors import EnrolmentUnavailableError
from attendance.enrolment.services import enrolment_create
from attendance.models import FaceEmbedding, FaceEnrolment
from tests.attendance.factories_faces import KATIE_VIDEO, enrol_with_vectors, katie_enrolment_vectors

pytestmark = pytest.mark.slow


def _in_memory(path: Path) -> File:
    return File(path.open("rb"), name="enrol.mp4")


def _temporary_upload(path: Path) -> File:
    # What Django hands a view for an upload over FILE_UPLOAD_MAX_MEMORY_SIZE: a file in /tmp that
    # storage moves (here: copies, across file systems) into the media folder.
    upload = TemporaryUploadedFile("enrol.mp4", "video/mp4", path.stat().st_size, None)
    upload.write(path.read_bytes())
    upload.seek(0)
    return upload


@pytest.mark.parametrize("upload", [_in_memory, _temporary_upload], ids=["streamed", "temporary_file"])
def test_a_full_media_disk_refuses_the_upload_clearly_and_keeps_the_previous_enrolment(
    course, make_user, settings, small_disk, upload
):
    student = make_user("student")
    previous = enrol_with_vectors(student=student, vectors=katie_enrolment_vectors(), courses=[course])
    embeddings = set(FaceEmbedding.objects.filter(enrolment=previous).values_list("id", flat=True))
    disk = small_disk("media", 1024)
    settings.MEDIA_ROOT = disk.path
    video = upload(KATIE_VIDEO)
    assert video.size > 2 * 1024 * 1024

    with pytest.raises(EnrolmentUnavailableError) as refused:
        enrolment_create(student=student, video=video, consent=True, by=student, schedule=False)
    video.close()

    assert refused.value.code == "storage_full" and refused.value.status_code == 503
    assert "no room to store your video" in refused.value.message
    assert disk.files() == [], "a half-written upload was left on the media disk"
    # The previous enrolment is the student's only one, still ready, with the same embeddings.
    assert list(FaceEnrolment.objects.filter(student=student).values_list("pk", "status")) == [
        (previous.pk, FaceEnrolment.Status.READY)
    ]
    assert set(FaceEmbedding.objects.filter(student=student).values_list("id", flat=True)) == embeddings
    clear_cache()
    index = course_index_get(course=course)
    assert set(index.student_of) == embeddings


def test_once_the_disk_has_room_again_the_same_upload_is_stored(course, make_user, settings, small_disk):
    student = make_user("student")
    disk = small_disk("media", 1024)
    settings.MEDIA_ROOT = disk.path
    with pytest.raises(EnrolmentUnavailableError):
        enrolment_create(student=student, video=_in_memory(KATIE_VIDEO), consent=True, by=student, schedule=False)
    roomy = small_disk("media-roomy", 8 * 1024)
    settings.MEDIA_ROOT = roomy.path

    enrolment = enrolment_create(student=student, video=_in_memory(KATIE_VIDEO), consent=True, by=student,
                                 schedule=False)

    assert enrolment.status == FaceEnrolment.Status.QUEUED
    (stored,) = roomy.files()
    assert stored.stat().st_size == KATIE_VIDEO.stat().st_size


def test_the_upload_api_answers_503_with_the_reason_when_the_media_disk_is_full(make_user, settings, small_disk):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.urls import reverse
    from rest_framework.test import APIClient

    student = make_user("student")
    disk = small_disk("media", 1024)
    settings.MEDIA_ROOT = disk.path
    client = APIClient()
    client.force_authenticate(student)

    reply = client.post(reverse("api-enrolment-create"), {
        "consent": "true", "video": SimpleUploadedFile("enrol.mp4", KATIE_VIDEO.read_bytes(), "video/mp4"),
    }, format="multipart")

    assert reply.status_code == 503, reply.content
    assert reply.json()["code"] == "storage_full" and "no room" in reply.json()["message"]
    assert disk.files() == [] and not FaceEnrolment.objects.filter(student=student).exists()
