"""Uploads: judged by decoding, never by name or content type; stored only under names we make;
image bombs and videos that claim too much are refused before they cost memory or minutes."""

from __future__ import annotations

import io
import re
import struct
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from django.core.files.base import ContentFile, File
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

import recognition.video
from attendance.enrolment.errors import EnrolmentError
from attendance.enrolment.services import enrolment_create
from attendance.models import FaceEnrolment
from attendance.privacy.services import checkin_snapshot_store
from recognition import ImageError, VideoTooLargeError, load_image, probe_video
from tests.security.conftest import World
from tests.security.test_access import client_for
from tests.security.test_reader_fuzz import seeds, write_y4m

STORED_VIDEO = re.compile(r"^enrolments/\d+/[0-9a-f]{32}\.[a-z0-9]{1,5}$")


def _png(width: int, height: int, rows: bytes | None = None) -> bytes:
    """A PNG whose header says width x height; its pixel data is `rows` (all black when None)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit grey: the smallest bomb
    if rows is None:
        compressor = zlib.compressobj(9)
        row = b"\x00" * (1 + (width + 7) // 8)
        data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    else:
        data = zlib.compress(rows)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def _post_snapshot(world: World, body: bytes, content_type: str = "image/jpeg"):
    url = reverse("api-session-checkin", args=[world.b.session.pk])  # type: ignore[attr-defined]
    return client_for(world, "kiosk_b").post(url, data=body, content_type=content_type)


# --- Content, not names -------------------------------------------------------------------------

def test_a_check_in_snapshot_is_judged_by_decoding_it(world: World):
    text = _post_snapshot(world, b"<?php system($_GET['c']); ?>", "image/jpeg")
    assert text.status_code == 400 and "not an image" in text.json()["detail"]
    upload = SimpleUploadedFile("face.jpg", b"MZ\x90\x00 a windows program", content_type="image/jpeg")
    form = client_for(world, "kiosk_b").post(
        reverse("api-session-checkin", args=[world.b.session.pk]), {"image": upload}  # type: ignore[attr-defined]
    )
    assert form.status_code == 400
    # The reverse: a real PNG sent as text/plain is still decoded (and finds no face in grey).
    grey = cv2.imencode(".png", np.full((48, 48, 3), 128, np.uint8))[1].tobytes()
    ok = _post_snapshot(world, grey, "text/plain")
    assert ok.status_code == 200 and ok.json()["faces"] == []


@pytest.mark.parametrize(
    ("name", "content_type", "content", "code"),
    [
        ("face.mp4", "video/mp4", "jpeg", "not_a_video"),  # a photo renamed
        ("face.webm", "video/webm", b"#!/bin/sh\nrm -rf /\n", "not_a_video"),  # a script renamed
        ("face.mp4", "video/mp4", b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64, "truncated"),  # the start of one
    ],
)
def test_an_enrolment_video_is_judged_by_decoding_it(world: World, name, content_type, content, code):
    data = seeds()[content] if isinstance(content, str) else content
    client = client_for(world, "student_a")
    before = FaceEnrolment.objects.count()
    response = client.post(reverse("api-enrolment-create"), {
        "consent": "true", "video": SimpleUploadedFile(name, data, content_type=content_type),
    })
    assert response.status_code == 400 and response.json()["code"] == code, response.content
    assert FaceEnrolment.objects.count() == before
    assert not list(Path(world_media(world), "enrolments", str(world.a.student.pk)).glob("*.*"))[1:]  # type: ignore[attr-defined]


def world_media(world: World) -> Path:
    from django.conf import settings

    return Path(settings.MEDIA_ROOT)


def test_a_real_video_under_any_name_and_type_is_accepted(world: World):
    upload = SimpleUploadedFile("notes.txt", seeds()["mp4"], content_type="text/plain")
    response = client_for(world, "student_a").post(reverse("api-enrolment-create"),
                                                   {"consent": "true", "video": upload})
    assert response.status_code == 202, response.content
    stored = FaceEnrolment.objects.get(pk=response.json()["id"]).video.name
    assert STORED_VIDEO.match(stored), stored


# --- Names that try to escape the media folder ---------------------------------------------------

HOSTILE_NAMES = [
    "../../../../etc/cron.d/evil.mp4",
    "/etc/passwd",
    "..\\..\\..\\windows\\evil.mp4",
    "face.mp4\x00.php",
    "..%2f..%2fevil.mp4",
    "\u202egpj.mp4",  # right-to-left override: shows as "4pm.jpg"
    "\uff0e\uff0e\uff0f\uff0e\uff0e\uff0fevil.\uff4d\uff50\uff14",  # fullwidth "../../evil.mp4"
    "face.mp\uff14",  # a fullwidth digit in the extension
    "face." + "a" * 300,
    "con.mp4",
    "",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_an_enrolment_file_name_never_reaches_the_file_system(world: World, name, tmp_path):
    media = world_media(world).resolve()
    before = {p for p in media.parent.rglob("*")} if media.parent != Path("/") else set()
    video = File(io.BytesIO(seeds()["mp4"]), name=name)
    video.size = len(seeds()["mp4"])
    enrolment = enrolment_create(student=world.a.student, video=video, consent=True, by=world.a.student,  # type: ignore[arg-type]
                                 schedule=False)
    stored = enrolment.video.name
    assert STORED_VIDEO.match(stored), f"{name!r} was stored as {stored!r}"
    assert stored.isascii()
    path = Path(enrolment.video.path).resolve()
    assert path.is_relative_to(media / "enrolments" / str(world.a.student.pk))  # type: ignore[attr-defined]
    new = {p for p in media.parent.rglob("*")} - before
    assert all(p.resolve().is_relative_to(media) for p in new), sorted(new)
    enrolment.video.delete(save=False)
    enrolment.delete()


def test_a_check_in_snapshot_is_stored_under_a_name_made_here(world: World, settings):
    settings.ROLLCALL_STORE_SNAPSHOTS = True
    snapshot = checkin_snapshot_store(session=world.a.session, jpeg=seeds()["jpeg"], students=[world.a.student])  # type: ignore[arg-type]
    assert snapshot is not None
    assert re.match(r"^snapshots/\d{4}/\d{2}/\d{2}/[0-9a-f]{32}\.jpg$", snapshot.image.name), snapshot.image.name
    assert Path(snapshot.image.path).resolve().is_relative_to(world_media(world).resolve())
    snapshot.image.delete(save=False)


def test_django_drops_directories_from_uploaded_file_names(world: World):
    """The multipart parser is a first line: the service's own naming (above) does not rely on it."""
    upload = SimpleUploadedFile("../../evil.mp4", seeds()["mp4"], content_type="video/mp4")
    response = client_for(world, "student_a").post(reverse("api-enrolment-create"),
                                                   {"consent": "true", "video": upload})
    assert response.status_code == 202
    assert STORED_VIDEO.match(FaceEnrolment.objects.get(pk=response.json()["id"]).video.name)


