"""Face embeddings are biometric templates: no copy of the database or the index folder may hold one
readable without the key (issue 22). Real faces, a real pg_dump, the real check-in API."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from attendance.courses import indexes
from attendance.enrolment.services import enrolment_images_create
from attendance.models import AttendanceRecord, FaceEmbedding, FaceEnrolment, User
from attendance.platform import biometric
from attendance.sessions.services import session_open
from recognition import FaceIndex
from tests.attendance.factories_faces import (
    enrol_with_vectors,
    katie_enrolment_vectors,
    katie_probe_jpegs,
    person_images,
)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("fresh_redis")]

HEX_BYTEA = re.compile(rb"\\\\?x([0-9a-f]{16,})")


def _max_cosine(data: bytes, vectors: np.ndarray) -> float:
    """The highest cosine between any of `vectors` and any run of dim float32s in `data`, at every
    byte offset (0-3, so every 4-byte alignment) and in both byte orders."""
    dim = vectors.shape[1]
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    best = -1.0
    for order in ("<f4", ">f4"):
        for offset in range(4):
            count = (len(data) - offset) // 4
            if count < dim:
                continue
            with np.errstate(invalid="ignore", over="ignore"):  # random bytes read as floats: NaNs and huge values
                floats = np.frombuffer(data, dtype=order, count=count, offset=offset).astype(np.float64)
            floats = np.where(np.isfinite(floats) & (np.abs(floats) < 1e6), floats, 0.0)
            windows = np.lib.stride_tricks.sliding_window_view(floats, dim)
            for start in range(0, len(windows), 50_000):
                chunk = windows[start : start + 50_000]
                norms = np.linalg.norm(chunk, axis=1)
                norms[norms == 0] = np.inf
                best = max(best, float(((chunk @ unit.T) / norms[:, None]).max()))
    return best


def _dump_bytes(data: bytes) -> list[bytes]:
    """The dump as written, and every hex-encoded bytea in it decoded (pg_dump writes bytea as \\x...)."""
    return [data, *(bytes.fromhex(m.group(1).decode()) for m in HEX_BYTEA.finditer(data) if len(m.group(1)) % 2 == 0)]


def _pg_dump() -> bytes:
    db = connection.settings_dict
    command = ["pg_dump", "--no-owner", "-h", db["HOST"] or "127.0.0.1", "-p", str(db["PORT"] or 5432),
               "-U", db["USER"] or "postgres", db["NAME"]]
    return subprocess.run(command, check=True, capture_output=True, timeout=120).stdout


def _index_files() -> list[Path]:
    return [p for p in Path(django_settings.ROLLCALL_INDEX_DIR).rglob("*") if p.is_file()]


def _stored_vectors(student: User) -> np.ndarray:
    return np.stack([e.as_array() for e in FaceEmbedding.objects.filter(student=student)])


@pytest.mark.django_db(transaction=True)
def test_no_embedding_can_be_read_from_a_database_dump_or_the_index_files(course, admin_user, make_user):
    student = make_user("student", first_name="John", last_name="Salley")
    course.memberships.create(student=student)
    enrolment_images_create(student=student, images=person_images("john_salley"), by=admin_user, consent=True)
    vectors = _stored_vectors(student)
    assert len(vectors) >= 3 and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    # A control the scanner must find: one row stored the old way, in plaintext, a stranger's vector.
    control = np.random.default_rng(7).standard_normal((1, vectors.shape[1])).astype("<f4")
    control /= np.linalg.norm(control)
    other = make_user("student")
    FaceEmbedding.objects.create(
        enrolment=FaceEnrolment.objects.create(student=other, consent_given_at=timezone.now()),
        student=other, backbone="control", dim=vectors.shape[1], vector=control.tobytes(), key_id="",
    )

    dump = _pg_dump()
    assert b"attendance_faceembedding" in dump
    pieces = _dump_bytes(dump)
    assert max(_max_cosine(piece, control) for piece in pieces) > 0.999, "the scan cannot see a plaintext vector"
    assert max(_max_cosine(piece, vectors) for piece in pieces) < 0.99

    files = _index_files()
    assert files, "the course index was not written"
    for path in files:
        assert _max_cosine(path.read_bytes(), vectors) < 0.99, path
    # The same index unencrypted would give the vectors away: the scan finds them there.
    plain = Path(django_settings.ROLLCALL_INDEX_DIR).parent / "plain.faiss"
    index = FaceIndex(vectors.shape[1], backbone="control")
    index.add(np.arange(len(vectors)), vectors)
    index.save(plain)
    assert _max_cosine(plain.read_bytes(), vectors) > 0.999
    # Big-endian, at an odd offset: found too.
    assert _max_cosine(b"abc" + vectors[:1].astype(">f4").tobytes(), vectors) > 0.999


def _lecturer_client(lecturer: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(lecturer)
    return client


def _restart_processes() -> None:
    # What a restart with another key setting does: nothing decrypted stays in memory.
    indexes.clear_cache()
    biometric.clear_cache()


@pytest.mark.django_db
def test_a_wrong_key_stops_face_check_in_with_a_message_loses_nothing_and_the_right_key_restores_it(
    course, lecturer, make_user, settings
):
    katie = make_user("student", first_name="Katie", last_name="Hill")
    enrol_with_vectors(student=katie, vectors=katie_enrolment_vectors(), courses=[course])
    session = session_open(course=course, by=lecturer)
    AttendanceRecord.objects.create(session=session, student=katie, status="present", method="manual")
    stored = FaceEmbedding.objects.filter(student=katie).count()
    client = _lecturer_client(lecturer)
    url = reverse("api-session-checkin", args=[session.pk])
    probe = katie_probe_jpegs()[0]

    settings.ROLLCALL_BIOMETRIC_KEY = biometric.new_key_text()  # another key
    _restart_processes()
    response = client.post(url, data=probe, content_type="image/jpeg")
    assert response.status_code == 503, response.content
    message = response.json()["detail"]
    # The lecturer reads plain words; the key ids and the setting are for the admin (below) and the log.
    assert message.startswith("Face recognition is stopped on this server right now")
    assert "no face data has been deleted" in message and "ROLLCALL_" not in message and "keyring" not in message
    assert FaceEmbedding.objects.filter(student=katie).count() == stored
    assert FaceEnrolment.objects.get(student=katie).status == "ready"
    # Reports and manual marks do not need the key.
    page = APIClient()
    page.force_login(lecturer)
    assert page.get(reverse("course-report", args=[course.pk])).status_code == 200
    assert page.get(reverse("session-report", args=[session.pk])).status_code == 200
    # The admins' page says what is wrong.
    admin = make_user("admin", is_staff=True, is_superuser=True)
    page.force_login(admin)
    overview = page.get(reverse("biometric-overview"))
    assert overview.status_code == 200 and b"not in the configured keyring" in overview.content
    home = page.get(reverse("home"))
    assert b'id="biometric-key-problem"' in home.content and b"not in the configured keyring" in home.content

    settings.ROLLCALL_BIOMETRIC_KEY = None  # the right key (the key file) back
    _restart_processes()
    response = client.post(url, data=probe, content_type="image/jpeg")
    assert response.status_code == 200, response.content
    (face,) = response.json()["faces"]
    assert face["student_id"] == katie.pk
    page.force_login(admin)
    assert b'id="biometric-key-problem"' not in page.get(reverse("home")).content


@pytest.mark.django_db
def test_no_key_at_all_refuses_enrolment_and_keeps_nothing(make_user, settings, tmp_path, caplog):
    student = make_user("student")
    settings.ROLLCALL_BIOMETRIC_KEY = None
    settings.ROLLCALL_BIOMETRIC_KEY_FILE = tmp_path / "absent.key"
    settings.ROLLCALL_BIOMETRIC_KEY_GENERATE = False
    _restart_processes()
    from attendance.enrolment.errors import EnrolmentUnavailableError

    # The student reads a sentence without setting names; the administrators' detail is in the log.
    with pytest.raises(EnrolmentUnavailableError, match="the key that protects face data is not available") as refused:
        enrolment_images_create(student=student, images=person_images("john_salley"), by=student, consent=True)
    assert "ROLLCALL_BIOMETRIC" not in str(refused.value)
    assert "no biometric encryption key is configured" in caplog.text and "ROLLCALL_BIOMETRIC_KEY" in caplog.text
    assert not FaceEnrolment.objects.filter(student=student).exists()


@pytest.mark.django_db(transaction=True)
def test_the_migration_encrypts_embeddings_stored_in_plaintext_before_it():
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    before = [("attendance", "0004_biometric_protection")]
    executor.migrate(before)
    apps = executor.loader.project_state(before).apps
    old_user = apps.get_model("attendance", "User").objects.create(username="legacy", role="student")
    old_enrolment = apps.get_model("attendance", "FaceEnrolment").objects.create(
        student=old_user, consent_given_at=timezone.now(), status="ready"
    )
    plain = np.random.default_rng(3).standard_normal((5, 128)).astype("<f4")
    plain /= np.linalg.norm(plain, axis=1, keepdims=True)
    apps.get_model("attendance", "FaceEmbedding").objects.bulk_create(
        apps.get_model("attendance", "FaceEmbedding")(
            enrolment=old_enrolment, student=old_user, backbone="dlib", dim=128, vector=v.tobytes(), key_id=""
        )
        for v in plain
    )
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    rows = list(FaceEmbedding.objects.filter(student_id=old_user.pk).order_by("pk"))
    assert {row.key_id for row in rows} == {biometric.keyring().current_id}
    assert all(plain[0].tobytes() not in bytes(row.vector) for row in rows)
    assert np.allclose(np.stack([row.as_array() for row in rows]), plain)
