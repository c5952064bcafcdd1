"""Biometric data encrypted at rest: AES-256-GCM under a keyring read from the settings.

Face embeddings are biometric templates (an approximate face can be rebuilt from one, PRIVACY.md),
so neither the database nor an index file holds one in the clear. Every ciphertext is stored with
the id of the key that sealed it; the id is derived from the key (a hash), so a wrong key is told
apart from corrupt data and named in the message for admins.

The keyring is ROLLCALL_BIOMETRIC_KEY (comma-separated) or the lines of ROLLCALL_BIOMETRIC_KEY_FILE:
base64 keys of 32 bytes, the first one seals, the others only open (during a rotation, see
`manage.py rotate_biometric_key`). Plaintext exists only in the memory of the process that builds
or loads an index, or embeds a face.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.db import connection, transaction
from django.utils.translation import gettext

from recognition import IndexFormatError, ModelUnavailableError

KEY_BYTES = 32
NONCE_BYTES = 12
SEALED_MAGIC = b"RCSEALED1\x00"
_KID = struct.Struct("<B")

STOPPED = (
    "Face recognition and enrolment are stopped: {reason} Attendance records, marking by hand and reports "
    "still work, and no face data has been deleted; restore the key (PRIVACY.md, 'Keys') and face "
    "check-in works again without anyone enrolling again."
)


class BiometricKeyError(ModelUnavailableError):
    """The keyring is missing, malformed, or lacks the key some face data was sealed with.

    A ModelUnavailableError, so every face feature that already answers 503 when its model cannot
    load does the same here, with this message for the admin."""

    def __init__(self, reason: str) -> None:
        super().__init__(STOPPED.format(reason=reason))
        self.reason = reason


@dataclass(frozen=True)
class Keyring:
    keys: dict[str, bytes]  # id -> key, in order: the first seals
    source: str
    file: Path | None  # the key file, when the keys came from one

    @property
    def current_id(self) -> str:
        return next(iter(self.keys))

    def key(self, key_id: str) -> bytes:
        try:
            return self.keys[key_id]
        except KeyError:
            raise BiometricKeyError(
                gettext("face data was encrypted with key %(key)s, which is not in the configured keyring "
                        "(%(source)s: %(keys)s).")
                % {"key": key_id, "source": self.source, "keys": ", ".join(self.keys)}
            ) from None


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"rollcall-biometric-key:" + key).hexdigest()[:16]


def new_key_text() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def key_bytes(text: str, *, source: str = "the key") -> bytes:
    try:
        key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise BiometricKeyError(gettext("%(source)s holds a value that is not a base64 key of %(bytes)s bytes.")
                                % {"source": source, "bytes": KEY_BYTES})
    return key


def parse_keys(text: str, *, source: str) -> dict[str, bytes]:
    keys: dict[str, bytes] = {}
    for line in text.splitlines():
        for item in line.split("#", 1)[0].split(","):
            if item.strip():
                key = key_bytes(item.strip(), source=source)
                keys.setdefault(key_id(key), key)
    if not keys:
        raise BiometricKeyError(gettext("%(source)s holds no key.") % {"source": source})
    return keys


_lock = threading.Lock()
_cached: tuple[tuple[object, ...], Keyring] | None = None


def _generate_file(path: Path) -> None:
    """A development key, written once (O_EXCL: the web server and a worker may start together)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as handle:
        handle.write("# Rollcall development key, generated on first use. Never use it in production.\n")
        handle.write(new_key_text() + "\n")


def keyring() -> Keyring:
    """The configured keyring, read again only when the setting or the key file changed."""
    global _cached
    value = settings.ROLLCALL_BIOMETRIC_KEY
    path = Path(settings.ROLLCALL_BIOMETRIC_KEY_FILE) if settings.ROLLCALL_BIOMETRIC_KEY_FILE else None
    if not value and path is not None and not path.exists() and settings.ROLLCALL_BIOMETRIC_KEY_GENERATE:
        _generate_file(path)
    try:
        stamp: object = path.stat().st_mtime_ns if path is not None and not value else None
    except OSError:
        stamp = None
    signature = (value, str(path), stamp)
    with _lock:
        if _cached is not None and _cached[0] == signature:
            return _cached[1]
        if value:
            ring = Keyring(parse_keys(value, source="ROLLCALL_BIOMETRIC_KEY"), "ROLLCALL_BIOMETRIC_KEY", None)
        elif path is not None and stamp is not None:
            try:
                text = path.read_text()
            except OSError as exc:
                raise BiometricKeyError(gettext("the key file %(path)s cannot be read (%(error)s).")
                                        % {"path": path, "error": exc.strerror}) from exc
            ring = Keyring(parse_keys(text, source=str(path)), str(path), path)
        else:
            raise BiometricKeyError(gettext(
                "no biometric encryption key is configured (set ROLLCALL_BIOMETRIC_KEY or "
                "ROLLCALL_BIOMETRIC_KEY_FILE; the key file %(path)s does not exist)."
            ) % {"path": path})
        _cached = (signature, ring)
        return ring