# --- Decompression bombs -------------------------------------------------------------------------

def test_pillow_keeps_its_own_decompression_bomb_limit():
    assert Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS <= 2 * 89_478_485


def test_a_decompression_bomb_is_refused_before_it_is_decoded(world: World):
    bomb = _png(20_000, 20_000)  # 400 MP of black in a few hundred KB
    assert len(bomb) < 1_500_000
    started = time.monotonic()
    with pytest.raises(ImageError, match=r"MP limit|too large"):
        load_image(bomb)
    response = _post_snapshot(world, bomb, "image/png")
    assert response.status_code == 400
    assert "resize it" in response.json()["detail"] or "too large" in response.json()["detail"]
    assert time.monotonic() - started < 5


def test_an_image_that_lies_about_its_size_is_refused(world: World):
    liar = _png(60_000, 60_000, rows=b"\x00" * 10)  # the header claims 3.6 GP; the data holds 10 bytes
    response = _post_snapshot(world, liar, "image/png")
    assert response.status_code == 400 and "limit" in response.json()["detail"]


def test_an_image_just_under_the_limit_still_decodes():
    """The control: the limit is about size, not a blanket refusal of large photos."""
    big = Image.new("1", (8000, 7000))
    out = io.BytesIO()
    big.save(out, "PNG")
    assert load_image(out.getvalue(), max_side=500).shape == (438, 500, 3)


# --- Videos that claim too much ------------------------------------------------------------------

def _y4m_claiming(tmp_path: Path, width: int, height: int) -> Path:
    path = write_y4m([np.zeros((16, 16, 3), np.uint8)] * 3, tmp_path / "liar.y4m")
    data = path.read_bytes().replace(b"W16 H16", f"W{width} H{height}".encode(), 1)
    path.write_bytes(data)
    return path


