"""Celery tasks: ids in, one service call, retry policy on the decorator."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="attendance.ping")
def ping(value: int) -> int:
    """Round-trip check used by the health tests: proves a worker runs tasks and results return."""
    return value + 1
