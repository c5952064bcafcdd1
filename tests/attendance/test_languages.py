"""Which language a page is in: the menu, the saved choice, the browser's preference; dates and numbers.

Each feature's own Croatian pages are tested beside it (test_languages_*.py); this file holds the
machinery they share and the walk over the whole app in Croatian.
"""

from __future__ import annotations

import datetime
import re

import pytest
from django.template import Context, Template
from django.test import Client
from django.utils import translation

pytestmark = pytest.mark.django_db


def _lang(response) -> str:
    return _lang_of(response.content.decode())


def _lang_of(body: str) -> str:
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
    # "The browser's language" clears the saved choice and the cookie: Accept-Language decides again.
    body = other.get("/", HTTP_ACCEPT_LANGUAGE="hr", follow=True).content.decode()
    assert '<option value="en-gb" lang="en-gb" selected>' in body
    response = other.post("/language/", {"language": "", "next": "/"})
    student.refresh_from_db()
    assert student.language == "" and response.cookies["rollcall_language"].value == ""
    body = other.get("/", HTTP_ACCEPT_LANGUAGE="hr", follow=True).content.decode()
    assert _lang_of(body) == "hr" and '<option value="" selected>' in body


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
    # Every page loads it: a browser holding it revalidates instead of having it built again, and the
    # same browser in another language gets that language's catalogue, never a 304 for the old one.
    tag = client.get("/jsi18n/", HTTP_ACCEPT_LANGUAGE="hr")["ETag"]
    assert client.get("/jsi18n/", HTTP_ACCEPT_LANGUAGE="hr", HTTP_IF_NONE_MATCH=tag).status_code == 304
    other = client.get("/jsi18n/", HTTP_ACCEPT_LANGUAGE="en", HTTP_IF_NONE_MATCH=tag)
    assert other.status_code == 200 and "n%10==1" not in other.content.decode()


# --- The whole app in Croatian ------------------------------------------------------------------

# English words that are not Croatian words: any of them on a Croatian page is text nobody translated.
ENGLISH = {
    "the", "and", "your", "you", "of", "with", "this", "these", "are", "for", "from", "has", "have", "been",
    "will", "which", "was", "were", "an", "be", "by", "or", "at", "is", "it", "not", "can", "there", "what",
    "when", "who", "yet", "here", "please", "students", "student's", "sessions", "session", "courses", "course",
    "attendance", "present", "absent", "late", "excused", "unknown", "open", "closed", "save", "cancel",
    "delete", "edit", "sign", "search", "report", "reports", "enrol", "enrolled", "consent", "face", "faces",
    "lecturer", "lecturers", "people", "import", "export", "back", "next", "previous", "page", "week",
    "yes", "none", "never", "today", "rate", "total", "name", "email", "warning", "warnings", "excuse",
    "excuses", "calendar", "timetable", "points", "grade", "manage", "roster", "video", "record", "upload",
}
WORD = re.compile(r"[^\W\d_][\w'\u2019-]*")
READ_ATTRIBUTES = ("title", "aria-label", "placeholder", "alt")


def _visible_text(body: str) -> list[str]:
    """The text a person reads on the page: text nodes outside script/style and the read attributes."""
    from html.parser import HTMLParser

    pieces: list[str] = []

    class Reader(HTMLParser):
        raw = 0

        def handle_starttag(self, tag, attrs):
            self.raw += tag in ("script", "style")
            pieces.extend(v for k, v in attrs if k in READ_ATTRIBUTES and v)
            if tag == "input" and dict(attrs).get("type") in ("submit", "button"):
                pieces.append(dict(attrs).get("value") or "")

        def handle_endtag(self, tag):
            self.raw -= tag in ("script", "style")

        def handle_data(self, data):
            if not self.raw and data.strip():
                pieces.append(data.strip())

    Reader().feed(body)
    return pieces


def _data_of(seed) -> list[str]:
    """What the seed itself wrote (names, titles, codes): user data, never translated."""
    from attendance.models import Course, Session, User

    values = [*Course.objects.values_list("title", flat=True), *Course.objects.values_list("code", flat=True),
              *Session.objects.values_list("title", flat=True)]
    for user in User.objects.all():
        values += [user.first_name, user.last_name, user.username, user.email, user.display_name]
    return sorted((v for v in values if v), key=len, reverse=True)


def _english_on(body: str, data: list[str]) -> list[str]:
    found = []
    for piece in _visible_text(body):
        for value in data:
            piece = piece.replace(value, " ")
        english = [w for w in WORD.findall(piece) if w.lower() in ENGLISH]
        if english:
            found.append(f"{piece[:90]!r} ({', '.join(english[:4])})")
    return found


@pytest.mark.parametrize("role", ["anonymous", "kiosk", "admin", "lecturer", "student", "failed_student"])
def test_every_page_is_in_croatian_for_a_croatian_reader(client, make_user, role):
    """The accessibility walk's pages, each role's, fetched in Croatian: no English word left on any."""
    from tests.e2e.accessibility import PAGES, ROLE_USERS, seed_everything

    seed = seed_everything(make_user)
    data = _data_of(seed)
    who = ROLE_USERS[role]
    if who is not None:
        user = who(seed)
        user.language = "hr"
        user.save(update_fields=["language"])
        client.force_login(user)
    else:
        client.cookies["rollcall_language"] = "hr"
    problems = []
    for page in PAGES[role]:
        if page.before or page.url(seed).startswith("/api/docs/"):
            continue  # a page reached by script, or the API's reference (English: see test_translations)
        url = page.url(seed)
        response = client.get(url, follow=True)
        # 404, 409: the kiosk's pages for a link that is no longer valid or was opened on another
        # device (pages of their own, in Croatian too).
        assert response.status_code == page.status, (page.name, url, response.status_code)
        assert 'lang="hr"' in response.content.decode()[:200], page.name
        problems += [f"{page.name} ({url}): {text}" for text in _english_on(response.content.decode(), data)]
    assert not problems, "English on Croatian pages:\n" + "\n".join(problems)


@pytest.mark.parametrize("language", ["en-gb", "hr"])
def test_date_and_time_fields_render_the_iso_values_a_browser_s_picker_reads(language, course):
    """<input type=date> reads only 2026-12-03: en-gb's first input format (03/12/2026) showed as empty."""
    from attendance.timetable.forms import SeriesForm

    with translation.override(language):
        form = SeriesForm(course=course, initial={"starts_on": datetime.date(2026, 12, 3),
                                                  "start_time": datetime.time(9, 15)})
        assert 'value="2026-12-03"' in str(form["starts_on"]) and 'value="09:15"' in str(form["start_time"])
