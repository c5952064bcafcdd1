"""Key rotation (interrupted and resumed), face data retention, the consent text's version and the
access trail (issue 22)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from attendance.courses import indexes
from attendance.courses.services import course_membership_remove
from attendance.enrolment import consent
from attendance.enrolment.errors import EnrolmentError
from attendance.enrolment.services import enrolment_images_create
from attendance.models import AccessEvent, AttendanceRecord, FaceEmbedding, FaceEnrolment, FaceRetention
from attendance.platform import biometric
from attendance.privacy.keys import biometric_key_rotate
from attendance.privacy.retention import face_data_retention_sweep
from attendance.sessions.services import session_open
from tests.attendance.factories_faces import enrol_with_vectors, katie_enrolment_vectors, person_images, person_vectors


class Interrupted(Exception):
    pass


@pytest.fixture
def key_file(settings, tmp_path: Path) -> Path:
    """A key file of this test's own, with one key, as a fresh install has."""
    path = tmp_path / "biometric.key"
    biometric.write_key_file(path, [biometric.key_bytes(biometric.new_key_text())])
    settings.ROLLCALL_BIOMETRIC_KEY = None
    settings.ROLLCALL_BIOMETRIC_KEY_FILE = path
    biometric.clear_cache()
    indexes.clear_cache()
    return path


def _search(course, probes: np.ndarray) -> list[list[tuple[int, float]]]:
    indexes.clear_cache()
    found = indexes.course_index_get(course=course)
    return [[(n.id, round(n.distance, 6)) for n in hits] for hits in found.index.search(probes, 5)]


@pytest.mark.django_db
def test_key_rotation_interrupted_half_way_and_resumed_leaves_everything_under_the_new_key_only(
    key_file, course, make_user
):
    people = ["john_salley", "yale_subject01", "yale_subject02"]
    for person in people:
        enrol_with_vectors(student=make_user("student"), vectors=person_vectors(person), courses=[course])
    probes = np.concatenate([person_vectors(p)[:2] for p in people])
    before = _search(course, probes)
    total = FaceEmbedding.objects.count()
    ((old_id, old_key),) = biometric.keyring().keys.items()

    def stop_half_way(done: int) -> None:
        if done >= total // 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        biometric_key_rotate(by_label="test", batch=4, after_batch=stop_half_way)
    ring = biometric.keyring()
    assert len(ring.keys) == 2 and old_id in ring.keys  # the old key still opens the rest
    new_id = ring.current_id
    mixed = set(FaceEmbedding.objects.values_list("key_id", flat=True))
    assert mixed == {old_id, new_id}, "the interruption was not half-way"
    assert _search(course, probes) == before  # service goes on during the rotation

    result = biometric_key_rotate(by_label="test", batch=4)
    assert result.new_key_id == new_id and result.retired_key_ids == [old_id]
    assert set(FaceEmbedding.objects.values_list("key_id", flat=True)) == {new_id}
    assert list(biometric.keyring().keys) == [new_id]  # retired from the key file
    for row in FaceEmbedding.objects.all():
        assert np.isclose(np.linalg.norm(row.as_array()), 1.0, atol=1e-3)
    files = list(Path(indexes.course_index_path(course_id=course.pk)).parent.glob("*.faiss"))
    assert files and all(biometric.sealed_key_id(p.read_bytes()) == new_id for p in files)
    assert _search(course, probes) == before

    # The old key opens nothing any more, under its own id or the new one.
    for ring in (biometric.Keyring({old_id: old_key}, "old", None), biometric.Keyring({new_id: old_key}, "old", None)):
        for row in FaceEmbedding.objects.all()[:3]:
            with pytest.raises(biometric.BiometricKeyError):
                biometric.vector_decrypt(bytes(row.vector), key_id=row.key_id, student_id=row.student_id,
                                         backbone=row.backbone, dim=row.dim, ring=ring)
    assert AccessEvent.objects.filter(kind=AccessEvent.Kind.KEY_ROTATION).count() == 1


