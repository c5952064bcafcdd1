"""The XLSX downloads beside every CSV: opened with openpyxl, their cells' types and values checked."""

from __future__ import annotations

import io
from datetime import datetime

import pytest
from django.urls import reverse
from openpyxl import load_workbook

from tests.attendance.report_factories import known_course

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture(autouse=True)
def _zagreb(settings):
    # Not UTC: the dates in the file must be the site's local time, as the pages show them.
    settings.TIME_ZONE = "Europe/Zagreb"


@pytest.fixture
def known(make_user):
    return known_course(make_user)


def _sheet(response):
    assert response.status_code == 200
    assert response["Content-Type"] == XLSX
    book = load_workbook(io.BytesIO(response.content))
    return book.active


def _values(sheet) -> list[list[object]]:
    return [list(row) for row in sheet.iter_rows(values_only=True)]


def test_course_xlsx_has_typed_cells_a_frozen_header_and_widths(client, known):
    client.force_login(known.lecturer)
    response = client.get(reverse("course-report-xlsx", args=[known.course.pk]))
    assert response["Content-Disposition"] == 'attachment; filename="CV101-2026-autumn-attendance.xlsx"'
    sheet = _sheet(response)
    assert sheet.freeze_panes == "A2"
    assert all(cell.font.b for cell in sheet[1])
    rows = _values(sheet)
    assert rows[0] == [
        "Student number",
        "Last name",
        "First name",
        "Username",
        "2026-10-01 11:00 Intro",
        "2026-10-08 11:00 Faces",
        "Attended",
        "Counted sessions",
        "Rate (%)",
        "Points",
        "Possible points",
        "Points (%)",
    ]
    # No apostrophe in a spreadsheet cell typed as text: "=Cleo" is her name, not a formula.
    assert rows[1] == ["S003", 'Dupont "CD"', "=Cleo", "cleo", "n/a", "Present", 1, 1, 1.0, 2, 2, 1.0]
    assert sheet["C2"].data_type == "s"
    assert rows[2] == ["S002", "O'Neil, Jr.", "Bob", "bob", "Absent", "Excused", 0, 1, 0.0, 1, 4, 0.25]
    assert rows[3] == ["S004", "Young", "Zoë", "zoe", "Present", "Absent", 1, 2, 0.5, 2, 4, 0.5]
    assert rows[5][0] == "Turnout (%)" and rows[5][4] == pytest.approx(2 / 3)
    assert sheet["I2"].number_format == "0.0%" and sheet["E6"].number_format == "0.0%"
    widths = {letter: sheet.column_dimensions[letter].width for letter in "ABCDEFGHI"}
    assert widths["E"] >= len("2026-10-01 11:00 Intro") and widths["A"] >= len("Student number")
    assert widths["A"] != widths["E"]  # sized to the content, not one default for all


def test_session_xlsx_has_real_dates_in_local_time_and_numbers(client, known):
    client.force_login(known.lecturer)
    sheet = _sheet(client.get(reverse("session-report-xlsx", args=[known.faces.pk])))
    rows = _values(sheet)
    assert rows[0][5] == "Marked at"
    alice = rows[4]
    assert alice[3] == "alice"
    # 09:14 UTC is 11:14 in Zagreb (summer time until 25 October).
    assert alice[5] == datetime(2026, 10, 8, 11, 14)
    assert sheet.cell(row=5, column=6).is_date and sheet.cell(row=5, column=6).number_format == "yyyy-mm-dd hh:mm"
    assert alice[7] == pytest.approx(0.35) and sheet.cell(row=5, column=8).number_format == "0.000"
    assert alice[11] == 0 and isinstance(alice[11], int)
    assert rows[1][7] is None  # a manual mark has no distance: an empty cell, not "0"


def test_student_xlsx_lists_sessions_with_dates(client, known):
    client.force_login(known.alice)
    response = client.get(reverse("student-report-xlsx", args=[known.alice.pk]))
    assert response["Content-Disposition"] == 'attachment; filename="alice-attendance.xlsx"'
    rows = _values(_sheet(response))
    assert rows == [
        ["Course", "Course title", "Term", "Session", "Held at", "Status", "Method", "Marked at"],
        [
            "CV101",
            "Computer Vision",
            "2026-autumn",
            "Faces",
            datetime(2026, 10, 8, 11),
            "Late",
            "Face",
            datetime(2026, 10, 8, 11, 14),
        ],
        [
            "CV101",
            "Computer Vision",
            "2026-autumn",
            "Intro",
            datetime(2026, 10, 1, 11),
            "Present",
            "Face",
            datetime(2026, 10, 1, 11, 2),
        ],
    ]


def test_xlsx_drops_control_characters_a_spreadsheet_cannot_hold(client, known):
    known.zoe.last_name = "Young\x07\x1b"
    known.zoe.save()
    client.force_login(known.lecturer)
    rows = _values(_sheet(client.get(reverse("course-report-xlsx", args=[known.course.pk]))))
    assert ["S004", "Young", "Zoë"] == rows[3][:3]


def test_a_student_cannot_download_the_course_xlsx(client, known):
    client.force_login(known.alice)
    assert client.get(reverse("course-report-xlsx", args=[known.course.pk])).status_code == 403
