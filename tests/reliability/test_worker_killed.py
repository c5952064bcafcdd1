"""A Celery worker killed with SIGKILL in the middle of an enrolment (what the out-of-memory killer
or a lost machine does): a new worker completes it exactly once, and the course index is whole.

The enrolment is the real 8 s talking-head upload, processed by real worker processes against the
test database. The stale limit (15 minutes by default) is not waited for: the killed job's start
time is moved back past it, which is all the sweep looks at.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.files import File
from django.db.models import F

from attendance.courses.indexes import clear_cache, course_index_get
from attendance.courses.services import course_membership_add
from attendance.enrolment.services import enrolment_create, enrolment_requeue_stale
from attendance.models import FaceEmbedding, FaceEnrolment
from tests.attendance.factories_faces import KATIE_VIDEO, enrol_with_vectors, person_vectors
from tests.conftest import WorkerProcess
from tests.reliability.conftest import wait_for

pytestmark = pytest.mark.slow


def _row(pk: int) -> FaceEnrolment:
    return FaceEnrolment.objects.get(pk=pk)


def test_a_worker_killed_mid_enrolment_is_replaced_and_the_enrolment_completes_exactly_once(
    celery_worker_process, course, make_user, tmp_path
):
    from attendance.tasks import enrolment_process

    classmate = make_user("student")
    enrol_with_vectors(student=classmate, vectors=person_vectors("yale_subject01"), courses=[course])
    student = make_user("student", first_name="Katie", last_name="Hill")
    course_membership_add(course=course, student=student)
    with KATIE_VIDEO.open("rb") as handle:
        enrolment = enrolment_create(student=student, video=File(handle, name="katie.mp4"), consent=True, by=student)

    # Killed part-way (finding faces, or embedding them on a fast machine): claimed, nothing stored yet.
    def part_way() -> bool:
        progress = _row(enrolment.pk).progress
        return (progress.get("stage") == "detecting" and progress.get("done", 0) >= 3) or (
            progress.get("stage") == "embedding")

    wait_for(part_way, timeout=120, interval=0.05, what="the worker to be part-way through the video")
    celery_worker_process.kill()
    killed = _row(enrolment.pk)
    assert (killed.status, killed.attempts) == (FaceEnrolment.Status.PROCESSING, 1), killed.progress
    assert not FaceEmbedding.objects.filter(student=student).exists()

    replacement = WorkerProcess(tmp_path / "replacement-worker.log")
    replacement.start()
    try:
        FaceEnrolment.objects.filter(pk=enrolment.pk).update(
            started_at=F("started_at") - timedelta(minutes=settings.ROLLCALL_ENROLMENT_STALE_MINUTES + 1)
        )
        started = time.monotonic()
        assert enrolment_requeue_stale() == 1  # what Celery beat runs every 5 minutes
        wait_for(lambda: _row(enrolment.pk).status not in FaceEnrolment.ACTIVE_STATUSES, timeout=240,
                 what="the replacement worker to finish the enrolment")
        seconds = time.monotonic() - started
        done = _row(enrolment.pk)
        assert done.status == FaceEnrolment.Status.READY, (done.error_code, replacement.log()[-2000:])
        assert done.attempts == 2

        # The first delivery's message, redelivered after the broker's visibility timeout (or sent
        # twice by the sweep), finds nothing to claim and changes nothing.
        assert enrolment_process.delay(enrolment.pk).get(timeout=60) == "skipped"
    finally:
        replacement.stop()

    # Exactly once: one set of embeddings, all from this enrolment, its only ready one.
    stored = FaceEmbedding.objects.filter(student=student)
    count = done.progress["embeddings"]
    assert count >= 5 and stored.count() == count
    assert set(stored.values_list("enrolment_id", flat=True)) == {enrolment.pk}
    assert FaceEnrolment.objects.filter(student=student, status=FaceEnrolment.Status.READY).count() == 1
    # The course index, loaded fresh from its file, holds every ready embedding of the course.
    clear_cache()
    index = course_index_get(course=course)
    expected = set(
        FaceEmbedding.objects.filter(student__in=[student, classmate], enrolment__status="ready")
        .values_list("id", flat=True)
    )
    assert set(index.student_of) == expected and len(index) == len(expected)
    assert set(index.student_of.values()) == {student.pk, classmate.pk}
    where = f"{killed.progress.get('stage')} {killed.progress.get('done')} of {killed.progress.get('total')}"
    print(f"\nkilled at {where}; the replacement worker completed the enrolment {seconds:.1f} s after the sweep: "
          f"{count} embeddings, index of {len(index)}")
