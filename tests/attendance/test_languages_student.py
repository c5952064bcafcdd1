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


def _video_raises() -> list[tuple[int, str, dict[str, str]]]:
    """(line, exception, keyword arguments) of every video refusal raised in recognition/video.py."""
    import ast
    from pathlib import Path

    import recognition.video

    tree = ast.parse(Path(recognition.video.__file__).read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and isinstance(node.exc.func, ast.Name):
            if node.exc.func.id in {"VideoError", "NotAVideoError", "EmptyVideoError", "VideoTruncatedError",
                                    "VideoTooLargeError", "VideoTooLongError"}:
                found.append((node.lineno, node.exc.func.id, {k.arg: ast.unparse(k.value) for k in node.exc.keywords}))
    return found


def test_every_video_refusal_has_a_reason_said_in_croatian():
    """recognition/video.py's refusals carry a reason, and each reason has its sentence in both languages: a
    new refusal without one fails here (it would reach a Croatian student in English)."""
    from attendance.enrolment.errors import VIDEO_REFUSALS

    raises = _video_raises()
    assert len(raises) >= 14
    reasons = {}
    for line, name, keywords in raises:
        assert "reason" in keywords, f"recognition/video.py:{line}: {name} without a reason"
        reasons[keywords["reason"].strip("'\"")] = keywords
    assert set(reasons) <= set(VIDEO_REFUSALS), set(reasons) - set(VIDEO_REFUSALS)
    for line, _name, keywords in raises:  # each raise passes what its sentence needs
        given = {k: 1 for k in keywords if k != "reason"}
        try:
            VIDEO_REFUSALS[keywords["reason"].strip("'\"")](given)
        except KeyError as missing:
            pytest.fail(f"recognition/video.py:{line}: the refusal's sentence needs {missing}, not passed")
    numbers = {"format": "JPEG", "width": 9000, "height": 9000, "claimed": "99999", "limit": 20, "done": 3,
               "total": 40, "frame": 7}
    for reason, say in VIDEO_REFUSALS.items():
        english = say(numbers)
        with translation.override("hr"):
            croatian = say(numbers)
        assert croatian != english, (reason, croatian)


def test_a_refused_video_is_stored_with_its_reason_and_said_in_the_reader_s_language(tmp_path):
    """A JPEG renamed .mp4: recognition refuses it with a reason; the stored failure says it in Croatian."""
    import pickle

    from attendance.enrolment.errors import failure_message, student_video_message, video_refusal
    from recognition import NotAVideoError, probe_video

    photo = tmp_path / "clip.mp4"
    photo.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 64)
    with pytest.raises(NotAVideoError) as refused:
        probe_video(photo)
    assert refused.value.reason == "image" and refused.value.params == {"format": "JPEG"}
    again = pickle.loads(pickle.dumps(refused.value))
    assert (again.reason, again.params, str(again)) == ("image", {"format": "JPEG"}, str(refused.value))
    stored = student_video_message(refused.value)  # what the worker keeps: English
    assert stored.startswith("The video is a JPEG image, not a video")
    refusal = video_refusal(refused.value)
    with translation.override("hr"):
        croatian = failure_message("not_a_video", stored, refusal)
    assert "JPEG" in croatian and "not a video" not in croatian


def test_a_refusal_no_english_pattern_knows_is_said_from_its_reason_alone(client, make_user):
    """The stored English is not parsed: a refusal is said from its reason, on the page and in the API."""
    student = make_user("student", language="hr")
    FaceEnrolment.objects.create(
        student=student, status="failed", consent_given_at=timezone.now(), error_code="truncated",
        error_message="(English the patterns do not know)",
        progress={"stage": "failed", "refusal": {"reason": "ends_early", "params": {"done": 3, "total": 1042}}})
    client.force_login(student)
    page = client.get(reverse("enrolment")).content.decode()
    assert "Videozapis završava nakon 3 od ukupno 1042 sličice" in page, page[page.find("završava") - 200:][:400]
    assert "English the patterns" not in page
    # A refusal stored in a shape that cannot be read back shows the stored English, never a 500.
    FaceEnrolment.objects.filter(student=student).update(progress={"refusal": {"reason": ["x"], "params": "abc"}})
    assert "(English the patterns do not know)" in client.get(reverse("enrolment")).content.decode()