def write_key_file(path: Path, keys: list[bytes]) -> None:
    """Replace the key file atomically (0600), the first key sealing."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("# Rollcall biometric keys: the first seals, the others only open (a rotation in progress).\n")
        for key in keys:
            handle.write(base64.urlsafe_b64encode(key).decode() + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


# --- Embeddings -----------------------------------------------------------------------------------

def _vector_context(student_id: int, backbone: str, dim: int) -> bytes:
    # Bound to its owner: a ciphertext copied onto another student's row does not open.
    return f"rollcall:embedding:{student_id}:{backbone}:{dim}".encode()


def vector_encrypt(
    vector: np.ndarray, *, student_id: int, backbone: str, ring: Keyring | None = None
) -> tuple[str, bytes]:
    """(key id, nonce + ciphertext) of one float32 vector, sealed with the current key."""
    ring = ring or keyring()
    plain = np.ascontiguousarray(vector, dtype="<f4").tobytes()
    nonce = secrets.token_bytes(NONCE_BYTES)
    kid = ring.current_id
    sealed = AESGCM(ring.key(kid)).encrypt(nonce, plain, _vector_context(student_id, backbone, len(plain) // 4))
    return kid, nonce + sealed


def vector_decrypt(
    data: bytes | memoryview, *, key_id: str, student_id: int, backbone: str, dim: int, ring: Keyring | None = None
) -> np.ndarray:
    ring = ring or keyring()
    raw = bytes(data)
    try:
        plain = AESGCM(ring.key(key_id)).decrypt(
            raw[:NONCE_BYTES], raw[NONCE_BYTES:], _vector_context(student_id, backbone, dim)
        )
    except InvalidTag:
        raise BiometricKeyError(gettext(
            "an embedding of student %(student)s does not open with key %(key)s: the key file holds "
            "another key under that id, or the row was altered."
        ) % {"student": student_id, "key": key_id}) from None
    return np.frombuffer(plain, dtype="<f4")


# --- Files (course indexes) -----------------------------------------------------------------------

def seal(data: bytes, *, context: str, ring: Keyring | None = None) -> bytes:
    """An index file's bytes, sealed: magic, key id, nonce, ciphertext (the id in the clear, so a
    reader knows which key to ask for)."""
    ring = ring or keyring()
    kid = ring.current_id.encode()
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = AESGCM(ring.key(ring.current_id)).encrypt(nonce, data, context.encode())
    return SEALED_MAGIC + _KID.pack(len(kid)) + kid + nonce + sealed


def sealed_key_id(data: bytes) -> str | None:
    if not data.startswith(SEALED_MAGIC):
        return None
    start = len(SEALED_MAGIC) + _KID.size
    (length,) = _KID.unpack_from(data, len(SEALED_MAGIC))
    return data[start : start + length].decode("ascii", "replace")


def unseal(data: bytes, *, context: str, ring: Keyring | None = None) -> bytes:
    """The bytes `seal` sealed. A file that is not sealed, or corrupt, raises IndexFormatError (it is
    a cache: rebuilt from the database); one sealed with a key not in the keyring raises
    BiometricKeyError."""
    kid = sealed_key_id(data)
    if kid is None:
        raise IndexFormatError(
            gettext("The index file is not encrypted (written before encryption at rest): rebuild it.")
        )
    ring = ring or keyring()
    key = ring.key(kid)
    start = len(SEALED_MAGIC) + _KID.size + len(kid.encode())
    try:
        return AESGCM(key).decrypt(data[start : start + NONCE_BYTES], data[start + NONCE_BYTES :], context.encode())
    except InvalidTag:
        raise IndexFormatError(gettext("The index file does not decrypt (corrupt or renamed): rebuild it.")) from None


# A PostgreSQL advisory lock between the writers of new sealed rows (shared) and a key rotation
# (exclusive, once): "ROLL" in ASCII.
SEALING_LOCK = 0x524F4C4C


def sealing_keyring() -> Keyring:
    """The keyring to seal new rows with, for a writer inside the transaction that stores them.

    It holds a shared advisory lock until that transaction ends, so a key rotation's barrier
    (rotation_barrier) waits for every row sealed with a keyring read before the new key arrived:
    such a row is committed, and re-sealed by the rotation, before the old key can be retired."""
    if not connection.in_atomic_block:
        raise RuntimeError("seal new rows inside the transaction that stores them")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [SEALING_LOCK])
    return keyring()


def rotation_barrier() -> None:
    """Wait until every writer that may have sealed rows with an earlier keyring has committed or
    rolled back; writers after it read the keyring as it is now. (SQLite: one writer at a time.)"""
    if connection.vendor == "postgresql":
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEALING_LOCK])


def clear_cache() -> None:
    global _cached
    with _lock:
        _cached = None
