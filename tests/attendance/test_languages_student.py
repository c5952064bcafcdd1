"""The student's pages, the consent text, the enrolment's refusals and the warning emails in Croatian.

Needs the Croatian catalogue compiled (locale/hr/LC_MESSAGES/django.mo), as the build step does.
"""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from attendance.enrolment.errors import MESSAGES, failure_message
from attendance.models import AttendanceWarning, CalendarFeed, Course, FaceEnrolment
from attendance.warnings import emails

CONSENT_HR = "biometrijski podaci"
CONSENT_EN = "published research rebuilds"


def _in_croatian(client, user):
    user.language = "hr"
    user.save(update_fields=["language"])
    client.force_login(user)


def test_the_enrolment_page_and_its_consent_text_are_in_croatian(client, student):
    _in_croatian(client, student)
    page = client.get(reverse("enrolment")).content.decode()
    assert "<h1>Upis mojeg lica</h1>" in page and "<h1>Enrol my face</h1>" not in page
    assert CONSENT_HR in page and "Dajem privolu da Rollcall obrađuje moje lice" in page
    assert CONSENT_EN not in page and "I consent to Rollcall processing my face" not in page


def test_the_consent_text_still_reads_in_english_by_default(client, student):
    client.force_login(student)
    page = client.get(reverse("enrolment")).content.decode()
    assert CONSENT_EN in page and CONSENT_HR not in page


def test_the_privacy_notice_is_in_croatian(client, student):
    client.cookies["rollcall_language"] = "hr"
    client.force_login(student)
    page = client.get(reverse("privacy-notice")).content.decode()
    assert "<h1>Obavijest o privatnosti</h1>" in page and CONSENT_HR in page
    assert "<h1>Privacy notice</h1>" not in page and CONSENT_EN not in page


def test_a_stored_failure_reason_is_shown_in_the_readers_language(client, student):
    """The row keeps the code and the English; the page and the API translate it by code."""
    enrolment = FaceEnrolment.objects.create(
        student=student, status="failed", error_code="too_dark", error_message=str(MESSAGES["too_dark"]),
        consent_given_at=timezone.now(), finished_at=timezone.now(), attempts=1,
    )
    _in_croatian(client, student)
    page = client.get(reverse("enrolment")).content.decode()
    assert "Posljednji videozapis nije prihvaćen: Videozapis je pretaman" in page
    status = client.get(reverse("api-enrolment-detail", args=[enrolment.pk])).json()
    assert status["error_message"].startswith("Videozapis je pretaman") and status["error_code"] == "too_dark"
    assert status["label"] == "Nije uspjelo"


def test_a_video_refusal_from_recognition_is_translated_with_its_numbers():
    english = ("The video is 31 seconds long; the limit is 20 seconds. Record a shorter clip: about 8 seconds, "
               "turning your head slightly left and right, is enough.")
    with translation.override("hr"):
        assert failure_message("too_long", english).startswith("Videozapis traje 31 s, a ograničenje je 20 s.")
    with translation.override("en-gb"):
        assert failure_message("too_long", english) == english


def _warning(student, course):
    return AttendanceWarning(student=student, course=course, rate=0.5, threshold=0.75, attended=2, counted=4,
                             crossed_at=timezone.now())


def test_a_warning_email_to_a_croatian_reader_is_written_in_croatian(make_user, settings):
    settings.LANGUAGE_CODE = "en-gb"
    course = Course.objects.create(code="CV2", title="Vision", term="2026-autumn")
    ana = make_user("student", first_name="Ana", last_name="Horvat", language="hr")
    text = emails.student_text(warning=_warning(ana, course), student=ana)
    assert text.subject == "Vaša je prisutnost na kolegiju CV2 ispod 75 %"
    assert "Vaša je prisutnost na kolegiju CV2 Vision (2026-autumn) pala na 50,0 %" in text.body
    assert "your attendance" not in text.body and "Dear" not in text.body
    # Someone who never chose a language reads the site's.
    sam = make_user("student", first_name="Sam", last_name="Stone")
    english = emails.student_text(warning=_warning(sam, course), student=sam)
    assert english.subject == "Your attendance in CV2 is below 75 %" and "Dear Sam Stone," in english.body
    assert translation.get_language() != "hr"  # the override ended with the email


def test_the_calendar_feed_is_named_in_its_owners_language(client, make_user):
    ana = make_user("student", first_name="Ana", last_name="Horvat", language="hr")
    feed = CalendarFeed.objects.create(owner=ana, token="t" * 43)
    body = client.get(reverse("feed-ics", args=[feed.token])).content.decode()
    assert "X-WR-CALNAME:Ana Horvat: nastava" in body


@pytest.mark.django_db
def test_a_withdrawn_enrolment_is_labelled_in_the_reader_s_language(make_user):
    """The withdrawal writes its label in English (a msgid); the status says it in the reader's language."""
    from attendance.enrolment.selectors import enrolment_status
    from attendance.privacy.services import WITHDRAWN_PROGRESS

    student = make_user("student")
    enrolment = FaceEnrolment.objects.create(student=student, status=FaceEnrolment.Status.WITHDRAWN,
                                             consent_given_at=timezone.now(), progress=dict(WITHDRAWN_PROGRESS))
    with translation.override("hr"):
        assert enrolment_status(enrolment=enrolment).label == "Privola povučena: podaci o licu su izbrisani"
    assert enrolment_status(enrolment=enrolment).label == "Consent withdrawn: face data deleted"
