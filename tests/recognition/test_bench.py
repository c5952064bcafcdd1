"""recognition.bench: runs end to end on tiny sizes, writes well-formed JSON, and its face-like
vectors have the statistics the benchmark note claims. No speed is asserted: this machine is shared."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recognition import bench
from recognition.bench import clip_variants, device, limit

ROW_KEYS = {"section", "name", "value", "unit", "p95", "runs", "ratio", "note"}


def _check_rows(rows: list[dict[str, object]]) -> None:
    for row in rows:
        assert set(row) == ROW_KEYS, row
        assert isinstance(row["section"], str) and isinstance(row["name"], str) and row["name"]
        value = row["value"]
        assert value is None or (isinstance(value, float | int) and math.isfinite(value) and value >= 0), row
        if row["unit"] in ("ms", "ms/image", "ms/query", "ms/batch"):
            assert isinstance(value, float | int) and value > 0, row
        if row["runs"] is not None:  # a timing (a derived figure, like a sum or a best, has none)
            assert isinstance(row["runs"], int) and row["runs"] >= 1, row
            assert isinstance(row["p95"], float | int) and row["p95"] >= value, row


def test_the_quick_bench_runs_end_to_end_and_writes_json(
    tmp_path: Path, faces_dir: Path, detector_model: Path, capsys: pytest.CaptureFixture[str]
):
    out = tmp_path / "bench.json"
    code = bench.main([
        "--quick", "--json", str(out), "--backbone", "dlib", "--forward-backbones", "clip,dlib", "--no-fp32",
        "--batches", "1,2", "--sizes", "1000,2000", "--probes", "20", "--repeats", "2", "--warmup", "1",
        "--budget", "0.2", "--faces-dir", str(faces_dir), "--detector-model", str(detector_model),
        "--cache-dir", str(tmp_path / "cache"),
    ])
    assert code == 0
    printed = capsys.readouterr().out
    assert "median" in printed and "p95" in printed and f"JSON written to {out}" in printed

    data = json.loads(out.read_text())
    assert set(data) == {"machine", "config", "rows", "notes"}
    assert data["machine"]["cores"] >= 1 and data["machine"]["cpu"]
    assert data["config"]["thread_pools"]["faiss"] == 1 and data["config"]["thread_pools"]["torch"] == 1
    _check_rows(data["rows"])
    names = {(row["section"], row["name"]) for row in data["rows"]}
    # CLIP runs in the precision the embedder picks on this CPU (bf16 where it agrees with float32,
    # else fp32; --no-fp32 skips the reference): one precision, whichever it is, with both rows.
    precisions = {name.split()[2] for section, name in names if section == "forward" and name.startswith("clip ")}
    assert len(precisions) == 1 and precisions <= {"fp32", "bf16"}, precisions
    precision = precisions.pop()
    for expected in [
        ("forward", f"clip ViT-B-32 {precision} batch 1"),
        ("forward", f"clip ViT-B-32 {precision} best"),
        ("forward", "dlib batch 2"),
        ("detector", "YuNet, 640x480, 1 face"),
        ("limit", "4 faces: detector + bare forward"),
        ("pipeline", "1 face: detect + align + embed + search"),
        ("search", "1k flat, 1 query"),
        ("search", "2k IVF, batch of 16"),
        ("search", "2k IVF recall@10"),
        ("rebuild", "500 x 20 (128-d): build + save"),
    ]:
        assert expected in names, expected
    _check_limit_rows(data["rows"], ["dlib", f"clip ViT-B-32 {precision}"])
    assert ("pipeline", "class photo (30 faces): detect + align + embed + search") in names
    crowd = next(r for r in data["rows"] if r["name"] == "YuNet, 640x480, class photo (30 faces)")
    assert int(crowd["note"].split()[0]) >= 20  # six group photos of 30 faces: YuNet finds most
    recall = next(r for r in data["rows"] if r["name"] == "2k IVF recall@10")
    assert 0.0 <= recall["value"] <= 1.0
    pipeline = next(r for r in data["rows"] if r["section"] == "pipeline")
    assert pipeline["ratio"] is not None and pipeline["ratio"] > 0
    assert any("CLIP" in note or "clip" in note for note in data["notes"])


def _check_limit_rows(rows: list[dict[str, Any]], labels: list[str], section: str = "") -> None:
    """The physical-limit rows: a positive float32 matmul peak (bf16 exactly where the CPU has it),
    each forward's FLOPs, and achieved GFLOP/s whose share of the peak is achieved / peak."""
    by_name = {row["name"]: row for row in rows if row["section"] in (f"peak{section}", f"forward{section}")}
    peaks = {name.split()[1].rstrip(","): row["value"] for name, row in by_name.items()
             if name.startswith("matmul ")}
    assert peaks.get("fp32", 0) > 0, peaks
    assert ("bf16" in peaks) == limit.bf16_matmul_available(), peaks
    for label in labels:
        assert by_name[f"{label} FLOPs per image"]["value"] > 0
        assert by_name[f"{label} FLOPs per image"]["unit"] == "GFLOP"
        for which in ("batch 1", "best batch"):
            achieved = by_name[f"{label} achieved, {which}"]
            share = by_name[f"{label} share of peak, {which}"]
            assert achieved["unit"] == "GFLOP/s" and achieved["value"] > 0
            precision = achieved["note"].split(", ")[1].split(";")[0]
            assert share["value"] == pytest.approx(achieved["value"] / peaks[precision], rel=1e-9)
            assert achieved["ratio"] == pytest.approx(share["value"], rel=1e-9)
    if len(labels) == 2:  # a ViT-B-32 image is far more arithmetic than one pass of dlib's ResNet
        assert by_name[f"{labels[1]} FLOPs per image"]["value"] > 5 * by_name[f"{labels[0]} FLOPs per image"]["value"]


