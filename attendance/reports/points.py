"""Attendance points: each status earns the points of the course's status set (Moodle attendance's
defaults: present 2, late 1, excused 1, absent 0), out of the best status's points for every session
held (closed) since the student joined. A held session with no record earns what an absence earns."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from django.db.models import Count
from django.utils.translation import gettext_lazy as _

from attendance.models import AttendanceRecord, Course, CourseGrading, CourseMembership
from attendance.reports.rates import Period, counted_records, held_times

Status = AttendanceRecord.Status

POINTS_DEFINITION = _(
    "Points = the points of each session's status, summed over the sessions held (closed) since the "
    "student joined; a session without a record counts as an absence. Possible = sessions held times the "
    "points of the best status."
)


@dataclass(frozen=True)
class Scheme:
    """Points per status."""

    present: int = 2
    late: int = 1
    excused: int = 1
    absent: int = 0

    @property
    def best(self) -> int:
        return max(self.present, self.late, self.excused, self.absent)

    def of(self, status: str) -> int:
        return {
            Status.PRESENT: self.present, Status.LATE: self.late, Status.EXCUSED: self.excused,
            Status.ABSENT: self.absent,
        }[Status(status)]


DEFAULT_SCHEME = Scheme()


def scheme_of(grading: CourseGrading | None) -> Scheme:
    if grading is None:
        return DEFAULT_SCHEME
    return Scheme(
        present=grading.points_present, late=grading.points_late, excused=grading.points_excused,
        absent=grading.points_absent,
    )


def schemes_for(course_ids: Iterable[int]) -> dict[int, Scheme]:
    """Each course's scheme; courses without a grading row get the defaults."""
    ids = set(course_ids)
    found = {g.course_id: scheme_of(g) for g in CourseGrading.objects.filter(course_id__in=ids)}
    return {course_id: found.get(course_id, DEFAULT_SCHEME) for course_id in ids}


def course_scheme(course: Course) -> Scheme:
    return scheme_of(CourseGrading.objects.filter(course=course).first())


@dataclass(frozen=True)
class Points:
    earned: int
    possible: int

    @property
    def share(self) -> float | None:
        return self.earned / self.possible if self.possible > 0 else None


NO_POINTS = Points(0, 0)


def points_for(
    memberships: Sequence[CourseMembership], *, period: Period | None = None,
    times: dict[int, list[datetime]] | None = None,
) -> dict[int, Points]:
    """Each membership's points (by membership id), in four queries whatever the number of students
    (three when the caller passes the courses' held_times() for the period)."""
    if not memberships:
        return {}
    period = period or Period()
    course_ids = {m.course_id for m in memberships}
    student_ids = {m.student_id for m in memberships}
    schemes = schemes_for(course_ids)
    times = held_times(course_ids=course_ids, period=period) if times is None else times
    records = counted_records(course_ids=course_ids, period=period)
    if len(student_ids) == 1:
        records = records.filter(student_id__in=student_ids)
    grouped = records.values("session__course_id", "student_id", "status").annotate(n=Count("pk"))
    counts: dict[tuple[int, int], dict[str, int]] = {}
    for row in cast(Iterable[dict[str, Any]], grouped):
        counts.setdefault((row["session__course_id"], row["student_id"]), {})[row["status"]] = row["n"]
    points = {}
    for m in memberships:
        scheme = schemes[m.course_id]
        course_times = times.get(m.course_id, [])
        held = len(course_times) - bisect_left(course_times, m.joined_at)
        by_status = counts.get((m.course_id, m.student_id), {})
        recorded = sum(by_status.values())
        earned = sum(scheme.of(status) * n for status, n in by_status.items())
        earned += max(held - recorded, 0) * scheme.absent
        points[m.pk] = Points(earned=earned, possible=held * scheme.best)
    return points
