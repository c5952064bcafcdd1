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


def run_checks(*, worker: bool = True) -> list[Check]:
    """Every check; without the worker's for a web host's own health (`/healthz?scope=web`)."""
    return [check_database(), check_redis(), *([check_worker()] if worker else [])]
