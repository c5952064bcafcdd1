"""The threshold calibrated from the evaluation's gallery, judged on its held-out probes and strangers.

``recognition.calibrate`` sees only the gallery. Here its threshold and the backbone's fixed
default are each measured on what the calibration never saw, at the backbone's own k1/k2 (the
app's vote; only the threshold differs): TAR over the enrolled probes, FAR over the strangers'
samples and over the strangers as people (accepted at least once), each with a 95% upper bound,
since a handful of strangers cannot show a rate of 0.1%.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from recognition.calibrate import DEFAULT_TARGET_FAR, calibrate_distances, gallery_distances
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
    target_far: float = DEFAULT_TARGET_FAR,
) -> dict[str, Any]:
    """The calibration of ``gallery`` (samples with a face) and, for it and the fixed default, the
    rates measured on the probes (``known``, nearest first, with their true class) and strangers."""
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

