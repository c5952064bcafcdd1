"""Attendance warnings: once per crossing, emailed through a real SMTP server on loopback (aiosmtpd),
retried after a refused connection or a temporary refusal without ever reaching the inbox twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from django.conf import settings as django_settings
from django.db import IntegrityError, transaction
from django.urls import reverse

from attendance import tasks
from attendance.models import (
    AttendanceRecord,
    AttendanceWarning,
    Course,
    CourseGrading,
    CourseMembership,
    Session,
    WarningEmail,
)
from attendance.warnings import delivery, services
from tests.attendance.smtp_server import SmtpServer

Status = AttendanceRecord.Status
_minutes = count()


@pytest.fixture(autouse=True)
def _utc(settings):
    settings.TIME_ZONE = "UTC"


@pytest.fixture
def smtp(settings):
    server = SmtpServer()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = server.port
    settings.EMAIL_TIMEOUT = 5
    settings.DEFAULT_FROM_EMAIL = "rollcall@uni.example"
    server.start()
    yield server
    server.stop()


@pytest.fixture
def term(make_user):
    lecturer = make_user("lecturer", username="lee", first_name="Lee", last_name="Ward", email="lee@uni.example")
    course = Course.objects.create(code="CV2", title="Vision", term="2026-autumn")
    course.lecturers.add(lecturer)
    sam = make_user("student", username="sam", first_name="Sam", last_name="Stone", email="sam@uni.example",
                    student_number="S100")
    kim = make_user("student", username="kim", first_name="Kim", last_name="Lake", email="kim@uni.example",
                    student_number="S101")
    for s in (sam, kim):
        CourseMembership.objects.create(course=course, student=s, joined_at=datetime(2026, 9, 1, tzinfo=UTC))
    return course, lecturer, sam, kim


def held(course, **statuses):
    """A closed session with the given student (username) -> status marks."""
    start = datetime(2026, 10, 1, 9, tzinfo=UTC) + timedelta(days=next(_minutes))
    session = Session.objects.create(course=course, status=Session.Status.CLOSED, scheduled_start=start,
                                     opened_at=start, closed_at=start + timedelta(hours=1))
    for member in course.memberships.select_related("student"):
        status = statuses.get(member.student.username, Status.PRESENT)
        AttendanceRecord.objects.create(session=session, student=member.student, status=status, method="manual")
    return session


def run_beat_task():
    return tasks.warnings_check.apply().get()


def test_a_student_gets_one_email_per_crossing_and_another_after_recovering_and_falling_again(smtp, term):
    course, _lecturer, sam, kim = term
    held(course)
    held(course, sam=Status.ABSENT)
    assert run_beat_task() == 0  # 50 % after two sessions: fewer than the three a warning waits for
    held(course, sam=Status.ABSENT)
    assert run_beat_task() == 1
    [message] = smtp.inbox.messages
    assert smtp.inbox.envelopes == [("rollcall@uni.example", ["sam@uni.example"])]
    assert message["To"] == "sam@uni.example" and message["From"] == "rollcall@uni.example"
    assert message["Subject"] == "Your attendance in CV2 is below 75 %"
    body = message.get_content()
    assert "Dear Sam Stone," in body
    assert "has fallen to 33.3 %: you attended 1 of the 3 sessions counted so far" in body
    assert "at least 75 %" in body and f"{django_settings.ROLLCALL_SITE_URL}/me/warnings/" in body
    email = WarningEmail.objects.get()
    assert (email.status, email.attempts, email.to_address) == ("sent", 1, "sam@uni.example")
    assert message["Message-ID"] == delivery.message_id(email) and message["X-Rollcall-Key"] == email.key
    assert email.body.splitlines() == body.splitlines()  # the record holds the text that was sent

    held(course, sam=Status.ABSENT)  # still below, lower: not a new crossing
    assert run_beat_task() == 0 and len(smtp.inbox.messages) == 1

    for _ in range(9):
        held(course)
    run_beat_task()  # 10 of 13: back above 75 %
    warning = AttendanceWarning.objects.get()
    assert warning.recovered_at is not None and (warning.attended, warning.counted) == (1, 3)
    assert len(smtp.inbox.messages) == 1  # recovering sends nothing

    for _ in range(3):
        held(course, sam=Status.ABSENT)  # 10 of 16: below again
    assert run_beat_task() == 1
    assert [m["To"] for m in smtp.inbox.messages] == ["sam@uni.example", "sam@uni.example"]
    assert AttendanceWarning.objects.filter(student=sam).count() == 2
    assert "10 of the 16 sessions" in smtp.inbox.messages[1].get_content()
    assert not AttendanceWarning.objects.filter(student=kim).exists()


def test_lecturers_are_emailed_too_when_the_course_asks_for_it(smtp, term):
    course, _lecturer, _sam, _ = term
    CourseGrading.objects.create(course=course, warn_lecturers=True, warning_rate=0.9, warning_min_sessions=2)
    held(course)
    held(course, sam=Status.LATE)  # late counts as attended: 100 %
    held(course, sam=Status.ABSENT)  # 67 % < 90 %
    run_beat_task()
    by_recipient = {m["To"]: m for m in smtp.inbox.messages}
    assert set(by_recipient) == {"sam@uni.example", "lee@uni.example"}
    to_lecturer = by_recipient["lee@uni.example"]
    assert to_lecturer["Subject"] == "Sam Stone is below 90 % attendance in CV2"
    assert "Sam Stone (S100) has fallen below 90 % attendance in CV2 Vision (2026-autumn): 66.7 %, 2 of 3" in (
        to_lecturer.get_content()
    )


def test_a_course_with_warnings_off_sends_nothing(smtp, term):
    course, _, _sam, _ = term
    CourseGrading.objects.create(course=course, warnings_enabled=False)
    for _ in range(4):
        held(course, sam=Status.ABSENT)
    run_beat_task()
    assert smtp.inbox.messages == [] and not AttendanceWarning.objects.exists()


def test_open_sessions_do_not_count_towards_a_warning(smtp, term):
    course, _, sam, _ = term
    held(course, sam=Status.ABSENT)
    held(course, sam=Status.ABSENT)
    # Were this open session counted, Sam would be at 0 of 3, enough sessions for a warning.
    opened = Session.objects.create(
        course=course, status=Session.Status.OPEN, opened_at=datetime(2026, 12, 1, tzinfo=UTC)
    )
    AttendanceRecord.objects.create(session=opened, student=sam, status=Status.ABSENT, method="auto")
    run_beat_task()
    assert not AttendanceWarning.objects.exists()
    opened.status, opened.closed_at = Session.Status.CLOSED, datetime(2026, 12, 1, 2, tzinfo=UTC)
    opened.save()
    run_beat_task()
    assert AttendanceWarning.objects.get(student=sam).counted == 3


def _below(course, sam):
    for _ in range(3):
        held(course, sam=Status.ABSENT)


def test_a_temporary_refusal_is_retried_later_and_delivered_once(smtp, term):
    course, _, sam, _ = term
    _below(course, sam)
    smtp.inbox.data_replies.append("451 4.3.0 Try again later")
    assert run_beat_task() == 0
    email = WarningEmail.objects.get()
    assert (email.status, email.attempts) == ("pending", 1) and "451" in email.last_error
    assert smtp.inbox.messages == []
    # Not due yet: the next sweep a minute later leaves it alone.
    assert delivery.warning_emails_send().sent == 0 and WarningEmail.objects.get().attempts == 1
    later = email.next_attempt_at + timedelta(seconds=1)
    assert delivery.warning_emails_send(now=later).sent == 1
    assert delivery.warning_emails_send(now=later + timedelta(hours=1)).sent == 0
    assert len(smtp.inbox.messages) == 1
    email.refresh_from_db()
    assert (email.status, email.attempts, email.last_error) == ("sent", 2, "")


def test_a_full_mailbox_is_retried_without_sending_twice(smtp, term):
    course, _, sam, _ = term
    _below(course, sam)
    smtp.inbox.rcpt_replies.extend(["452 4.2.2 Mailbox full", "452 4.2.2 Mailbox full"])
    run_beat_task()
    email = WarningEmail.objects.get()
    assert "452" in email.last_error and email.status == "pending"
    delivery.warning_emails_send(now=email.next_attempt_at)
    email.refresh_from_db()
    assert email.attempts == 2 and email.next_attempt_at - email.created_at >= timedelta(minutes=2)
    delivery.warning_emails_send(now=email.next_attempt_at)
    assert [m["To"] for m in smtp.inbox.messages] == ["sam@uni.example"]
    assert WarningEmail.objects.get().status == "sent"


def test_a_refused_connection_is_retried_once_the_server_is_back(smtp, term):
    course, _, sam, _ = term
    _below(course, sam)
    smtp.stop()
    run_beat_task()
    email = WarningEmail.objects.get()
    assert email.status == "pending" and "ConnectionRefusedError" in email.last_error
    smtp.start()
    delivery.warning_emails_send(now=email.next_attempt_at)
    run_beat_task()
    assert len(smtp.inbox.messages) == 1 and WarningEmail.objects.get().status == "sent"


def test_a_permanently_refused_address_is_given_up_and_the_student_still_sees_the_warning(smtp, term, client):
    course, _, sam, _ = term
    _below(course, sam)
    smtp.inbox.rcpt_replies.append("550 5.1.1 No such user")
    run_beat_task()
    email = WarningEmail.objects.get()
    assert (email.status, email.attempts) == ("failed", 1) and "550" in email.last_error
    delivery.warning_emails_send(now=email.created_at + timedelta(days=1))
    assert smtp.inbox.messages == []
    client.force_login(sam)
    page = client.get(reverse("my-warnings")).content.decode()
    assert "CV2 Vision" in page and "Still below" in page and "Could not be delivered" in page


def test_too_many_temporary_failures_end_as_not_sent(smtp, term, settings):
    settings.ROLLCALL_WARNING_EMAIL_ATTEMPTS = 2
    course, _, sam, _ = term
    _below(course, sam)
    smtp.inbox.data_replies.extend(["451 4.3.0 Later", "451 4.3.0 Later"])
    run_beat_task()
    delivery.warning_emails_send(now=WarningEmail.objects.get().next_attempt_at)
    assert WarningEmail.objects.get().status == "failed" and smtp.inbox.messages == []


def test_one_open_warning_per_student_and_course_is_enforced_by_the_database(term):
    course, _, sam, _ = term
    AttendanceWarning.objects.create(course=course, student=sam, rate=0.1, threshold=0.75, attended=1, counted=10)
    with pytest.raises(IntegrityError), transaction.atomic():
        AttendanceWarning.objects.create(course=course, student=sam, rate=0.1, threshold=0.75, attended=1, counted=10)


def test_students_see_their_warnings_and_lecturers_cannot_open_the_page(smtp, term, client):
    course, lecturer, sam, kim = term
    _below(course, sam)
    run_beat_task()
    client.force_login(sam)
    page = client.get(reverse("my-warnings")).content.decode()
    assert "CV2 Vision" in page and "0 %" in page and "Sent " in page
    assert "My warnings" in client.get(reverse("my-attendance")).content.decode()  # in the navigation
    client.force_login(kim)
    assert "No warnings" in client.get(reverse("my-warnings")).content.decode()
    client.force_login(lecturer)
    assert client.get(reverse("my-warnings")).status_code == 403


def test_the_weekly_digest_goes_once_a_week_to_lecturers_who_asked(smtp, term):
    course, _lecturer, sam, _kim = term
    CourseGrading.objects.create(course=course, lecturer_digest=True)
    _below(course, sam)
    run_beat_task()
    monday_early = datetime(2026, 11, 2, 6, 30, tzinfo=UTC)
    assert services.warning_digests_queue(now=monday_early) == 0  # before 07:00
    monday = datetime(2026, 11, 2, 8, tzinfo=UTC)
    AttendanceWarning.objects.update(crossed_at=monday - timedelta(days=2))
    assert services.warning_digests_queue(now=monday) == 1
    assert services.warning_digests_queue(now=monday + timedelta(days=3)) == 0  # same week
    delivery.warning_emails_send()
    digest = next(m for m in smtp.inbox.messages if m["To"] == "lee@uni.example")
    assert digest["Subject"] == "Weekly attendance digest of CV2: 1 below 75 %"
    body = digest.get_content()
    assert "1 student is below 75 % attendance:" in body
    assert "- Sam Stone (S100): 0.0 %, 0 of 3 sessions, below since" in body and "(new this week)" in body
    assert "Kim" not in body
    assert services.warning_digests_queue(now=monday + timedelta(days=7)) == 1  # next week, still below
    assert WarningEmail.objects.filter(kind="digest").count() == 2


def test_no_digest_without_the_option_or_without_anyone_below(smtp, term):
    course, _, sam, _ = term
    monday = datetime(2026, 11, 2, 8, tzinfo=UTC)
    CourseGrading.objects.create(course=course, lecturer_digest=True)
    held(course)
    assert services.warning_digests_queue(now=monday) == 0
    CourseGrading.objects.filter(course=course).update(lecturer_digest=False)
    _below(course, sam)
    run_beat_task()
    assert services.warning_digests_queue(now=monday) == 0


def test_the_beat_schedule_runs_both_warning_tasks():
    tasks_scheduled = {entry["task"] for entry in django_settings.CELERY_BEAT_SCHEDULE.values()}
    assert {"attendance.warnings_check", "attendance.warning_digests"} <= tasks_scheduled
    from config.celery import app

    app.loader.import_default_modules()
    assert {"attendance.warnings_check", "attendance.warning_digests"} <= set(app.tasks)


def test_an_email_that_cannot_be_sent_is_marked_not_sent_and_does_not_block_the_others(smtp, term):
    course, _, sam, kim = term
    # Written before subjects were cleaned (or by hand): a newline in a header makes Django refuse it.
    broken = WarningEmail.objects.create(key="broken", kind="student", course=course, recipient=sam,
                                         to_address=sam.email, subject="Sam\nBcc: x@evil.example", body="b")
    WarningEmail.objects.create(key="fine", kind="student", course=course, recipient=kim,
                                to_address=kim.email, subject="Fine", body="b")
    result = delivery.warning_emails_send()
    assert (result.sent, result.failed) == (1, 1)
    broken.refresh_from_db()
    assert broken.status == "failed" and "BadHeaderError" in broken.last_error
    assert [m["To"] for m in smtp.inbox.messages] == ["kim@uni.example"]
    assert delivery.warning_emails_send(now=broken.created_at + timedelta(days=1)).failed == 0


def test_a_line_break_in_a_student_name_does_not_reach_the_subject(smtp, term):
    course, _lecturer, sam, _ = term
    CourseGrading.objects.create(course=course, warn_lecturers=True)
    sam.first_name = "Sam\r\nBcc: x@evil.example"
    sam.save()
    _below(course, sam)
    run_beat_task()
    subjects = sorted(m["Subject"] for m in smtp.inbox.messages)
    assert len(subjects) == 2 and all("\n" not in s and "\r" not in s for s in subjects)
    assert any("Sam Bcc: x@evil.example" in s for s in subjects)
    assert all(m["Bcc"] is None for m in smtp.inbox.messages)


def test_an_smtp_outage_of_hours_uses_up_no_tries_and_the_email_goes_once_it_is_back(smtp, term, settings):
    settings.ROLLCALL_WARNING_EMAIL_ATTEMPTS = 2
    course, _, sam, _ = term
    _below(course, sam)
    smtp.stop()
    run_beat_task()
    email = WarningEmail.objects.get()
    now = email.next_attempt_at
    for _ in range(12):  # three hours of retries against a refused connection
        delivery.warning_emails_send(now=now)
        email.refresh_from_db()
        assert email.status == "pending" and email.attempts == 0
        assert email.next_attempt_at - now <= timedelta(minutes=30)
        now = email.next_attempt_at
    assert now - email.created_at >= timedelta(hours=3)
    smtp.start()
    assert delivery.warning_emails_send(now=now).sent == 1
    assert len(smtp.inbox.messages) == 1


def test_an_email_the_server_never_took_is_given_up_after_the_maximum_age(smtp, term, settings):
    settings.ROLLCALL_WARNING_EMAIL_MAX_AGE_DAYS = 3
    course, _, sam, _ = term
    _below(course, sam)
    smtp.stop()
    run_beat_task()
    email = WarningEmail.objects.get()
    delivery.warning_emails_send(now=email.created_at + timedelta(days=2))
    assert WarningEmail.objects.get().status == "pending"
    delivery.warning_emails_send(now=email.created_at + timedelta(days=3, minutes=1))
    email.refresh_from_db()
    assert email.status == "failed" and "ConnectionRefusedError" in email.last_error


def test_my_warnings_shows_the_rate_to_one_decimal_so_it_is_never_shown_at_the_threshold(term, client):
    course, _, sam, _ = term
    AttendanceWarning.objects.create(course=course, student=sam, rate=0.746, threshold=0.75, attended=0, counted=0)
    client.force_login(sam)
    page = client.get(reverse("my-warnings")).content.decode()
    assert "74.6 %" in page and "75 %" in page and page.count("75 %") == 1
