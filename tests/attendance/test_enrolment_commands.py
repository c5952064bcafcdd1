"""enrol_folder on a small folder of real people, and fetch_models with and without the network."""

from __future__ import annotations

import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from attendance.courses.indexes import clear_cache, course_index_get
from attendance.models import Course, FaceEnrolment, User
from tests.conftest import DETECTOR_MODEL, FACES_DIR


def _people_folder(root: Path) -> Path:
    """Both layouts: <person>/train/ (the paper's) and <person>/*.jpg, plus an empty folder."""
    folder = root / "people"
    for person, layout in (("yale_subject01", "train"), ("john_salley", "flat")):
        target = folder / person / ("train" if layout == "train" else "")
        target.mkdir(parents=True)
        for photo in sorted((FACES_DIR / "people" / person).iterdir())[:3]:
            shutil.copy(photo, target / photo.name)
        if layout == "train":  # held-out photos beside train/ are not used
            (folder / person / "test").mkdir()
    (folder / "nobody").mkdir()
    return folder


def test_enrol_folder_creates_students_enrols_them_and_rebuilds_the_index_once(db, tmp_path):
    out, err = StringIO(), StringIO()
    call_command("enrol_folder", str(_people_folder(tmp_path)), "--course", "PILOT1", "--create-course",
                 "--term", "2026-pilot", stdout=out, stderr=err)
    course = Course.objects.get(code="PILOT1", term="2026-pilot")
    students = {u.username: u for u in User.objects.filter(memberships__course=course)}
    assert set(students) == {"yale_subject01", "john_salley", "nobody"}
    assert students["john_salley"].get_full_name() == "John Salley" and students["john_salley"].is_student
    assert not students["john_salley"].has_usable_password()
    ready = FaceEnrolment.objects.filter(status="ready", student__in=students.values())
    assert {e.student.username for e in ready} == {"yale_subject01", "john_salley"}
    assert all(e.embeddings.count() == 3 for e in ready)
    course.refresh_from_db()
    assert course.index_version == 1  # one rebuild at the end, not one per person
    clear_cache()
    assert len(course_index_get(course=course)) == 6
    assert "Enrolled 2 of 3 people" in out.getvalue() and "nobody: no photos or video" in err.getvalue()

    # Again, skipping those enrolled: nothing is redone.
    out = StringIO()
    call_command("enrol_folder", str(tmp_path / "people"), "--course", "PILOT1", "--skip-enrolled",
                 "--no-progress", stdout=out, stderr=StringIO())
    assert "Enrolled 0 of 3 people" in out.getvalue() and "2 skipped" in out.getvalue()
    assert FaceEnrolment.objects.filter(status="ready").count() == 2


def test_enrol_folder_explains_what_is_wrong(db, tmp_path, lecturer):
    with pytest.raises(CommandError, match="No course NOPE: add --create-course"):
        call_command("enrol_folder", str(tmp_path), "--course", "NOPE")
    with pytest.raises(CommandError, match="is not a folder"):
        call_command("enrol_folder", str(tmp_path / "missing"), "--course", "NOPE")
    (tmp_path / lecturer.username).mkdir()
    shutil.copy(sorted((FACES_DIR / "people" / "john_savage").iterdir())[0], tmp_path / lecturer.username)
    err = StringIO()
    with pytest.raises(CommandError, match="Nobody was enrolled"):
        call_command("enrol_folder", str(tmp_path), "--course", "X1", "--create-course", "--no-progress",
                     stdout=StringIO(), stderr=err)
    assert "exists and is not a student" in err.getvalue()


def test_fetch_models_verifies_the_detector_in_place(db, settings):
    settings.ROLLCALL_DETECTOR_MODEL = DETECTOR_MODEL
    out = StringIO()
    call_command("fetch_models", "--offline", stdout=out, stderr=StringIO())
    assert "sha256 verified" in out.getvalue() and "Embedder: dlib" in out.getvalue()


def test_fetch_models_offline_says_what_to_copy_where(db, settings, tmp_path, monkeypatch):
    from recognition import weights

    settings.ROLLCALL_DETECTOR = "yunet"  # asked for by name: no fallback
    settings.ROLLCALL_MODEL_DIR = tmp_path
    settings.ROLLCALL_DETECTOR_MODEL = tmp_path / "face_detection_yunet_2023mar.onnx"
    monkeypatch.setattr(weights, "host_reachable", lambda url, **kwargs: False)  # no network, deterministically
    err = StringIO()
    with pytest.raises(CommandError, match="model file"):
        call_command("fetch_models", stdout=StringIO(), stderr=err)
    message = err.getvalue()
    assert "unreachable (offline?)" in message and str(tmp_path) in message and "sha256" in message
    # No half-written download left behind (the dlib backbone's converted weights and the liveness
    # models' OpenCV exports may be there: conversions of files that are present).
    left = sorted(p.name for p in tmp_path.iterdir())
    assert [name for name in left if not name.endswith((".torch.npz", ".opencv.onnx"))] == [], left


def test_fetch_models_offline_with_auto_runs_what_ships_installed_and_says_so(
    db, settings, tmp_path, monkeypatch
):
    from attendance import ml
    from recognition import weights

    settings.ROLLCALL_BACKBONE = settings.ROLLCALL_DETECTOR = "auto"
    settings.ROLLCALL_CLIP_CHECKPOINT = None
    settings.ROLLCALL_MODEL_DIR = settings.ROLLCALL_LIVENESS_MODEL_DIR = tmp_path
    settings.ROLLCALL_DETECTOR_MODEL = tmp_path / "face_detection_yunet_2023mar.onnx"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(weights, "host_reachable", lambda url, **kwargs: False)  # no network, deterministically
    ml.reset()
    out = StringIO()
    try:
        call_command("fetch_models", stdout=out, stderr=StringIO())
    finally:
        ml.reset()
    lines = out.getvalue().strip().splitlines()
    assert "Liveness: not available" in out.getvalue() and "go on without liveness" in out.getvalue()
    # The last line is the one ./rollcall up shows: what runs and why.
    assert lines[-1].startswith("Recognition runs dlib's face ResNet (auto: no ViT-B-32/openai CLIP weights cached")
    assert "dlib's HOG detector with 5-point landmarks (auto: no face_detection_yunet_2023mar.onnx here" in lines[-1]
