"""Rotating the biometric key: every embedding and index file sealed again under a new key.

Resumable by construction: the new key goes in front of the keyring first (the old one stays, to
open), rows are re-sealed in batches of their own transactions, each picking rows not yet under the
new key, and the old key is retired only once nothing needs it. Interrupted anywhere, a rerun finds
a keyring of two keys and carries on from wherever it stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from attendance.courses.indexes import course_index_rebuild
from attendance.models import AccessEvent, Course, FaceEmbedding
from attendance.platform import biometric
from attendance.platform.access_trail import access_event_record

logger = logging.getLogger(__name__)


class RotationError(Exception):
    """A rotation that cannot start; the message says what to do."""


@dataclass(frozen=True)
class RotationResult:
    new_key_id: str
    retired_key_ids: list[str]
    embeddings_resealed: int
    indexes_rebuilt: int
    stray_files_removed: int
    old_keys_left_in_setting: bool


def _start(ring: biometric.Keyring) -> biometric.Keyring:
    if len(ring.keys) > 1:
        return ring  # a rotation in progress: resume it under the key in front
    if ring.file is None:
        raise RotationError(_(
            "ROLLCALL_BIOMETRIC_KEY holds one key, and a setting cannot be rewritten from here. Put a new key in "
            "front of the old one (ROLLCALL_BIOMETRIC_KEY=<new>,<old>) in every process, for example "
            "%(key)s, then run this command again."
        ) % {"key": biometric.new_key_text()})
    new = biometric.key_bytes(biometric.new_key_text())
    biometric.write_key_file(ring.file, [new, *ring.keys.values()])
    biometric.clear_cache()
    return biometric.keyring()


def _reseal_batch(ring: biometric.Keyring, *, batch: int) -> int:
    with transaction.atomic():
        rows = list(
            FaceEmbedding.objects.select_for_update(skip_locked=True)
            .exclude(key_id=ring.current_id)
            .order_by("pk")[:batch]
        )
        for row in rows:
            plain = biometric.vector_decrypt(
                bytes(row.vector), key_id=row.key_id, student_id=row.student_id, backbone=row.backbone,
                dim=row.dim, ring=ring,
            )
            row.key_id, row.vector = biometric.vector_encrypt(
                plain, student_id=row.student_id, backbone=row.backbone, ring=ring
            )
        FaceEmbedding.objects.bulk_update(rows, ["key_id", "vector"])
    return len(rows)


def _reseal_all(ring: biometric.Keyring, *, batch: int) -> int:
    """Every row not sealed with the current key, sealed with it (rows another transaction holds
    are left: the caller's count says so)."""
    done = 0
    while resealed := _reseal_batch(ring, batch=batch):
        done += resealed
    return done


def _remove_stray_files(current_id: str) -> int:
    """Index files still sealed with another key (of deleted courses, or left by a crash): caches, removed."""
    removed = 0
    for path in Path(settings.ROLLCALL_INDEX_DIR).glob("*.faiss"):
        with path.open("rb") as handle:
            head = handle.read(64)
        if biometric.sealed_key_id(head) != current_id:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def biometric_key_rotate(
    *, by_label: str, batch: int = 500, after_batch: Callable[[int], None] | None = None
) -> RotationResult:
    """Re-seal every embedding and index file under a new key, then retire the old keys.

    `after_batch(done)` is called after each committed batch (progress; tests interrupt there)."""
    ring = _start(biometric.keyring())
    # The new key is in front now: wait for writers that read the keyring before it was (a worker
    # storing an enrolment); their rows, committed by then, are re-sealed with the others below.
    biometric.rotation_barrier()
    old_ids = [kid for kid in ring.keys if kid != ring.current_id]
    done = 0
    while resealed := _reseal_batch(ring, batch=batch):
        done += resealed
        if after_batch is not None:
            after_batch(done)
    left = FaceEmbedding.objects.exclude(key_id=ring.current_id).count()
    if left:
        raise RotationError(
            _("%(n)s embeddings are locked by another transaction: run the command again.") % {"n": left}
        )
    rebuilt = 0
    for course in Course.objects.order_by("pk"):
        course_index_rebuild(course=course)
        rebuilt += 1
    strays = _remove_stray_files(ring.current_id)
    # After the barrier no writer seals with an old key (they read the keyring under the shared
    # lock, and the file had the new key first). Sealed again anyway before the old key leaves the
    # file and once more after: a writer outside sealing_keyring (only the bench's throwaway database) would otherwise
    # leave rows nobody can open. Processes reload the keyring when the file changes.
    done += _reseal_all(ring, batch=batch)
    in_setting = ring.file is None
    if not in_setting and ring.file is not None:
        biometric.write_key_file(ring.file, [ring.keys[ring.current_id]])
        biometric.clear_cache()
        done += _reseal_all(ring, batch=batch)
    access_event_record(
        kind=AccessEvent.Kind.KEY_ROTATION, actor=None, actor_label=by_label,
        detail=f"to key {ring.current_id} from {', '.join(old_ids) or 'none'}: {done} embeddings re-sealed, "
        f"{rebuilt} indexes rebuilt, {strays} stray index files removed",
    )
    logger.info("biometric key rotated to %s: %d embeddings, %d indexes", ring.current_id, done, rebuilt)
    return RotationResult(
        new_key_id=ring.current_id, retired_key_ids=old_ids, embeddings_resealed=done, indexes_rebuilt=rebuilt,
        stray_files_removed=strays, old_keys_left_in_setting=in_setting and bool(old_ids),
    )
