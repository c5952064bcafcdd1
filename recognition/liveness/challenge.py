"""Active liveness: the server asks for a head turn at random, the next snapshots must show it.

A video recorded in advance cannot know which way it will be asked to turn, nor when. The
server picks the direction with ``secrets`` (``new_challenge``), keeps the Challenge, shows the
prompt, and judges the face's timestamped observations against it (``judge_challenge``).

Directions are the student's own: "left" means the student's left. The server must judge the
camera's own (unmirrored) image, as the page sends it: there the student's left is the image's
right, and YuNet's "left eye" is the eye with the larger x. A page preview is usually mirrored (a
mirror is what people expect); in a mirrored preview a turn to the student's left moves the face
towards the screen's left, so an arrow pointing left on the screen matches "turn to your left".
A page that does not mirror its preview should point the arrow the other way.

Yaw comes from the five landmarks (``head_yaw``): the nose tip's offset from the midpoint of the
eyes along the eye line, over half the eye distance; 0 frontal, positive when the head turns to
the student's left. Measured with YuNet on the real clips of ../shared/faces (sampled at 10 fps):
frontal frames lie within +-0.2 (katie_hill_talking, the pad/ live clips); deliberate turns reach
+1.0..+2.7 and -0.3..-1.6 (pad/live tranvanluyt and zubair); katie's talking-head sway stays
within -0.54..+0.45. A printed photo tilted in front of the camera (real frames warped by 3-D
rotations of their plane, up to 65 degrees) fools the landmarks into an apparent yaw of up to
0.35 in 95% of cases, beyond 0.5 only at tilts of 50 degrees or more. Hence TURN_YAW = 0.5: a
deliberate turn, beyond natural sway and beyond what a moderately tilted photo shows. A tilted
photo still faces the passive check on every snapshot.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ..types import Face

Direction = Literal["left", "right"]
DIRECTIONS: tuple[Direction, ...] = ("left", "right")
START_MAX_YAW = 0.25
"""A start counts as frontal within this |yaw| (live frontal frames measured within +-0.2)."""
TURN_YAW = 0.5
"""The yaw, signed the asked way, that counts as the turn (see the module docstring)."""
CHALLENGE_SECONDS = 6.0
"""Time to answer: reading the prompt (~1 s), turning (~1 s), and a few 400 ms snapshots."""
START_LEAD_SECONDS = 3.0
"""How far before the issue a frontal observation may be taken as the start (the snapshots
that led to the challenge are usually the frontal ones)."""


def head_yaw(landmarks: np.ndarray | Sequence[Sequence[float]]) -> float:
    """Yaw from YuNet's five landmarks (right eye, left eye, nose, right and left mouth corner):
    the nose's offset from the eyes' midpoint along the eye line, over half the eye distance.
    0 frontal; positive when the head turns to the student's own left (unmirrored image).
    Beyond +-1 the nose has passed an eye: a profile."""
    points = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    right_eye, left_eye, nose = points[0], points[1], points[2]
    across = left_eye - right_eye
    distance = float(np.linalg.norm(across))
    if distance < 1e-6:
        return 0.0
    offset = float((nose - (right_eye + left_eye) / 2.0) @ (across / distance))
    return offset / (distance / 2.0)


@dataclass(frozen=True)
class Observation:
    """One snapshot of one face: when (seconds, any clock shared with the Challenge) and where.

    Plain values, so the web app can keep a face's recent observations in Redis as JSON
    (``as_dict`` / ``from_dict``). ``embedding`` is optional (the frozen-face check uses it).
    """

    time_s: float
    landmarks: tuple[float, ...]  # 10 floats: x0, y0, ..., x4, y4
    box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    embedding: tuple[float, ...] | None = field(default=None, compare=False)

    @classmethod
    def from_face(cls, face: Face, time_s: float, embedding: np.ndarray | None = None) -> Observation:
        return cls(
            time_s=float(time_s),
            landmarks=tuple(float(v) for v in np.asarray(face.landmarks).reshape(-1)),
            box=tuple(float(v) for v in face.box),  # type: ignore[arg-type]
            embedding=None if embedding is None else tuple(float(v) for v in np.asarray(embedding).reshape(-1)),
        )

    @property
    def points(self) -> np.ndarray:
        return np.asarray(self.landmarks, dtype=np.float64).reshape(5, 2)

    @property
    def yaw(self) -> float:
        return head_yaw(self.points)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able; the embedding as base64 of its float32 bytes ("emb32"): a third of the size of
        a list of decimals, and read back without parsing 128 numbers (every check-in of a face
        that is being confirmed reads all of its sightings of the last seconds)."""
        data: dict[str, Any] = {"t": self.time_s, "landmarks": list(self.landmarks), "box": list(self.box)}
        if self.embedding is not None:
            data["emb32"] = base64.b64encode(np.asarray(self.embedding, dtype="<f4").tobytes()).decode("ascii")
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Observation:
        embedding: tuple[float, ...] | None = None
        if "emb32" in data:
            embedding = tuple(np.frombuffer(base64.b64decode(data["emb32"]), dtype="<f4").tolist())
        elif data.get("embedding") is not None:  # written before "emb32" (kept seconds, not longer)
            embedding = tuple(float(v) for v in data["embedding"])
        return cls(
            time_s=float(data["t"]),
            landmarks=tuple(float(v) for v in data["landmarks"]),
            box=tuple(float(v) for v in data.get("box", (0.0, 0.0, 0.0, 0.0))),  # type: ignore[arg-type]
            embedding=embedding,
        )


