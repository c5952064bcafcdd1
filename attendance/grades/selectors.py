"""The gradebook: each student's attendance points, in the columns an LMS gradebook import maps."""

from __future__ import annotations

from collections.abc import Iterator

from django.utils.translation import gettext as _

from attendance.models import Course, CourseMembership
from attendance.reports.exports import Percent, Value
from attendance.reports.points import points_for
from attendance.reports.rates import name_key


def gradebook_rows(*, course: Course) -> Iterator[list[Value]]:
    """Header first; one row per student on the course, by name.

    Moodle's and Canvas's imports match students by an identifier column (ID number, username or
    email) and let the teacher map the grade column; the percentage is the grade."""
    memberships = sorted(
        CourseMembership.objects.filter(course=course).select_related("student").order_by(),
        key=lambda m: name_key(m.student),
    )
    points = points_for(memberships)
    yield [
        _("Student number"), _("Username"), _("Email address"), _("Last name"), _("First name"),
        _("Attendance points"), _("Possible points"), _("Attendance grade (%)"),
    ]
    for m in memberships:
        p, student = points[m.pk], m.student
        yield [
            student.student_number, student.username, student.email, student.last_name, student.first_name,
            p.earned, p.possible, Percent(p.share),
        ]
