"""Whether the configured keyring opens the face data that is stored: the admins' first question."""

from __future__ import annotations

from django.utils.translation import gettext

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
    return str(BiometricKeyError(gettext(
        "embeddings are stored under key(s) %(missing)s, not in the configured keyring (%(source)s: %(keys)s)."
    ) % {"missing": ", ".join(missing), "source": ring.source, "keys": ", ".join(ring.keys)}))
