"""Liveness at check-in: what one recognised face's snapshots show, kept in Redis per student.

recognition.liveness judges plain values; this module keeps them between snapshots, which land on
whichever web worker is free. Per (session, student), under the session's Redis prefix (closing a
session forgets all of it):

* ``liveness:obs:<student>``: the recent snapshots of the face (landmarks, box, embedding, passive
  score, time), for the frozen-face check and the challenge, dropped after the confirmation window;
* ``liveness:challenge:<student>``: the head turn asked of the face, at most one at a time, with
  its deadline;
* ``liveness:suspects``: faces that failed liveness, shown to the lecturer as "possible photo or
  screen of <name>" for a few minutes (transient, like the doubtful list; nothing in the database).
"""

from __future__ import annotations

import base64
import json
import re
import statistics
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.utils import formats
from django.utils.translation import gettext, gettext_lazy

from attendance import ml
from attendance.platform import biometric
from attendance.platform.biometric import BiometricKeyError
from attendance.platform.redis import redis_client, session_key, sightings_key
from recognition import Face, IndexFormatError, Match
from recognition.liveness import (
    CHALLENGE_SECONDS,
    Challenge,
    LivenessDecision,
    LivenessPolicy,
    Observation,
    decide_liveness,
    judge_challenge,
    new_challenge,
    passive_passes,
)
from recognition.liveness.challenge import START_LEAD_SECONDS

UNAVAILABLE = "unavailable"
UNAVAILABLE_NOTICE = gettext_lazy(
    "Liveness checks are not available on this server right now, so students are recognised and marked "
    "without them. Your administrator has been told."
)

KIOSK_PAUSED = gettext_lazy(
    "Check-in at this kiosk is paused: its liveness checks are not available right now. Ask your lecturer "
    "to mark you present."
)


class KioskPausedError(Exception):
    """A kiosk check-in while the liveness models cannot load: refused, never marked without them."""


# How long "possible photo or screen of <name>" stays on the lecturer's list without a new failure.
SUSPECT_TTL_SECONDS = 300


@dataclass(frozen=True)
class Sighting:
    """One snapshot of one face: where its landmarks were, and its passive live score."""

    observation: Observation
    score: float

    @property
    def passed(self) -> bool:
        return passive_passes(self.score)

    def as_json(self, *, context: str) -> str:
        """For Redis. The embedding (biometric: a face can be rebuilt from one) is sealed with the
        biometric key, bound to ``context`` (the key it is kept under), like every stored one."""
        obs = self.observation.as_dict()
        if "emb32" in obs:
            raw = base64.b64decode(obs.pop("emb32"))
            obs["emb_sealed"] = base64.b64encode(biometric.seal(raw, context=context)).decode("ascii")
        return json.dumps({"obs": obs, "score": round(self.score, 5)})

    @classmethod
    def from_json(cls, raw: bytes | str, *, context: str) -> Sighting:
        """A sighting ``as_json`` wrote under ``context``. An embedding that no longer opens (its key
        rotated out within the seconds a sighting is kept) is left out: the frozen-face check then
        compares landmarks only."""
        data = json.loads(raw)
        obs = data["obs"]
        sealed = obs.pop("emb_sealed", None)
        if sealed is not None:
            try:
                obs["emb32"] = base64.b64encode(biometric.unseal(base64.b64decode(sealed), context=context)).decode()
            except (BiometricKeyError, IndexFormatError):
                pass
        return cls(observation=Observation.from_dict(obs), score=float(data["score"]))


@dataclass(frozen=True)
class ChallengeVerdict:
    """``state``: "passed" (mark with ``decision``), "pending" (keep answering) or "failed"."""

    state: str
    decision: LivenessDecision | None = None
    reason: str = ""


@dataclass(frozen=True)
class Suspect:
    student_id: int
    reason: str
    seen_at: float


def _keep_seconds() -> float:
    """Sightings are kept for the confirmation window, and long enough to judge a challenge."""
    return max(float(settings.ROLLCALL_CHECKIN_WINDOW_SECONDS), CHALLENGE_SECONDS + START_LEAD_SECONDS + 1.0)


def _obs_key(session_id: int, student_id: int) -> str:
    return sightings_key(session_id, student_id)


def _challenge_key(session_id: int, student_id: int) -> str:
    return session_key(session_id, "liveness", "challenge", student_id)


def _suspects_key(session_id: int) -> str:
    return session_key(session_id, "liveness", "suspects")


def sighting_add(
    *, session_id: int, student_id: int, sighting: Sighting, now: float
) -> tuple[list[Sighting], Challenge | None]:
    """Keep this snapshot of the face: every sighting still inside the window, oldest first, and
    the face's open challenge (None if none), read in the same round trip."""
    keep = _keep_seconds()
    name = _obs_key(session_id, student_id)
    pipe = redis_client().pipeline(transaction=True)
    pipe.zremrangebyscore(name, "-inf", f"({now - keep}")
    pipe.zadd(name, {f"{uuid.uuid4().hex}|{sighting.as_json(context=name)}": sighting.observation.time_s})
    pipe.expire(name, int(keep) + 5)
    pipe.zrange(name, 0, -1)
    pipe.get(_challenge_key(session_id, student_id))
    *_, members, challenge = pipe.execute()
    sightings = [Sighting.from_json(m.split(b"|", 1)[1], context=name) for m in members]
    return sightings, Challenge.from_dict(json.loads(challenge)) if challenge else None


