"""Attendance warnings: a student whose rate in a course falls below its threshold is warned once
per crossing, and the course's lecturers get a weekly digest if they asked for one.

Run by Celery beat (attendance.tasks). A crossing is an AttendanceWarning row; the database allows
one open warning per student and course, so two sweeps at once raise it once. The emails are
written in the same transaction as the warning and sent afterwards (attendance.warnings.delivery),
so a warning is never without its email, nor an email sent for a warning that was rolled back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from attendance.models import (
    AttendanceWarning,
    Course,
    CourseGrading,
    CourseMembership,
    Session,
    User,
    WarningEmail,
)
from attendance.reports.rates import HELD_STATUSES, Rate, low_rate_threshold, name_key, rates_for
from attendance.warnings import emails

logger = logging.getLogger(__name__)

DEFAULT_MIN_SESSIONS = CourseGrading._meta.get_field("warning_min_sessions").get_default()
DIGEST_HOUR = 7  # local time: the first sweep of the week from then sends the week's digest


@dataclass(frozen=True)
class WarningCheck:
    crossed: int
    recovered: int


@dataclass(frozen=True)
class Policy:
    enabled: bool
    threshold: float
    min_sessions: int
    warn_lecturers: bool
    digest: bool


def course_policy(grading: CourseGrading | None) -> Policy:
    if grading is None:
        return Policy(True, low_rate_threshold(), DEFAULT_MIN_SESSIONS, False, False)
    threshold = low_rate_threshold() if grading.warning_rate is None else grading.warning_rate
    return Policy(
        grading.warnings_enabled, threshold, grading.warning_min_sessions, grading.warn_lecturers,
        grading.lecturer_digest,
    )


def is_below(rate: Rate, policy: Policy) -> bool:
    return rate.rate is not None and rate.counted >= policy.min_sessions and rate.rate < policy.threshold


def _email(*, key: str, kind: str, course: Course, recipient: User, text: emails.Text,
           warning: AttendanceWarning | None = None) -> WarningEmail:
    return WarningEmail.objects.create(
        key=key, kind=kind, course=course, warning=warning, recipient=recipient, to_address=recipient.email,
        subject=" ".join(text.subject.split())[:200], body=text.body,
    )


def _warning_raise(*, membership: CourseMembership, rate: Rate, policy: Policy, now: datetime) -> bool:
    """Record the crossing and write its emails; False when another sweep recorded it first."""
    course, student = membership.course, membership.student
    try:
        with transaction.atomic():
            warning = AttendanceWarning.objects.create(
                course=course, student=student, rate=rate.rate or 0.0, threshold=policy.threshold,
                attended=rate.attended, counted=rate.counted, crossed_at=now,
            )
            if student.email:
                _email(key=f"warning-{warning.pk}-student", kind=WarningEmail.Kind.STUDENT, course=course,
                       recipient=student, warning=warning,
                       text=emails.student_text(warning=warning, student=student))
            if policy.warn_lecturers:
                for lecturer in course.lecturers.exclude(email="").order_by("pk"):
                    _email(key=f"warning-{warning.pk}-lecturer-{lecturer.pk}", kind=WarningEmail.Kind.LECTURER,
                           course=course, recipient=lecturer, warning=warning,
                           text=emails.lecturer_text(warning=warning, lecturer=lecturer))
    except IntegrityError:
        return False  # the open-warning constraint: this crossing is already recorded
    return True


def _courses_with_held_sessions() -> list[Course]:
    held = Session.objects.filter(course_id=OuterRef("pk"), status__in=HELD_STATUSES)
    return list(Course.objects.filter(Exists(held)).order_by("pk"))


def warnings_check(*, now: datetime | None = None) -> WarningCheck:
    """Warn each student newly below their course's threshold; close the warnings of those back above."""
    now = now or timezone.now()
    gradings = {g.course_id: g for g in CourseGrading.objects.all()}
    crossed = recovered = 0
    for course in _courses_with_held_sessions():
        policy = course_policy(gradings.get(course.pk))
        if not policy.enabled:
            continue
        memberships = list(CourseMembership.objects.filter(course=course).select_related("course", "student"))
        rates = rates_for(memberships)
        open_warnings = {
            w.student_id: w for w in AttendanceWarning.objects.filter(course=course, recovered_at__isnull=True)
        }
        for membership in memberships:
            rate, warning = rates[membership.pk], open_warnings.get(membership.student_id)
            if warning is None and is_below(rate, policy):
                crossed += _warning_raise(membership=membership, rate=rate, policy=policy, now=now)
            elif warning is not None and rate.rate is not None and rate.rate >= policy.threshold:
                # Back at or above: the next fall is a new crossing with a new email.
                recovered += AttendanceWarning.objects.filter(pk=warning.pk, recovered_at__isnull=True).update(
                    recovered_at=now
                )
    if crossed or recovered:
        logger.info("attendance warnings: %s new, %s recovered", crossed, recovered)
    return WarningCheck(crossed=crossed, recovered=recovered)


def digest_key(*, course: Course, lecturer: User, now: datetime) -> str:
    year, week, _ = timezone.localtime(now).isocalendar()
    return f"digest-{course.pk}-{lecturer.pk}-{year}-W{week:02d}"


def _digest_lines(course: Course, warnings: list[AttendanceWarning], now: datetime) -> list[emails.DigestLine]:
    students = [w.student_id for w in warnings]
    memberships = {m.student_id: m for m in CourseMembership.objects.filter(course=course, student__in=students)}
    rates = rates_for(list(memberships.values()))
    lines = []
    for w in sorted(warnings, key=lambda w: name_key(w.student)):
        membership = memberships.get(w.student_id)
        if membership is None:
            continue  # left the course
        rate = rates[membership.pk]
        lines.append(emails.DigestLine(
            student=w.student, rate=rate.rate, attended=rate.attended, counted=rate.counted, since=w.crossed_at,
            new=w.crossed_at >= now - timedelta(days=7),
        ))
    return lines


def warning_digests_queue(*, now: datetime | None = None) -> int:
    """Write this week's digest for each lecturer who asked for one, once: from Monday 07:00 local time,
    about the students of the course below its threshold (none below: no digest)."""
    now = now or timezone.now()
    local = timezone.localtime(now)
    monday = local - timedelta(days=local.weekday())
    monday_seven = monday.replace(hour=DIGEST_HOUR, minute=0, second=0, microsecond=0)
    if local < monday_seven:
        return 0  # Monday before seven: last week's digest went out, this week's waits
    written = 0
    for grading in CourseGrading.objects.filter(lecturer_digest=True, warnings_enabled=True).select_related("course"):
        course, policy = grading.course, course_policy(grading)
        lecturers = [
            lecturer for lecturer in course.lecturers.exclude(email="").order_by("pk")
            if not WarningEmail.objects.filter(key=digest_key(course=course, lecturer=lecturer, now=now)).exists()
        ]
        if not lecturers:
            continue
        warnings = list(
            AttendanceWarning.objects.filter(course=course, recovered_at__isnull=True).select_related("student")
        )
        lines = _digest_lines(course, warnings, now)
        if not lines:
            continue
        for lecturer in lecturers:
            text = emails.digest_text(course=course, lecturer=lecturer, threshold=policy.threshold, lines=lines)
            try:
                with transaction.atomic():
                    _email(key=digest_key(course=course, lecturer=lecturer, now=now), kind=WarningEmail.Kind.DIGEST,
                           course=course, recipient=lecturer, text=text)
            except IntegrityError:
                continue  # another sweep wrote it a moment ago
            written += 1
    return written
