"""The text of the warning emails, rendered in the recipient's language through gettext.

Written when the warning is raised and stored with the WarningEmail row, so the record says exactly
what was sent, and a retry sends the same words.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _

from attendance.models import AttendanceWarning, Course, User
from attendance.platform.language import supported


@dataclass(frozen=True)
class Text:
    subject: str
    body: str


@dataclass(frozen=True)
class DigestLine:
    student: User
    rate: float | None
    attended: int
    counted: int
    since: datetime
    new: bool


def language_of(user: User) -> str:
    """The language a person reads their email in: the one saved on their account (the language menu),
    else the site's. A saved code the site no longer offers falls back to the site's too."""
    return supported(str(getattr(user, "language", "") or "")) or settings.LANGUAGE_CODE


def percent(rate: float | None) -> str:
    """A student's rate to one decimal (rounded, 2 of 3 is 66.7), in the reader's locale."""
    return "" if rate is None else formats.number_format(round(rate * 100, 1), decimal_pos=1, use_l10n=True)


def whole_percent(rate: float) -> str:
    """A threshold: set as a whole percentage (the grading form)."""
    return formats.number_format(round(rate * 100), use_l10n=True)


def _url(name: str, *args: object) -> str:
    return settings.ROLLCALL_SITE_URL + reverse(name, args=args)


def _course_context(course: Course) -> dict[str, object]:
    return {"code": course.code, "title": course.title, "term": course.term}


def student_text(*, warning: AttendanceWarning, student: User) -> Text:
    with translation.override(language_of(student)):
        context = {
            **_course_context(warning.course), "name": student.display_name, "rate": percent(warning.rate),
            "threshold": whole_percent(warning.threshold), "attended": warning.attended, "counted": warning.counted,
            "url": _url("my-warnings"),
        }
        subject = _("Your attendance in %(code)s is below %(threshold)s %%") % context
        return Text(subject=subject, body=render_to_string("warnings/email/student.txt", context))


def lecturer_text(*, warning: AttendanceWarning, lecturer: User) -> Text:
    student = warning.student
    with translation.override(language_of(lecturer)):
        context = {
            **_course_context(warning.course), "name": lecturer.display_name, "student": student.display_name,
            "number": student.student_number, "rate": percent(warning.rate),
            "threshold": whole_percent(warning.threshold),
            "attended": warning.attended, "counted": warning.counted,
            "url": _url("student-report", student.pk),
        }
        subject = _("%(student)s is below %(threshold)s %% attendance in %(code)s") % context
        return Text(subject=subject, body=render_to_string("warnings/email/lecturer.txt", context))


def digest_text(*, course: Course, lecturer: User, threshold: float, lines: list[DigestLine]) -> Text:
    with translation.override(language_of(lecturer)):
        context = {
            **_course_context(course), "name": lecturer.display_name, "threshold": whole_percent(threshold),
            "count": len(lines), "url": _url("course-report", course.pk),
            "lines": [
                {"student": line.student.display_name, "number": line.student.student_number,
                 "rate": percent(line.rate), "attended": line.attended, "counted": line.counted,
                 "since": formats.date_format(timezone.localtime(line.since), "DATE_FORMAT"), "new": line.new}
                for line in lines
            ],
        }
        subject = _("Weekly attendance digest of %(code)s: %(count)s below %(threshold)s %%") % context
        return Text(subject=subject, body=render_to_string("warnings/email/digest.txt", context))