@pytest.mark.django_db
def test_face_data_of_a_student_on_no_course_is_deleted_after_the_period_and_only_then(
    course, lecturer, make_user, settings
):
    settings.ROLLCALL_BIOMETRIC_RETENTION_DAYS = 30
    settings.ROLLCALL_BIOMETRIC_NOTICE_DAYS = 7
    leaver = make_user("student", email="leaver@example.edu")
    stayer = make_user("student")
    enrol_with_vectors(student=leaver, vectors=katie_enrolment_vectors(), courses=[course])
    enrol_with_vectors(student=stayer, vectors=person_vectors("john_salley"), courses=[course])
    session = session_open(course=course, by=lecturer)
    AttendanceRecord.objects.create(session=session, student=leaver, status="present", method="face")
    course_membership_remove(course=course, student=leaver)
    left_at = timezone.now()

    def sweep(days: float):
        return face_data_retention_sweep(now=left_at + timedelta(days=days))

    assert sweep(0).clocks_started == 1
    assert sweep(22).notices_sent == 0 and not mail.outbox  # 23 days before: no notice yet
    assert sweep(23.1).notices_sent == 1
    assert sweep(23.2).notices_sent == 0 and len(mail.outbox) == 1
    (notice,) = mail.outbox
    assert notice.to == ["leaver@example.edu"] and "will be deleted" in notice.body
    assert sweep(29.9).students_deleted == 0
    assert FaceEmbedding.objects.filter(student=leaver).exists()

    assert sweep(30.1).students_deleted == 1
    assert not FaceEmbedding.objects.filter(student=leaver).exists()
    assert FaceEnrolment.objects.get(student=leaver).status == "withdrawn"
    assert FaceEmbedding.objects.filter(student=stayer).exists()  # on a course: untouched
    assert AttendanceRecord.objects.filter(student=leaver).count() == 1  # history stays
    assert not FaceRetention.objects.exists()
    assert len(mail.outbox) == 1
    assert AccessEvent.objects.filter(kind=AccessEvent.Kind.RETENTION_DELETION, subject=leaver).count() == 1
    # The course index no longer holds them.
    indexes.clear_cache()
    assert set(indexes.course_index_get(course=course).student_of.values()) == {stayer.pk}


@pytest.mark.django_db
def test_joining_a_course_again_stops_the_retention_clock(course, make_user, settings):
    settings.ROLLCALL_BIOMETRIC_RETENTION_DAYS = 30
    student = make_user("student")
    enrol_with_vectors(student=student, vectors=person_vectors("john_salley"), courses=[])
    now = timezone.now()
    face_data_retention_sweep(now=now)
    assert FaceRetention.objects.filter(student=student).exists()
    course.memberships.create(student=student)
    face_data_retention_sweep(now=now + timedelta(days=40))
    assert not FaceRetention.objects.exists() and FaceEmbedding.objects.filter(student=student).exists()


@pytest.mark.django_db
def test_the_consent_version_is_stored_and_a_changed_text_asks_for_consent_again(
    make_user, admin_user, monkeypatch, client
):
    student = make_user("student")
    images = person_images("john_salley")
    enrolment = enrolment_images_create(student=student, images=images, by=admin_user, consent=True)
    assert enrolment.consent_version == consent.consent_version() and len(enrolment.consent_version) == 12
    client.force_login(student)
    page = client.get(reverse("enrolment"))
    assert page.status_code == 200
    assert b"biometric data" in page.content and b"a face cannot be rebuilt" not in page.content
    assert b'id="consent-changed"' not in page.content
    assert f'value="{enrolment.consent_version}"'.encode() in page.content

    old = enrolment.consent_version
    monkeypatch.setattr(consent, "consent_version", lambda: "changed-text")
    page = client.get(reverse("enrolment"))
    assert b'id="consent-changed"' in page.content  # the page says the text changed
    from django.core.files.uploadedfile import SimpleUploadedFile

    video = SimpleUploadedFile("clip.mp4", b"x" * 100, content_type="video/mp4")
    from attendance.enrolment.services import enrolment_create

    with pytest.raises(EnrolmentError) as refused:
        enrolment_create(student=student, video=video, consent=True, by=student, consent_version=old)
    assert refused.value.code == "consent_outdated"
    again = enrolment_images_create(student=student, images=images, by=student, consent=True)
    assert again.consent_version == "changed-text"

    # Consent given to the last version that hashed the template's source is consent to today's words.
    monkeypatch.undo()
    FaceEnrolment.objects.filter(pk=again.pk).update(consent_version="0aa19237db14")
    assert b'id="consent-changed"' not in client.get(reverse("enrolment")).content
    FaceEnrolment.objects.filter(pk=again.pk).update(consent_version="0123456789ab")
    assert b'id="consent-changed"' in client.get(reverse("enrolment")).content


