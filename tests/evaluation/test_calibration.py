"""The evaluation's threshold calibrated from its gallery, beside the fixed default, on the
evaluation's own split of ../shared/faces: people/ halved into gallery and probes (seed 0), the
three people of unknown/ (33 photos) as strangers.

33 stranger samples resolve a rate only to a few percent: 0 of 33 has a one-sided 95% upper bound
of 8.7%, 1 of 33 of 13.6%. A calibration that lets one of them in has missed a 0.1% target
(P(at least 1 of 33 | 0.1%) = 3%), but a clean 0 of 33 does not show that it met it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recognition import BACKBONE_DEFAULTS, FaceDetector, calibrate_threshold
from recognition.calibrate import SAFE_THRESHOLDS, gallery_distances
from recognition.evaluation import (
    BackboneSpec,
    EmbeddedSet,
    EmbeddingCache,
    EvaluationSettings,
    evaluate,
    load_dataset,
)
from recognition.evaluation.calibration import held_out_people, upper_bound_95


def test_the_upper_bound_is_clopper_pearsons():
    assert upper_bound_95(0, 33) == pytest.approx(1 - 0.05 ** (1 / 33), abs=1e-9)  # 8.7%
    assert upper_bound_95(1, 33) == pytest.approx(0.1358, abs=1e-3)
    assert upper_bound_95(33, 33) == 1.0 and upper_bound_95(0, 0) is None
    many, few = upper_bound_95(5, 1000), upper_bound_95(5, 100)
    assert many is not None and few is not None and many < few


def test_the_cli_refuses_a_calibration_target_outside_0_and_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from recognition.evaluate import main

    assert main([str(tmp_path), "--backbones", "dlib", "--calibration-target-far", "0"]) == 2
    assert "--calibration-target-far must be between 0 and 1" in capsys.readouterr().err


def embedded(vectors: np.ndarray, labels: np.ndarray) -> EmbeddedSet:
    return EmbeddedSet(vectors=vectors, labels=labels, file_index=np.arange(len(labels)), files=(),
                       detect_s=np.zeros(0), embed_s=np.zeros(0))


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_each_person_held_out_is_judged_at_the_threshold_of_a_gallery_without_them():
    # Nine people 0.3 from a common face, and person 8 a lookalike of person 0.
    rng = np.random.default_rng(8)
    centres = unit(unit(rng.normal(size=(1, 128))) + 0.3 * unit(rng.normal(size=(9, 128))))
    centres[8] = unit(centres[:1] + 0.15 * unit(rng.normal(size=(1, 128))))[0]

    def faces(count: int, spread: float) -> EmbeddedSet:
        labels = np.arange(count) % 9
        return embedded(unit(centres[labels] + spread * unit(rng.normal(size=(count, 128)))), labels.astype(str))

    gallery, probes = faces(45, 0.1), faces(27, 0.15)
    enrolled = EmbeddedSet.join([gallery, probes], 128)
    found = held_out_people("dlib", gallery_distances(gallery.vectors, gallery.labels), gallery, enrolled)
    people = sorted(set(gallery.labels.tolist()))
    assert [fold["person"] for fold in found["folds"]] == people
    default = BACKBONE_DEFAULTS["dlib"].threshold
    for fold in found["folds"]:
        rest = gallery.labels != fold["person"]
        assert fold["threshold"] == calibrate_threshold(gallery.vectors[rest], gallery.labels[rest],
                                                        backbone="dlib").threshold
        own = enrolled.vectors[enrolled.labels == fold["person"]]
        distance = np.sqrt(np.maximum(2 - 2 * own.astype(np.float64) @ gallery.vectors[rest].T, 0)).min(axis=1)
        assert fold["samples"] == len(own)
        # The product's distances come from a float32 product (its rounding differs between CPUs):
        # a distance within 1e-5 of the threshold may fall either side.
        for accepted, threshold in ((fold["calibrated_accepted"], fold["threshold"]),
                                    (fold["default_accepted"], default)):
            assert int((distance <= threshold - 1e-5).sum()) <= accepted <= int((distance <= threshold + 1e-5).sum())
    calibrated, at_default = found["rows"]
    assert found["people"] == len(people) and found["samples"] == len(enrolled)
    assert found["folds_calibrated"] == len(people)  # 8 others each: enough to calibrate
    assert calibrated["samples_accepted"] == sum(fold["calibrated_accepted"] for fold in found["folds"])
    assert calibrated["people_accepted"] == [f["person"] for f in found["folds"] if f["calibrated_accepted"]]
    assert at_default["threshold"] == f"{default:.3f}"
    assert calibrated["people_accepted"] == at_default["people_accepted"] == ["0", "8"]  # the lookalikes
    assert calibrated["far_people"] == pytest.approx(2 / 9)


def test_held_out_galleries_too_small_to_calibrate_are_said_to_use_the_default():
    from recognition.evaluation.report import _held_out_section

    rng = np.random.default_rng(9)
    labels = np.repeat(np.arange(5), 3).astype(str)  # five people: each fold has four, below the minimum
    gallery = embedded(unit(rng.normal(size=(15, 128))), labels)
    found = held_out_people("dlib", gallery_distances(gallery.vectors, gallery.labels), gallery, gallery)
    assert found["folds_calibrated"] == 0 and {fold["source"] for fold in found["folds"]} == {"default"}
    assert "5 of them had too few people to calibrate and used the backbone default" in "\n".join(
        _held_out_section(found))


@pytest.fixture(scope="module")
def split_run(
    faces_dir: Path, detector: FaceDetector, cache_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Any]]:
    dataset = load_dataset(faces_dir / "people", open_set_dirs=[faces_dir / "unknown"])
    out = tmp_path_factory.mktemp("calibration")
    summary = evaluate(dataset, out, backbones=[BackboneSpec("dlib")], detector=detector,
                       settings=EvaluationSettings(scalability_seeds=1, scalability_steps=2),
                       cache=EmbeddingCache(cache_dir), progress=False)
    return out, summary["backbones"][0]


@pytest.mark.slow  # embeds the 219 photos once for the session's cache
def test_the_split_is_calibrated_from_its_gallery_and_names_at_least_as_many_probes_as_the_default(
    split_run: tuple[Path, dict[str, Any]],
):
    _, result = split_run
    report = result["calibration"]
    calibration = report["calibration"]
    assert calibration["source"] == "calibrated" and calibration["target_far"] == 0.001
    assert (calibration["n_people"], calibration["n_impostor_pairs"]) == (17, 136)
    low, high = SAFE_THRESHOLDS["dlib"]
    assert low <= calibration["threshold"] <= high
    calibrated, default = report["rows"]
    assert (calibrated["which"], default["which"]) == ("calibrated", "default")
    assert default["threshold"] == BACKBONE_DEFAULTS["dlib"].threshold
    assert (report["k1"], report["k2"]) == (BACKBONE_DEFAULTS["dlib"].k1, BACKBONE_DEFAULTS["dlib"].k2)
    assert report["probes"] == result["samples"]["probe_samples"] - result["samples"]["probes_without_face"]
    assert calibrated["tar"] >= default["tar"]
    assert (report["strangers"], report["stranger_people"]) == (33, 3)
    # Acceptance does not depend on k1/k2, so the default's FAR is the open-set sweep's at 0.27.
    assert default["far"] == pytest.approx(result["open_set"]["far_at_default"])
    assert calibrated["estimated_far"] == pytest.approx(calibration["estimated_far"])
    assert calibrated["estimated_far"] <= 0.001 and default["estimated_far"] is not None


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="a known limit of calibrating from the gallery alone: on this split it gives 0.295, and one photo "
           "of unknown/yale_subject14 is 0.279 from yale_subject04's gallery photos, nearer than any two "
           "enrolled people of this gallery come to each other (0.36). The full people/ gallery calibrates to "
           "0.275 and rejects all 33 (tests/recognition/test_calibrate.py).",
)
def test_on_the_split_the_calibrated_threshold_accepts_no_stranger(split_run: tuple[Path, dict[str, Any]]):
    _, result = split_run
    calibrated = result["calibration"]["rows"][0]
    assert calibrated["strangers_accepted"] == 0, calibrated


@pytest.mark.slow
def test_the_report_shows_the_calibrated_threshold_next_to_the_default(split_run: tuple[Path, dict[str, Any]]):
    out, result = split_run
    text = (out / "report.md").read_text()
    assert "### Threshold calibrated from the gallery" in text and "calibrated from 17 people" in text
    calibrated, default = result["calibration"]["rows"]
    assert f"| {calibrated['threshold']:.3f} | calibrated |" in text
    assert f"| {default['threshold']:.3f} | default |" in text
    assert "calibrated from the gallery (FAR, TAR)" in text  # the side-by-side column


@pytest.mark.slow
def test_no_enrolled_person_held_out_of_the_split_is_accepted_by_its_gallery_calibrated_without_them(
    split_run: tuple[Path, dict[str, Any]],
):
    # 17 more strangers than unknown/ holds: 0 of 17 people has a one-sided 95% bound of 16%.
    out, result = split_run
    held_out = result["calibration"]["held_out"]
    assert held_out["people"] == 17
    assert held_out["samples"] == result["samples"]["gallery_samples"] + result["samples"]["probe_samples"] - (
        result["samples"]["gallery_without_face"] + result["samples"]["probes_without_face"])
    assert all(fold["source"] == "calibrated" for fold in held_out["folds"]) and held_out["folds_calibrated"] == 17
    calibrated, default = held_out["rows"]
    assert calibrated["people_accepted"] == [] and calibrated["samples_accepted"] == 0, held_out["folds"]
    assert default["people_accepted"] == []
    assert calibrated["far_people_upper_95"] == pytest.approx(upper_bound_95(0, 17))
    text = (out / "report.md").read_text()
    assert "Each enrolled person as a stranger in turn" in text and "0 of 17 (nobody)" in text
