"""One Redis connection pool per process, for state that every web worker must share.

Django's cache API has no sorted sets or atomic counters with expiry in one round trip; the live
check-in needs both, so it talks to the same Redis directly.
"""

from __future__ import annotations

from functools import cache

import redis
from django.conf import settings


@cache
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


def key(*parts: object) -> str:
    return ":".join(["rollcall", *(str(part) for part in parts)])


def sightings_key(session_id: int, student_id: int) -> str:
    """Where the live check-in keeps a face's recent sightings (their embeddings sealed), so that a
    withdrawal of consent (privacy) can delete them without the check-in feature."""
    return session_key(session_id, "liveness", "obs", student_id)


def sightings_pattern(student_id: int) -> str:
    """sightings_key of the student in any session, for SCAN."""
    return key("session", "*", "liveness", "obs", student_id)


def session_key(session_id: int, *parts: object) -> str:
    """A key of a session's live state (check-in confirmations, doubtful matches, challenges).

    Every such key lives under the session's prefix, so closing a session forgets all of it at
    once without the sessions feature knowing what the live features keep.
    """
    return key("session", session_id, *parts)


def session_state_clear(*, session_id: int) -> None:
    """Forget every key of a session's live state (it closed)."""
    client = redis_client()
    names = list(client.scan_iter(match=key("session", session_id, "*"), count=500))
    if names:
        client.delete(*names)
