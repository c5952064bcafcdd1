"""One embedding space per site: recorded at the first enrolment, kept across a restart with other
settings, switched only by `manage.py reembed`, atomically, never two spaces searched together.
And a model outage: plain words for students and lecturers, no attempt used up, processed after."""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.core.files import File
from django.core.management import call_command
from django.core.management.base import CommandError

from attendance import ml
from attendance.courses.indexes import clear_cache, course_index_get
from attendance.enrolment.processing import enrolment_video_process
from attendance.enrolment.services import enrolment_create
from attendance.models import CourseMembership, EmbeddingSpace, FaceEmbedding, FaceEnrolment
from attendance.spaces import services as spaces
from tests.attendance.enrolment_videos import Clips
from tests.attendance.factories_faces import enrol_with_vectors

pytestmark = pytest.mark.slow

DLIB_SPACE = "dlib:resnet_v1:mirror"


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    return Clips(tmp_path_factory.mktemp("clips"))


@pytest.fixture(scope="module")
def clip_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CLIP ViT-B-32 with random weights saved as a checkpoint: a second, real space, no hub needed."""
    import torch

    from recognition import ClipEmbedder

    path = tmp_path_factory.mktemp("clip") / "campus_clip.bin"
    torch.save(ClipEmbedder("ViT-B-32", pretrained=None).model.state_dict(), path)
    return path


@pytest.fixture(autouse=True)
def fresh(db: None, settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    settings.ROLLCALL_BACKBONE = "dlib"
    ml.reset()
    clear_cache()
    yield
    ml.reset()
    clear_cache()


def _unit_vectors(n: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(n, 128)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _use_clip(settings, checkpoint: Path) -> None:
    settings.ROLLCALL_BACKBONE = "auto"
    settings.ROLLCALL_CLIP_CHECKPOINT = str(checkpoint)
    ml.reset()  # a restart: every process decides again from the settings


def test_the_first_enrolment_records_the_space_and_a_restart_with_other_settings_keeps_serving_it(
    settings, student, course, admin_user, client, clip_checkpoint
):
    assert not EmbeddingSpace.objects.exists()
    enrol_with_vectors(student=student, vectors=_unit_vectors(4, seed=1), courses=[course])
    space = EmbeddingSpace.objects.get(active=True)
    assert (space.name, space.backbone, space.dim) == (DLIB_SPACE, "dlib", 128)

    _use_clip(settings, clip_checkpoint)
    assert ml.backbone_choice().name == "clip"  # what the settings ask for...
    assert ml.embedder_name() == DLIB_SPACE and ml.backbone_name() == "dlib"  # ...is not what is served
    clear_cache()
    assert course_index_get(course=course).index.backbone == DLIB_SPACE
    client.force_login(admin_user)
    page = client.get("/").content.decode()
    assert DLIB_SPACE in page and "manage.py reembed" in page and "clip:ViT-B-32:file:campus_clip.bin" in page
    health = client.get("/healthz").json()["checks"]["recognition"]
    assert health["ok"] and health["detail"].startswith(f"serving {DLIB_SPACE}") and "reembed" in health["detail"]


def _katie_enrolled_from_a_kept_video(settings, clips, make_user, course, capture):
    """Katie on the course, enrolled (ready) from the video's first half, the video kept for re-embedding."""
    settings.ROLLCALL_KEEP_ENROLMENT_VIDEOS = True
    katie = make_user("student", first_name="Katie")
    CourseMembership.objects.create(course=course, student=katie)
    with clips.katie_first_half.open("rb") as handle:
        enrolment = enrolment_create(student=katie, video=File(handle, name="katie.mp4"), consent=True, by=katie,
                                     schedule=False)
    with capture(execute=True):
        enrolment_video_process(enrolment_id=enrolment.pk)
    return katie


def test_reembed_switches_atomically_re_embeds_kept_videos_and_asks_the_others_to_enrol_again(
    settings, clips, make_user, course, client, clip_checkpoint, django_capture_on_commit_callbacks
):
    katie = _katie_enrolled_from_a_kept_video(settings, clips, make_user, course, django_capture_on_commit_callbacks)
    other = make_user("student")
    enrol_with_vectors(student=other, vectors=_unit_vectors(3, seed=2), courses=[course])
    dlib_ids = set(FaceEmbedding.objects.values_list("id", flat=True))

    _use_clip(settings, clip_checkpoint)
    seen_during: list[tuple[str, set[int]]] = []

    def progress(done: int, total: int) -> None:
        # While re-embedding, the site still searches the old space only (new vectors are stored already).
        clear_cache()
        index = course_index_get(course=course)
        seen_during.append((index.index.backbone, set(index.student_of)))

    result = spaces.space_reembed(progress=progress)
    clip_space = "clip:ViT-B-32:file:campus_clip.bin"
    assert (result.space, result.previous, result.reembedded, result.reenrol) == (clip_space, DLIB_SPACE, 1, 1)
    assert seen_during and all(seen == (DLIB_SPACE, dlib_ids) for seen in seen_during)
    # After the switch: one active space, only its vectors exist, and the index holds exactly those.
    assert list(EmbeddingSpace.objects.filter(active=True).values_list("name", flat=True)) == [clip_space]
    assert set(FaceEmbedding.objects.values_list("backbone", flat=True)) == {clip_space}
    clear_cache()
    index = course_index_get(course=course)
    assert index.index.backbone == clip_space and index.index.dim == 512
    assert set(index.student_of.values()) == {katie.pk}
    assert ml.embedder_name() == clip_space and ml.space_mismatch() is None
    # The student without a kept video is told, on their home page.
    client.force_login(other)
    assert "Re-enrolment needed" in client.get("/").content.decode()
    client.force_login(katie)
    assert "Re-enrolment needed" not in client.get("/").content.decode()


