"""Enrolment service: every bad input explained and harmless, rejections, retries, memberships, stale jobs.

Each refusal is checked against a student who already has a ready enrolment on a course: whatever
goes wrong, that enrolment, its embeddings and the course index stay exactly as they were.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from django.core.files import File
from django.core.files.storage import default_storage
from django.utils import timezone

from attendance.courses.indexes import clear_cache, course_index_get
from attendance.courses.services import MembershipError, course_membership_add, course_membership_remove
from attendance.enrolment import processing
from attendance.enrolment import services as service
from attendance.enrolment.errors import MESSAGES, EnrolmentConflictError, EnrolmentError, EnrolmentPermissionError
from attendance.enrolment.processing import enrolment_video_process
from attendance.enrolment.services import enrolment_create, enrolment_requeue_stale
from attendance.models import Course, CourseMembership, FaceEmbedding, FaceEnrolment
from tests.attendance.enrolment_videos import CROWD_VIDEO, KATIE_VIDEO, SPLIT_S, Clips
from tests.attendance.factories_faces import enrol_with_vectors
from tests.videos import video_frames


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    return Clips(tmp_path_factory.mktemp("clips"))


@dataclass
class Previous:
    """A student's enrolment in use before the test tries something."""

    student: object
    course: Course
    enrolment: FaceEnrolment
    embedding_ids: set[int]
    index_version: int

    def assert_intact(self) -> None:
        self.enrolment.refresh_from_db()
        assert self.enrolment.status == FaceEnrolment.Status.READY
        ids = set(FaceEmbedding.objects.filter(enrolment=self.enrolment).values_list("id", flat=True))
        assert ids == self.embedding_ids
        self.course.refresh_from_db()
        assert self.course.index_version == self.index_version
        clear_cache()
        assert set(course_index_get(course=self.course).student_of) == self.embedding_ids


