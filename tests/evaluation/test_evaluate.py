"""The whole evaluation on real faces with dlib: grid CSV, report, figures, open set, cache, CLI.

Eight people (four photos each) and three strangers (three each) keep it fast; the faces are embedded once for
the session (the cache), so later runs on the same photos only read vectors back.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recognition import FaceDetector
from recognition.evaluation import (
    BackboneSpec,
    EmbeddingCache,
    EvaluationSettings,
    evaluate,
    load_dataset,
)
from tests.conftest import REPO_ROOT

FAST = EvaluationSettings(scalability_seeds=2, scalability_steps=3)


@pytest.fixture(scope="module")
def subset_run(
    tmp_path_factory: pytest.TempPathFactory,
    subset_people: dict[str, list[Path]],
    subset_strangers: dict[str, list[Path]],
    detector: FaceDetector,
    cache_dir: Path,
) -> tuple[Path, dict[str, Any]]:
    from .conftest import link_flat

    base = tmp_path_factory.mktemp("subset")
    root = link_flat(base / "people", subset_people)
    strangers = link_flat(base / "strangers", subset_strangers)
    dataset = load_dataset(root, open_set_dirs=[strangers])
    out = base / "out"
    summary = evaluate(dataset, out, backbones=[BackboneSpec("dlib")], detector=detector, settings=FAST,
                       cache=EmbeddingCache(cache_dir), progress=False)
    return out, summary


def test_the_grid_csv_has_the_papers_columns_and_one_row_per_combination(subset_run: tuple[Path, dict[str, Any]]):
    out, _ = subset_run
    with (out / "dlib" / "grid_search_results.csv").open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["k1", "k2", "threshold", "precision", "recall", "f1", "tp", "fp", "tn", "fn"]
    assert len(rows) - 1 == 45 * 51  # k1 < k2 pairs from 1-9 x 2-10, thresholds 0.50-1.00
    combos = {(int(r[0]), int(r[1]), r[2]) for r in rows[1:]}
    assert len(combos) == 45 * 51 and all(k1 < k2 for k1, k2, _ in combos)
    probes = 8 * 2
    for r in rows[1:]:
        tp, fp, tn, fn = (int(v) for v in r[6:])
        assert fp == fn and tp + fn == probes and r[3] == r[4]
        assert tn >= probes * (8 - 1) - fp  # at most one TN lost per wrongly named probe


def test_dlib_on_real_faces_is_accurate_at_the_best_point(subset_run: tuple[Path, dict[str, Any]]):
    _, summary = subset_run
    [result] = summary["backbones"]
    assert result["accuracy"] >= 0.95 and result["best"]["f1"] >= 0.95
    assert result["samples"]["probes_without_face"] == 0
    assert [g["group"] for g in result["f1_groups"]] == ["0-49%", "50-74%", "75-100%"]
    assert sum(len(g["classes"]) for g in result["f1_groups"]) == 8
    assert len([row for row in result["per_class"] if not row["is_unknown"]]) == 8
    assert np.asarray(result["confusion_matrix"]).sum() == 8 * 2


def test_open_set_false_accepts_fall_as_the_threshold_falls(subset_run: tuple[Path, dict[str, Any]]):
    _, summary = subset_run
    open_set = summary["backbones"][0]["open_set"]
    far = np.array(open_set["curve"]["far"])
    assert np.all(np.diff(far) >= 0), "FAR must not rise when the threshold is lowered"
    assert far[0] == 0.0 and far[-1] == 1.0  # threshold 0 accepts nobody, 2 (the diameter) everybody
    chosen = open_set["threshold_at_target"]
    assert chosen is not None and open_set["far_at_target"] <= open_set["target_far"]
    thresholds = np.array(open_set["curve"]["threshold"])
    assert far[thresholds > chosen + 1e-9][0] > open_set["target_far"]  # the largest that meets it
    assert open_set["tar_at_target"] >= 0.8  # dlib separates these strangers from the enrolled


def test_the_report_links_every_figure_and_states_the_settings(subset_run: tuple[Path, dict[str, Any]]):
    out, summary = subset_run
    report = (out / "report.md").read_text()
    for figure in summary["backbones"][0]["figures"].values():
        assert (out / figure).is_file() and (out / figure).stat().st_size > 5000
        assert f"]({figure})" in report
    assert set(summary["backbones"][0]["figures"]) == {"confusion_matrix", "pr_curve", "pca", "open_set", "scalability"}
    for text in ("flat layout", "dlib:resnet_v1:mirror", "k1 1-9", "Backbones side by side", "Most confused",
                 "Open-set rejection", "Scalability", "grid_search_results.csv"):
        assert text in report
    saved = json.loads((out / "report.json").read_text())
    assert saved["backbones"][0]["best"] == summary["backbones"][0]["best"]
    counts = sorted({p["classes"] for p in saved["backbones"][0]["scalability"]})
    assert counts[0] == 2 and counts[-1] == 8


def test_a_rerun_reads_every_embedding_from_the_cache(
    subset_run: tuple[Path, dict[str, Any]], detector: FaceDetector, cache_dir: Path, tmp_path: Path
):
    out, first = subset_run
    root = Path(first["dataset"]["root"])
    dataset = load_dataset(root, open_set_dirs=[root.parent / "strangers"])
    cache = EmbeddingCache(cache_dir)
    again = evaluate(dataset, tmp_path / "again", backbones=[BackboneSpec("dlib")], detector=detector,
                     settings=FAST, cache=cache, progress=False)
    assert cache.misses == 0 and cache.hits == len(dataset.gallery) + len(dataset.probes) + len(dataset.open_set)
    assert again["backbones"][0]["best"] == first["backbones"][0]["best"]
    assert (tmp_path / "again" / "dlib" / "grid_search_results.csv").read_bytes() == (
        out / "dlib" / "grid_search_results.csv"
    ).read_bytes()


def test_a_corrupt_cache_entry_is_embedded_again(
    make_flat: Callable[..., Path], subset_people: dict[str, list[Path]], detector: FaceDetector, tmp_path: Path
):
    from recognition import DlibEmbedder
    from recognition.evaluation import SetEmbedder

    cache = EmbeddingCache(tmp_path / "cache")
    worker = SetEmbedder(detector, DlibEmbedder(), cache=cache, progress=False)
    source = load_dataset(make_flat({k: subset_people[k][:2] for k in list(subset_people)[:2]})).gallery[0]
    first = worker.embed_file(source)
    [entry] = list((tmp_path / "cache").rglob("*.npz"))
    entry.write_bytes(b"not an npz")
    second = worker.embed_file(source)
    assert cache.misses == 2 and np.allclose(first.vectors, second.vectors)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "recognition.evaluate", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300, check=False)


def test_the_cli_writes_the_report(
    subset_run: tuple[Path, dict[str, Any]], detector_model: Path, cache_dir: Path, tmp_path: Path
):
    _, first = subset_run
    root = first["dataset"]["root"]
    done = run_cli(root, "--out", str(tmp_path / "cli"), "--backbones", "dlib", "--detector-model",
                   str(detector_model), "--cache-dir", str(cache_dir), "--no-progress", "--k1", "1-2", "--k2", "2-3",
                   "--thresholds", "0.5:0.6:0.05", "--scalability-seeds", "1", "--threads", "1")
    assert done.returncode == 0, done.stderr
    assert "accuracy" in done.stdout and (tmp_path / "cli" / "report.md").is_file()
    with (tmp_path / "cli" / "dlib" / "grid_search_results.csv").open() as fh:
        assert len(list(csv.reader(fh))) == 1 + 3 * 3  # (1,2), (1,3), (2,3) x 0.50, 0.55, 0.60


def test_the_cli_refuses_a_bad_folder_or_backbone_with_a_message(
    detector_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    from recognition.evaluate import main

    assert main([str(tmp_path / "no-such-folder"), "--backbones", "dlib", "--detector-model", str(detector_model)]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert main([str(tmp_path), "--backbones", "facenet", "--detector-model", str(detector_model)]) == 2
    assert "unknown backbone 'facenet'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(tmp_path), "--thresholds", "1.0:0.5:0.01"])
    assert "start:stop:step" in capsys.readouterr().err


def test_faces_of_several_files_embedded_in_one_batch_equal_one_file_at_a_time(
    make_flat: Callable[..., Path], subset_people: dict[str, list[Path]], detector: FaceDetector
):
    from recognition import DlibEmbedder
    from recognition.evaluation import SetEmbedder

    dataset = load_dataset(make_flat({k: subset_people[k][:2] for k in ("john_salley", "yale_subject01")}))
    embedder = DlibEmbedder()
    one = SetEmbedder(detector, embedder, cache=EmbeddingCache(None), batch_faces=1, progress=False)
    many = SetEmbedder(detector, embedder, cache=EmbeddingCache(None), batch_faces=32, progress=False)
    single, batched = one.embed(dataset.gallery), many.embed(dataset.gallery)
    assert single.labels.tolist() == batched.labels.tolist() == ["john_salley", "yale_subject01"]
    assert np.allclose(single.vectors, batched.vectors, atol=1e-5)
    assert np.all(batched.embed_s > 0) and np.all(batched.detect_s > 0)


def test_the_report_gives_the_threshold_calibrated_from_the_gallery_beside_the_default(
    subset_run: tuple[Path, dict[str, Any]],
):
    from recognition.calibrate import SAFE_THRESHOLDS

    out, summary = subset_run
    [result] = summary["backbones"]
    report = result["calibration"]
    assert report["calibration"]["n_people"] == 8 and report["calibration"]["n_impostor_pairs"] == 28
    low, high = SAFE_THRESHOLDS["dlib"]
    assert low <= report["calibration"]["threshold"] <= high
    calibrated, default = report["rows"]
    assert default["far"] == result["open_set"]["far_at_default"]  # k1/k2 do not change who is accepted
    # A looser threshold accepts at least whom a tighter one does, and names at least as many.
    looser, tighter = sorted((calibrated, default), key=lambda row: -row["threshold"])
    assert looser["strangers_accepted"] >= tighter["strangers_accepted"] and looser["tar"] >= tighter["tar"]
    assert "### Threshold calibrated from the gallery" in (out / "report.md").read_text()
    assert json.loads((out / "report.json").read_text())["backbones"][0]["calibration"]["rows"] == report["rows"]