def test_a_switch_that_fails_halfway_leaves_the_old_space_whole(settings, student, course, clip_checkpoint,
                                                                monkeypatch):
    enrol_with_vectors(student=student, vectors=_unit_vectors(4, seed=3), courses=[course])
    before = set(FaceEmbedding.objects.values_list("id", flat=True))
    _use_clip(settings, clip_checkpoint)

    def broken(**kwargs):
        raise RuntimeError("disk full while writing the new indexes")

    monkeypatch.setattr(spaces, "courses_index_rebuild", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        spaces.space_reembed()
    ml.forget_space()
    assert EmbeddingSpace.objects.get(active=True).name == DLIB_SPACE
    assert set(FaceEmbedding.objects.values_list("id", flat=True)) == before
    assert ml.embedder_name() == DLIB_SPACE


def test_the_reembed_command_shows_progress_and_refuses_a_switch_to_the_same_space(settings, student, course,
                                                                                  clip_checkpoint):
    enrol_with_vectors(student=student, vectors=_unit_vectors(4, seed=4), courses=[course])
    with pytest.raises(CommandError, match="already serves"):
        call_command("reembed", stdout=StringIO(), stderr=StringIO())
    _use_clip(settings, clip_checkpoint)
    out, err = StringIO(), StringIO()
    call_command("reembed", stdout=out, stderr=err)
    assert "0 student(s) re-embedded from their kept video, 1 asked to enrol again" in out.getvalue()
    assert "Re-embedding enrolments" in err.getvalue() and "1/1" in err.getvalue()


def test_a_model_outage_uses_no_attempt_tells_the_student_plainly_and_the_enrolment_runs_once_it_ends(
    settings, clips, student, client, admin_user, tmp_path, django_capture_on_commit_callbacks
):
    settings.ROLLCALL_DETECTOR = "yunet"
    good_detector = settings.ROLLCALL_DETECTOR_MODEL
    settings.ROLLCALL_DETECTOR_MODEL = tmp_path / "missing.onnx"
    settings.ROLLCALL_MODEL_DIR = tmp_path
    ml.reset()
    with clips.katie_three_s.open("rb") as handle:
        enrolment = enrolment_create(student=student, video=File(handle, name="me.mp4"), consent=True, by=student,
                                     schedule=False)
    for _ in range(5):  # more than the attempts a video gets
        assert enrolment_video_process(enrolment_id=enrolment.pk) is None
    enrolment.refresh_from_db()
    assert (enrolment.status, enrolment.attempts) == (FaceEnrolment.Status.QUEUED, 0)
    client.force_login(student)
    page = client.get("/").content.decode()
    assert "Face recognition is not available on this server right now" in page and "Your video is kept" in page
    assert str(tmp_path) not in page and "ROLLCALL_" not in page
    health = client.get("/healthz")
    assert health.status_code == 503 and health.json()["status"] == "degraded"
    assert str(tmp_path) not in health.content.decode()  # a student is not the operator
    client.force_login(admin_user)
    assert str(tmp_path) in client.get("/healthz").json()["checks"]["recognition"]["detail"]
    overview = client.get("/").content.decode()
    assert 'id="degraded"' in overview and str(tmp_path) in overview
    # The outage ends (the file is put in place): the stale sweep's next send processes it.
    settings.ROLLCALL_DETECTOR_MODEL = good_detector
    ml.reset()
    with django_capture_on_commit_callbacks(execute=True):
        done = enrolment_video_process(enrolment_id=enrolment.pk)
    assert done is not None and done.status == FaceEnrolment.Status.READY and done.attempts == 1


def test_a_withdrawal_while_the_video_is_re_embedded_leaves_no_vector_in_the_new_space(
    settings, clips, make_user, course, clip_checkpoint, django_capture_on_commit_callbacks, monkeypatch
):
    from attendance.privacy import services as privacy

    katie = _katie_enrolled_from_a_kept_video(settings, clips, make_user, course, django_capture_on_commit_callbacks)
    _use_clip(settings, clip_checkpoint)
    real_embed = spaces.embed_views

    def embed_then_withdraw(*args, **kwargs):
        vectors = real_embed(*args, **kwargs)
        privacy.consent_withdraw(student=katie, by=katie)  # she withdraws while her video is embedded
        return vectors

    monkeypatch.setattr(spaces, "embed_views", embed_then_withdraw)
    result = spaces.space_reembed()
    assert (result.reembedded, result.reenrol) == (0, 1)
    assert not FaceEmbedding.objects.filter(student=katie).exists()
