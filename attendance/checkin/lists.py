"""The lecturer's lists beside the video: doubtful matches waiting to be confirmed, and faces
that failed liveness ("possible photo or screen of ..."), kept in Redis for a few minutes."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

from attendance.checkin import liveness as checkin_liveness
from attendance.models import AttendanceRecord, Session, User
from attendance.platform.redis import redis_client, session_key

DOUBTFUL_TTL_SECONDS = 300


@dataclass(frozen=True)
class DoubtfulMatch:
    student_id: int
    name: str
    distance: float
    seen_at: float


def student_names(student_ids: Sequence[int]) -> dict[int, str]:
    if not student_ids:
        return {}
    return {user.pk: user.display_name for user in User.objects.filter(pk__in=student_ids)}


def _doubtful_key(session_id: int) -> str:
    return session_key(session_id, "checkin", "doubtful")


def remember_doubtful(*, session_id: int, student_id: int, distance: float, now: float) -> None:
    name = _doubtful_key(session_id)
    pipe = redis_client().pipeline(transaction=True)
    pipe.hset(name, str(student_id), json.dumps({"distance": round(distance, 4), "seen_at": now}))
    pipe.expire(name, DOUBTFUL_TTL_SECONDS)
    pipe.execute()


def forget_doubtful(*, session_id: int, student_id: int) -> None:
    """Drop a student from the doubtful list: confirmed, marked by hand or dismissed by the lecturer."""
    redis_client().hdel(_doubtful_key(session_id), str(student_id))


def session_doubtful_matches(*, session: Session, now: float | None = None) -> list[DoubtfulMatch]:
    """Doubtful matches of the last few minutes for students still without a record, nearest first."""
    now = time.time() if now is None else now
    raw = redis_client().hgetall(_doubtful_key(session.pk))
    seen: dict[int, dict[str, float]] = {}
    for student_id, value in raw.items():
        entry = json.loads(value)
        if now - float(entry["seen_at"]) <= DOUBTFUL_TTL_SECONDS:
            seen[int(student_id)] = entry
    if not seen:
        return []
    recorded = set(
        AttendanceRecord.objects.filter(session=session, student_id__in=seen).values_list("student_id", flat=True)
    )
    names = student_names([s for s in seen if s not in recorded])
    matches = [
        DoubtfulMatch(student_id=s, name=names[s], distance=float(e["distance"]), seen_at=float(e["seen_at"]))
        for s, e in seen.items()
        if s in names
    ]
    return sorted(matches, key=lambda m: m.distance)


@dataclass(frozen=True)
class NotLiveFace:
    student_id: int
    name: str
    reason: str
    seen_at: float


def session_not_live(*, session: Session, now: float | None = None) -> list[NotLiveFace]:
    """Faces that failed liveness lately, for students still without a record, latest first: the
    lecturer sees "possible photo or screen of <name>" and can look up."""
    found = checkin_liveness.suspects(session_id=session.pk, now=now)
    if not found:
        return []
    ids = [s.student_id for s in found]
    recorded = set(AttendanceRecord.objects.filter(session=session, student_id__in=ids)
                   .values_list("student_id", flat=True))
    names = student_names([i for i in ids if i not in recorded])
    return [NotLiveFace(s.student_id, names[s.student_id], s.reason, s.seen_at) for s in found if s.student_id in names]


def forget_not_live(*, session_id: int, student_id: int) -> None:
    """Drop a student from the "possible photo" lines: marked by hand by the lecturer."""
    checkin_liveness.suspect_forget(session_id=session_id, student_id=student_id)
