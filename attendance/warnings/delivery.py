"""Sending the warning emails: each is marked sent only once the SMTP server accepted it.

A row is locked while it is sent (SELECT ... FOR UPDATE SKIP LOCKED), so two workers never send the
same one. A temporary refusal (4xx: a full mailbox, greylisting) leaves it waiting, tried again after
a growing pause; a permanent refusal of the address or message (5xx), ROLLCALL_WARNING_EMAIL_ATTEMPTS
such refusals, or a message that cannot be sent at all (a bad header) ends it as "not sent", with the
reason. A refused connection, a timeout or a dropped connection says nothing about the message: it is
not counted as a try, only waited out, until the email is ROLLCALL_WARNING_EMAIL_MAX_AGE_DAYS old.
Its Message-ID is derived from its key: were the worker to die between the server's "250 OK" and the
commit, the one resend carries the same Message-ID, which mail systems use to drop duplicates.
"""

from __future__ import annotations

import hashlib
import logging
import smtplib
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone

from attendance.models import WarningEmail

logger = logging.getLogger(__name__)

MAX_PAUSE = timedelta(hours=6)
BATCH = 200


@dataclass(frozen=True)
class Delivery:
    sent: int
    waiting: int
    failed: int


def message_id(email: WarningEmail) -> str:
    digest = hashlib.sha256(email.key.encode()).hexdigest()[:32]
    domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2].strip("> ") or "rollcall.invalid"
    return f"<rollcall-{digest}@{domain}>"


def _message(email: WarningEmail) -> EmailMessage:
    return EmailMessage(
        subject=email.subject, body=email.body, to=[email.to_address],
        headers={"Message-ID": message_id(email), "X-Rollcall-Key": email.key},
    )


def is_permanent(exc: BaseException) -> bool:
    """A refusal that the same message to the same address will meet again (5xx for it)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPDataError):
        return exc.smtp_code >= 500
    return False


def is_connection_failure(exc: BaseException) -> bool:
    """The server could not be reached or went away (an outage), rather than answering about this message."""
    if isinstance(exc, smtplib.SMTPConnectError | smtplib.SMTPServerDisconnected):
        return True
    # smtplib's errors are OSErrors too; any other OSError is the network's (refused, timed out, reset).
    return isinstance(exc, OSError) and not isinstance(exc, smtplib.SMTPException)


def outage_pause(age: timedelta) -> timedelta:
    """While the server is unreachable: a pause as long as the email has waited, from 1 to 30 minutes."""
    return min(max(age, timedelta(minutes=1)), timedelta(minutes=30))


def pause(attempts: int) -> timedelta:
    """1, 2, 4, ... minutes after each failed try, at most six hours."""
    return min(timedelta(minutes=2 ** max(attempts - 1, 0)), MAX_PAUSE)


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "; ".join(f"{addr}: {code} {_text(msg)}" for addr, (code, msg) in exc.recipients.items())
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {_text(exc.smtp_error)}"
    return f"{type(exc).__name__}: {exc}"


def _failure(email: WarningEmail, exc: Exception, now: datetime) -> None:
    """Record why `email` was not sent: waiting for another try, or given up ("not sent")."""
    email.last_error = _describe(exc)[:500]
    too_old = now - email.created_at >= timedelta(days=settings.ROLLCALL_WARNING_EMAIL_MAX_AGE_DAYS)
    if is_connection_failure(exc):
        give_up = too_old
        email.next_attempt_at = now + outage_pause(now - email.created_at)
    elif isinstance(exc, smtplib.SMTPException):
        email.attempts += 1
        give_up = too_old or is_permanent(exc) or email.attempts >= settings.ROLLCALL_WARNING_EMAIL_ATTEMPTS
        email.next_attempt_at = now + pause(email.attempts)
    else:  # the message itself cannot be sent (e.g. BadHeaderError): trying again would fail again
        email.attempts += 1
        give_up = True
        logger.exception("warning email %s cannot be sent", email.key)
    if give_up:
        email.status = WarningEmail.Status.FAILED
        logger.warning("warning email %s not sent, giving up: %s", email.key, email.last_error)
    else:
        logger.info("warning email %s not sent yet (try %s): %s", email.key, email.attempts, email.last_error)
    email.save(update_fields=["attempts", "last_error", "status", "next_attempt_at"])


def _send_one(pk: int, now: datetime) -> str | None:
    """"sent", "waiting" or "failed"; None when another worker holds the row or it is done."""
    with transaction.atomic():
        email = (
            WarningEmail.objects.select_for_update(skip_locked=True)
            .filter(pk=pk, status=WarningEmail.Status.PENDING).first()
        )
        if email is None:
            return None
        try:
            _message(email).send(fail_silently=False)
        except Exception as exc:  # whatever it is, this row must not block the others
            _failure(email, exc, now)
            return "failed" if email.status == WarningEmail.Status.FAILED else "waiting"
        email.attempts += 1
        email.status = WarningEmail.Status.SENT
        email.sent_at = timezone.now()
        email.last_error = ""
        email.save(update_fields=["attempts", "last_error", "status", "sent_at"])
        return "sent"


def warning_emails_send(*, now: datetime | None = None) -> Delivery:
    """Send every warning email that is due."""
    now = now or timezone.now()
    due = list(
        WarningEmail.objects.filter(status=WarningEmail.Status.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:BATCH]
    )
    counts = {"sent": 0, "waiting": 0, "failed": 0}
    for pk in due:
        outcome = _send_one(pk, now)
        if outcome is not None:
            counts[outcome] += 1
    return Delivery(**counts)
