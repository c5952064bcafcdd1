"""The management area, the roster import and the timetable in Croatian.

Needs the compiled Croatian catalogue (locale/hr/LC_MESSAGES/django.mo, built from the .po files).
"""

from __future__ import annotations

import json
from datetime import date, time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import translation

from attendance.campus.importing import REFUSED, Note, RowPlan, import_plan
from attendance.campus.roster import RosterRow, read_roster
from attendance.models import Course
from attendance.timetable.services import SeriesSpec, series_save


@pytest.fixture
def croatian(client):
    client.cookies["rollcall_language"] = "hr"
    return client


def test_the_people_page_is_in_croatian(croatian, admin_user, make_user):
    make_user("student", first_name="Ana", last_name="Horvat", student_number="0036123456")
    croatian.force_login(admin_user)
    page = croatian.get(reverse("campus-people")).content.decode()
    assert "Dodajte osobu" in page and "Označi sve retke na ovoj stranici" in page and "Ana Horvat" in page
    assert "Add a person" not in page and "Tick every row on this page" not in page


def test_the_timetable_page_is_in_croatian_with_django_s_weekday_names(croatian, course, lecturer, settings):
    settings.TIME_ZONE = "Europe/Zagreb"
    series_save(course=course, by=lecturer, spec=SeriesSpec(
        title="Predavanje", weekdays=[1, 3], start_time=time(10, 15), end_time=time(11, 45), every_weeks=2,
        starts_on=date(2026, 10, 5), ends_on=date(2026, 12, 18)))
    croatian.force_login(lecturer)
    page = croatian.get(reverse("course-timetable", args=[course.pk])).content.decode()
    assert "Redovita nastava" in page and "Planirajte redovitu nastavu" in page
    assert "Pon, Sri 10:15\u201311:45, svaka 2 tjedna" in page
    assert "Recurring classes" not in page and "every 2 weeks" not in page


def test_an_import_preview_gives_each_row_s_reason_in_croatian(croatian, admin_user, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    Course.objects.create(code="CS101", title="Programiranje", term="2026-autumn")
    croatian.force_login(admin_user)
    data = ("Student number;Name;Email;Course code;Term\n"
            "s1;Ana Horvat;ana@uni.example;CS101;2026-autumn\n"
            "s2;Ivo Kovač;ivo@uni.example;XX999;2026-autumn\n").encode()
    response = croatian.post(reverse("campus-import"), {"file": SimpleUploadedFile("popis.csv", data)})
    page = croatian.get(response["Location"]).content.decode()
    assert "Nepoznat kolegij XX999 (2026-autumn): najprije ga stvorite." in page
    assert "novi račun; dodan na CS101" in page and "odbijeno" in page
    assert "1 redak bit će izostavljen" in page
    assert "Unknown course" not in page and "new account" not in page


def test_a_stored_preview_is_shown_in_the_language_of_whoever_reads_it(db):
    """A background preview keeps each row's notes as msgid + parameters (JSON), not as text."""
    row = RosterRow(line=3, student_number="s2", first_name="Ivo", last_name="Kovač", email="", course_code="XX9",
                    term="2026-autumn", role="student", joined_on="")
    plan = import_plan([row])
    stored = json.loads(json.dumps([n.as_json() for n in plan.rows[0].notes]))
    again = RowPlan(row, REFUSED, tuple(Note.from_json(n) for n in stored))
    with translation.override("hr"):
        assert again.detail == "Nepoznat kolegij XX9 (2026-autumn): najprije ga stvorite."
        assert again.outcome_label == "odbijeno"
    with translation.override("en-gb"):
        assert again.detail == "Unknown course XX9 (2026-autumn): create it first."


def test_the_croatian_template_has_croatian_headers_and_reads_back(croatian, admin_user):
    croatian.force_login(admin_user)
    response = croatian.get(reverse("campus-import-template", args=["csv"]))
    assert response.content.decode("utf-8-sig").startswith("Broj studenta,Ime i prezime,E-pošta,Šifra kolegija")
    rows = read_roster(response.content, "predlozak.csv")
    assert [(r.student_number, r.course_code, r.joined_on) for r in rows] == [("s1234567", "CS101", "2026-09-01")]


def test_the_tick_counter_s_words_come_in_croatian_from_the_javascript_catalogue(croatian):
    catalogue = croatian.get(reverse("javascript-catalog")).content.decode()
    assert "ni\\u0161ta nije ozna\\u010deno" in catalogue or "ništa nije označeno" in catalogue


def test_a_missing_column_is_named_in_the_reader_s_language_even_when_a_worker_found_it():
    """A background preview stores the missing columns as keys; the page names them for its reader."""
    from attendance.campus.roster import RosterFileError, file_error_text

    with pytest.raises(RosterFileError) as refused:
        read_roster(b"Name,Email\nAna Horvat,ana@uni.test\n", "r.csv")
    stored = json.loads(json.dumps({"error": refused.value.message, "params": refused.value.params}))
    assert stored["params"] == {"columns": ["student_number", "course_code", "term"]}
    with translation.override("hr"):
        croatian = file_error_text(stored["error"], stored["params"])
    assert "Broj studenta" in croatian and "Student number" not in croatian
    assert "missing: Student number, Course code, Term" in file_error_text(stored["error"], stored["params"])


def test_a_croatian_export_with_ime_and_prezime_is_not_read_as_full_names():
    """"Ime" alone is a first name in Croatian exports: without a full-name column the file is refused."""
    from attendance.campus.roster import RosterFileError

    data = "JMBAG,Ime,Prezime,E-pošta,Šifra kolegija,Semestar\n0036,Ana,Horvat,a@uni.test,CV101,2026-autumn\n"
    with pytest.raises(RosterFileError) as refused:
        read_roster(data.encode(), "r.csv")
    assert refused.value.params == {"columns": ["name"]}