def test_a_video_claiming_a_huge_resolution_is_refused_before_decoding(tmp_path):
    path = _y4m_claiming(tmp_path, 10_000, 6_000)  # 60 MP a frame; the header is all there is
    started = time.monotonic()
    with pytest.raises(VideoTooLargeError, match="claims 10000x6000"):
        probe_video(path)
    assert time.monotonic() - started < 2


def test_an_upload_claiming_a_huge_resolution_gets_a_clear_answer(world: World, tmp_path):
    data = _y4m_claiming(tmp_path, 10_000, 6_000).read_bytes()
    response = client_for(world, "student_a").post(reverse("api-enrolment-create"), {
        "consent": "true", "video": SimpleUploadedFile("face.y4m", data, content_type="video/x-yuv4mpeg"),
    })
    assert response.status_code == 413 and "lower resolution" in response.json()["message"]


REAL_CAPTURE = cv2.VideoCapture


class CountingCapture:
    """Wraps cv2.VideoCapture and counts the frames decoded through it (a subclass of the binding
    crashes: it is not built to be subclassed)."""

    grabbed = 0

    def __init__(self, *args: object) -> None:
        self._capture = REAL_CAPTURE(*args)

    def grab(self) -> bool:
        CountingCapture.grabbed += 1
        return bool(self._capture.grab())

    def __getattr__(self, name: str) -> object:
        return getattr(self._capture, name)


def _long_webm(path: Path, seconds: int, fps: int = 25) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"VP80"), fps, (32, 32))
    assert writer.isOpened()
    for i in range(seconds * fps):
        writer.write(np.full((32, 32, 3), i % 250, np.uint8))
    writer.release()
    return path


def test_a_webm_over_the_length_limit_is_refused_without_decoding_all_of_it(world: World, tmp_path, monkeypatch,
                                                                              settings):
    """A browser's WebM has no frame count in its header, so its frames are counted by decoding them.
    An 80 s upload against a 30 s limit stops being decoded just past 30 s."""
    settings.ROLLCALL_ENROLMENT_MAX_SECONDS = 30
    path = _long_webm(tmp_path / "long.webm", seconds=80)
    monkeypatch.setattr(recognition.video.cv2, "VideoCapture", CountingCapture)
    CountingCapture.grabbed = 0
    video = File(path.open("rb"), name="long.webm")
    with pytest.raises(EnrolmentError) as refused:
        enrolment_create(student=world.a.student, video=video, consent=True, by=world.a.student, schedule=False)  # type: ignore[arg-type]
    video.close()
    assert refused.value.code == "too_long", refused.value.message
    assert "longer than 30 seconds" in refused.value.message
    assert CountingCapture.grabbed <= 31 * 25, f"decoded {CountingCapture.grabbed} of 2000 frames"
    assert not FaceEnrolment.objects.filter(student=world.a.student, status="queued").exists()


def test_a_webm_within_the_limit_is_counted_exactly(tmp_path):
    """The control: the early stop changes nothing for a video within the limit."""
    path = _long_webm(tmp_path / "short.webm", seconds=4)
    assert probe_video(path, max_duration_s=30.5).frame_count == 100
    assert probe_video(path).frame_count == 100


def test_an_mp4_claiming_millions_of_frames_is_refused_from_its_header(world: World, tmp_path):
    data = bytearray(seeds()["mp4"])
    at = data.find(b"stts") + 12  # the first time-to-sample entry's sample count: 10 frames become 2**31 - 1
    data[at : at + 4] = (2**31 - 1).to_bytes(4, "big")
    started = time.monotonic()
    response = client_for(world, "student_a").post(reverse("api-enrolment-create"), {
        "consent": "true", "video": SimpleUploadedFile("face.mp4", bytes(data), content_type="video/mp4"),
    })
    assert response.status_code == 413, response.content
    assert response.json()["code"] == "too_large" and "2147483647 frames" in response.json()["message"]
    assert time.monotonic() - started < 5


def test_content_file_names_are_irrelevant_to_the_checkin_store(world: World, settings):
    settings.ROLLCALL_STORE_SNAPSHOTS = True
    snapshot = checkin_snapshot_store(session=world.a.session, jpeg=ContentFile(b"x").read(), students=[])  # type: ignore[arg-type]
    assert snapshot is not None and snapshot.image.name.endswith(".jpg")
    snapshot.image.delete(save=False)