def test_the_consent_version_follows_the_words_not_the_template_source(settings, tmp_path):
    """Reindenting or marking the text for translation keeps the version; a changed word does not."""
    folder = tmp_path / "enrolment"
    folder.mkdir()
    templates = settings.TEMPLATES
    settings.TEMPLATES = [{**templates[0], "DIRS": [tmp_path, *templates[0]["DIRS"]]}]

    def version(source: str) -> str:
        (folder / "_consent_text.html").write_text(source)
        from django.template import engines

        engines._engines.clear()  # the engine caches loaded templates
        engines.__dict__.pop("templates", None)
        consent.clear_cache()
        return consent.consent_version()

    try:
        plain = version("<p>We keep your face for {{ retention_days }} days.</p>")
        assert version("<p>\n  We keep your face\n  for {{ retention_days }} days.\n</p>") == plain
        assert version("{% load i18n %}<p>{% blocktranslate %}We keep your face for {{ retention_days }} days."
                       "{% endblocktranslate %}</p>") == plain
        assert version("<p>We keep your face for {{ retention_days }} weeks.</p>") != plain
    finally:
        settings.TEMPLATES = templates  # the real templates again (the engines are reset) before the
        consent.clear_cache()  # version is read again, here or in a later test
    # The last version defined as a hash of the source: its words are today's, so its consent holds.
    assert not consent.consent_outdated("0aa19237db14")
    assert consent.consent_outdated("0123456789ab")


@pytest.mark.django_db
def test_with_check_in_pictures_kept_the_consent_says_so_and_earlier_consent_is_asked_again(
    make_user, admin_user, client, settings
):
    student = make_user("student")
    enrolment = enrolment_images_create(student=student, images=person_images("john_salley"), by=admin_user,
                                        consent=True)
    client.force_login(student)
    page = client.get(reverse("enrolment")).content.decode()
    assert "Check-in pictures" not in page and 'id="consent-changed"' not in page

    settings.ROLLCALL_STORE_SNAPSHOTS, settings.ROLLCALL_SNAPSHOT_RETENTION_DAYS = True, 9
    page = client.get(reverse("enrolment")).content.decode()
    assert "A picture in which you were recognised is kept for 9 days" in page
    croatian = client.get(reverse("enrolment"), HTTP_ACCEPT_LANGUAGE="hr").content.decode()
    assert "Slika na kojoj ste prepoznati čuva se 9 dana" in croatian
    # She consented to a text that said nothing of pictures: asked again (her next video needs it).
    assert 'id="consent-changed"' in page and consent.consent_outdated(enrolment.consent_version)
    settings.ROLLCALL_SNAPSHOT_RETENTION_DAYS = 30
    again = enrolment_images_create(student=student, images=person_images("john_salley"), by=student, consent=True)
    assert not consent.consent_outdated(again.consent_version)
    settings.ROLLCALL_SNAPSHOT_RETENTION_DAYS = 90  # a longer period is another text
    assert consent.consent_outdated(again.consent_version)
    settings.ROLLCALL_SNAPSHOT_RETENTION_DAYS = 30
    # Consent to a version from before the pictures' sentence existed holds only while none are kept.
    enrolment = again
    for earlier in consent.SAME_TEXT:
        FaceEnrolment.objects.filter(pk=enrolment.pk).update(consent_version=earlier)
        assert 'id="consent-changed"' in client.get(reverse("enrolment")).content.decode()
        assert consent.consent_outdated(earlier)
        settings.ROLLCALL_STORE_SNAPSHOTS = False
        assert not consent.consent_outdated(earlier)
        assert 'id="consent-changed"' not in client.get(reverse("enrolment")).content.decode()
        settings.ROLLCALL_STORE_SNAPSHOTS = True


def test_the_consent_checkbox_label_is_part_of_the_consent_version(monkeypatch):
    today = consent.consent_version()
    try:
        monkeypatch.setattr(consent, "CONSENT_LABEL_TEMPLATE", "enrolment/_consent_text.html")  # other words
        consent.clear_cache()
        assert consent.consent_version() != today
    finally:
        monkeypatch.undo()
        consent.clear_cache()
    assert consent.consent_version() == today


