"""The paper's two scalability tests, on random subsets of the enrolled classes.

1. Loading time against the number of classes: embedding the subset's gallery files (the time
   measured when each file was first embedded; a cached rerun does not make it zero) plus
   building its index (measured now).
2. Precision, recall and F1 against the number of classes, at one fixed grid point.
Each class count is drawn with several seeds; the whole set is drawn once.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from recognition.index import FaceIndex

from .embeddings import EmbeddedSet
from .grid import Neighbours, predict, search_neighbours, vote_tables
from .metrics import paper_counts_many


@dataclass(frozen=True)
class ScalePoint:
    classes: int
    seed: int
    gallery_samples: int
    embed_s: float
    index_s: float
    precision: float
    recall: float
    f1: float

    @property
    def load_s(self) -> float:
        return self.embed_s + self.index_s

    def as_dict(self) -> dict[str, float | int]:
        return {**asdict(self), "load_s": self.load_s}


def class_counts(n_classes: int, steps: int) -> list[int]:
    """About ``steps`` class counts from 2 to all, evenly spread."""
    if n_classes < 2:
        return [n_classes]
    return sorted({round(float(c)) for c in np.linspace(2, n_classes, max(2, min(steps, n_classes - 1)))})


def scalability(
    gallery: EmbeddedSet,
    probes: EmbeddedSet,
    classes: Sequence[str],
    *,
    k1: int,
    k2: int,
    threshold: float,
    counts: Sequence[int],
    seeds: Sequence[int],
    space: str,
) -> list[ScalePoint]:
    points: list[ScalePoint] = []
    names = np.array(classes)
    for count in counts:
        if not 1 <= count <= len(classes):
            raise ValueError(f"cannot draw {count} of {len(classes)} classes")
        for seed in seeds if count < len(classes) else seeds[:1]:
            chosen = names if count == len(classes) else np.random.default_rng(seed).choice(names, count, replace=False)
            points.append(_measure(gallery, probes, list(chosen), k1, k2, threshold, seed, space))
    return points


def _measure(
    gallery: EmbeddedSet,
    probes: EmbeddedSet,
    chosen: list[str],
    k1: int,
    k2: int,
    threshold: float,
    seed: int,
    space: str,
) -> ScalePoint:
    index_of = {name: i for i, name in enumerate(chosen)}
    g_mask = np.isin(gallery.labels, chosen)
    files = np.unique(gallery.file_index[g_mask])
    embed_s = float(gallery.detect_s[files].sum() + gallery.embed_s[files].sum())
    g = gallery.only(g_mask & gallery.found)
    started = time.perf_counter()
    if len(g):
        index = FaceIndex(g.vectors.shape[1], backbone=space)
        index.add(np.arange(len(g), dtype=np.int64), g.vectors)
    index_s = time.perf_counter() - started
    p = probes.only(np.isin(probes.labels, chosen))
    g_classes = np.array([index_of[label] for label in g.labels], dtype=np.int64)
    neighbours: Neighbours = search_neighbours(g.vectors, g_classes, p.vectors, k2, space=space)
    pred = predict(neighbours, vote_tables(neighbours.labels), k1=k1, k2=k2, thresholds=np.array([threshold]))
    truth = np.array([index_of[label] for label in p.labels], dtype=np.int64)
    row = paper_counts_many(truth, pred, len(chosen))
    return ScalePoint(
        classes=len(chosen),
        seed=seed,
        gallery_samples=len(g),
        embed_s=embed_s,
        index_s=index_s,
        precision=float(row["precision"][0]),
        recall=float(row["recall"][0]),
        f1=float(row["f1"][0]),
    )
