"""One liveness verdict for one face about to be marked, from plain values.

The web app calls ``decide_liveness`` when a face has its confirmations: the passive scores of
those snapshots, their observations, and the challenge it issued (if the policy asks for one).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from .challenge import Challenge, Observation, judge_challenge
from .temporal import is_frozen

PASSIVE_THRESHOLD = 0.35
"""A snapshot's face passes the passive check at this live score or above. Chosen with
``python -m recognition.evaluate_liveness ../shared/faces/pad`` by its rule: the highest
threshold (0.01 steps) that rejects at most 5% of the live stills and of the live clips (BPCER).
On those 16 live stills the lowest score is 0.354 (NUAA subject 0005, three frames 0.35-0.44),
so at 5% of 16 no live still may be rejected; the print stills score at most 0.23, the screen
ones 0.002. Re-derive it on more live data when there is some: it is the set's lowest live
score, not a margin."""


class LivenessPolicy(StrEnum):
    """What a site or course asks for. Default: CHALLENGE at the kiosk, PASSIVE on the lecturer's page."""

    OFF = "off"
    PASSIVE = "passive"
    CHALLENGE = "passive+challenge"


class Check(StrEnum):
    """The names stored with a face mark, in ``LivenessDecision.checks``."""

    PASSIVE = "passive"
    MOTION = "motion"  # not frozen across the confirming snapshots
    CHALLENGE = "challenge"


@dataclass(frozen=True)
class LivenessDecision:
    """``live``: mark the face. ``score``: the median passive score of the confirming snapshots
    (None with the policy off). ``checks``: the checks that passed, ``required``: those the
    policy asked for. ``reason``: "live", "off", or why not, for the lecturer's list."""

    live: bool
    score: float | None
    checks: tuple[str, ...]
    required: tuple[str, ...]
    reason: str


def passive_passes(score: float, threshold: float = PASSIVE_THRESHOLD) -> bool:
    """One snapshot's face passes the passive check (so it may count as a confirmation)."""
    return score >= threshold


def decide_liveness(
    policy: LivenessPolicy | str,
    *,
    scores: Sequence[float],
    observations: Sequence[Observation] = (),
    challenge: Challenge | None = None,
    threshold: float = PASSIVE_THRESHOLD,
) -> LivenessDecision:
    """The verdict for one face. ``scores``: the passive live score of each confirming snapshot
    (every one must pass). ``observations``: the same snapshots' landmarks and times (the
    frozen-face check; with a challenge, also the snapshots since it was issued).
    ``challenge``: the one the server issued for this face, required by CHALLENGE.
    """
    policy = LivenessPolicy(policy)
    if policy is LivenessPolicy.OFF:
        return LivenessDecision(live=True, score=None, checks=(), required=(), reason="off")
    required = [Check.PASSIVE.value, Check.MOTION.value]
    if policy is LivenessPolicy.CHALLENGE:
        required.append(Check.CHALLENGE.value)
    if not scores:
        return LivenessDecision(False, None, (), tuple(required), "no passive score")
    score = float(statistics.median(scores))
    passed: list[str] = []
    reasons: list[str] = []
    if all(passive_passes(s, threshold) for s in scores):
        passed.append(Check.PASSIVE.value)
    else:
        reasons.append(f"possible photo or screen (live score {min(scores):.2f} < {threshold:.2f})")
    if is_frozen(observations):
        reasons.append("frozen picture (identical snapshots)")
    else:
        passed.append(Check.MOTION.value)
    if policy is LivenessPolicy.CHALLENGE:
        if challenge is None:
            reasons.append("challenge not issued")
        else:
            result = judge_challenge(challenge, observations)
            if result.passed:
                passed.append(Check.CHALLENGE.value)
            else:
                reasons.append(f"challenge not answered ({result.reason})")
    live = all(check in passed for check in required)
    return LivenessDecision(
        live=live, score=round(score, 4), checks=tuple(passed), required=tuple(required),
        reason="live" if live else "; ".join(reasons),
    )
