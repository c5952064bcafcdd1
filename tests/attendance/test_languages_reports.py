"""The reports in Croatian: words translated, numbers in the reader's format (a decimal comma), and the
downloads' headers in the requester's language while their numbers stay machine-readable.

Needs the Croatian catalogue compiled (locale/hr/LC_MESSAGES/django.mo), as the build step does."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse
from django.utils import translation
from openpyxl import load_workbook

from tests.attendance.report_factories import known_course


@pytest.fixture(autouse=True)
def _utc(settings):
    settings.TIME_ZONE = "UTC"


@pytest.fixture(autouse=True)
def _back_to_the_default_language():
    # LocaleMiddleware activates the request's language for the thread and never deactivates it: without
    # this, tests that run after these and render without a request (the charts) would be in Croatian.
    yield
    translation.deactivate()


@pytest.fixture
def known(make_user):
    return known_course(make_user)


def test_course_report_in_croatian_has_croatian_words_and_a_decimal_comma(client, known):
    client.force_login(known.lecturer)
    response = client.get(reverse("course-report", args=[known.course.pk]), HTTP_ACCEPT_LANGUAGE="hr")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'lang="hr"' in html
    assert "Odaziv po terminu" in html and "Turnout per session" not in html
    assert "Stopa prisutnosti = termini" in html and "sessions held (closed) since the" not in html
    assert "Preuzmi XLSX" in html and "Download XLSX" not in html
    # Both closed sessions had 2 of 3 students: the chart says 66.7 % the Croatian way.
    assert "66,7 %" in html and "66.7 %" not in html
    assert "50 %" in html  # whole percentages need no separator


def test_course_report_in_english_keeps_the_decimal_point(client, known):
    client.force_login(known.lecturer)
    html = client.get(reverse("course-report", args=[known.course.pk]), HTTP_ACCEPT_LANGUAGE="en-gb").content.decode()
    assert "66.7 %" in html and "66,7 %" not in html and "Turnout per session" in html


def test_xlsx_headers_and_sheet_are_croatian_when_the_requesters_language_is_hr(client, known):
    known.lecturer.language = "hr"  # the saved choice, whatever the browser says
    known.lecturer.save(update_fields=["language"])
    client.force_login(known.lecturer)
    response = client.get(reverse("course-report-xlsx", args=[known.course.pk]), HTTP_ACCEPT_LANGUAGE="en-gb")
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.content)).active
    assert sheet.title == "Prisutnost"
    header = [cell.value for cell in sheet[1]]
    assert header[:4] == ["Broj studenta", "Prezime", "Ime", "Korisničko ime"]
    assert header[-6:] == ["Prisustvovano", "Uračunati termini", "Stopa (%)", "Bodovi", "Mogući bodovi", "Bodovi (%)"]
    assert sheet["A2"].value == "S003" and sheet["E2"].value == "n/p"  # not on the course yet
    assert sheet["I2"].value == 1.0 and sheet["I2"].number_format == "0.0%"  # a number, not "100,0"


def test_csv_in_croatian_translates_headers_and_keeps_dot_decimals(client, known):
    client.force_login(known.lecturer)
    response = client.get(reverse("course-report-csv", args=[known.course.pk]), HTTP_ACCEPT_LANGUAGE="hr")
    body = b"".join(response.streaming_content).decode("utf-8")  # read after the view returned, as a server does
    rows = list(csv.reader(io.StringIO(body.removeprefix("\ufeff"))))
    assert rows[0][:2] == ["Broj studenta", "Prezime"] and rows[0][-3] == "Bodovi"
    assert rows[-1][0] == "Odaziv (%)" and rows[-1][4] == "66.7"
