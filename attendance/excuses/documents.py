"""The document beside an excuse (a doctor's note): its size and its type, judged by its content.

The name and the browser's Content-Type are the sender's words; the bytes are not. A PDF must
start like one and end like one; an image must decode (Pillow verifies it), so an HTML or script
file renamed note.pdf is refused, and the stored name is ours, with the extension of the real type.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from PIL import Image, UnidentifiedImageError


class DocumentError(Exception):
    """A document that cannot be accepted; the message says why, for the student."""


@dataclass(frozen=True)
class CheckedDocument:
    content: bytes
    content_type: str
    extension: str


ACCEPTED = "a PDF, PNG or JPEG file"


def _image_type(data: bytes) -> str | None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = image.format
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None
    return {"PNG": "image/png", "JPEG": "image/jpeg"}.get(kind or "")


def document_check(upload: UploadedFile) -> CheckedDocument:
    limit = settings.ROLLCALL_EXCUSE_MAX_UPLOAD_MB * 1024 * 1024
    if upload.size is None or upload.size > limit:
        raise DocumentError(
            f"The document is larger than {settings.ROLLCALL_EXCUSE_MAX_UPLOAD_MB} MB; attach a smaller scan or photo."
        )
    data = upload.read(limit + 1)
    if len(data) > limit:  # a size the client under-reported
        raise DocumentError(
            f"The document is larger than {settings.ROLLCALL_EXCUSE_MAX_UPLOAD_MB} MB; attach a smaller scan or photo."
        )
    if not data:
        raise DocumentError("The document is empty; attach " + ACCEPTED + ".")
    if data.startswith(b"%PDF-") and b"%%EOF" in data[-2048:]:
        return CheckedDocument(data, "application/pdf", ".pdf")
    if data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")):
        kind = _image_type(data)
        if kind is not None:
            return CheckedDocument(data, kind, ".png" if kind == "image/png" else ".jpg")
    raise DocumentError(f"The document must be {ACCEPTED}; this one is not (its content was checked, not its name).")
