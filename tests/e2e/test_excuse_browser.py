"""An excuse in a real browser: the student files it with a document, the lecturer approves it, and
the student's attendance report shows the session as excused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.urls import reverse

from tests.browser import login, screenshot

pytestmark = [pytest.mark.slow, pytest.mark.browser]

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def test_a_student_files_an_excuse_the_lecturer_approves_it_and_the_report_updates(
    transactional_db, live_server, browser_with_camera, course, lecturer, make_user, tmp_path: Path
):
    from playwright.sync_api import expect

    from attendance.models import AttendanceRecord, CourseMembership, Excuse
    from attendance.sessions.services import session_close, session_open

    student = make_user("student", first_name="Ana", last_name="Kovač")
    CourseMembership.objects.create(course=course, student=student)
    session = session_open(course=course, by=lecturer, title="Week 5 lecture")
    session_close(session=session, by=lecturer)
    record = AttendanceRecord.objects.get(session=session, student=student)
    assert record.status == "absent"
    note = tmp_path / "doctors-note.pdf"
    note.write_bytes(PDF)

    browser = browser_with_camera()
    base = live_server.url

    student_page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()  # type: ignore[attr-defined]
    login(student_page, base, student.username)
    student_page.goto(base + reverse("my-attendance"))
    student_page.get_by_role("link", name="Ask to excuse").click()
    student_page.fill("#id_reason", "I had the flu; the doctor's note is attached.")
    student_page.set_input_files("#id_document", str(note))
    student_page.get_by_role("button", name="Send to the lecturer").click()
    student_page.wait_for_url(f"{base}{reverse('my-attendance')}")
    expect(student_page.locator("td.excuse-state")).to_contain_text("Waiting for the lecturer")
    screenshot(student_page, "excuse-1-student-filed")

    lecturer_page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()  # type: ignore[attr-defined]
    lecturer_page.on("dialog", lambda dialog: dialog.accept())
    login(lecturer_page, base, lecturer.username)
    lecturer_page.get_by_role("link", name="Excuses").click()
    row = lecturer_page.locator("#pending tr[data-excuse]")
    expect(row).to_contain_text("I had the flu")
    expect(row).to_contain_text("Kovač")
    with lecturer_page.expect_download() as download:
        row.get_by_role("link", name="Document").click()
    assert Path(download.value.path()).read_bytes() == PDF
    row.get_by_label(re.compile("Note to")).fill("Get well soon")
    row.get_by_role("button", name="Approve").click()
    expect(lecturer_page.locator("#decided tr[data-excuse]")).to_contain_text("Approved")
    expect(lecturer_page.locator("#pending")).to_contain_text("Nothing waiting")
    screenshot(lecturer_page, "excuse-2-lecturer-approved")

    student_page.reload()
    state = student_page.locator("td.excuse-state")
    expect(state).to_contain_text("Approved")
    expect(state).to_contain_text("Get well soon")
    expect(student_page.locator("tbody .badge-excused")).to_have_text("Excused")
    screenshot(student_page, "excuse-3-student-report")

    record.refresh_from_db()
    assert record.status == "excused" and Excuse.objects.get().status == Excuse.Status.APPROVED
