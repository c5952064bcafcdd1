"""Decoding photos into RGB arrays the detector can use."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError

MAX_IMAGE_PIXELS = 64_000_000
"""Refuse larger images before decoding them: 64 MP is above any phone camera, and a
decompression bomb (a tiny file claiming a huge size) would otherwise eat the server's memory."""

ImageSource = str | os.PathLike[str] | bytes


def load_image(source: ImageSource, *, max_side: int = 1920, max_full_decode_pixels: int | None = None) -> np.ndarray:
    """Decode a photo (path or bytes) to an RGB uint8 array no larger than ``max_side``.

    EXIF orientation is applied (phones store portraits sideways), grey, palette and alpha images
    become RGB (transparency over white), and large images are shrunk while decoding.

    Only JPEG decodes at a reduced scale; any other format is decoded whole before it is shrunk
    (a 7,900 x 7,900 PNG of 139 KB takes 1.56 GB). ``max_full_decode_pixels`` refuses such an image
    above that many pixels: what a server that takes images from strangers passes.
    """
    if max_side < 1:
        raise ValueError("max_side must be positive")
    name = "the uploaded image" if isinstance(source, bytes) else str(source)
    if isinstance(source, bytes):
        if not source:
            raise ImageError("The image is empty (0 bytes): upload the photo again.")
        stream: io.BytesIO | Path = io.BytesIO(source)
    else:
        stream = Path(source)
        if not stream.is_file():
            raise ImageError(f"No image file at {stream}.")
        if stream.stat().st_size == 0:
            raise ImageError(f"{name} is empty (0 bytes): upload the photo again.")
    try:
        # Image.open reads only the header; _decode checks the size before any pixel is decoded.
        with Image.open(stream) as img:
            return _decode(img, name, max_side, max_full_decode_pixels)
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{name} is too large to decode safely ({exc}).") from exc
    except UnidentifiedImageError as exc:
        message = f"{name} is not an image Pillow can read: upload a JPEG or PNG photo."
        raise ImageError(message) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        # Truncated or corrupt data surfaces as OSError (or SyntaxError for some PNGs).
        raise ImageError(f"{name} is damaged or incomplete ({exc}): upload it again.") from exc


def _decode(img: Image.Image, name: str, max_side: int, max_full_decode_pixels: int | None) -> np.ndarray:
    width, height = img.size
    if width < 1 or height < 1:
        raise ImageError(f"{name} has no pixels.")
    limit = MAX_IMAGE_PIXELS
    if img.format != "JPEG" and max_full_decode_pixels is not None:
        limit = min(limit, max_full_decode_pixels)
    if width * height > limit:
        raise ImageError(
            f"{name} is {width}x{height} pixels, more than the {limit / 1_000_000:g} MP "
            "limit: resize it before uploading (or send a JPEG)."
        )
    # JPEG can decode at 1/2, 1/4 or 1/8 scale, so a 48 MP photo never exists in full.
    img.draft("RGB", (max_side, max_side))
    img.load()
    img = ImageOps.exif_transpose(img)
    img = _to_rgb(img)
    if max(img.size) > max_side:
        img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return np.array(img, dtype=np.uint8)


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit and float greys do not convert to 8 bits by clipping; rescale their range.
        arr = np.asarray(img, dtype=np.float64)
        low, high = float(arr.min()), float(arr.max())
        scaled = (arr - low) * (255.0 / (high - low)) if high > low else np.zeros_like(arr)
        img = Image.fromarray(scaled.astype(np.uint8))
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img.convert("RGBA"))
    return img.convert("RGB")
