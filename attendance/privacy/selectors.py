"""Reads for the admins' biometric data page: the keyring's state, retention due, the access trail."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import Count

from attendance.models import AccessEvent, FaceEmbedding
from attendance.platform import biometric
from attendance.privacy.retention import retention_due


def key_status() -> dict[str, Any]:
    """The keyring's ids (never the keys), rows per key id, and the admin message when stopped."""
    by_key = dict(FaceEmbedding.objects.order_by().values("key_id").annotate(n=Count("pk")).values_list("key_id", "n"))
    try:
        ring = biometric.keyring()
    except biometric.BiometricKeyError as exc:
        return {"ok": False, "message": str(exc), "by_key": by_key, "ids": [], "current": None, "source": ""}
    missing = sorted(kid for kid in by_key if kid not in ring.keys)
    message = str(biometric.BiometricKeyError(
        f"{sum(by_key[k] for k in missing)} embeddings were encrypted with key(s) {', '.join(missing)}, "
        f"not in the configured keyring ({ring.source})."
    )) if missing else ""
    return {
        "ok": not missing, "message": message, "by_key": by_key, "ids": list(ring.keys),
        "current": ring.current_id, "source": ring.source, "rotation_pending": len(ring.keys) > 1,
    }


def biometric_overview() -> dict[str, Any]:
    return {
        "key": key_status(),
        "due": retention_due(),
        "retention_days": settings.ROLLCALL_BIOMETRIC_RETENTION_DAYS,
        "notice_days": settings.ROLLCALL_BIOMETRIC_NOTICE_DAYS,
        "events": AccessEvent.objects.select_related("actor", "subject")[:200],
    }
