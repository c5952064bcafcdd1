"""Whether the configured keyring opens the face data that is stored: the admins' first question."""

from __future__ import annotations

from attendance.models import FaceEmbedding
from attendance.platform.biometric import BiometricKeyError, keyring


def stored_key_problem() -> str:
    """The admin message when the keyring is missing or lacks a key some stored embedding needs; '' when fine."""
    try:
        ring = keyring()
    except BiometricKeyError as exc:
        return str(exc)
    missing = sorted(set(FaceEmbedding.objects.order_by().values_list("key_id", flat=True).distinct()) - set(ring.keys))
    if not missing:
        return ""
    return str(BiometricKeyError(
        f"embeddings are stored under key(s) {', '.join(missing)}, not in the configured keyring "
        f"({ring.source}: {', '.join(ring.keys)})."
    ))
