"""Excuses: a student asks (reason, optional document checked by content), the course's lecturer
decides, the record becomes excused, every step is in the audit trail, and only the right people act."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from attendance.excuses.services import ExcuseError, ExcusePermissionError, excuse_decide, excuse_request
from attendance.models import AttendanceChange, AttendanceRecord, CourseMembership, Excuse
from attendance.sessions.records import attendance_record_set
from attendance.sessions.services import session_close, session_open

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def absence(course, lecturer, student):
    CourseMembership.objects.create(course=course, student=student)
    session = session_open(course=course, by=lecturer, title="Week 3")
    session_close(session=session, by=lecturer)
    return AttendanceRecord.objects.get(session=session, student=student)


def _trail(record) -> list[tuple[str, str, str]]:
    return [(c.old_status, c.new_status, c.reason) for c in record.changes.order_by("changed_at", "pk")]


def test_an_approved_excuse_makes_the_absence_excused_and_every_step_is_audited(absence, student, lecturer):
    document = SimpleUploadedFile("note.pdf", PDF, content_type="application/pdf")
    excuse = excuse_request(record=absence, by=student, reason="Flu, doctor's note attached", document=document)
    assert excuse.status == Excuse.Status.PENDING and excuse.document_type == "application/pdf"
    assert excuse.document.name.endswith(".pdf") and "note" not in excuse.document.name
    assert excuse.document.read() == PDF
    excuse_decide(excuse=excuse, by=lecturer, approve=True, note="Get well")
    absence.refresh_from_db()
    excuse.refresh_from_db()
    assert absence.status == AttendanceRecord.Status.EXCUSED and absence.method == AttendanceRecord.Method.MANUAL
    assert excuse.status == Excuse.Status.APPROVED and excuse.decided_by == lecturer and excuse.note == "Get well"
    assert _trail(absence) == [
        ("absent", "absent", "Excuse requested: Flu, doctor's note attached"),
        ("absent", "excused", "Excuse approved: Get well"),
    ]
    assert [c.changed_by for c in absence.changes.order_by("changed_at", "pk")] == [student, lecturer]


def test_a_declined_excuse_leaves_the_mark_and_can_be_asked_again(absence, student, lecturer):
    excuse = excuse_request(record=absence, by=student, reason="Bus was late")
    with pytest.raises(ExcuseError, match="already asked"):
        excuse_request(record=absence, by=student, reason="Again")
    excuse_decide(excuse=excuse, by=lecturer, approve=False, note="Not a reason")
    absence.refresh_from_db()
    assert absence.status == "absent"
    assert _trail(absence)[-1] == ("absent", "absent", "Excuse declined: Not a reason")
    with pytest.raises(ExcuseError, match="already declined"):
        excuse_decide(excuse=excuse, by=lecturer, approve=True)
    second = excuse_request(
        record=absence,
        by=student,
        reason="Here is the note",
        document=SimpleUploadedFile("scan.png", _png(), content_type="image/png"),
    )
    assert second.document_type == "image/png" and second.document.name.endswith(".png")


def test_a_late_mark_can_be_excused_but_not_a_present_one(course, lecturer, student, absence):
    late = attendance_record_set(session=absence.session, student=student, status="late", by=lecturer)
    excuse_decide(excuse=excuse_request(record=late, by=student, reason="Train"), by=lecturer, approve=True)
    assert AttendanceRecord.objects.get(pk=late.pk).status == "excused"
    present = attendance_record_set(session=absence.session, student=student, status="present", by=lecturer)
    with pytest.raises(ExcuseError, match="this one is present"):
        excuse_request(record=present, by=student, reason="?")


def test_a_record_changed_after_the_request_is_not_excused_silently(absence, student, lecturer):
    excuse = excuse_request(record=absence, by=student, reason="Ill")
    attendance_record_set(session=absence.session, student=student, status="present", by=lecturer)
    with pytest.raises(ExcuseError, match="changed to present since"):
        excuse_decide(excuse=excuse, by=lecturer, approve=True)
    assert Excuse.objects.get(pk=excuse.pk).status == Excuse.Status.PENDING


@pytest.mark.parametrize(
    "name, data, content_type, message",
    [
        ("note.pdf", b"<html><script>alert(1)</script></html>", "application/pdf", "must be a PDF, PNG or JPEG"),
        ("photo.png", b"\x89PNG\r\n\x1a\n" + b"garbage" * 20, "image/png", "must be a PDF, PNG or JPEG"),
        ("note.pdf", b"%PDF-1.4 but cut off", "application/pdf", "must be a PDF, PNG or JPEG"),
        ("empty.pdf", b"", "application/pdf", "empty"),
    ],
)
def test_a_document_is_judged_by_its_content_not_its_name(absence, student, name, data, content_type, message):
    with pytest.raises(ExcuseError, match=message):
        excuse_request(record=absence, by=student, reason="Ill", document=SimpleUploadedFile(name, data, content_type))
    assert not Excuse.objects.exists() and not AttendanceChange.objects.filter(record=absence).exists()


def test_a_document_over_the_size_limit_is_refused_in_megabytes(absence, student, settings):
    settings.ROLLCALL_EXCUSE_MAX_UPLOAD_MB = 1
    big = PDF[:-7] + b"0" * (1024 * 1024) + b"\n%%EOF\n"
    with pytest.raises(ExcuseError, match="larger than 1 MB"):
        excuse_request(record=absence, by=student, reason="Ill", document=SimpleUploadedFile("n.pdf", big))
    assert not Excuse.objects.exists()


def test_only_the_student_asks_and_only_the_courses_lecturer_decides(absence, student, lecturer, make_user, client):
    other_student, other_lecturer = make_user("student"), make_user("lecturer")
    with pytest.raises(ExcusePermissionError):
        excuse_request(record=absence, by=other_student, reason="Not mine")
    with pytest.raises(ExcusePermissionError):
        excuse_request(record=absence, by=lecturer, reason="On their behalf")
    excuse = excuse_request(record=absence, by=student, reason="Ill")
    for intruder in (other_lecturer, student, other_student):
        with pytest.raises(ExcusePermissionError):
            excuse_decide(excuse=excuse, by=intruder, approve=True)
    # The same through the pages: 404, nothing told, nothing changed.
    for intruder in (other_student, other_lecturer):
        client.force_login(intruder)
        assert client.get(reverse("excuse-request", args=[absence.pk])).status_code == 404
        assert client.post(reverse("excuse-decide", args=[excuse.pk]), {"decision": "approve"}).status_code == 404
        assert client.get(reverse("excuse-document", args=[excuse.pk])).status_code == 404
        assert str(excuse.reason) not in client.get(reverse("excuse-inbox")).content.decode()
    client.force_login(student)
    assert client.post(reverse("excuse-decide", args=[excuse.pk]), {"decision": "approve"}).status_code == 404
    assert Excuse.objects.get(pk=excuse.pk).status == Excuse.Status.PENDING
    assert AttendanceRecord.objects.get(pk=absence.pk).status == "absent"


def test_both_sides_see_the_state_on_their_pages(absence, student, lecturer, client):
    client.force_login(student)
    page = client.get(reverse("my-attendance")).content.decode()
    assert reverse("excuse-request", args=[absence.pk]) in page
    upload = SimpleUploadedFile("letter.exe", PDF, content_type="application/x-msdownload")  # a PDF, whatever its name
    response = client.post(reverse("excuse-request", args=[absence.pk]), {"reason": "Funeral", "document": upload})
    assert response.status_code == 302
    assert "Waiting for the lecturer" in client.get(reverse("my-attendance")).content.decode()
    bad = client.post(reverse("excuse-request", args=[absence.pk]), {"reason": ""})
    assert bad.status_code == 400 and "Say why you were absent or late." in bad.content.decode()

    excuse = Excuse.objects.get()
    client.force_login(lecturer)
    inbox = client.get(reverse("excuse-inbox")).content.decode()
    assert "Funeral" in inbox and reverse("excuse-decide", args=[excuse.pk]) in inbox
    document = client.get(reverse("excuse-document", args=[excuse.pk]))
    assert document["Content-Type"] == "application/pdf" and b"".join(document.streaming_content) == PDF
    assert document["X-Content-Type-Options"] == "nosniff" and ".exe" not in document["Content-Disposition"]
    client.post(reverse("excuse-decide", args=[excuse.pk]), {"decision": "approve", "note": "Sorry for your loss"})
    client.force_login(student)
    page = client.get(reverse("my-attendance")).content.decode()
    assert "Approved" in page and "Sorry for your loss" in page and "badge-excused" in page


def test_the_admin_lists_excuses_series_and_feeds_without_the_feed_token(absence, student, lecturer, admin_user,
                                                                          client, course):
    from attendance.feeds.services import feed_get_or_create

    excuse = excuse_request(record=absence, by=student, reason="Ill")
    feed = feed_get_or_create(owner=lecturer, course=course)
    client.force_login(admin_user)
    for name in ("excuse", "timetableseries", "calendarfeed"):
        assert client.get(reverse(f"admin:attendance_{name}_changelist")).status_code == 200
    assert client.get(reverse("admin:attendance_excuse_change", args=[excuse.pk])).status_code == 200
    page = client.get(reverse("admin:attendance_calendarfeed_change", args=[feed.pk]))
    assert page.status_code == 200 and feed.token not in page.content.decode()


def test_a_students_data_export_lists_their_excuses(absence, student, lecturer, client):
    excuse = excuse_request(record=absence, by=student, reason="Dentist", document=SimpleUploadedFile("a.pdf", PDF))
    excuse_decide(excuse=excuse, by=lecturer, approve=False, note="Book it after class")
    client.force_login(student)
    exported = client.get(reverse("my-data-export")).json()["excuses"]
    assert [(e["reason"], e["state"], e["note"], e["document_stored"]) for e in exported] == [
        ("Dentist", "declined", "Book it after class", "application/pdf")
    ]


def test_the_api_files_lists_and_decides_excuses_with_the_same_rules(absence, student, lecturer, make_user):
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(student)
    bad = api.post(reverse("api-record-excuse", args=[absence.pk]),
                   {"reason": "Ill", "document": SimpleUploadedFile("n.pdf", b"MZ not a pdf")}, format="multipart")
    assert bad.status_code == 400 and "must be a PDF, PNG or JPEG" in bad.json()["detail"]
    made = api.post(reverse("api-record-excuse", args=[absence.pk]),
                    {"reason": "Ill", "document": SimpleUploadedFile("n.pdf", PDF)}, format="multipart")
    assert made.status_code == 201, made.content
    body = made.json()
    assert body["status"] == "pending" and body["has_document"] and body["record_status"] == "absent"
    assert api.post(reverse("api-excuse-decide", args=[body["id"]]), {"decision": "approve"},
                    format="json").status_code == 404  # not the student's to decide
    api.force_authenticate(make_user("lecturer"))
    assert api.get(reverse("api-excuse-list")).json() == []
    api.force_authenticate(lecturer)
    assert [e["id"] for e in api.get(reverse("api-excuse-list"), {"status": "pending"}).json()] == [body["id"]]
    assert api.get(reverse("api-excuse-list"), {"status": "maybe"}).status_code == 400
    decided = api.post(reverse("api-excuse-decide", args=[body["id"]]), {"decision": "approve", "note": "ok"},
                       format="json")
    assert decided.status_code == 200 and decided.json()["status"] == "approved"
    again = api.post(reverse("api-excuse-decide", args=[body["id"]]), {"decision": "decline"}, format="json")
    assert again.status_code == 409 and "already approved" in again.json()["detail"]
    assert AttendanceRecord.objects.get(pk=absence.pk).status == "excused"