def test_the_dlib_forward_is_counted_at_its_known_size():
    from recognition import DlibEmbedder

    embedder = DlibEmbedder(precision="fp32")
    crop = np.zeros((150, 150, 3), dtype=np.uint8)
    # dlib's ResNet on a 150x150 chip: about 0.54 GFLOP per pass (2 per multiply-add).
    assert limit.flops_per_image(embedder, crop) / 1e9 == pytest.approx(0.54, abs=0.03)


def test_the_device_check_says_no_cuda_device_and_fails(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]):
    monkeypatch.setattr(device, "cuda_device", lambda: None)
    assert bench.main(["--device-check"]) == 2
    captured = capsys.readouterr()
    assert "no CUDA device" in captured.err and captured.out == ""


@pytest.mark.skipif(device.cuda_device() is not None, reason="this machine has a CUDA device")
def test_on_a_cpu_machine_the_device_check_says_so(capsys: pytest.CaptureFixture[str]):
    assert bench.main(["--device-check"]) == 2
    assert device.NO_CUDA in capsys.readouterr().err


def test_clip_variants_are_timed_compared_and_judged(tmp_path: Path):
    """On a tiny CLIP (same code, a few thousand parameters): every variant gets its timings and
    a verdict with its cosine to float32; only faster-and-agreeing ones are listed as kept."""
    import open_clip

    from recognition import ClipEmbedder

    vision = {"image_size": 64, "layers": 1, "width": 32, "head_width": 16, "patch_size": 32}
    config = {"embed_dim": 16, "vision_cfg": vision,
              "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 2, "layers": 1}}
    (tmp_path / "RollcallTinyBench.json").write_text(json.dumps(config))
    open_clip.add_model_config(tmp_path / "RollcallTinyBench.json")
    embedder = ClipEmbedder("RollcallTinyBench", pretrained=None, precision="fp32")
    report = bench.Report()
    crop = np.full((64, 64, 3), 128, dtype=np.uint8)
    result = clip_variants.measure_clip_variants(report, embedder, crop, current="fp32", batches=[1, 2],
                                                 repeats=2, warmup=0, budget_s=0.05)
    names = {row.name for row in report.rows if row.section == "clip-variants"}
    for variant in ("fp32", "fp32 channels-last", "fp32 oneDNN fusion (jit freeze)", "int8 dynamic (Linear layers)"):
        assert {f"{variant} batch 1", f"{variant} batch 2", f"{variant}: verdict"} <= names, names
        verdict = next(row for row in report.rows if row.name == f"{variant}: verdict")
        assert "cosine to fp32" in verdict.note
    assert result["agreement"]["fp32"] == pytest.approx(1.0, abs=1e-6)
    for name in result["kept"]:
        assert name != "fp32" and result["agreement"][name] >= 0.999
        assert all(result["per_image"]["fp32"][b] / ms >= clip_variants.MIN_SPEEDUP
                   for b, ms in result["per_image"][name].items())
    reduced = ClipEmbedder("RollcallTinyBench", pretrained=None, precision="bf16")  # bf16 asked: any CPU runs it
    with pytest.raises(ValueError, match="float32 embedder"):
        clip_variants.measure_clip_variants(report, reduced, crop, current="fp32", batches=[1], repeats=1,
                                            warmup=0, budget_s=0.01)


def test_face_like_vectors_have_the_distances_of_real_face_embeddings():
    gallery = bench.face_like_gallery(4000, 128, per_identity=20, seed=3)
    vectors = gallery.vectors
    assert vectors.shape == (4000, 128) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    same = [np.linalg.norm(vectors[i * 20 + a] - vectors[i * 20 + b]) for i in range(0, 200, 5)
            for a, b in ((0, 1), (2, 7), (5, 19))]
    rng = np.random.default_rng(0)
    pairs = rng.integers(0, 200, size=(300, 2))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    other = [np.linalg.norm(vectors[a * 20] - vectors[b * 20]) for a, b in pairs]
    # The figures the note states, measured on dlib's embeddings of ../shared/faces.
    assert float(np.median(same)) == pytest.approx(0.235, abs=0.03)
    assert float(np.median(other)) == pytest.approx(0.585, abs=0.03)
    assert float(np.linalg.norm(vectors.mean(axis=0))) == pytest.approx(0.91, abs=0.03)


def test_probes_are_new_samples_of_enrolled_people_and_strangers_are_farther():
    gallery = bench.face_like_gallery(2000, 64, per_identity=20, seed=4)
    probes = bench.enrolled_probes(gallery, 30, seed=5)
    strangers = bench.stranger_probes(gallery, 30, seed=6)
    nearest_probe = np.min(np.linalg.norm(probes[:, None] - gallery.vectors[None], axis=2), axis=1)
    nearest_stranger = np.min(np.linalg.norm(strangers[:, None] - gallery.vectors[None], axis=2), axis=1)
    assert not any(np.any(np.all(np.isclose(gallery.vectors, p), axis=1)) for p in probes)
    assert np.median(nearest_probe) < np.median(nearest_stranger)


def test_a_cached_gallery_is_read_back_identical(tmp_path: Path):
    made = bench.face_like_gallery(300, 16, per_identity=10, seed=8, cache_dir=tmp_path)
    again = bench.face_like_gallery(300, 16, per_identity=10, seed=8, cache_dir=tmp_path)
    assert np.array_equal(made.vectors, again.vectors) and np.array_equal(made.centres, again.centres)
    assert len(list(tmp_path.iterdir())) == 2


def test_a_gallery_that_does_not_fill_its_last_identity_has_exactly_count_rows():
    gallery = bench.face_like_gallery(105, 8, per_identity=20, seed=1)
    assert gallery.vectors.shape == (105, 8) and len(gallery.centres) == 6


def test_timing_is_the_median_and_95th_percentile_in_milliseconds():
    timing = bench.Timing.of([0.001] * 19 + [0.1])
    assert timing.median == pytest.approx(1.0) and timing.runs == 20
    assert timing.p95 == pytest.approx(float(np.percentile([1.0] * 19 + [100.0], 95)))


def test_timed_warms_up_then_stops_at_repeats():
    calls: list[int] = []
    timing = bench.timed(lambda: calls.append(1), warmup=3, repeats=5, budget_s=60)
    assert len(calls) == 8 and timing.runs == 5


def test_the_table_lines_up_and_shows_ratios_and_notes():
    report = bench.Report(machine={"cpu": "Test CPU", "cores": 2, "memory_gb": 1.0})
    report.add_timing("limit", "one", bench.Timing(12.345, 20.0, 5), ratio=1.234, note="why")
    report.add("search", "recall", 0.97, "fraction")
    report.notes.append("a note")
    lines = report.table().splitlines()
    assert lines[0].startswith("Machine: Test CPU, 2 cores")
    header = next(line for line in lines if line.startswith("section"))
    row = next(line for line in lines if line.startswith("limit"))
    assert row.index("12.3") < row.index("20.0") < row.index("1.23x") < row.index("why")
    assert header.index("median") <= row.index("12.3") + 4
    assert lines[-1] == "* a note"


def test_bad_arguments_are_refused():
    with pytest.raises(SystemExit):
        bench.parse_args(["--backbone", "resnet"])
    with pytest.raises(SystemExit):
        bench.parse_args(["--sections", "forward,nonsense"])


def test_small_vectors_probe_half_as_many_lists_again():
    from recognition.index import ivf_parameters

    assert ivf_parameters(1_000_000, 512) == (2000, 24)
    assert ivf_parameters(1_000_000, 128) == (2000, 46)
    assert ivf_parameters(1_000, 128) == (25, 24)  # never more probes than lists
