"""Open-set rejection, which the paper did not measure: people never enrolled, probed anyway.

At a vote's k1/k2 a probe is accepted (given some enrolled person) exactly when its nearest
neighbour is within the threshold, so the false-accept rate rises with the threshold. The
threshold for a course is the largest one whose false-accept rate meets a target: it accepts
as many enrolled people as that target allows.
Rates are over samples with a detected face: a picture without a face is no test of the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .grid import Neighbours, predict, vote_tables
from .metrics import UNKNOWN


@dataclass(frozen=True)
class OpenSetResult:
    k1: int
    k2: int
    thresholds: np.ndarray
    far: np.ndarray  # strangers given an enrolled person's name
    tar: np.ndarray  # enrolled probes given their own name
    misidentified: np.ndarray  # enrolled probes given someone else's name
    strangers: int
    stranger_people: int
    target_far: float
    chosen_threshold: float | None  # the largest threshold with far <= target_far
    default_threshold: float

    def at(self, threshold: float) -> tuple[float, float]:
        """(FAR, TAR) at the swept threshold nearest to ``threshold``."""
        i = int(np.argmin(np.abs(self.thresholds - threshold)))
        return float(self.far[i]), float(self.tar[i])

    def summary(self) -> dict[str, object]:
        chosen = None if self.chosen_threshold is None else self.at(self.chosen_threshold)
        default = self.at(self.default_threshold)
        return {
            "k1": self.k1,
            "k2": self.k2,
            "strangers": self.strangers,
            "stranger_people": self.stranger_people,
            "target_far": self.target_far,
            "threshold_at_target": self.chosen_threshold,
            "far_at_target": None if chosen is None else chosen[0],
            "tar_at_target": None if chosen is None else chosen[1],
            "default_threshold": self.default_threshold,
            "far_at_default": default[0],
            "tar_at_default": default[1],
        }


def open_set_sweep(
    known: Neighbours,
    known_true: np.ndarray,
    strangers: Neighbours,
    *,
    stranger_people: int,
    k1: int,
    k2: int,
    thresholds: np.ndarray,
    target_far: float,
    default_threshold: float,
) -> OpenSetResult:
    if not 0.0 <= target_far <= 1.0:
        raise ValueError(f"the target false-accept rate must be between 0 and 1, got {target_far}")
    known_faces = np.isfinite(known.distances[:, 0])
    stranger_faces = np.isfinite(strangers.distances[:, 0])
    if not stranger_faces.any():
        raise ValueError("no never-enrolled probe has a detected face: open-set rates cannot be measured")
    kept_known = Neighbours(known.labels[known_faces], known.distances[known_faces])
    kept_strangers = Neighbours(strangers.labels[stranger_faces], strangers.distances[stranger_faces])
    thresholds = np.asarray(thresholds, dtype=np.float64)
    known_pred = predict(kept_known, vote_tables(kept_known.labels), k1=k1, k2=k2, thresholds=thresholds)
    stranger_pred = predict(
        kept_strangers, vote_tables(kept_strangers.labels), k1=k1, k2=k2, thresholds=thresholds
    )
    truth = np.asarray(known_true)[known_faces][None, :]
    far = (stranger_pred != UNKNOWN).mean(axis=1)
    tar = (known_pred == truth).mean(axis=1) if truth.size else np.zeros(len(thresholds))
    wrong = ((known_pred != UNKNOWN) & (known_pred != truth)).mean(axis=1) if truth.size else tar
    meeting = np.flatnonzero(far <= target_far + 1e-12)
    chosen = float(thresholds[meeting.max()]) if len(meeting) else None
    return OpenSetResult(
        k1=k1,
        k2=k2,
        thresholds=thresholds,
        far=far,
        tar=tar,
        misidentified=wrong,
        strangers=int(stranger_faces.sum()),
        stranger_people=stranger_people,
        target_far=target_far,
        chosen_threshold=chosen,
        default_threshold=default_threshold,
    )
