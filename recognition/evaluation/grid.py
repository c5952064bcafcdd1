"""The paper's grid search over k1, k2 and threshold, vectorised over probes and grid points.

The neighbours of every probe are searched once (``max k2`` of them). ``classify_face``'s answer
depends on a threshold only through how many of those neighbours are within it (they are sorted,
so it is a prefix), and on k1/k2 only through two prefix lengths. So the vote is tabulated once
per probe and prefix length (a strict winner of the first j neighbours, and the nearest-first
tie-break winner), and each grid point is two table look-ups per probe. A test checks the
result against ``classify_face`` itself.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recognition.index import FaceIndex

from .metrics import UNKNOWN, paper_counts_many

CSV_COLUMNS = ("k1", "k2", "threshold", "precision", "recall", "f1", "tp", "fp", "tn", "fn")
NO_NEIGHBOUR = -2  # label of a missing neighbour (gallery smaller than k, or a probe without a face)


@dataclass(frozen=True)
class Neighbours:
    """Each probe's nearest gallery samples, nearest first: class indices and L2 distances."""

    labels: np.ndarray  # (n, K) int64, NO_NEIGHBOUR where there is none
    distances: np.ndarray  # (n, K) float64, inf where there is none

    def __post_init__(self) -> None:
        if self.labels.shape != self.distances.shape or self.labels.ndim != 2:
            raise ValueError("labels and distances must be (probes, k) arrays of one shape")

    @property
    def k(self) -> int:
        return int(self.labels.shape[1])


def search_neighbours(
    gallery_vectors: np.ndarray,
    gallery_classes: np.ndarray,
    probe_vectors: np.ndarray,
    k: int,
    *,
    space: str = "evaluation",
) -> Neighbours:
    """The ``k`` nearest gallery samples of each probe through a FaceIndex (exact, as the paper's
    IndexFlatL2). Probe rows of NaN (no face found) get no neighbours."""
    n = len(probe_vectors)
    labels = np.full((n, k), NO_NEIGHBOUR, dtype=np.int64)
    distances = np.full((n, k), np.inf, dtype=np.float64)
    usable = ~np.isnan(probe_vectors[:, 0]) if n else np.zeros(0, dtype=bool)
    if not len(gallery_vectors) or not usable.any():
        return Neighbours(labels, distances)
    index = FaceIndex(gallery_vectors.shape[1], backbone=space, approximate_above=max(len(gallery_vectors), 1))
    index.add(np.arange(len(gallery_vectors), dtype=np.int64), gallery_vectors)
    rows = np.flatnonzero(usable)
    for row, hits in zip(rows, index.search(probe_vectors[usable], k), strict=True):
        for col, hit in enumerate(hits):
            labels[row, col] = gallery_classes[hit.id]
            distances[row, col] = hit.distance
    return Neighbours(labels, distances)


@dataclass(frozen=True)
class VoteTables:
    """``strict[i, j]``: the class with strictly the most votes among probe i's first j
    neighbours (UNKNOWN on a tie or j == 0); ``tiebreak[i, j]``: the most-voted class, ties going
    to the class with the nearest neighbour (UNKNOWN only for j == 0)."""

    strict: np.ndarray  # (n, K + 1)
    tiebreak: np.ndarray  # (n, K + 1)


def vote_tables(labels: np.ndarray) -> VoteTables:
    n, k = labels.shape
    same = labels[:, :, None] == labels[:, None, :]  # (n, p, q)
    earlier = np.tril(np.ones((k, k), dtype=bool), -1)  # q < p
    first_seen = ~(same & earlier[None]).any(axis=2)  # position p is its class's nearest
    strict = np.full((n, k + 1), UNKNOWN, dtype=np.int64)
    tiebreak = np.full((n, k + 1), UNKNOWN, dtype=np.int64)
    rows = np.arange(n)
    for j in range(1, k + 1):
        votes = same[:, :j, :j].sum(axis=2)  # votes of the class at each position p < j
        most = votes.max(axis=1)
        leader = (votes == most[:, None]) & first_seen[:, :j]
        winner = labels[rows, leader.argmax(axis=1)]  # first leader = nearest neighbour
        tiebreak[:, j] = winner
        strict[:, j] = np.where(leader.sum(axis=1) == 1, winner, UNKNOWN)
    return VoteTables(strict, tiebreak)


