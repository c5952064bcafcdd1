"""The threshold calibrated from the evaluation's gallery, judged on its held-out probes and strangers.

``recognition.calibrate`` sees only the gallery. Here its threshold and the backbone's fixed
default are each measured on what the calibration never saw, at the backbone's own k1/k2 (the
app's vote; only the threshold differs): TAR over the enrolled probes, FAR over the strangers'
samples and over the strangers as people (accepted at least once), each with a 95% upper bound,
since a handful of strangers cannot show a rate of 0.1%.

A dataset's never-enrolled people are few, so ``held_out_people`` also makes every enrolled person
a stranger in turn: the gallery is calibrated without them (``GalleryDistances.without``) and all
of their samples, gallery and probes, are shown to it. That gives as many stranger people as the
dataset has classes, each judged at the threshold a course without them would use.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from recognition.calibrate import (
    DEFAULT_TARGET_FAR,
    GalleryDistances,
    calibrate_distances,
    distance_from_similarity,
    gallery_distances,
)
from recognition.embed import BACKBONE_DEFAULTS

from .embeddings import EmbeddedSet
from .grid import Neighbours, predict, vote_tables


def upper_bound_95(count: int, total: int) -> float | None:
    """One-sided 95% Clopper-Pearson upper bound on a rate seen ``count`` times in ``total``
    (0 of 33 gives 8.7%). None for no trials."""
    if total <= 0:
        return None
    if count >= total:
        return 1.0
    low, high = count / total, 1.0
    for _ in range(60):  # bisection on P(X <= count | p) = 0.05, which falls as p rises
        mid = (low + high) / 2
        if _binomial_cdf(count, total, mid) > 0.05:
            low = mid
        else:
            high = mid
    return high


def _binomial_cdf(count: int, total: int, p: float) -> float:
    if p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    log_p, log_q = math.log(p), math.log1p(-p)
    terms = [math.lgamma(total + 1) - math.lgamma(k + 1) - math.lgamma(total - k + 1) + k * log_p
             + (total - k) * log_q for k in range(count + 1)]
    top = max(terms)
    return math.exp(top) * sum(math.exp(t - top) for t in terms)


def calibration_summary(
    backbone: str,
    gallery: EmbeddedSet,
    known: Neighbours,
    known_true: np.ndarray,
    strangers: Neighbours | None,
    stranger_labels: np.ndarray | None,
    *,
    enrolled: EmbeddedSet,
    target_far: float = DEFAULT_TARGET_FAR,
) -> dict[str, Any]:
    """The calibration of ``gallery`` (samples with a face) and, for it and the fixed default, the
    rates measured on the probes (``known``, nearest first, with their true class) and strangers;
    ``enrolled``: the enrolled people's samples, gallery and probes, for held_out_people."""
    usable = gallery.only(gallery.found)
    distances = gallery_distances(usable.vectors, usable.labels)
    calibration = calibrate_distances(distances, backbone=backbone, target_far=target_far)
    model = distances.fit() if calibration.source == "calibrated" else None
    defaults = BACKBONE_DEFAULTS[backbone]
    k2 = min(defaults.k2, known.k)
    k1 = min(defaults.k1, k2)
    thresholds = np.array([calibration.threshold, defaults.threshold])
    known_faces = np.isfinite(known.distances[:, 0])
    kept = Neighbours(known.labels[known_faces], known.distances[known_faces])
    pred = predict(kept, vote_tables(kept.labels), k1=k1, k2=k2, thresholds=thresholds)
    truth = np.asarray(known_true)[known_faces]
    tar = (pred == truth[None, :]).mean(axis=1) if truth.size else np.zeros(2)
    rows: list[dict[str, Any]] = [
        {
            "which": which,
            "threshold": float(threshold),
            "tar": float(tar[i]),
            "estimated_far": None if model is None else model.far(float(threshold)),
            "genuine_pass_rate": distances.genuine_pass_rate(float(threshold)),
        }
        for i, (which, threshold) in enumerate(zip(("calibrated", "default"), thresholds, strict=True))
    ]
    summary: dict[str, Any] = {"k1": k1, "k2": k2, "calibration": calibration.as_dict(),
                               "held_out": held_out_people(backbone, distances, usable, enrolled,
                                                           target_far=target_far),
                               "description": calibration.describe(), "probes": int(truth.size), "rows": rows}
    if strangers is not None and stranger_labels is not None:
        faces = np.isfinite(strangers.distances[:, 0])
        nearest = strangers.distances[faces, 0]
        people = np.asarray(stranger_labels)[faces]
        names = sorted(set(people.tolist()))
        for row in rows:
            accepted = nearest <= row["threshold"]  # the vote names somebody exactly then
            accepted_people = sorted(set(people[accepted].tolist()))
            row.update({
                "far": float(accepted.mean()) if len(nearest) else None,
                "far_upper_95": upper_bound_95(int(accepted.sum()), len(nearest)),
                "strangers_accepted": int(accepted.sum()),
                "stranger_people_accepted": accepted_people,
                "far_people_upper_95": upper_bound_95(len(accepted_people), len(names)),
            })
        summary.update({"strangers": int(faces.sum()), "stranger_people": len(names)})
    return summary