def decide_passive(*, sightings: Sequence[Sighting], confirming: int) -> LivenessDecision:
    """The passive verdict (passive score and frozen face) on the last ``confirming`` passing
    sightings, the frozen-face check on every sighting of the window."""
    passing = [s for s in sightings if s.passed][-confirming:]
    if len(passing) < confirming:
        # Some of the confirmations were counted while liveness was off or unavailable: each one
        # must have passed the check, so the face starts again ("no passive score").
        passing = []
    return decide_liveness(
        LivenessPolicy.PASSIVE, scores=[s.score for s in passing], observations=[s.observation for s in sightings]
    )


def failed_passive(sightings: Sequence[Sighting]) -> int:
    return sum(not s.passed for s in sightings)


def too_many_failures(sightings: Sequence[Sighting]) -> str | None:
    """Why a passing snapshot must not count now, or None: passes must clearly outnumber failures
    in the window (at least two passes for each failure; a live face fails about 7% of snapshots).
    Otherwise a fake that passes now and then would collect its confirmations out of many tries.
    The failures keep counting until they leave the window."""
    failed = failed_passive(sightings)
    if failed and 2 * failed > len(sightings) - failed:
        return f"possible photo or screen ({failed} of {len(sightings)} snapshots failed the live check)"
    return None


def _issue(now: float) -> Challenge:
    """The server's random prompt (recognition.liveness.new_challenge: drawn with `secrets`)."""
    return new_challenge(now)


def challenge_get(*, session_id: int, student_id: int) -> Challenge | None:
    raw = redis_client().get(_challenge_key(session_id, student_id))
    return Challenge.from_dict(json.loads(raw)) if raw else None


def challenge_issue(*, session_id: int, student_id: int, now: float) -> Challenge:
    """Ask this face for a head turn, unless a challenge is already open for it (then that one):
    one per student at a time, even with two devices posting at once."""
    challenge = _issue(now)
    name = _challenge_key(session_id, student_id)
    # Kept a little past the deadline, so that a late answer is judged (and refused) as late.
    ttl = int(challenge.deadline - now) + 10
    if redis_client().set(name, json.dumps(challenge.as_dict()), nx=True, ex=ttl):
        return challenge
    return challenge_get(session_id=session_id, student_id=student_id) or challenge


def challenge_judge(*, challenge: Challenge, sightings: Sequence[Sighting], confirming: int,
                    now: float) -> ChallengeVerdict:
    """Passed when the sightings answer the challenge and pass the passive checks; failed when the
    answer went the wrong way or the deadline passed, or the answering snapshots' median live score
    fails the passive threshold; otherwise pending.

    A turned head scores lower than a frontal one, so the answer is judged by its median, not snapshot
    by snapshot (a live clip's turns: medians 0.68-0.99, lowest single snapshot 0.30; screen
    replays: medians 0.000-0.024). Without it a screen could answer the prompt after a live face
    had passed the frontal stage."""
    observations = [s.observation for s in sightings]
    result = judge_challenge(challenge, observations)
    if result.passed:
        answering = [s.score for s in sightings if s.observation.time_s >= challenge.issued_at]
        if answering and not passive_passes(median := statistics.median(answering)):
            return ChallengeVerdict("failed", None, f"possible photo or screen (live score {median:.2f})")
        passing = [s for s in sightings if s.passed and s.observation.time_s <= challenge.issued_at]
        decision = decide_liveness(
            LivenessPolicy.CHALLENGE, scores=[s.score for s in passing[-confirming:]],
            observations=observations, challenge=challenge,
        )
        return ChallengeVerdict("passed" if decision.live else "failed", decision, decision.reason)
    if result.reason == "wrong-way" or now > challenge.deadline:
        reason = {"wrong-way": "turned the wrong way", "late": "turned too late",
                  "no-frontal-start": "did not face the camera first"}.get(result.reason, "did not turn")
        return ChallengeVerdict("failed", None, reason)
    return ChallengeVerdict("pending")


def liveness_forget(*, session_id: int, student_id: int) -> None:
    """Drop the face's sightings and challenge: it was marked, or failed and must start again."""
    redis_client().delete(_obs_key(session_id, student_id), _challenge_key(session_id, student_id))


def suspect_remember(*, session_id: int, student_id: int, reason: str, now: float) -> None:
    name = _suspects_key(session_id)
    pipe = redis_client().pipeline(transaction=True)
    pipe.hset(name, str(student_id), json.dumps({"reason": reason, "seen_at": now}))
    pipe.expire(name, SUSPECT_TTL_SECONDS)
    pipe.execute()


