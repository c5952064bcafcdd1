"""Enrolment API and pages: status codes, `{code, message}` errors, the page's content and its form.

Uploads here are checked and queued; processing is the service tests' business (and the worker
test's), so the task is recorded instead of sent.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token

from attendance.enrolment import errors
from attendance.enrolment import services as service
from attendance.enrolment.progress import progress_payload
from attendance.models import FaceEnrolment
from tests.attendance.enrolment_videos import Clips
from tests.attendance.factories_faces import enrol_with_vectors

UPLOAD = "api-enrolment-create"


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    return Clips(tmp_path_factory.mktemp("clips"))


@pytest.fixture
def sent(monkeypatch) -> list[int]:
    """Enrolments handed to the task queue (after commit)."""
    ids: list[int] = []
    monkeypatch.setattr(service, "_schedule", ids.append)
    return ids


def _file(path: Path, name: str | None = None) -> SimpleUploadedFile:
    return SimpleUploadedFile(name or path.name, path.read_bytes(), content_type="video/mp4")


def _post(client, path: Path | None, *, consent: str | None = "true", **extra):
    data: dict = {}
    if path is not None:
        data["video"] = _file(path)
    if consent is not None:
        data["consent"] = consent
    data.update(extra)
    return client.post(reverse(UPLOAD), data)


def test_an_upload_is_accepted_queued_and_its_progress_can_be_polled(
    client, student, clips, sent, django_capture_on_commit_callbacks
):
    client.force_login(student)
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(client, clips.katie_three_s)
    assert response.status_code == 202, response.content
    body = response.json()
    enrolment = FaceEnrolment.objects.get(pk=body["id"])
    assert sent == [enrolment.pk]
    assert body["status"] == "queued" and body["finished"] is False and body["student"] == student.pk
    assert body["status_url"] == reverse("api-enrolment-detail", args=[enrolment.pk]) == response["Location"]
    assert enrolment.consent_given_at is not None and enrolment.created_by == student

    # The worker's progress, as the page sees it.
    FaceEnrolment.objects.filter(pk=enrolment.pk).update(
        status="processing", attempts=1,
        progress=progress_payload("embedding", done=8, total=20, frames_read=32, embedded=8, to_embed=20),
    )
    status = client.get(body["status_url"]).json()
    assert status["stage"] == "embedding" and status["label"] == "Embedding face 8 of 20"
    assert 50 < status["percent"] < 92
    assert status["counters"] == {"frames_read": 32, "embedded": 8, "to_embed": 20}

    FaceEnrolment.objects.filter(pk=enrolment.pk).update(
        status="failed", error_code="no_face", error_message=errors.MESSAGES["no_face"],
        progress=progress_payload("failed"), finished_at=timezone.now(),
    )
    status = client.get(body["status_url"]).json()
    assert status["finished"] is True and status["percent"] == 100
    assert status["error_message"].startswith("No face was visible in most of the video")


def test_an_admin_uploads_on_a_students_behalf_with_a_token(client, student, admin_user, clips, sent):
    token = Token.objects.create(user=admin_user)
    response = client.post(reverse(UPLOAD), {"video": _file(clips.katie_three_s), "consent": "on",
                                             "student": student.pk}, HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 202, response.content
    assert FaceEnrolment.objects.get(pk=response.json()["id"]).student == student


@pytest.mark.parametrize(
    ("case", "status", "code", "words"),
    [
        ("no_consent", 400, "consent_required", "Tick the consent box first"),
        ("no_file", 400, "no_video", "send the file as a multipart field named 'video'"),
        ("empty", 400, "empty_file", "The file is empty (0 bytes)"),
        ("not_a_video", 400, "not_a_video", "not a video this server reads"),
        ("truncated", 400, "truncated", "probably incomplete"),
        ("too_long", 400, "too_long", "the limit is 2 seconds"),
        ("json_body", 400, "not_multipart", "Send the video as multipart/form-data"),
        ("other_student", 403, "forbidden", "You can only enrol your own face"),
        ("no_such_student", 403, "forbidden", "You can only enrol your own face"),
        ("in_progress", 409, "in_progress", "already being processed"),
    ],
)
def test_bad_uploads_get_a_code_and_a_message(client, student, make_user, clips, sent, settings,
                                              case, status, code, words):
    settings.ROLLCALL_ENROLMENT_MAX_SECONDS = 2
    client.force_login(student)
    if case == "in_progress":
        FaceEnrolment.objects.create(student=student, status="processing", consent_given_at=timezone.now(),
                                     started_at=timezone.now(), attempts=1)
    requests = {
        "no_consent": lambda: _post(client, clips.katie_three_s, consent=None),
        "no_file": lambda: _post(client, None),
        "empty": lambda: _post(client, clips.empty),
        "not_a_video": lambda: _post(client, clips.not_a_video),
        "truncated": lambda: _post(client, clips.truncated),
        "too_long": lambda: _post(client, clips.katie_three_s),
        "json_body": lambda: client.post(reverse(UPLOAD), {"consent": True}, content_type="application/json"),
        "other_student": lambda: _post(client, clips.katie_three_s, student=make_user("student").pk),
        "no_such_student": lambda: _post(client, clips.katie_three_s, student=999_999),
        "in_progress": lambda: _post(client, clips.katie_three_s),
    }
    response = requests[case]()
    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert words in response.json()["message"]
    assert sent == []


def test_an_oversized_upload_is_refused_from_its_length_before_the_body_is_parsed(
    client, student, settings, tmp_path, monkeypatch
):
    from django.http import multipartparser

    settings.ROLLCALL_ENROLMENT_MAX_UPLOAD_MB = 1

    def never(self):
        raise AssertionError("the body of an oversized upload was parsed")

    big = tmp_path / "big.webm"
    big.write_bytes(b"\x1a\x45\xdf\xa3" + b"\0" * (1024 * 1024 + 100 * 1024))
    client.force_login(student)
    monkeypatch.setattr(multipartparser.MultiPartParser, "parse", never)
    response = _post(client, big)
    assert response.status_code == 413
    assert response.json() == {"code": "too_large", "message": response.json()["message"]}
    assert "over the 1 MB limit" in response.json()["message"]
    page = client.post(reverse("enrolment"), {"video": _file(big), "consent": "on"})
    assert page.status_code == 413 and "over the 1 MB limit" in page.content.decode()
    assert not FaceEnrolment.objects.exists()


def test_large_uploads_are_streamed_to_disk_not_memory(settings):
    # Under the enrolment limit Django must not refuse a video (DATA_UPLOAD_MAX_MEMORY_SIZE counts only
    # form fields in a multipart body), and above 5 MB it writes the file to disk as it arrives.
    assert settings.FILE_UPLOAD_MAX_MEMORY_SIZE <= 5 * 1024 * 1024
    assert service.max_upload_bytes() > settings.FILE_UPLOAD_MAX_MEMORY_SIZE


def test_anonymous_callers_get_401_and_foreign_enrolments_404(client, student, make_user, lecturer, course):
    response = client.post(reverse(UPLOAD), {})
    assert response.status_code == 401 and response.json()["code"] == "not_authenticated"
    enrolment = FaceEnrolment.objects.create(student=student, status="failed", consent_given_at=timezone.now())
    url = reverse("api-enrolment-detail", args=[enrolment.pk])
    client.force_login(make_user("student"))
    response = client.get(url)
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    client.force_login(lecturer)
    assert client.get(url).status_code == 404
    course.memberships.create(student=student)  # now the lecturer teaches her
    assert client.get(url).status_code == 200


def test_the_schema_documents_the_enrolment_endpoints(client, admin_user):
    client.force_login(admin_user)
    schema = client.get(reverse("api-schema"), HTTP_ACCEPT="application/json").json()
    upload = schema["paths"]["/api/enrolments/"]["post"]
    assert upload["operationId"] == "enrolment_upload"
    assert {"202", "400", "401", "403", "409", "413"} <= set(upload["responses"])
    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert schema["paths"]["/api/enrolments/{id}/"]["get"]["operationId"] == "enrolment_status"


# --- Pages -------------------------------------------------------------------------------------

def test_the_enrol_page_explains_asks_consent_and_links_withdrawal(client, student, course):
    client.force_login(student)
    html = client.get(reverse("enrolment")).content.decode()
    assert "What is stored, and why" in html and "face embeddings" in html
    assert 'name="consent"' in html and 'id="preview"' in html and "guide-oval" in html
    assert "Not enrolled" in html and reverse("withdraw-consent") not in html
    assert 'id="enrol-config"' in html and "js/enrol.js" in html

    enrol_with_vectors(student=student, vectors=_vectors(7), courses=[course])
    html = client.get(reverse("enrolment")).content.decode()
    assert "Ready" in html and "7 face views stored" in html
    assert reverse("withdraw-consent") in html
    home = client.get(reverse("home")).content.decode()
    assert reverse("enrolment") in home and "Re-enrol my face" in home


def _vectors(n: int):
    import numpy as np

    vectors = np.random.default_rng(n).normal(size=(n, 128)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_the_page_shows_the_last_failure_and_an_enrolment_in_progress(client, student):
    FaceEnrolment.objects.create(student=student, status="failed", consent_given_at=timezone.now(),
                                 error_code="too_dark", error_message=errors.MESSAGES["too_dark"])
    client.force_login(student)
    html = client.get(reverse("enrolment")).content.decode()
    assert "The last video was not accepted" in html and "too dark" in html
    FaceEnrolment.objects.create(student=student, status="processing", consent_given_at=timezone.now(),
                                 attempts=1, progress=progress_payload("detecting", done=3, total=16))
    html = client.get(reverse("enrolment")).content.decode()
    assert "Finding faces: frame 3 of 16" in html and "The last video was not accepted" not in html


@pytest.mark.parametrize(
    ("case", "status", "words"),
    [
        ("ok", 302, ""),
        ("no_consent", 400, "Tick the consent box first"),
        ("no_file", 400, "Choose a video file"),
        ("not_a_video", 400, "not a video this server reads"),
    ],
)
def test_the_form_works_without_javascript(client, student, clips, sent, case, status, words):
    client.force_login(student)
    data: dict = {"consent": "on"}
    if case != "no_file":
        data["video"] = _file(clips.not_a_video if case == "not_a_video" else clips.katie_three_s)
    if case == "no_consent":
        data.pop("consent")
    response = client.post(reverse("enrolment"), data)
    assert response.status_code == status
    if words:
        assert words in response.content.decode()
        assert not FaceEnrolment.objects.exists()
    else:
        assert response["Location"] == reverse("enrolment")
        assert FaceEnrolment.objects.get().status == "queued"


def test_an_admin_enrols_a_student_from_their_page(client, admin_user, student, lecturer, clips, sent):
    client.force_login(admin_user)
    url = reverse("student-enrol", args=[student.pk])
    html = client.get(url).content.decode()
    assert f"Enrol {student.display_name}" in html and '"studentId": ' + str(student.pk) in html
    assert url in client.get(reverse("student-report", args=[student.pk])).content.decode()
    response = client.post(url, {"video": _file(clips.katie_three_s), "consent": "on"})
    assert response.status_code == 302
    assert FaceEnrolment.objects.get().created_by == admin_user
    assert client.get(reverse("student-enrol", args=[lecturer.pk])).status_code == 403
    client.force_login(lecturer)
    assert client.get(url).status_code == 403