@dataclass(frozen=True)
class Challenge:
    """A prompt the server issued: turn to the student's ``direction`` between ``issued_at``
    and ``deadline`` (seconds, the server's clock)."""

    direction: Direction
    issued_at: float
    deadline: float

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be 'left' or 'right', not {self.direction!r}")
        if self.deadline <= self.issued_at:
            raise ValueError("a challenge's deadline must come after its issue")

    @property
    def prompt(self) -> str:
        return f"Turn your head to your {self.direction}"

    @property
    def sign(self) -> int:
        """+1 for left, -1 for right, in head_yaw's convention."""
        return 1 if self.direction == "left" else -1

    def as_dict(self) -> dict[str, Any]:
        return {"direction": self.direction, "issued_at": self.issued_at, "deadline": self.deadline}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Challenge:
        return cls(direction=data["direction"], issued_at=float(data["issued_at"]), deadline=float(data["deadline"]))


def new_challenge(now: float, *, seconds: float = CHALLENGE_SECONDS) -> Challenge:
    """A challenge in a direction drawn with ``secrets`` (not ``random``: not predictable)."""
    if seconds <= 0:
        raise ValueError("seconds must be positive")
    return Challenge(direction=secrets.choice(DIRECTIONS), issued_at=now, deadline=now + seconds)


@dataclass(frozen=True)
class ChallengeResult:
    """``passed``, and why: "passed", "no-frontal-start", "wrong-way", "late", "still" or
    "no-observation". ``peak_yaw``: the largest yaw the asked way after the issue."""

    passed: bool
    reason: str
    peak_yaw: float = 0.0
    answered_at: float | None = None


def judge_challenge(
    challenge: Challenge,
    observations: Sequence[Observation],
    *,
    start_max_yaw: float = START_MAX_YAW,
    turn_yaw: float = TURN_YAW,
    start_lead_s: float = START_LEAD_SECONDS,
) -> ChallengeResult:
    """Whether one face's observations answer the challenge.

    Passes when a roughly frontal observation (|yaw| <= start_max_yaw: the last one before the
    issue, if taken at most start_lead_s before it, or a later one) is followed, after the issue
    and by the deadline, by one turned at least turn_yaw the asked way, before any turn as far
    the other way. A turn the wrong way first fails (a recording that turns both ways must not
    pass either prompt); so do a turn after the deadline, a head already turned when the prompt
    appears (until it comes back to frontal and turns again), and no turn at all.
    """
    ordered = sorted(observations, key=lambda o: o.time_s)
    window = [o for o in ordered if challenge.issued_at - start_lead_s <= o.time_s]
    if not window:
        return ChallengeResult(False, "no-observation")
    sign = challenge.sign
    frontal_seen = False
    peak = 0.0
    for obs in window:
        yaw = obs.yaw * sign
        after_issue = obs.time_s >= challenge.issued_at
        if after_issue and obs.time_s <= challenge.deadline:
            peak = max(peak, yaw)
        if not after_issue:
            # The face must be frontal when the prompt appears: a head (or a recording) already
            # turned before the issue has not answered it.
            frontal_seen = abs(yaw) <= start_max_yaw
            continue
        if not frontal_seen:
            frontal_seen = abs(yaw) <= start_max_yaw
            continue
        if obs.time_s > challenge.deadline:
            late = any(o.yaw * sign >= turn_yaw for o in window if o.time_s > challenge.deadline)
            return ChallengeResult(False, "late" if late else "still", peak_yaw=peak)
        if yaw >= turn_yaw:
            return ChallengeResult(True, "passed", peak_yaw=peak, answered_at=obs.time_s)
        if yaw <= -turn_yaw:
            return ChallengeResult(False, "wrong-way", peak_yaw=peak)
    if not frontal_seen:
        return ChallengeResult(False, "no-frontal-start", peak_yaw=peak)
    return ChallengeResult(False, "still", peak_yaw=peak)
