"""Checks behind /healthz: is each moving part of the deployment answering right now?"""

from __future__ import annotations

from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import connection


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
        return Check("worker", False, f"no Celery worker answered a ping within {timeout:.1f} s")
    return Check("worker", True, f"{len(replies)} worker(s) answered")


RECOGNITION_DOWN = "Face recognition is not available on this server right now; the administrators can see why."
LIVENESS_DOWN = "Liveness checks are not available on this server right now: check-ins go on without them."


def check_recognition(*, operator: bool) -> Check:
    """Whether the detector and the served space's embedder load here, and which space that is.
    ``operator``: the detail (setting, path, checksum, URL) or a plain sentence."""
    from attendance import ml

    try:
        problem = ml.models_problem()
        space = ml.embedder_name()
        mismatch = ml.space_mismatch()
    except Exception as exc:  # the database answering nothing, among others: the detail says which
        return Check("recognition", False, f"{type(exc).__name__}: {exc}" if operator else RECOGNITION_DOWN)
    if problem is not None:
        return Check("recognition", False, f"cannot serve {space}: {problem}" if operator else RECOGNITION_DOWN)
    detail = f"serving {space}" + (f"; {mismatch}" if mismatch and operator else "")
    return Check("recognition", True, detail)


def check_liveness(*, operator: bool) -> Check:
    from attendance import ml

    problem = ml.liveness_problem()
    if problem is None:
        return Check("liveness", True, "both MiniFASNet models loaded")
    return Check("liveness", False, problem if operator else LIVENESS_DOWN)


def run_checks(*, worker: bool = True, operator: bool = False) -> list[Check]:
    """Every check; only the database and Redis for a web host's own health (`/healthz?scope=web`,
    for a load balancer). ``operator``: an admin asks, and gets the models' detail."""
    if not worker:
        return [check_database(), check_redis()]
    return [check_database(), check_redis(), check_worker(), check_recognition(operator=operator),
            check_liveness(operator=operator)]
