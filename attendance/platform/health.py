"""Checks behind /healthz: is each moving part of the deployment answering right now?"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from django.conf import settings
from django.db import connection
from django.utils import formats
from django.utils.translation import gettext, gettext_lazy, ngettext

from attendance.platform.redis import key, redis_client

BEAT_LAST_KEY = key("beat", "last")
BEAT_AWAITED_KEY = key("beat", "awaited_since")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def check_database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "down"; the detail says which
        return Check("database", False, f"{type(exc).__name__}: {exc}")
    return Check("database", True, connection.vendor)


def check_redis() -> Check:
    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
        client.ping()
    except redis.RedisError as exc:
        return Check("redis", False, f"{type(exc).__name__}: {exc}")
    return Check("redis", True, "pong")


def check_worker(*, timeout: float = 1.0) -> Check:
    from config.celery import app

    try:
        replies = app.control.ping(timeout=timeout)
    except Exception as exc:  # broker unreachable: kombu raises several unrelated types
        return Check("worker", False, f"{type(exc).__name__}: {exc}")
    if not replies:
        return Check("worker", False, gettext("no Celery worker answered a ping within %(seconds)s s")
                     % {"seconds": formats.number_format(timeout, 1)})
    return Check("worker", True, ngettext("%(count)d worker answered", "%(count)d workers answered", len(replies))
                 % {"count": len(replies)})


def beat_heartbeat_record() -> None:
    """Beat has just sent its heartbeat (config/celery.py, on `after_task_publish`): it is alive and
    reaches Redis now. Noted where beat sends it, not where a worker runs it: a worker busy with an
    enrolment runs nothing else for minutes, and that is the worker check's business, not beat's."""
    try:
        redis_client().set(BEAT_LAST_KEY, repr(time.time()))
    except redis.RedisError:
        pass  # Redis down: the broker is too, and /healthz says so under "redis"


def _at(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def check_beat() -> Check:
    """Whether `celery beat` sent its heartbeat (every ROLLCALL_BEAT_HEARTBEAT_SECONDS) lately.

    Late: no heartbeat for three intervals (three minutes by default). Never seen: a fresh start,
    or beat died at start (issue 21). The first check that finds none notes the time in Redis, and
    beat counts as missing only once it is that late after it: a site (or a test) that has just
    started, with beat's first heartbeat still to come (Celery sends it one interval after beat
    starts), is not degraded for it. That note lives in
    the same Redis as the heartbeat, so every web host waits from the same moment, and an emptied
    Redis starts the wait again.
    """
    late_after = 3 * settings.ROLLCALL_BEAT_HEARTBEAT_SECONDS
    now = time.time()
    try:
        client = redis_client()
        last = client.get(BEAT_LAST_KEY)
        if last is None:
            client.set(BEAT_AWAITED_KEY, repr(now), nx=True)
            awaited = float(client.get(BEAT_AWAITED_KEY) or now)
    except redis.RedisError as exc:
        return Check("beat", False, f"cannot read beat's heartbeat: {type(exc).__name__}: {exc}")
    if last is not None:
        age = now - float(last)
        if age > late_after:
            return Check("beat", False, gettext("no heartbeat from Celery beat since %(time)s (%(age)s s ago): "
                                                "is `celery beat` running?")
                         % {"time": _at(float(last)), "age": f"{age:.0f}"})
        return Check("beat", True, gettext("last heartbeat %(age)s s ago") % {"age": f"{max(age, 0):.0f}"})
    if now - awaited > late_after:
        return Check("beat", False, gettext("no heartbeat from Celery beat since this site started checking at "
                                            "%(time)s: is `celery beat` running?") % {"time": _at(awaited)})
    return Check("beat", True, gettext("waiting for the first heartbeat from Celery beat"))


# What a person who is not an operator reads on /healthz. The operators' sentences are in the reader's language
# too (English for a monitor that sends no Accept-Language); exception texts and paths stay as raised, like the log.
RECOGNITION_DOWN = gettext_lazy(
    "Face recognition is not available on this server right now; the administrators can see why."
)
LIVENESS_DOWN = gettext_lazy(
    "Liveness checks are not available on this server right now: check-ins go on without them."
)


def check_recognition(*, operator: bool) -> Check:
    """Whether the detector and the served space's embedder load here, and which space that is.
    ``operator``: the detail (setting, path, checksum, URL) or a plain sentence."""
    from attendance import ml

    try:
        problem = ml.models_problem()
        space = ml.embedder_name()
        mismatch = ml.space_mismatch()
    except Exception as exc:  # the database answering nothing, among others: the detail says which
        return Check("recognition", False, f"{type(exc).__name__}: {exc}" if operator else str(RECOGNITION_DOWN))
    if problem is not None:
        return Check("recognition", False, f"cannot serve {space}: {problem}" if operator else str(RECOGNITION_DOWN))
    detail = gettext("serving %(space)s") % {"space": space} + (f"; {mismatch}" if mismatch and operator else "")
    return Check("recognition", True, detail)


def check_liveness(*, operator: bool) -> Check:
    from attendance import ml

    problem = ml.liveness_problem()
    if problem is None:
        return Check("liveness", True, gettext("both MiniFASNet models loaded"))
    return Check("liveness", False, problem if operator else str(LIVENESS_DOWN))


def run_checks(*, worker: bool = True, operator: bool = False) -> list[Check]:
    """Every check; only the database and Redis for a web host's own health (`/healthz?scope=web`,
    for a load balancer). ``operator``: an admin asks, and gets the models' detail."""
    if not worker:
        return [check_database(), check_redis()]
    return [check_database(), check_redis(), check_worker(), check_beat(), check_recognition(operator=operator),
            check_liveness(operator=operator)]
