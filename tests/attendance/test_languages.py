"""Which language a page is in: the menu, the saved choice, the browser's preference; dates and numbers.

Each feature's own Croatian pages are tested beside it (test_languages_*.py); this file holds the
machinery they share and the walk over the whole app in Croatian.
"""

from __future__ import annotations

import datetime

import pytest
from django.template import Context, Template
from django.test import Client
from django.utils import translation

pytestmark = pytest.mark.django_db


def _lang(response) -> str:
    body = response.content.decode()
    start = body.index("<html lang=\"") + len("<html lang=\"")
    return body[start:body.index("\"", start)]


def test_the_browser_preference_is_honoured_when_nobody_chose(client):
    assert _lang(client.get("/login/", HTTP_ACCEPT_LANGUAGE="hr-HR,hr;q=0.9,en;q=0.5")) == "hr"
    assert _lang(client.get("/login/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")) == "en-gb"
    # A language the app does not have falls back to the site's.
    assert _lang(client.get("/login/", HTTP_ACCEPT_LANGUAGE="ja")) == "en-gb"
    response = client.get("/login/", HTTP_ACCEPT_LANGUAGE="hr")
    assert response["Content-Language"] == "hr"
    assert "Accept-Language" in response["Vary"]


def test_the_menu_sets_the_language_for_an_anonymous_visitor(client):
    response = client.post("/language/", {"language": "hr", "next": "/login/"})
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert response.cookies["rollcall_language"].value == "hr"
    assert response.cookies["rollcall_language"]["httponly"]
    # The cookie beats the browser's own preference.
    assert _lang(client.get("/login/", HTTP_ACCEPT_LANGUAGE="en")) == "hr"
    client.post("/language/", {"language": "en-gb", "next": "/login/"})
    assert _lang(client.get("/login/", HTTP_ACCEPT_LANGUAGE="hr")) == "en-gb"


def test_a_signed_in_choice_is_saved_and_follows_the_person_to_another_browser(client, student):
    client.force_login(student)
    client.post("/language/", {"language": "hr", "next": "/"})
    student.refresh_from_db()
    assert student.language == "hr"
    # Another browser, no cookie, an English Accept-Language: the saved choice wins.
    other = Client()
    other.force_login(student)
    assert _lang(other.get("/", HTTP_ACCEPT_LANGUAGE="en", follow=True)) == "hr"
    # Choosing English again saves English.
    other.post("/language/", {"language": "en-gb", "next": "/"})
    student.refresh_from_db()
    assert student.language == "en-gb"


def test_the_menu_refuses_unknown_languages_and_foreign_redirects(client, student):
    client.force_login(student)
    response = client.post("/language/", {"language": "xx", "next": "/"})
    assert response.status_code == 302 and "rollcall_language" not in response.cookies
    student.refresh_from_db()
    assert student.language == ""
    response = client.post("/language/", {"language": "hr", "next": "https://evil.example/phish"})
    assert response["Location"] == "/"
    assert client.get("/language/").status_code == 405


def test_the_menu_is_on_every_page_and_names_each_language_in_itself(client, student):
    client.force_login(student)
    body = client.get("/", follow=True).content.decode()
    assert 'action="/language/"' in body
    assert '<option value="hr" lang="hr"' in body and "Hrvatski" in body
    assert "English" in body


def test_dates_and_numbers_follow_the_language():
    when = datetime.datetime(2026, 12, 3, 14, 5)
    template = Template('{{ d|date:"DATE_FORMAT" }}|{{ d|date:"SHORT_DATETIME_FORMAT" }}|{{ n|floatformat:1 }}')
    with translation.override("en-gb"):
        assert template.render(Context({"d": when, "n": 66.666})) == "3 Dec 2026|3 Dec 2026 14:05|66.7"
    with translation.override("hr"):
        assert template.render(Context({"d": when, "n": 66.666})) == "3. prosinca 2026.|3. 12. 2026. 14:05|66,7"


def test_api_errors_of_the_framework_are_in_croatian(client):
    response = client.get("/api/courses/", HTTP_ACCEPT_LANGUAGE="hr")
    assert response.status_code in (401, 403)
    assert response.json()["detail"] == "Podaci za prijavu nisu poslani."
    response = client.get("/api/courses/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.json()["detail"] == "Authentication credentials were not provided."


def test_the_javascript_catalogue_is_served_in_the_page_language(client):
    body = client.get("/jsi18n/", HTTP_ACCEPT_LANGUAGE="hr").content.decode()
    # Croatian's three plural forms, as Django's catalogue view writes the formula.
    assert "const v = n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2;" in body
    english = client.get("/jsi18n/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "n%10==1" not in english
