"""The lecturer's check-in page and the sign-in page in Croatian: what the lecturer and everyone signing
in reads comes from the translation, not the English source (needs locale/hr compiled to .mo)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.urls import reverse
from django.utils import translation

from attendance.models import AttendanceRecord, CourseMembership
from attendance.sessions.records import attendance_record_set
from attendance.sessions.services import session_open


@pytest.fixture(autouse=True)
def _english_afterwards() -> Iterator[None]:
    """LocaleMiddleware leaves the thread in the last request's language (i18n-base's conftest does
    this for every test; here too, so this file leaves English behind on any branch)."""
    yield
    translation.deactivate()


@pytest.fixture
def croatian(client):
    client.cookies["rollcall_language"] = "hr"
    return client


def test_the_lecturers_check_in_page_is_in_croatian(croatian, course, lecturer, make_user):
    student = make_user("student")
    CourseMembership.objects.create(course=course, student=student)
    session = session_open(course=course, by=lecturer, title="Week 1")
    attendance_record_set(session=session, student=student, status=AttendanceRecord.Status.LATE, by=lecturer)
    croatian.force_login(lecturer)
    page = croatian.get(reverse("session-checkin", args=[session.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert '<html lang="hr">' in html
    for croatian_words in ("Zatvori termin", "Pokretanje kamere…", "Kiosk na vratima", "Razlog sljedećeg ispravka",
                           "Zakasnio", "ručno", "Odjava", "Moji kolegiji"):
        assert croatian_words in html, croatian_words
    for english in ("Close session", "Starting the camera", "Kiosk at the door", "Reason for the next correction",
                    ">Late<", "Sign out", "My courses"):
        assert english not in html, english
    # The confirm dialog's text and the plural of "minute" are translated too.
    assert "Zatvoriti ovaj termin?" in html
    assert "više od 10 minuta nakon početka" in html  # the course default, 10: the "many" form (2-4: "minute")


def test_the_sign_in_page_is_in_croatian(croatian, db):
    page = croatian.get(reverse("login"))
    html = page.content.decode()
    assert page.status_code == 200 and '<html lang="hr">' in html
    assert "Prijava" in html and "Korisničko ime" in html and "Lozinka" in html
    assert "Username" not in html and "Password" not in html and "Sign in" not in html


def test_a_wrong_password_is_explained_in_croatian(croatian, lecturer):
    page = croatian.post(reverse("login"), {"username": lecturer.username, "password": "not the password"})
    html = page.content.decode()
    assert "Korisničko ime i lozinka se ne podudaraju." in html
    assert "did not match" not in html


def test_an_api_error_of_the_check_in_is_in_the_readers_language(client, course, lecturer):
    session = session_open(course=course, by=lecturer)
    client.force_login(lecturer)
    url = reverse("api-session-checkin", args=[session.pk])
    answer = client.post(url, data=b"", content_type="image/jpeg", HTTP_ACCEPT_LANGUAGE="hr")
    assert answer.status_code == 400 and answer.json()["detail"].startswith("Zahtjev nema tijelo")
