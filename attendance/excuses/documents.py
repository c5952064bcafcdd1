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
from django.utils.translation import gettext as _
from PIL import Image, UnidentifiedImageError


class DocumentError(Exception):
    """A document that cannot be accepted; the message says why, for the student."""


@dataclass(frozen=True)
class CheckedDocument:
    content: bytes
    content_type: str
    extension: str




def _image_type(data: bytes) -> str | None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = image.format
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None
    return {"PNG": "image/png", "JPEG": "image/jpeg"}.get(kind or "")


def _too_large() -> str:
    return _("The document is larger than %(limit)s MB; attach a smaller scan or photo.") % {
        "limit": settings.ROLLCALL_EXCUSE_MAX_UPLOAD_MB
    }


def document_check(upload: UploadedFile) -> CheckedDocument:
    limit = settings.ROLLCALL_EXCUSE_MAX_UPLOAD_MB * 1024 * 1024
    if upload.size is None or upload.size > limit:
        raise DocumentError(_too_large())
    data = upload.read(limit + 1)
    if len(data) > limit:  # a size the client under-reported
        raise DocumentError(_too_large())
    if not data:
        raise DocumentError(_("The document is empty; attach a PDF, PNG or JPEG file."))
    if data.startswith(b"%PDF-") and b"%%EOF" in data[-2048:]:
        return CheckedDocument(data, "application/pdf", ".pdf")
    if data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")):
        kind = _image_type(data)
        if kind is not None:
            return CheckedDocument(data, kind, ".png" if kind == "image/png" else ".jpg")
    raise DocumentError(
        _("The document must be a PDF, PNG or JPEG file; this one is not (its content was checked, not its name).")
    )
