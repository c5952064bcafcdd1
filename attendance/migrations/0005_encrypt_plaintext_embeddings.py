"""Encrypt the embeddings stored in plaintext before 0003 (key_id ''), in batches, with the current key.

Needs the biometric key (ROLLCALL_BIOMETRIC_KEY or ROLLCALL_BIOMETRIC_KEY_FILE) only where such rows
exist; it stops with the key's message otherwise, and the plaintext rows stay as they were. The
index files are caches: written in plaintext before, they are rebuilt encrypted on first use.
"""

from __future__ import annotations

import numpy as np
from django.db import migrations, transaction

BATCH = 500


def encrypt_plaintext(apps, schema_editor):  # type: ignore[no-untyped-def]
    from attendance.platform.biometric import keyring, vector_encrypt

    FaceEmbedding = apps.get_model("attendance", "FaceEmbedding")
    pending = FaceEmbedding.objects.filter(key_id="")
    if not pending.exists():
        return
    ring = keyring()  # raises the admin message when no key is configured
    while True:
        with transaction.atomic():
            rows = list(pending.select_for_update().order_by("pk")[:BATCH])
            if not rows:
                break
            for row in rows:
                vector = np.frombuffer(bytes(row.vector), dtype="<f4")
                row.key_id, row.vector = vector_encrypt(
                    vector, student_id=row.student_id, backbone=row.backbone, ring=ring
                )
            FaceEmbedding.objects.bulk_update(rows, ["key_id", "vector"])


class Migration(migrations.Migration):
    atomic = False  # one transaction per batch: a large table is not locked whole

    dependencies = [("attendance", "0004_biometric_protection")]

    operations = [migrations.RunPython(encrypt_plaintext, migrations.RunPython.noop)]
