"""ISO/IEC 30107-3 figures for the passive check on a folder of live and attack samples.

APCER (per attack type): the share of attack presentations accepted. BPCER: the share of live
(bona fide) presentations rejected. ACER: (max APCER over types + BPCER) / 2. Stills count per
image (the image's largest face: the one presented); videos count per clip: a clip is accepted
when the check-in pipeline would mark it, that is when ``confirmations`` snapshots taken every
``interval_s`` within ``window_s`` seconds show a face that passes (any face: the pipeline would
mark any of them). Frames of a clip are not independent, so a clip is one presentation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".webm", ".avi", ".mkv", ".m4v"})
LIVE = "live"
THRESHOLDS = np.round(np.arange(0.0, 1.0001, 0.01), 2)


class DatasetError(ValueError):
    """The dataset folder does not have the live/ + attack folders layout."""


@dataclass(frozen=True)
class Sample:
    path: Path
    kind: str  # "live" or the attack folder's name
    video: bool


@dataclass
class ScoredSample:
    """A still's largest-face score, or a clip's per-snapshot face scores (time, scores)."""

    sample: Sample
    score: float | None = None  # stills; None: no face found
    frames: list[tuple[float, list[float]]] = field(default_factory=list)  # clips


def find_samples(root: Path) -> list[Sample]:
    if not (root / LIVE).is_dir():
        raise DatasetError(f"{root} has no live/ folder: expected live/ and attack folders such as print/, screen/")
    samples = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in sorted(folder.iterdir()):
            suffix = path.suffix.lower()
            if suffix in IMAGE_SUFFIXES or suffix in VIDEO_SUFFIXES:
                samples.append(Sample(path, folder.name, suffix in VIDEO_SUFFIXES))
    if not any(s.kind != LIVE for s in samples):
        raise DatasetError(f"{root} has no attack samples: add folders such as print/ or screen/ beside live/")
    return samples


def clip_accepted(
    frames: Sequence[tuple[float, Sequence[float]]], threshold: float, *, confirmations: int, window_s: float
) -> bool:
    """Whether ``confirmations`` passing snapshots fall within one ``window_s`` (the check-in's
    Redis count of recent agreeing snapshots)."""
    times = [t for t, scores in frames if any(s >= threshold for s in scores)]
    for i in range(len(times) - confirmations + 1):
        if times[i + confirmations - 1] - times[i] <= window_s:
            return True
    return False


@dataclass(frozen=True)
class Rates:
    """At one threshold: APCER per attack type, BPCER, ACER, and the counts behind them."""

    threshold: float
    apcer: dict[str, float]
    bpcer: float
    acer: float
    attacks: dict[str, int]
    accepted: dict[str, int]
    lives: int
    rejected: int


def rates(decisions: Sequence[tuple[str, bool]], threshold: float) -> Rates | None:
    """From (kind, accepted) pairs; None when live or attack presentations are missing."""
    lives = [ok for kind, ok in decisions if kind == LIVE]
    kinds = sorted({kind for kind, _ in decisions if kind != LIVE})
    if not lives or not kinds:
        return None
    attacks = {k: sum(1 for kind, _ in decisions if kind == k) for k in kinds}
    accepted = {k: sum(1 for kind, ok in decisions if kind == k and ok) for k in kinds}
    apcer = {k: accepted[k] / attacks[k] for k in kinds}
    rejected = sum(1 for ok in lives if not ok)
    bpcer = rejected / len(lives)
    return Rates(threshold, apcer, bpcer, (max(apcer.values()) + bpcer) / 2, attacks, accepted, len(lives), rejected)


def image_decisions(scored: Sequence[ScoredSample], threshold: float) -> list[tuple[str, bool]]:
    """A still without a detected face is not accepted (nobody would be marked)."""
    return [(s.sample.kind, s.score is not None and s.score >= threshold) for s in scored if not s.sample.video]


def clip_decisions(
    scored: Sequence[ScoredSample], threshold: float, *, confirmations: int, window_s: float
) -> list[tuple[str, bool]]:
    return [
        (s.sample.kind, clip_accepted(s.frames, threshold, confirmations=confirmations, window_s=window_s))
        for s in scored
        if s.sample.video
    ]


def choose_threshold(
    unit_rates: Sequence[Callable[[float], Rates | None]], *, max_bpcer: float, thresholds: np.ndarray = THRESHOLDS
) -> float:
    """The highest threshold whose BPCER is at most ``max_bpcer`` in every unit (per image, per
    clip) that has live data; the highest threshold rejects the most attacks."""
    best = float(thresholds[0])
    for t in thresholds:
        figures = [f(float(t)) for f in unit_rates]
        if all(r is None or r.bpcer <= max_bpcer + 1e-12 for r in figures):
            best = float(t)
    return best


def det_points(
    decide: Callable[[float], Rates | None], thresholds: np.ndarray = THRESHOLDS
) -> list[tuple[float, float, float]]:
    """(threshold, APCER of the worst attack type, BPCER) over the sweep."""
    points = []
    for t in thresholds:
        r = decide(float(t))
        if r is not None:
            points.append((float(t), max(r.apcer.values()), r.bpcer))
    return points