def predict(
    neighbours: Neighbours,
    tables: VoteTables,
    *,
    k1: int,
    k2: int,
    thresholds: np.ndarray,
) -> np.ndarray:
    """classify_face's class index (UNKNOWN: -1) for every threshold and probe: (T, n)."""
    if not 1 <= k1 <= k2:
        raise ValueError(f"need 1 <= k1 <= k2, got k1={k1}, k2={k2}")
    if k2 > neighbours.k:
        raise ValueError(f"k2={k2} needs {k2} neighbours per probe, only {neighbours.k} were searched")
    thresholds = np.asarray(thresholds, dtype=np.float64)
    dist = neighbours.distances[:, :k2]
    passing = (dist[None, :, :] <= thresholds[:, None, None]).sum(axis=2)  # (T, n): a prefix length
    first = np.minimum(passing, k1)
    rows = np.arange(dist.shape[0])[None, :]
    decided = tables.strict[rows, first]
    return np.where(decided != UNKNOWN, decided, tables.tiebreak[rows, passing])


def threshold_range(start: float, stop: float, step: float) -> np.ndarray:
    """Inclusive range with values rounded to the step's decimals (0.82, not 0.8200000000000003)."""
    if step <= 0 or stop < start:
        raise ValueError(f"need step > 0 and stop >= start, got {start}:{stop}:{step}")
    decimals = max(0, -int(np.floor(np.log10(step))) + 2)
    count = int(np.floor((stop - start) / step + 1e-9)) + 1
    return np.round(start + step * np.arange(count), decimals)


@dataclass(frozen=True)
class GridResult:
    """One row per (k1, k2, threshold), in the paper's loop order."""

    k1: np.ndarray
    k2: np.ndarray
    threshold: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    tn: np.ndarray
    fn: np.ndarray

    def __len__(self) -> int:
        return len(self.k1)

    def best(self) -> int:
        """The row with the highest accuracy (precision == recall here), then F1; among equals
        the lowest threshold (the strictest, which lets fewer strangers in), then k1, then k2."""
        order = np.lexsort((self.k2, self.k1, self.threshold, -self.f1, -self.precision))
        return int(order[0])

    def row(self, i: int) -> dict[str, float | int]:
        return {
            "k1": int(self.k1[i]),
            "k2": int(self.k2[i]),
            "threshold": float(self.threshold[i]),
            "precision": float(self.precision[i]),
            "recall": float(self.recall[i]),
            "f1": float(self.f1[i]),
            "tp": int(self.tp[i]),
            "fp": int(self.fp[i]),
            "tn": int(self.tn[i]),
            "fn": int(self.fn[i]),
        }

    def write_csv(self, path: str | Path, *, threshold_decimals: int = 2) -> None:
        with Path(path).open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(CSV_COLUMNS)
            for i in range(len(self)):
                writer.writerow(
                    [
                        int(self.k1[i]),
                        int(self.k2[i]),
                        f"{self.threshold[i]:.{threshold_decimals}f}",
                        f"{self.precision[i]:.4f}",
                        f"{self.recall[i]:.4f}",
                        f"{self.f1[i]:.4f}",
                        int(self.tp[i]),
                        int(self.fp[i]),
                        int(self.tn[i]),
                        int(self.fn[i]),
                    ]
                )


def k_pairs(k1_values: Sequence[int], k2_values: Sequence[int]) -> list[tuple[int, int]]:
    """The paper's combinations: every k1 with every larger k2."""
    pairs = [(k1, k2) for k1 in k1_values for k2 in k2_values if k1 < k2]
    if not pairs:
        raise ValueError("no k1 < k2 among the given ranges: widen k2 or lower k1")
    if min(k1_values) < 1:
        raise ValueError("k1 must be at least 1")
    return pairs


def grid_search(
    neighbours: Neighbours,
    y_true: np.ndarray,
    n_classes: int,
    *,
    k1_values: Sequence[int],
    k2_values: Sequence[int],
    thresholds: np.ndarray,
    tables: VoteTables | None = None,
) -> GridResult:
    """Every (k1 < k2, threshold) scored with the paper's counting. Vectorised per (k1, k2)."""
    pairs = k_pairs(k1_values, k2_values)
    tables = tables or vote_tables(neighbours.labels)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    columns: dict[str, list[np.ndarray]] = {name: [] for name in CSV_COLUMNS}
    for k1, k2 in pairs:
        predictions = predict(neighbours, tables, k1=k1, k2=k2, thresholds=thresholds)
        counts = paper_counts_many(y_true, predictions, n_classes)
        columns["k1"].append(np.full(len(thresholds), k1))
        columns["k2"].append(np.full(len(thresholds), k2))
        columns["threshold"].append(thresholds)
        for name in ("precision", "recall", "f1", "tp", "fp", "tn", "fn"):
            columns[name].append(counts[name])
    merged = {name: np.concatenate(values) for name, values in columns.items()}
    return GridResult(**merged)
