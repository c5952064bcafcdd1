"""Liveness: a photo, a screen or a replayed video held up to the camera is not a live face.

Three layers, each measured on ../shared/faces (see the modules' docstrings for the figures):

1. Passive, per face, per snapshot (passive.py): two MiniFASNet models, all faces of a frame in
   one batch per model; a live score in [0, 1].
2. Temporal, across the snapshots that confirm a face (temporal.py): a frozen face (identical
   snapshots) is not live. Planar-motion checks were measured and dropped (why: temporal.py).
3. Active (challenge.py): the server asks at random for a head turn to the student's left or
   right; the next snapshots must show it within a few seconds.

API for the web app (plain values in, small dataclasses out; no Django here)::

    scorer = PassiveLiveness.from_dir(model_dir)         # cheap; weights load on first score
    scores = scorer.score(rgb, faces)                    # one float per Face, same order
    passive_passes(score)                                # count this snapshot as a confirmation?
    obs = Observation.from_face(face, time_s=now)        # .as_dict() / .from_dict() for Redis
    challenge = new_challenge(now)                       # .prompt, .direction, .as_dict()
    judge_challenge(challenge, observations)             # -> ChallengeResult(passed, reason, ...)
    decide_liveness(policy, scores=..., observations=..., challenge=...)
        # -> LivenessDecision(live, score, checks, required, reason)

What to store with a face mark: ``decision.score`` (median passive score of the confirming
snapshots) and ``decision.checks`` (the names of the checks that passed, from Check). A face
whose decision is not live is never marked; ``decision.reason`` is what the lecturer sees.
"""

from .challenge import (
    CHALLENGE_SECONDS,
    DIRECTIONS,
    TURN_YAW,
    Challenge,
    ChallengeResult,
    Direction,
    Observation,
    head_yaw,
    judge_challenge,
    new_challenge,
)
from .decision import (
    PASSIVE_THRESHOLD,
    Check,
    LivenessDecision,
    LivenessPolicy,
    decide_liveness,
    passive_passes,
)
from .passive import (
    ANTISPOOF_MODELS,
    MINIFASNET_V1SE,
    MINIFASNET_V2,
    AntiSpoofModel,
    PassiveLiveness,
    crop_box,
    crop_for_model,
    resolve_antispoof_models,
)
from .temporal import frozen_pairs, is_frozen

__all__ = [
    "ANTISPOOF_MODELS",
    "CHALLENGE_SECONDS",
    "DIRECTIONS",
    "MINIFASNET_V1SE",
    "MINIFASNET_V2",
    "PASSIVE_THRESHOLD",
    "TURN_YAW",
    "AntiSpoofModel",
    "Challenge",
    "ChallengeResult",
    "Check",
    "Direction",
    "LivenessDecision",
    "LivenessPolicy",
    "Observation",
    "PassiveLiveness",
    "crop_box",
    "crop_for_model",
    "decide_liveness",
    "frozen_pairs",
    "head_yaw",
    "is_frozen",
    "judge_challenge",
    "new_challenge",
    "passive_passes",
    "resolve_antispoof_models",
]
