"""load_image: each photo becomes bounded RGB uint8, or an ImageError a user can act on."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from recognition import FaceDetector, ImageError, load_image


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_greyscale_photo_comes_back_as_rgb(faces_dir: Path):
    rgb = load_image(faces_dir / "people" / "yale_subject01" / "normal.png")
    assert rgb.dtype == np.uint8
    assert rgb.shape == (243, 320, 3)
    assert (rgb[..., 0] == rgb[..., 1]).all()


def test_bytes_and_paths_decode_the_same(faces_dir: Path):
    path = faces_dir / "group" / "000_5.jpg"
    assert np.array_equal(load_image(path), load_image(path.read_bytes()))


def test_exif_orientation_is_applied():
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[:, :20] = 255  # white left half
    image = Image.fromarray(pixels)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display", as a phone held upright writes
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif.tobytes())
    rgb = load_image(buffer.getvalue())
    assert rgb.shape == (40, 20, 3)
    assert rgb[:10].mean() > 200 and rgb[-10:].mean() < 50  # the white half is now on top


def test_transparency_becomes_white_not_black():
    rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    assert load_image(png_bytes(rgba)).min() == 255


def test_a_text_file_is_not_an_image(tmp_path: Path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a photo\n")
    with pytest.raises(ImageError, match="not an image"):
        load_image(path)


def test_empty_and_missing_files_are_refused(tmp_path: Path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        load_image(tmp_path / "empty.jpg")
    with pytest.raises(ImageError, match="empty"):
        load_image(b"")
    with pytest.raises(ImageError, match="No image file"):
        load_image(tmp_path / "absent.jpg")


def test_a_truncated_jpeg_is_reported_as_damaged(faces_dir: Path):
    data = (faces_dir / "group" / "000_5.jpg").read_bytes()
    with pytest.raises(ImageError, match="damaged or incomplete"):
        load_image(data[: len(data) // 3])


def test_a_one_pixel_image_loads_and_has_no_face(detector: FaceDetector):
    rgb = load_image(png_bytes(Image.new("RGB", (1, 1), (128, 64, 32))))
    assert rgb.shape == (1, 1, 3)
    assert detector.detect(rgb) == []


def test_a_huge_photo_is_downscaled_while_decoding():
    big = Image.new("RGB", (8000, 6000), (90, 120, 150))
    buffer = io.BytesIO()
    big.save(buffer, format="JPEG", quality=50)
    rgb = load_image(buffer.getvalue(), max_side=1920)
    assert rgb.shape == (1440, 1920, 3)


def test_a_decompression_bomb_is_refused_before_decoding():
    # A valid PNG header claiming 30000 x 30000 pixels (900 MP) with almost no data behind it.
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0"))
    with pytest.raises(ImageError, match=r"too large|limit"):
        load_image(data + chunk(b"IEND", b""))


def test_an_all_black_frame_has_no_face(detector: FaceDetector):
    assert detector.detect(np.zeros((480, 640, 3), dtype=np.uint8)) == []


def test_a_cap_on_full_decoding_refuses_a_large_png_but_not_a_jpeg_of_the_same_size():
    image = Image.new("RGB", (3000, 3000), (10, 200, 30))
    jpeg = io.BytesIO()
    image.save(jpeg, format="JPEG")
    png = png_bytes(image)
    with pytest.raises(ImageError, match=r"3000x3000 pixels, more than the 4 MP limit.*JPEG"):
        load_image(png, max_full_decode_pixels=4_000_000)
    assert load_image(jpeg.getvalue(), max_full_decode_pixels=4_000_000).shape == (1920, 1920, 3)
    assert load_image(png).shape == (1920, 1920, 3)  # no cap asked for: decoded, then shrunk
