"""Temporal liveness: what the snapshots that confirm one face show across time.

Kept, because the real clips show it works:

* **Frozen face** (``is_frozen``): the same landmarks (and, when given, the same embedding) in
  consecutive snapshots. A camera's sensor noise moves YuNet's landmarks in every real frame:
  in the live clips of ../shared/faces (pad/live zubair and tranvanluyt, katie_hill_talking,
  sampled at 10 fps, so frames 100 ms apart; check-in snapshots are 400 ms apart) the smallest
  largest-landmark movement between consecutive frames was 0.59, 0.88 and 3.1 px. An image sent
  again byte for byte (a replayed request, a still fed to a virtual camera) moves 0.0 px.

Measured and dropped, because the real clips show it does not work:

* **Planar motion.** A flat photo moved or tilted obeys one homography, so the nose should stay
  where the homography of the eyes and mouth corners puts it, while a turning head's nose moves
  off that plane (parallax). Measured as the nose's distance from that prediction over the eye
  distance: real turns (|yaw change| >= 0.5 from a frontal start) gave 0.20-0.26 at the least
  (5th percentiles 0.26-0.36) across the live clips, but real frames warped as a photo tilted by
  up to 65 degrees gave up to 0.59 (95th percentile 0.22): YuNet predicts the landmarks of a
  three-dimensional face even on a tilted picture, so the two overlap. The screen replays of
  pad/ replay a turning head, whose parallax is real (0.27 5th percentile), so the signal cannot
  separate those either. The active challenge (challenge.py) and the passive models cover these.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from .challenge import Observation

FROZEN_MAX_PX = 0.05
"""Landmarks that move less than this (largest coordinate, pixels) count as frozen: a tenth of
the smallest movement between live frames measured (0.59 px), far above float rounding."""
FROZEN_MIN_COSINE = 0.99999
"""Embeddings at least this similar count as identical (a re-encoded identical frame)."""


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    va, vb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    denominator = float(np.linalg.norm(va) * np.linalg.norm(vb))
    return float(va @ vb / denominator) if denominator > 0 else 0.0


def frozen_pairs(
    observations: Sequence[Observation], *, max_px: float = FROZEN_MAX_PX, min_cosine: float = FROZEN_MIN_COSINE
) -> int:
    """How many consecutive pairs (in time order) show the face frozen: landmarks within
    ``max_px`` and, where both have embeddings, embeddings at least ``min_cosine`` alike."""
    ordered = sorted(observations, key=lambda o: o.time_s)
    count = 0
    for before, after in itertools.pairwise(ordered):
        moved = float(np.abs(after.points - before.points).max())
        if moved >= max_px:
            continue
        if before.embedding is not None and after.embedding is not None:
            if _cosine(before.embedding, after.embedding) < min_cosine:
                continue
        count += 1
    return count


def is_frozen(observations: Sequence[Observation], **options: float) -> bool:
    """True when any two consecutive observations of the face are identical (see frozen_pairs):
    no live camera produces that, a replayed or injected still does."""
    return frozen_pairs(observations, **options) > 0
