"""Celery tasks: ids in, one service call, retry policy on the decorator."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="attendance.ping")
def ping(value: int) -> int:
    """Round-trip check used by the health tests: proves a worker runs tasks and results return."""
    return value + 1


@shared_task(name="attendance.snapshots_delete_expired", acks_late=True)
def snapshots_delete_expired() -> int:
    """Celery beat runs this hourly: check-in snapshots older than the retention period are deleted."""
    from attendance.services.privacy import snapshots_delete_expired as delete_expired

    return delete_expired()
