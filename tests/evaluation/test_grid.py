"""The vectorised grid against classify_face, and its CSV against counts worked by hand."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from recognition import classify_face
from recognition.evaluation import (
    CSV_COLUMNS,
    UNKNOWN,
    Neighbours,
    grid_search,
    predict,
    search_neighbours,
    threshold_range,
    vote_tables,
)
from recognition.evaluation.grid import NO_NEIGHBOUR, k_pairs


def test_the_vectorised_vote_gives_classify_faces_answer_for_every_k1_k2_and_threshold():
    rng = np.random.default_rng(7)
    n, k = 400, 10
    labels = rng.integers(0, 4, size=(n, k))  # few classes: many ties to break
    distances = np.sort(rng.uniform(0.3, 1.1, size=(n, k)), axis=1)
    labels[:40, 5:], distances[:40, 5:] = NO_NEIGHBOUR, np.inf  # a gallery smaller than k
    labels[40:45], distances[40:45] = NO_NEIGHBOUR, np.inf  # probes without a face
    neighbours = Neighbours(labels, distances)
    tables = vote_tables(labels)
    thresholds = threshold_range(0.5, 1.0, 0.05)
    mismatches = 0
    for k1, k2 in k_pairs(range(1, 10), range(2, 11)):
        predicted = predict(neighbours, tables, k1=k1, k2=k2, thresholds=thresholds)
        for t_index, threshold in enumerate(thresholds):
            for i in range(0, n, 7):
                pairs = [(int(lab), float(d)) for lab, d in zip(labels[i], distances[i], strict=True)
                         if lab != NO_NEIGHBOUR]
                match = classify_face(pairs, k1=k1, k2=k2, threshold=float(threshold))
                expected = UNKNOWN if match.label is None else match.label
                mismatches += int(predicted[t_index, i] != expected)
    assert mismatches == 0


def test_threshold_ranges_are_inclusive_and_rounded():
    values = threshold_range(0.50, 1.00, 0.01)
    assert len(values) == 51 and values[0] == 0.5 and values[-1] == 1.0
    assert 0.82 in values.tolist()
    with pytest.raises(ValueError):
        threshold_range(1.0, 0.5, 0.01)


def test_k_pairs_are_the_papers_combinations():
    assert len(k_pairs(range(1, 10), range(2, 11))) == 45
    assert k_pairs([1, 2], [2]) == [(1, 2)]
    with pytest.raises(ValueError, match="k1 < k2"):
        k_pairs([3], [2, 3])


def unit(angle_degrees: float) -> np.ndarray:
    a = np.radians(angle_degrees)
    return np.array([np.cos(a), np.sin(a)], dtype=np.float32)


def small_case() -> tuple[Neighbours, np.ndarray]:
    """Two classes on a circle. Gallery: class 0 at 0 and 10 degrees, class 1 at 90 and 100.
    Probes: class 0 at 5 degrees (d = 0.087 to both of class 0), class 1 at 95 degrees, and a
    class 0 probe at 60 degrees: nearest are class 1 at 90 (d = 2 sin 15 = 0.518) and 100
    (d = 2 sin 20 = 0.684), then class 0 at 10 (d = 2 sin 25 = 0.845)."""
    gallery = np.stack([unit(0), unit(10), unit(90), unit(100)])
    classes = np.array([0, 0, 1, 1])
    probes = np.stack([unit(5), unit(95), unit(60)])
    return search_neighbours(gallery, classes, probes, 3), np.array([0, 1, 0])


def test_grid_counts_match_a_case_worked_by_hand(tmp_path: Path):
    neighbours, truth = small_case()
    chord = [2 * np.sin(np.radians(a)) for a in (15, 20, 25)]
    assert neighbours.distances[2] == pytest.approx(chord, abs=1e-5)
    assert neighbours.labels[2].tolist() == [1, 1, 0]
    grid = grid_search(neighbours, truth, 2, k1_values=[1, 2], k2_values=[2, 3], thresholds=np.array([0.5, 0.6]))
    rows = {(grid.row(i)["k1"], grid.row(i)["k2"], grid.row(i)["threshold"]): grid.row(i) for i in range(len(grid))}
    assert len(grid) == 3 * 2  # (1,2), (1,3), (2,3) x two thresholds
    # t = 0.5: the 60-degree probe has nobody within reach: Unknown. 2 right, 1 wrong.
    # TN: 2 right x 1 other class + Unknown x 1 (its true class is the only other) = 3.
    assert {k: rows[(1, 2, 0.5)][k] for k in ("tp", "fp", "tn", "fn")} == {"tp": 2, "fp": 1, "tn": 3, "fn": 1}
    # t = 0.6, k1 = 1: its nearest (class 1, 0.518) decides: named wrong, so no TN from it: TN = 2.
    assert {k: rows[(1, 2, 0.6)][k] for k in ("tp", "fp", "tn", "fn")} == {"tp": 2, "fp": 1, "tn": 2, "fn": 1}
    # Weighted F1 at (1, 2, 0.6): class 0 P=1/1 R=1/2 F1=2/3 (support 2); class 1 P=1/2 R=1 F1=2/3 (1).
    assert rows[(1, 2, 0.6)]["f1"] == pytest.approx(2 / 3)
    assert rows[(1, 2, 0.6)]["precision"] == rows[(1, 2, 0.6)]["recall"] == pytest.approx(2 / 3)
    # The best point: every row has accuracy 2/3; the F1 at 0.5 is class 0 F1 2/3 (P=1, R=1/2) and
    # class 1 F1 1, weighted (2 * 2/3 + 1) / 3 = 7/9, above 2/3; the lowest threshold, k1, k2 win ties.
    best = grid.row(grid.best())
    assert (best["k1"], best["k2"], best["threshold"]) == (1, 2, 0.5)
    assert best["f1"] == pytest.approx(7 / 9)

    path = tmp_path / "grid_search_results.csv"
    grid.write_csv(path)
    with path.open() as fh:
        written = list(csv.reader(fh))
    assert tuple(written[0]) == CSV_COLUMNS == (
        "k1", "k2", "threshold", "precision", "recall", "f1", "tp", "fp", "tn", "fn",
    )
    assert len(written) == 1 + 6
    assert written[1] == ["1", "2", "0.50", "0.6667", "0.6667", "0.7778", "2", "1", "3", "1"]


def test_a_probe_without_a_face_has_no_neighbours_and_counts_as_unknown():
    gallery = np.stack([unit(0), unit(90)])
    probes = np.stack([unit(1), np.full(2, np.nan, dtype=np.float32)])
    neighbours = search_neighbours(gallery, np.array([0, 1]), probes, 2)
    assert neighbours.labels[1].tolist() == [NO_NEIGHBOUR, NO_NEIGHBOUR]
    predicted = predict(neighbours, vote_tables(neighbours.labels), k1=1, k2=2, thresholds=np.array([2.0]))
    assert predicted.tolist() == [[0, UNKNOWN]]
