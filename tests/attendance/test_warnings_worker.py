"""Warnings end to end: the beat task in a real Celery worker (Redis broker, the test PostgreSQL)
emails a real SMTP server on loopback; and two senders at once deliver each email once."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from attendance import tasks
from attendance.models import AttendanceRecord, Course, CourseMembership, Session, WarningEmail
from attendance.warnings import delivery, services
from tests.attendance.smtp_server import Inbox, SmtpServer

pytestmark = pytest.mark.slow


def _student_below(make_user) -> Course:
    course = Course.objects.create(code="NET1", title="Networks", term="2026-autumn")
    sam = make_user("student", username="sam", first_name="Sam", last_name="Stone", email="sam@uni.example")
    CourseMembership.objects.create(course=course, student=sam, joined_at=datetime(2026, 9, 1, tzinfo=UTC))
    for day in range(3):
        start = datetime(2026, 10, 1 + day, 9, tzinfo=UTC)
        session = Session.objects.create(course=course, status=Session.Status.CLOSED, scheduled_start=start,
                                         opened_at=start, closed_at=start + timedelta(hours=1))
        AttendanceRecord.objects.create(session=session, student=sam, status="absent", method="auto")
    return course


@pytest.fixture
def smtp_for_worker(monkeypatch):
    server = SmtpServer()
    server.start()
    # Read by the worker subprocess's settings (it inherits this environment).
    monkeypatch.setenv("ROLLCALL_TEST_EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
    monkeypatch.setenv("EMAIL_HOST", "127.0.0.1")
    monkeypatch.setenv("EMAIL_PORT", str(server.port))
    monkeypatch.setenv("DEFAULT_FROM_EMAIL", "rollcall@uni.example")
    yield server
    server.stop()


@pytest.fixture
def worker_with_smtp(smtp_for_worker, celery_worker_process):
    return smtp_for_worker, celery_worker_process


def test_the_beat_task_in_a_real_worker_emails_the_student_once(worker_with_smtp, make_user):
    smtp, worker = worker_with_smtp
    _student_below(make_user)
    assert tasks.warnings_check.delay().get(timeout=60) == 1, worker.log()[-3000:]
    assert tasks.warnings_check.delay().get(timeout=60) == 0  # the same crossing: nothing new
    [message] = smtp.inbox.messages
    assert message["To"] == "sam@uni.example" and message["Subject"] == "Your attendance in NET1 is below 75 %"
    assert WarningEmail.objects.get().status == "sent"


def test_each_student_is_emailed_in_their_own_language_by_the_real_worker(worker_with_smtp, make_user):
    """The worker has no reader: each email is written in its recipient's saved language, whatever the
    site's default, and arrives as UTF-8 with the Croatian letters intact."""
    smtp, worker = worker_with_smtp
    course = _student_below(make_user)
    iva = make_user("student", username="iva", first_name="Iva", last_name="Šarić", email="iva@uni.example",
                    language="hr")
    CourseMembership.objects.create(course=course, student=iva, joined_at=datetime(2026, 9, 1, tzinfo=UTC))
    for session in Session.objects.filter(course=course):
        AttendanceRecord.objects.create(session=session, student=iva, status="absent", method="auto")
    assert tasks.warnings_check.delay().get(timeout=60) == 2, worker.log()[-3000:]
    by_recipient = {message["To"]: message for message in smtp.inbox.messages}
    assert set(by_recipient) == {"sam@uni.example", "iva@uni.example"}
    assert by_recipient["sam@uni.example"]["Subject"] == "Your attendance in NET1 is below 75 %"
    croatian = by_recipient["iva@uni.example"]
    assert croatian["Subject"] == "Vaša je prisutnost na kolegiju NET1 ispod 75 %"
    body = croatian.get_body(preferencelist=("plain",)).get_content()
    assert "Iva" in body and "prisutnost" in body and "attendance" not in body.lower().replace("/attendance", "")


class _HeldInbox(Inbox):
    """Stores the first message, then holds its answer until the test releases it (or the client gives up:
    aiosmtpd drops a handler whose connection is gone, so what is stored must be stored first)."""

    def __init__(self) -> None:
        super().__init__()
        self.data_started = threading.Event()
        self.release = threading.Event()
        self.hold_once = True

    async def handle_DATA(self, server, session, envelope):
        reply = await super().handle_DATA(server, session, envelope)
        if self.hold_once:
            self.hold_once = False
            self.data_started.set()
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 120)
        return reply


def _held_server(settings) -> SmtpServer:
    server = SmtpServer()
    server.inbox = _HeldInbox()
    server.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
    return server


def test_two_senders_at_once_deliver_an_email_once(transactional_db, make_user, settings):
    server = _held_server(settings)
    inbox = server.inbox
    assert isinstance(inbox, _HeldInbox)
    settings.EMAIL_TIMEOUT = 120
    try:
        _student_below(make_user)
        services.warnings_check()
        outcomes: dict[str, delivery.Delivery] = {}

        def send(name: str) -> None:
            try:
                outcomes[name] = delivery.warning_emails_send()
            finally:
                connection.close()

        first = threading.Thread(target=send, args=("first",))
        first.start()
        assert inbox.data_started.wait(timeout=60)
        # The first sender is inside DATA, holding the row, until released: the second runs to its end
        # meanwhile, so it certainly met the lock and skipped the row rather than sending it again.
        second = threading.Thread(target=send, args=("second",))
        second.start()
        second.join(timeout=60)
        assert outcomes["second"] == delivery.Delivery(sent=0, waiting=0, failed=0) and first.is_alive()
        inbox.release.set()
        first.join(timeout=60)
        assert outcomes["first"].sent == 1
        assert len(inbox.messages) == 1
        assert WarningEmail.objects.get().attempts == 1
    finally:
        inbox.release.set()
        server.stop()


def test_a_server_that_goes_silent_is_given_up_on_and_a_late_copy_carries_the_same_message_id(
    db, make_user, settings
):
    # SMTP's one ambiguous case (RFC 5321 section 6.1): the server stores the message but its "250 OK"
    # never arrives. The email stays waiting and is sent again; both copies carry one Message-ID, which
    # mail systems use to drop the duplicate. What Rollcall records is the copy it knows was accepted.
    server = _held_server(settings)
    inbox = server.inbox
    assert isinstance(inbox, _HeldInbox)
    settings.EMAIL_TIMEOUT = 3  # the server stays silent until released, however long the client waits
    try:
        _student_below(make_user)
        services.warnings_check()
        assert delivery.warning_emails_send().sent == 0
        email = WarningEmail.objects.get()
        assert email.status == "pending" and "timed out" in email.last_error.lower()
        assert email.attempts == 0  # a silent server is an outage, not a try used up
        assert len(inbox.messages) == 1  # stored, though the client never heard so
        inbox.release.set()
        assert delivery.warning_emails_send(now=email.next_attempt_at).sent == 1
        assert len(inbox.messages) == 2
        assert {m["Message-ID"] for m in inbox.messages} == {delivery.message_id(email)}
        assert WarningEmail.objects.get().attempts == 1
    finally:
        inbox.release.set()
        server.stop()
