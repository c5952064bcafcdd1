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