def _unit_vectors(n: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(n, 128)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture
def previous(student, course) -> Previous:
    enrolment = enrol_with_vectors(student=student, vectors=_unit_vectors(6, seed=1), courses=[course])
    course.refresh_from_db()
    ids = set(FaceEmbedding.objects.filter(enrolment=enrolment).values_list("id", flat=True))
    return Previous(student, course, enrolment, ids, course.index_version)


def _upload(student, path: Path, *, by=None, consent: bool = True) -> FaceEnrolment:
    with path.open("rb") as handle:
        return enrolment_create(student=student, video=File(handle, name=path.name), consent=consent,
                                by=by or student, schedule=False)


def _stored_videos(student) -> list[str]:
    folder = f"enrolments/{student.pk}"
    return default_storage.listdir(folder)[1] if default_storage.exists(folder) else []


# --- Refused at once: nothing is stored ----------------------------------------------------------

def _too_large_file(folder: Path) -> Path:
    path = folder / "big.mp4"
    path.write_bytes(b"\0" * (1024 * 1024 + 1))
    return path


@pytest.mark.parametrize(
    ("case", "code", "words"),
    [
        ("empty", "empty_file", "The file is empty (0 bytes): record or choose the video again."),
        ("not_a_video", "not_a_video", "is not a video this server reads: send an MP4 or WebM"),
        ("photo", "not_a_video", "is a JPEG image, not a video"),
        ("truncated", "truncated", "probably incomplete"),
        ("too_large", "too_large", "over the 1 MB limit"),
        ("too_long", "too_long", "The video is 3 seconds long; the limit is 2 seconds"),
        ("no_consent", "consent_required", "Tick the consent box first"),
    ],
)
def test_a_bad_upload_is_refused_with_its_message_and_changes_nothing(
    case, code, words, clips, previous, settings, tmp_path
):
    if case == "too_large":
        settings.ROLLCALL_ENROLMENT_MAX_UPLOAD_MB = 1
    settings.ROLLCALL_ENROLMENT_MAX_SECONDS = 2
    path = {
        "empty": clips.empty, "not_a_video": clips.not_a_video, "photo": clips.photo, "truncated": clips.truncated,
        "too_large": _too_large_file(tmp_path), "too_long": clips.katie_three_s, "no_consent": clips.katie_three_s,
    }[case]
    with pytest.raises(EnrolmentError) as raised:
        _upload(previous.student, path, consent=case != "no_consent")
    assert raised.value.code == code
    assert words in raised.value.message
    assert raised.value.status_code == 400
    assert FaceEnrolment.objects.filter(student=previous.student).count() == 1
    assert _stored_videos(previous.student) == []
    previous.assert_intact()


def test_a_student_cannot_upload_for_another_student(clips, previous, make_user):
    intruder = make_user("student")
    with pytest.raises(EnrolmentPermissionError) as raised:
        _upload(previous.student, clips.katie_three_s, by=intruder)
    assert raised.value.status_code == 403
    assert "You can only enrol your own face" in raised.value.message
    assert _stored_videos(previous.student) == []
    previous.assert_intact()


def test_a_second_upload_while_one_is_processing_is_refused(clips, previous):
    first = _upload(previous.student, clips.katie_three_s)
    FaceEnrolment.objects.filter(pk=first.pk).update(status=FaceEnrolment.Status.PROCESSING, started_at=timezone.now())
    with pytest.raises(EnrolmentConflictError) as raised:
        _upload(previous.student, clips.katie_three_s)
    assert raised.value.status_code == 409
    assert "already being processed" in raised.value.message
    assert FaceEnrolment.objects.filter(student=previous.student).count() == 2
    assert _stored_videos(previous.student) == [Path(first.video.name).name]
    previous.assert_intact()


def test_an_admin_enrols_on_a_students_behalf_but_not_a_lecturer(clips, previous, admin_user, lecturer):
    with pytest.raises(EnrolmentPermissionError):
        _upload(previous.student, clips.katie_three_s, by=lecturer)
    enrolment = _upload(previous.student, clips.katie_three_s, by=admin_user)
    assert enrolment.status == FaceEnrolment.Status.QUEUED and enrolment.created_by == admin_user
    assert enrolment.consent_given_at is not None
    with pytest.raises(EnrolmentError) as raised:
        _upload(lecturer, clips.katie_three_s, by=admin_user)
    assert raised.value.code == "not_a_student"


# --- Refused by the pipeline: a failed enrolment with the reason --------------------------------

@pytest.mark.parametrize(
    ("clip", "code"),
    [("crowd", "several_people"), ("no_face", "no_face"), ("dark", "too_dark"), ("blurred", "too_blurred")],
)
def test_a_video_the_pipeline_refuses_ends_failed_with_what_to_do(
    clip, code, clips, previous, django_capture_on_commit_callbacks
):
    path = CROWD_VIDEO if clip == "crowd" else getattr(clips, clip)
    enrolment = _upload(previous.student, path)
    stored = enrolment.video.name
    assert default_storage.exists(stored)
    with django_capture_on_commit_callbacks(execute=True):  # the video is deleted after commit
        result = enrolment_video_process(enrolment_id=enrolment.pk)
    assert result is not None
    enrolment.refresh_from_db()
    assert enrolment.status == FaceEnrolment.Status.FAILED
    assert (enrolment.error_code, enrolment.error_message) == (code, MESSAGES[code])
    assert enrolment.progress["stage"] == "failed"
    assert not enrolment.embeddings.exists()
    assert not default_storage.exists(stored) and not enrolment.video
    previous.assert_intact()
    # Delivered again (a duplicate message): nothing to claim, nothing changes.
    assert enrolment_video_process(enrolment_id=enrolment.pk) is None


def test_a_ready_enrolments_video_is_kept_when_the_setting_says_so_and_others_are_not(
    clips, student, settings, django_capture_on_commit_callbacks
):
    """Kept videos are for re-embedding into a new space (manage.py reembed), which reads only a
    ready enrolment's: a failed video, or one a newer enrolment replaced, serves nothing."""
    settings.ROLLCALL_KEEP_ENROLMENT_VIDEOS = True
    failed = _upload(student, clips.no_face)
    with django_capture_on_commit_callbacks(execute=True):
        enrolment_video_process(enrolment_id=failed.pk)
    failed_video = failed.video.name
    failed.refresh_from_db()
    assert failed.status == FaceEnrolment.Status.FAILED and not failed.video
    assert not default_storage.exists(failed_video)
    first = _upload(student, clips.katie_three_s)
    with django_capture_on_commit_callbacks(execute=True):
        enrolment_video_process(enrolment_id=first.pk)
    first.refresh_from_db()
    assert first.status == FaceEnrolment.Status.READY and default_storage.exists(first.video.name)
    first_video = first.video.name
    second = _upload(student, clips.katie_three_s)
    with django_capture_on_commit_callbacks(execute=True):
        enrolment_video_process(enrolment_id=second.pk)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == (FaceEnrolment.Status.SUPERSEDED, FaceEnrolment.Status.READY)
    assert not first.video and not default_storage.exists(first_video)
    assert default_storage.exists(second.video.name)


def test_a_video_deleted_before_processing_fails_with_a_message(clips, student):
    enrolment = _upload(student, clips.katie_three_s)
    default_storage.delete(enrolment.video.name)
    enrolment_video_process(enrolment_id=enrolment.pk)
    enrolment.refresh_from_db()
    assert (enrolment.status, enrolment.error_code) == ("failed", "video_missing")


def test_a_video_the_decoder_refuses_keeps_the_reason_to_say_it_in_each_reader_s_language(clips, student):
    """recognition's refusal is kept with its reason and numbers, not only as the worker's English."""
    from django.utils import translation

    from attendance.enrolment.selectors import enrolment_status

    enrolment = _upload(student, clips.katie_three_s)
    with default_storage.open(enrolment.video.name, "wb") as replaced:  # became a photo on the server's disk
        replaced.write(b"\xff\xd8\xff\xe0" + b"\x00" * 64)
    enrolment_video_process(enrolment_id=enrolment.pk)
    enrolment.refresh_from_db()
    assert (enrolment.status, enrolment.error_code) == ("failed", "not_a_video")
    assert enrolment.progress["refusal"] == {"reason": "image", "params": {"format": "JPEG"}}
    assert enrolment.error_message.startswith("The video is a JPEG image, not a video")
    with translation.override("hr"):
        croatian = enrolment_status(enrolment=enrolment).error_message
    assert "JPEG" in croatian and "not a video" not in croatian


# --- Crash, retry and success (the talking head's first half) -----------------------------------

@pytest.mark.slow
def test_a_crash_inside_the_task_leaves_it_retryable_and_the_old_index_untouched_then_a_rerun_enrols(
    clips, previous, monkeypatch, django_capture_on_commit_callbacks
):
    from attendance import ml

    enrolment = _upload(previous.student, clips.katie_first_half)
    stored = enrolment.video.name
    seen: dict[str, int] = {}
    real_rebuild = processing.student_courses_index_rebuild

    def rebuild_then_crash(**kwargs):
        # Inside the result transaction: the new embeddings are written, the old ones superseded.
        seen["embeddings"] = FaceEmbedding.objects.filter(enrolment_id=enrolment.pk).count()
        real_rebuild(**kwargs)  # the index file of the next version is written too
        raise RuntimeError("the disk holding the indexes failed")

    monkeypatch.setattr(processing, "student_courses_index_rebuild", rebuild_then_crash)
    with pytest.raises(RuntimeError), django_capture_on_commit_callbacks(execute=True):
        enrolment_video_process(enrolment_id=enrolment.pk)
    enrolment.refresh_from_db()
    assert enrolment.status == FaceEnrolment.Status.QUEUED  # handed back for the task's retry
    assert enrolment.attempts == 1 and enrolment.progress["stage"] == "retrying"
    assert not enrolment.embeddings.exists()
    assert default_storage.exists(stored)  # the retry needs it
    assert seen["embeddings"] >= 5
    previous.assert_intact()

    monkeypatch.setattr(processing, "student_courses_index_rebuild", real_rebuild)
    with django_capture_on_commit_callbacks(execute=True):
        result = enrolment_video_process(enrolment_id=enrolment.pk)
    assert result is not None and result.status == FaceEnrolment.Status.READY, result and result.error_message
    assert result.attempts == 2
    assert result.embeddings.count() == seen["embeddings"]  # the rerun made the same views
    assert result.backbone == ml.embedder_name() and result.progress["embeddings"] == seen["embeddings"]
    assert not default_storage.exists(stored)
    previous.enrolment.refresh_from_db()
    assert previous.enrolment.status == FaceEnrolment.Status.SUPERSEDED
    assert not FaceEmbedding.objects.filter(pk__in=previous.embedding_ids).exists()

    # The course index now holds her new face only, and finds her in frames enrolment never saw.
    previous.course.refresh_from_db()
    assert previous.course.index_version == previous.index_version + 1
    clear_cache()
    index = course_index_get(course=previous.course)
    assert set(index.student_of.values()) == {previous.student.pk} and len(index) == seen["embeddings"]
    probe = video_frames(KATIE_VIDEO, start_s=SPLIT_S + 2.0)[0][:, :, ::-1].copy()
    found = ml.recognizer().embed_faces(probe)
    assert len(found) == 1
    nearest = index.index.search(found[0][1][None, :], k=1)[0][0]
    assert index.student_of[nearest.id] == previous.student.pk
    assert nearest.distance < ml.recognition_params().threshold


def test_the_task_retries_an_unexpected_error_and_gives_up_after_its_last_try(monkeypatch):
    from attendance.tasks import enrolment_process

    calls: list[int] = []

    def broken(*, enrolment_id: int):
        calls.append(enrolment_id)
        raise ConnectionError("database went away")

    monkeypatch.setattr(processing, "enrolment_video_process", broken)
    result = enrolment_process.apply(args=[42], throw=False)
    assert result.failed()
    assert calls == [42] * (1 + enrolment_process.max_retries)


# --- Stale jobs ----------------------------------------------------------------------------------

def test_stale_jobs_are_sent_again_and_fresh_ones_left_alone(student, make_user, settings, monkeypatch,
                                                             django_capture_on_commit_callbacks):
    sent: list[int] = []
    monkeypatch.setattr(service, "_schedule", sent.append)
    long_ago = timezone.now() - timedelta(minutes=settings.ROLLCALL_ENROLMENT_STALE_MINUTES + 1)

    def make(status: str, started_at):
        row = FaceEnrolment.objects.create(student=make_user("student"), status=status,
                                           consent_given_at=timezone.now(), started_at=started_at, attempts=1)
        if started_at is None:
            FaceEnrolment.objects.filter(pk=row.pk).update(created_at=long_ago)
        return row

    dead_worker = make("processing", long_ago)
    lost_message = make("queued", None)
    busy = make("processing", timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        assert enrolment_requeue_stale() == 2
    assert sorted(sent) == sorted([dead_worker.pk, lost_message.pk])
    dead_worker.refresh_from_db()
    busy.refresh_from_db()
    assert dead_worker.status == "queued" and dead_worker.progress["stage"] == "retrying"
    assert busy.status == "processing"


# --- Course memberships ------------------------------------------------------------------------

def test_adding_and_removing_a_student_rebuilds_the_course_index(previous, lecturer, make_user):
    other = Course.objects.create(code="OTHER", title="Other", term="2026-autumn")
    course_membership_add(course=other, student=previous.student)
    other.refresh_from_db()
    assert other.index_version == 1
    clear_cache()
    assert set(course_index_get(course=other).student_of) == previous.embedding_ids

    # Adding again changes nothing; a student without face data does not need a rebuild.
    course_membership_add(course=other, student=previous.student)
    course_membership_add(course=other, student=make_user("student"))
    other.refresh_from_db()
    assert other.index_version == 1 and CourseMembership.objects.filter(course=other).count() == 2

    assert course_membership_remove(course=other, student=previous.student) is True
    other.refresh_from_db()
    assert other.index_version == 2
    clear_cache()
    assert len(course_index_get(course=other)) == 0
    assert course_membership_remove(course=other, student=previous.student) is False
    with pytest.raises(MembershipError):
        course_membership_add(course=other, student=lecturer)