def suspect_forget(*, session_id: int, student_id: int) -> None:
    redis_client().hdel(_suspects_key(session_id), str(student_id))


def suspects(*, session_id: int, now: float | None = None) -> list[Suspect]:
    """Faces that failed liveness in the last few minutes, latest first."""
    now = time.time() if now is None else now
    found = []
    for student_id, value in redis_client().hgetall(_suspects_key(session_id)).items():
        entry = json.loads(value)
        if now - float(entry["seen_at"]) <= SUSPECT_TTL_SECONDS:
            found.append(Suspect(int(student_id), str(entry["reason"]), float(entry["seen_at"])))
    return sorted(found, key=lambda s: -s.seen_at)


# --- In the reader's words ----------------------------------------------------------------------
#
# recognition.liveness and this module word a failed check in English: that is what the log, the
# tests and Redis keep. The API translates them for the page as it answers (reason_words), so a
# reason kept in Redis is shown in the language of whoever reads the list.


def challenge_prompt(direction: str) -> str:
    """The head-turn prompt for the student's own left or right."""
    return gettext("Turn your head to your left") if direction == "left" else gettext("Turn your head to your right")


def _number(text: str) -> str:
    return formats.number_format(float(text), 2)


def _challenge_code_words(code: str) -> str:
    return {
        "wrong-way": gettext("turned the wrong way"), "late": gettext("turned too late"),
        "no-frontal-start": gettext("did not face the camera first"), "still": gettext("did not turn"),
        "no-observation": gettext("did not turn"),
    }.get(code, code)


def _reason_part_words(part: str) -> str:
    fixed = {
        "turned the wrong way": gettext("turned the wrong way"), "turned too late": gettext("turned too late"),
        "did not face the camera first": gettext("did not face the camera first"),
        "did not turn": gettext("did not turn"), "no passive score": gettext("no passive score"),
        "frozen picture (identical snapshots)": gettext("frozen picture (identical snapshots)"),
        "challenge not issued": gettext("challenge not issued"),
    }
    if part in fixed:
        return fixed[part]
    if match := re.fullmatch(r"possible photo or screen \(live score ([\d.]+) < ([\d.]+)\)", part):
        return gettext("possible photo or screen (live score %(score)s < %(threshold)s)") % {
            "score": _number(match[1]), "threshold": _number(match[2])}
    if match := re.fullmatch(r"possible photo or screen \(live score ([\d.]+)\)", part):
        return gettext("possible photo or screen (live score %(score)s)") % {"score": _number(match[1])}
    if match := re.fullmatch(r"possible photo or screen \((\d+) of (\d+) snapshots failed the live check\)", part):
        return gettext("possible photo or screen (%(failed)s of %(total)s snapshots failed the live check)") % {
            "failed": match[1], "total": match[2]}
    if match := re.fullmatch(r"challenge not answered \((.+)\)", part):
        return gettext("challenge not answered (%(why)s)") % {"why": _challenge_code_words(match[1])}
    if match := re.fullmatch(r"head-turn challenge failed: (.+)", part):
        return gettext("head-turn challenge failed: %(why)s") % {"why": reason_words(match[1])}
    return part  # a reason worded elsewhere: shown as it is


def reason_words(reason: str) -> str:
    """A liveness reason (English, as recognition and Redis keep it) in the reader's language."""
    if not reason:
        return ""
    if match := re.fullmatch(r"head-turn challenge failed: (.+)", reason):
        return gettext("head-turn challenge failed: %(why)s") % {"why": reason_words(match[1])}
    return "; ".join(_reason_part_words(part) for part in reason.split("; "))


def live_scores(
    rgb: np.ndarray, faces: Sequence[Face], matches: Sequence[Match], *, policy: LivenessPolicy,
    recorded: Mapping[int, str], doubtful_above: float,
) -> list[float | None]:
    """The passive live score of each face that could be marked now, None for the others.

    Only a face that may count towards a mark is scored: one recognised, not yet recorded in this
    session and not doubtful (the tests of session_check_in's loop, written the same way). An
    unknown face, a student already marked and a doubtful match are answered without the models
    (in a class most faces are soon marked). The faces that are scored go through both models in
    one batch."""
    wanted = [
        i for i, match in enumerate(matches)
        if policy is not LivenessPolicy.OFF and match.label is not None and match.distance is not None
        and int(match.label) not in recorded and not match.distance > doubtful_above  # type: ignore[arg-type]
    ]
    scores: list[float | None] = [None] * len(faces)
    if wanted:
        for i, score in zip(wanted, ml.liveness().score(rgb, [faces[i] for i in wanted]), strict=True):
            scores[i] = score
    return scores


def challenge_info(challenge: Challenge, now: float) -> dict[str, object]:
    """What a check-in answers about an open challenge: the prompt, its direction and time."""
    return {"prompt": challenge_prompt(challenge.direction), "direction": challenge.direction,
            "seconds_left": round(max(0.0, challenge.deadline - now), 1),
            "seconds": round(challenge.deadline - challenge.issued_at, 1)}
