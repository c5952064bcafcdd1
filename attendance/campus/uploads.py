"""An uploaded roster kept on the server between its preview and its import.

The file is stored under a random token with its SHA-256, the uploader and the chosen mode; the
preview and the import read the same bytes, and a file that changed on disk in between (or a
token of someone else's upload) is refused rather than imported. Files older than a day are
removed hourly (the `attendance.roster_uploads_prune` beat task) and at the next upload; an import
removes its own.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from attendance.models import User

MAX_AGE_S = 24 * 3600
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{32,64}$")


@dataclass(frozen=True)
class StoredUpload:
    token: str
    data: bytes
    filename: str
    sync: bool
    sha256: str


def folder() -> Path:
    path = Path(settings.MEDIA_ROOT) / "imports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def upload_prune() -> int:
    """Delete the uploads older than a day (a roster holds personal data); returns how many files went."""
    cutoff, removed = time.time() - MAX_AGE_S, 0
    for path in folder().iterdir():
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            pass
    return removed


def upload_store(*, data: bytes, filename: str, sync: bool, by: User) -> str:
    upload_prune()
    where = folder()
    token = secrets.token_urlsafe(32)
    (where / f"{token}.bin").write_bytes(data)
    meta = {"by": by.pk, "filename": filename[:200], "sync": sync, "sha256": hashlib.sha256(data).hexdigest()}
    (where / f"{token}.json").write_text(json.dumps(meta))
    return token


def upload_load(*, token: str, by: User) -> StoredUpload | None:
    """The upload behind `token` if `by` made it and its bytes are the ones uploaded; else None."""
    if not _TOKEN.match(token):
        return None
    where = folder()
    try:
        meta = json.loads((where / f"{token}.json").read_text())
        data = (where / f"{token}.bin").read_bytes()
    except (FileNotFoundError, ValueError):
        return None
    if meta.get("by") != by.pk or hashlib.sha256(data).hexdigest() != meta.get("sha256"):
        return None
    return StoredUpload(token, data, str(meta.get("filename", "")), bool(meta.get("sync")), str(meta["sha256"]))


def upload_discard(*, token: str) -> None:
    """The upload and what its background job kept beside it (campus.import_jobs)."""
    if _TOKEN.match(token):
        for suffix in (".bin", ".json", ".job.json", ".plan.json", ".apply"):
            (folder() / f"{token}{suffix}").unlink(missing_ok=True)