def held_out_people(
    backbone: str,
    distances: GalleryDistances,
    gallery: EmbeddedSet,
    enrolled: EmbeddedSet,
    *,
    target_far: float = DEFAULT_TARGET_FAR,
) -> dict[str, Any]:
    """Each person of ``gallery`` (samples with a face, the people of ``distances``) a stranger in
    turn: accepted when any of their samples in ``enrolled`` comes within the threshold calibrated
    without them (or the backbone default) of somebody else's gallery sample."""
    people = distances.people
    default = BACKBONE_DEFAULTS[backbone].threshold
    rows: list[dict[str, Any]] = []
    if len(people) >= 2:
        faces = enrolled.only(enrolled.found)
        nearest = _nearest_per_person(faces.vectors, gallery.vectors, gallery.labels, people)
        for i, person in enumerate(people):
            fold = calibrate_distances(distances.without(person), backbone=backbone, target_far=target_far)
            own = faces.labels == person
            others = np.delete(nearest[own], i, axis=1).min(axis=1)
            rows.append({
                "person": person,
                "threshold": fold.threshold,
                "source": fold.source,
                "samples": int(own.sum()),
                "nearest": float(others.min()) if len(others) else None,
                "calibrated_accepted": int((others <= fold.threshold).sum()),
                "default_accepted": int((others <= default).sum()),
            })
    shown = [row for row in rows if row["samples"]]

    def totals(which: str, threshold: str) -> dict[str, Any]:
        accepted = [row for row in shown if row[f"{which}_accepted"]]
        samples = sum(row["samples"] for row in shown)
        accepted_samples = sum(row[f"{which}_accepted"] for row in shown)
        return {
            "which": which,
            "threshold": threshold,
            "people_accepted": [row["person"] for row in accepted],
            "far_people": len(accepted) / len(shown) if shown else None,
            "far_people_upper_95": upper_bound_95(len(accepted), len(shown)),
            "samples_accepted": accepted_samples,
            "far": accepted_samples / samples if samples else None,
            "far_upper_95": upper_bound_95(accepted_samples, samples),
        }

    thresholds = [row["threshold"] for row in shown]
    span = f"{min(thresholds):.3f}-{max(thresholds):.3f}" if thresholds else "-"
    return {
        "people": len(shown),
        "samples": sum(row["samples"] for row in shown),
        # Galleries of the others below the minimum use the default: the "calibrated" row is then partly it.
        "folds_calibrated": sum(row["source"] == "calibrated" for row in shown),
        "folds": rows,
        "rows": [totals("calibrated", span), totals("default", f"{default:.3f}")],
    }


def _nearest_per_person(
    samples: np.ndarray, gallery: np.ndarray, labels: np.ndarray, people: tuple[Any, ...], chunk: int = 1024
) -> np.ndarray:
    """(samples, people) L2 distance from each sample to each person's nearest gallery vector;
    ``people`` sorted as np.unique sorts ``labels``."""
    order = np.argsort(labels, kind="stable")
    ordered, ordered_labels = np.asarray(gallery, dtype=np.float32)[order], np.asarray(labels)[order]
    starts = np.flatnonzero(np.r_[True, ordered_labels[1:] != ordered_labels[:-1]])
    if tuple(ordered_labels[starts].tolist()) != tuple(people):
        raise ValueError("the gallery's people differ from the distances' people")
    out = np.empty((len(samples), len(people)), dtype=np.float64)
    for begin in range(0, len(samples), chunk):
        similar = np.asarray(samples[begin:begin + chunk], dtype=np.float32) @ ordered.T
        best = np.maximum.reduceat(similar, starts, axis=1).astype(np.float64)
        out[begin:begin + chunk] = distance_from_similarity(best)
    return out
