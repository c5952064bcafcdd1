"""Failed sign-ins counted in Redis, so that a password cannot be guessed by trying thousands.

Both ways in that take a password are limited: the sign-in page and the API's token endpoint.
Only failures count. An account gets ROLLCALL_LOGIN_MAX_FAILURES wrong passwords in a window of
ROLLCALL_LOGIN_WINDOW_SECONDS; one address gets five times as many, across accounts (a campus
NAT puts many honest people behind one address, and they mistype too). The counters live in
Redis, like the check-in limit, so they hold across web workers.

When Redis cannot be reached the limiter lets the attempt through and logs it: the password
check itself still applies, and an outage of the live check-in store must not lock everyone out.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass

import redis
from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import ngettext

from attendance.platform.redis import key, redis_client

logger = logging.getLogger(__name__)

# An address may fail this many times more than one account: several people share one address.
ADDRESS_FACTOR = 5


@dataclass(frozen=True)
class Block:
    """Further attempts are refused for this many seconds."""

    retry_after: int

    def message(self) -> str:
        minutes = max(1, math.ceil(self.retry_after / 60))
        return ngettext(
            "Too many failed sign-ins. Wait %(minutes)s minute and try again, "
            "or ask an administrator to reset your password.",
            "Too many failed sign-ins. Wait %(minutes)s minutes and try again, "
            "or ask an administrator to reset your password.",
            minutes,
        ) % {"minutes": minutes}


def _window() -> tuple[int, int]:
    """(the current window's number, seconds until it ends)."""
    length = int(settings.ROLLCALL_LOGIN_WINDOW_SECONDS)
    now = time.time()
    return int(now // length), max(1, math.ceil(length - now % length))


def _keys(request: HttpRequest, username: str, window: int) -> list[tuple[str, int]]:
    # The name is hashed: the keys should not list who was being guessed at.
    account = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:24]
    address = str(request.META.get("REMOTE_ADDR", ""))
    limit = int(settings.ROLLCALL_LOGIN_MAX_FAILURES)
    return [
        (key("login-failures", "account", account, window), limit),
        (key("login-failures", "address", address, window), limit * ADDRESS_FACTOR),
    ]


def login_blocked(request: HttpRequest, username: str) -> Block | None:
    """A Block when this account or address has used up its failures in the current window."""
    window, remaining = _window()
    keys = _keys(request, username, window)
    try:
        counts = redis_client().mget([name for name, _ in keys])
    except redis.RedisError as exc:
        logger.warning("sign-in limit not checked, Redis unreachable: %s", exc)
        return None
    for (_, limit), count in zip(keys, counts, strict=True):
        if count is not None and int(count) >= limit:
            return Block(retry_after=remaining)
    return None


def login_failed(request: HttpRequest, username: str) -> None:
    """Count one failed attempt against the account and the address."""
    window, remaining = _window()
    try:
        pipe = redis_client().pipeline(transaction=True)
        for name, _ in _keys(request, username, window):
            pipe.incr(name)
            pipe.expire(name, remaining + 1)
        pipe.execute()
    except redis.RedisError as exc:
        logger.warning("failed sign-in not counted, Redis unreachable: %s", exc)
    logger.info("failed sign-in for %r from %s", username[:150], request.META.get("REMOTE_ADDR", ""))
