"""python manage.py bench: the app's benchmark runs end to end on tiny sizes and writes well-formed
JSON. Speed is not asserted (the machine is shared); that every section produced its figures is."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from recognition.bench.limit import bf16_matmul_available
from tests.attendance.enrolment_videos import KATIE_VIDEO, write_mp4
from tests.conftest import DETECTOR_MODEL, FACES_DIR
from tests.videos import video_frames

pytestmark = pytest.mark.skipif(
    not KATIE_VIDEO.is_file() or not DETECTOR_MODEL.is_file(), reason="needs ../shared/faces and the YuNet model"
)

TINY = ["--quick", "--in-current-database", "--students", "4", "--per-student", "3", "--repeats", "2",
        "--enrolments", "1", "--search-sizes", "1000", "--probes", "16", "--backbones", "dlib"]


@pytest.fixture
def short_video(tmp_path: Path) -> Path:
    # Three seconds of the talking head: the same pipeline, a third of the embedding time.
    return write_mp4(video_frames(KATIE_VIDEO, end_s=3.0), tmp_path / "katie_3s.mp4")


def _run(tmp_path: Path, *options: str) -> dict[str, Any]:
    out = tmp_path / "bench.json"
    call_command("bench", *TINY, *options, "--json", str(out), "--faces-dir", str(FACES_DIR))
    data: dict[str, Any] = json.loads(out.read_text())
    assert set(data) == {"machine", "config", "rows", "notes"}
    for row in data["rows"]:
        assert set(row) == {"section", "name", "value", "unit", "p95", "runs", "ratio", "note"}
        assert row["value"] is None or (math.isfinite(row["value"]) and row["value"] >= 0), row
        if row["runs"] is not None:
            assert row["p95"] >= row["value"], row
    return data


def _row(data: dict[str, Any], section: str, name: str) -> dict[str, Any]:
    matches = [r for r in data["rows"] if r["section"] == section and r["name"] == name]
    assert len(matches) == 1, (section, name, [(r["section"], r["name"]) for r in data["rows"]])
    return matches[0]


def test_the_in_process_sections_measure_the_real_code_paths(transactional_db: None, tmp_path: Path,
                                                              short_video: Path):
    data = _run(tmp_path, "--sections", "limit,checkin,enrolment,rebuild,search", "--video", str(short_video))
    assert data["config"]["backbones"] == "dlib" and data["config"]["threads_per_process"] == 1

    limit = _row(data, "limit dlib", "1 face: detector + bare forward")
    assert limit["value"] > 0
    one = _row(data, "checkin dlib", "API, 1 face")
    four = _row(data, "checkin dlib", "API, 4 faces")
    for row in (one, four):
        assert row["ratio"] > 0 and row["runs"] >= 2
        assert "no model or index loaded during the timed requests" in row["note"]
    # The enrolled student is recognised through the API (confirming, then recorded once marked).
    assert "recorded" in one["note"] or "confirming" in one["note"] or "marked" in one["note"]
    assert "liveness off" in one["note"]  # the recognition path alone; liveness has its own rows
    passive = _row(data, "liveness dlib", "API, 1 face, liveness passive")
    assert passive["ratio"] > 0 and "models run by opencv" in passive["note"]

    wall = _row(data, "enrolment dlib", f"{short_video.name}: wall time")
    assert wall["ratio"] > 0 and "faces embedded" in wall["note"]
    embedded = _row(data, "enrolment dlib", "part: of which the model (encode)")
    assert 0 < embedded["value"] <= wall["value"]
    assert _row(data, "enrolment dlib", "part: of which index rebuilds")["value"] > 0

    assert _row(data, "rebuild dlib", "course of 4 x 3: course_index_rebuild")["runs"] >= 1
    assert 0.0 <= _row(data, "search dlib", "1k IVF recall@10")["value"] <= 1.0
    assert _row(data, "forward dlib", "dlib forward best")["value"] > 0
    around = _row(data, "checkin dlib", "API, 1 face: around the models")
    assert around["value"] == pytest.approx(max(0.0, one["value"] - limit["value"]))

    # The physical limit: the matmul peak (bf16 only where the CPU has it), the forward's counted
    # FLOPs, and the share of the peak it reached (achieved / peak of the precision it ran in).
    peaks = {r["name"].split()[1].rstrip(","): r["value"] for r in data["rows"] if r["section"] == "peak dlib"}
    assert peaks.get("fp32", 0) > 0 and ("bf16" in peaks) == bf16_matmul_available(), peaks
    assert _row(data, "forward dlib", "dlib forward FLOPs per image")["value"] > 0
    achieved = _row(data, "forward dlib", "dlib forward achieved, best batch")
    share = _row(data, "forward dlib", "dlib forward share of peak, best batch")
    precision = achieved["note"].split(", ")[1].split(";")[0]
    assert achieved["value"] > 0 and share["value"] == pytest.approx(achieved["value"] / peaks[precision])


@pytest.mark.slow
def test_gunicorn_concurrency_and_a_celery_worker_are_measured(transactional_db: None, tmp_path: Path,
                                                               short_video: Path):
    data = _run(tmp_path, "--sections", "concurrency,worker", "--video", str(short_video), "--clients", "1,2",
                "--seconds", "1", "--max-requests", "4", "--web-workers", "1")
    for clients in (1, 2):
        row = _row(data, "concurrency dlib", f"{clients} client(s): check-ins per second")
        assert row["value"] > 0 and "0 errors" in row["note"]
    assert _row(data, "memory dlib", "web worker 1 (gunicorn, model loaded)")["value"] > 50
    worker = _row(data, "enrolment dlib", "through a Celery worker: queued to ready")
    assert worker["note"].startswith("ready")
    assert _row(data, "memory dlib", "Celery worker child (model loaded, after an enrolment)")["value"] > 50


def test_unknown_sections_and_backbones_are_refused(db: None):
    with pytest.raises(CommandError, match="Unknown section"):
        call_command("bench", "--sections", "limit,speed")
    with pytest.raises(CommandError, match="Unknown backbone"):
        call_command("bench", "--backbones", "resnet")


def test_a_missing_video_is_refused_before_anything_runs(db: None, tmp_path: Path):
    with pytest.raises(CommandError, match="test video is not at"):
        call_command("bench", "--video", str(tmp_path / "missing.mp4"))


def test_a_bench_without_the_liveness_models_says_so_instead_of_timing_liveness_off(
    db: None, tmp_path: Path, settings: Any, monkeypatch: pytest.MonkeyPatch
):
    from recognition import bench as lib

    settings.ROLLCALL_LIVENESS_MODEL_DIR = tmp_path  # empty, and no other folder holds them
    monkeypatch.setattr(lib, "default_liveness_model_dir", lambda preferred=None: None)
    with pytest.raises(CommandError, match="No MiniFASNet models in"):
        call_command("bench", *TINY, "--sections", "checkin", "--faces-dir", str(FACES_DIR))