def test_exports_and_enrolments_on_a_students_behalf_are_in_the_access_trail(make_user, admin_user, client):
    student = make_user("student")
    enrolment_images_create(student=student, images=person_images("john_salley"), by=admin_user, consent=True)
    enrolment_images_create(student=student, images=person_images("john_salley"), by=student, consent=True)
    client.force_login(admin_user)
    assert client.get(reverse("student-data-export", args=[student.pk])).status_code == 200
    client.force_login(student)
    assert client.get(reverse("my-data-export")).status_code == 200
    kinds = list(AccessEvent.objects.filter(subject=student).order_by("at", "pk").values_list("kind", "actor"))
    assert kinds == [
        ("enrolment_on_behalf", admin_user.pk), ("export", admin_user.pk), ("export", student.pk)
    ]
    client.force_login(admin_user)
    page = client.get(reverse("biometric-overview"))
    assert page.status_code == 200 and b"Data export" in page.content
    client.force_login(student)
    assert client.get(reverse("biometric-overview")).status_code == 403


@pytest.mark.django_db
def test_a_student_without_an_email_address_is_deleted_at_the_end_of_the_period_without_a_notice(
    make_user, settings
):
    settings.ROLLCALL_BIOMETRIC_RETENTION_DAYS = 30
    student = make_user("student", email="")
    enrol_with_vectors(student=student, vectors=person_vectors("john_salley"), courses=[])
    now = timezone.now()
    face_data_retention_sweep(now=now)
    assert face_data_retention_sweep(now=now + timedelta(days=29)).students_deleted == 0
    assert face_data_retention_sweep(now=now + timedelta(days=30.01)).students_deleted == 1
    assert not mail.outbox and not FaceEmbedding.objects.filter(student=student).exists()


@pytest.mark.django_db
def test_without_the_key_a_queued_video_waits_for_it_instead_of_failing(make_user, settings, tmp_path):
    from django.core.files.base import ContentFile

    from attendance.enrolment.processing import enrolment_video_process

    student = make_user("student")
    enrolment = FaceEnrolment.objects.create(student=student, consent_given_at=timezone.now(), status="queued")
    enrolment.video.save("clip.mp4", ContentFile(b"video bytes"), save=True)
    settings.ROLLCALL_BIOMETRIC_KEY = None
    settings.ROLLCALL_BIOMETRIC_KEY_FILE = tmp_path / "absent.key"
    settings.ROLLCALL_BIOMETRIC_KEY_GENERATE = False
    assert enrolment_video_process(enrolment_id=enrolment.pk) is None
    enrolment.refresh_from_db()
    assert (enrolment.status, enrolment.attempts) == ("queued", 0)
    assert enrolment.video.storage.exists(enrolment.video.name)


@pytest.mark.django_db
def test_the_rotate_command_explains_how_to_rotate_a_key_given_in_the_setting(settings):
    from django.core.management import CommandError, call_command

    settings.ROLLCALL_BIOMETRIC_KEY = biometric.new_key_text()
    with pytest.raises(CommandError, match="Put a new key in front of the old one"):
        call_command("rotate_biometric_key")
    assert not AccessEvent.objects.exists()


@pytest.mark.django_db
def test_the_rotate_command_rotates_a_key_file_and_says_so(key_file, capsys):
    from django.core.management import call_command

    (old_id,) = biometric.keyring().keys
    call_command("rotate_biometric_key")
    (new_id,) = biometric.keyring().keys
    assert new_id != old_id
    out = capsys.readouterr().out
    assert f"under key {new_id}" in out and f"Retired key(s) {old_id}" in out
    assert AccessEvent.objects.get(kind=AccessEvent.Kind.KEY_ROTATION).actor_label.startswith("manage.py")


