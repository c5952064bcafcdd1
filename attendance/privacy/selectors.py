"""Reads for the admins' biometric data page: the keyring's state, retention due, the access trail."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import Count

from attendance.models import AccessEvent, FaceEmbedding
from attendance.platform import biometric
from attendance.platform.biometric_health import stored_key_problem
from attendance.privacy.retention import retention_due


def key_status() -> dict[str, Any]:
    """The keyring's ids (never the keys), rows per key id, and the admin message when stopped."""
    by_key = dict(FaceEmbedding.objects.order_by().values("key_id").annotate(n=Count("pk")).values_list("key_id", "n"))
    problem = stored_key_problem()
    try:
        ring: biometric.Keyring | None = biometric.keyring()
    except biometric.BiometricKeyError:
        ring = None
    return {
        "ok": not problem, "message": problem, "by_key": by_key,
        "current": ring.current_id if ring else None, "source": ring.source if ring else "",
        "rotation_pending": ring is not None and len(ring.keys) > 1,
    }


def biometric_overview() -> dict[str, Any]:
    return {
        "key": key_status(),
        "due": retention_due(),
        "retention_days": settings.ROLLCALL_BIOMETRIC_RETENTION_DAYS,
        "notice_days": settings.ROLLCALL_BIOMETRIC_NOTICE_DAYS,
        "events": AccessEvent.objects.select_related("actor", "subject")[:200],
    }