@pytest.mark.django_db
def test_a_row_sealed_with_the_old_key_while_the_rotation_rebuilds_is_sealed_again_before_the_key_goes(
    key_file, course, make_user, monkeypatch
):
    """A worker that read the keyring before the rotation began commits its enrolment late."""
    from attendance.privacy import keys

    student = make_user("student")
    enrolment = enrol_with_vectors(student=student, vectors=person_vectors("john_salley"), courses=[course])
    ((old_id, old_key),) = biometric.keyring().keys.items()
    old_ring = biometric.Keyring({old_id: old_key}, old_id, None)
    real_rebuild = keys.course_index_rebuild
    late: list[int] = []

    def rebuild_while_a_late_writer_commits(*, course):
        if not late:
            row = FaceEmbedding.objects.filter(student=student).first()
            key_id, sealed = biometric.vector_encrypt(row.as_array(), student_id=student.pk, backbone=row.backbone,
                                                      ring=old_ring)
            late.append(FaceEmbedding.objects.create(enrolment=enrolment, student=student, backbone=row.backbone,
                                                     dim=row.dim, vector=sealed, key_id=key_id).pk)
        return real_rebuild(course=course)

    monkeypatch.setattr(keys, "course_index_rebuild", rebuild_while_a_late_writer_commits)
    result = biometric_key_rotate(by_label="test")
    assert late and list(biometric.keyring().keys) == [result.new_key_id]
    row = FaceEmbedding.objects.get(pk=late[0])
    assert row.key_id == result.new_key_id and np.isclose(np.linalg.norm(row.as_array()), 1.0, atol=1e-3)


@pytest.mark.django_db
def test_a_former_student_made_a_lecturer_gets_a_retention_clock_too(course, make_user, settings):
    """Their face data serves nothing and they can no longer withdraw it: the period deletes it."""
    from attendance.models import User

    settings.ROLLCALL_BIOMETRIC_RETENTION_DAYS = 30
    settings.ROLLCALL_BIOMETRIC_NOTICE_DAYS = 0
    former = make_user("student")
    enrol_with_vectors(student=former, vectors=person_vectors("john_salley"), courses=[course])
    course_membership_remove(course=course, student=former)
    User.objects.filter(pk=former.pk).update(role=User.Role.LECTURER)  # before the next hourly sweep
    now = timezone.now()
    assert face_data_retention_sweep(now=now).clocks_started == 1
    assert face_data_retention_sweep(now=now + timedelta(days=30.1)).students_deleted == 1
    assert not FaceEmbedding.objects.filter(student=former).exists()


@pytest.mark.django_db(transaction=True)
def test_the_rotation_waits_for_a_writer_that_sealed_with_the_old_key_before_retiring_it(key_file, make_user):
    """A worker storing an enrolment read the keyring (old key in front) and commits only after the
    rotation would otherwise have finished: the rotation waits for it at its barrier."""
    import threading
    import time

    from django.db import connection, transaction

    student = make_user("student")
    enrolment = FaceEnrolment.objects.create(student=student, status="ready", consent_given_at=timezone.now(),
                                             backbone="dlib")
    vector = person_vectors("john_salley")[0]
    ((old_id, _),) = biometric.keyring().keys.items()
    with pytest.raises(RuntimeError, match="inside the transaction"):
        biometric.sealing_keyring()  # in autocommit the shared lock would end with its statement
    sealed_old, release = threading.Event(), threading.Event()
    written: list[int] = []
    rotated: list[object] = []

    def writer() -> None:
        try:
            with transaction.atomic():
                ring = biometric.sealing_keyring()
                key_id, sealed = biometric.vector_encrypt(vector, student_id=student.pk, backbone="dlib", ring=ring)
                assert key_id == old_id
                written.append(FaceEmbedding.objects.create(enrolment=enrolment, student=student, backbone="dlib",
                                                            dim=len(vector), vector=sealed, key_id=key_id).pk)
                sealed_old.set()
                release.wait(30)
        finally:
            connection.close()

    def rotate() -> None:
        try:
            rotated.append(biometric_key_rotate(by_label="test"))
        finally:
            connection.close()

    first = threading.Thread(target=writer)
    first.start()
    assert sealed_old.wait(30)
    rotation = threading.Thread(target=rotate)
    rotation.start()
    time.sleep(1.0)
    assert rotation.is_alive()  # at the barrier, behind the writer's transaction
    release.set()
    first.join(30)
    rotation.join(60)
    assert rotated, "the rotation did not finish"
    (new_id,) = biometric.keyring().keys
    row = FaceEmbedding.objects.get(pk=written[0])
    assert new_id != old_id and row.key_id == new_id
    assert np.allclose(row.as_array(), vector, atol=1e-6)

