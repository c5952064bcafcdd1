"""Attendance rates: which sessions count as held, and each student's rate over a period.

A session counts once it is closed; its records count as attended when present or late. An open
session is "in progress": a session left open by mistake must not pull a course's rates down (four
forgotten open sessions once flagged a whole course below 75 %, issue 16)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, cast

from django.conf import settings
from django.db.models import (
    Count,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from attendance.models import AttendanceRecord, Course, CourseMembership, Session, User

RATE_DEFINITION = (
    "Attendance rate = sessions attended (present or late) ÷ sessions held (closed) since the "
    "student joined the course; a session still open is in progress and not counted yet. "
    "Sessions where the student was excused are left out of both."
)


HELD_STATUSES = (Session.Status.CLOSED,)


ATTENDED_STATUSES = (AttendanceRecord.Status.PRESENT, AttendanceRecord.Status.LATE)


COURSE_PAGE_SIZE = 50


SESSION_PAGE_SIZE = 100


STUDENT_PAGE_SIZE = 100


class SubqueryCount(Subquery):
    """COUNT(*) of a correlated subquery: one SQL expression however many rows it counts."""

    template = "(SELECT COUNT(*) FROM (%(subquery)s) _count)"
    output_field = IntegerField()

    def __init__(self, queryset: QuerySet) -> None:
        # Without order_by() the models' default ordering joins users and courses just to sort rows
        # that are only counted (it made the course report four times slower).
        super().__init__(queryset.order_by().values("pk"))


def _held_at(prefix: str = "") -> Coalesce:
    """When a session took place: its scheduled start, else when it was opened (or closed)."""
    return Coalesce(f"{prefix}scheduled_start", f"{prefix}opened_at", f"{prefix}closed_at")


@dataclass(frozen=True)
class Period:
    """An inclusive range of calendar days in the site's time zone; either end may be open."""

    start: date | None = None
    end: date | None = None

    def bounds(self) -> tuple[datetime | None, datetime | None]:
        tz = timezone.get_current_timezone()
        low = datetime.combine(self.start, time.min, tzinfo=tz) if self.start else None
        high = datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=tz) if self.end else None
        return low, high

    def q(self, field_name: str = "held_at") -> Q:
        low, high = self.bounds()
        q = Q()
        if low is not None:
            q &= Q(**{f"{field_name}__gte": low})
        if high is not None:
            q &= Q(**{f"{field_name}__lt": high})
        return q

    @property
    def is_bounded(self) -> bool:
        return self.start is not None or self.end is not None


def sessions_in_progress(*, course: Course) -> QuerySet[Session]:
    """The course's open sessions: shown as "in progress", counted once they close."""
    return Session.objects.filter(course=course, status=Session.Status.OPEN).order_by("opened_at", "pk")


def held_sessions(*, period: Period | None = None) -> QuerySet[Session]:
    sessions = Session.objects.filter(status__in=HELD_STATUSES).annotate(held_at=_held_at())
    return sessions.filter((period or Period()).q())


@dataclass(frozen=True)
class Rate:
    """One student's standing in one course: sessions held since joining, excused and attended."""

    held: int
    excused: int
    attended: int

    @property
    def counted(self) -> int:
        return self.held - self.excused

    @property
    def rate(self) -> float | None:
        return self.attended / self.counted if self.counted > 0 else None


NO_RATE = Rate(0, 0, 0)


def held_times(*, course_ids: Iterable[int], period: Period) -> dict[int, list[datetime]]:
    """Each course's held-session times in the period, sorted (for counting with bisect)."""
    times: dict[int, list[datetime]] = {}
    rows = held_sessions(period=period).filter(course_id__in=list(course_ids)).order_by().values_list(
        "course_id", "held_at"  # type: ignore[misc]  # an annotation the stubs cannot see
    )
    for course_id, held_at in rows:
        times.setdefault(course_id, []).append(held_at)
    for values in times.values():
        values.sort()
    return times


def counted_records(*, course_ids: Iterable[int], period: Period) -> QuerySet[AttendanceRecord]:
    """Records of held sessions in the period, kept only where the student was on the course by then.

    One semi-join, grouped by the callers: a fixed number of queries and one pass over the records,
    however many students and sessions the course has.
    """
    on_course = CourseMembership.objects.filter(
        course_id=OuterRef("session__course_id"), student_id=OuterRef("student_id"), joined_at__lte=OuterRef("held_at")
    )
    return (
        AttendanceRecord.objects.filter(session__course_id__in=list(course_ids), session__status__in=HELD_STATUSES)
        .annotate(held_at=_held_at("session__"))
        .filter(period.q(), Exists(on_course))
        .order_by()
    )


COUNTS = {
    "attended": Count("pk", filter=Q(status__in=ATTENDED_STATUSES)),
    "excused": Count("pk", filter=Q(status=AttendanceRecord.Status.EXCUSED)),
}


def rates_for(
    memberships: Sequence[CourseMembership], *, period: Period | None = None,
    times: dict[int, list[datetime]] | None = None,
) -> dict[int, Rate]:
    """The attendance rate behind each membership (by membership id), in three queries at most.

    `times`: the courses' held_times() for the same period, when the caller already has them."""
    if not memberships:
        return {}
    period = period or Period()
    course_ids = {m.course_id for m in memberships}
    student_ids = {m.student_id for m in memberships}
    times = held_times(course_ids=course_ids, period=period) if times is None else times
    records = counted_records(course_ids=course_ids, period=period)
    if len(student_ids) == 1:
        records = records.filter(student_id__in=student_ids)
    grouped = records.values("session__course_id", "student_id").annotate(**COUNTS)
    counts = {
        (row["session__course_id"], row["student_id"]): (row["attended"], row["excused"])
        for row in cast(Iterable[dict[str, Any]], grouped)
    }
    rates = {}
    for m in memberships:
        course_times = times.get(m.course_id, [])
        held = len(course_times) - bisect_left(course_times, m.joined_at)  # held at or after joining
        attended, excused = counts.get((m.course_id, m.student_id), (0, 0))
        rates[m.pk] = Rate(held=held, excused=excused, attended=attended)
    return rates


def low_rate_threshold() -> float:
    value = settings.ROLLCALL_LOW_ATTENDANCE_RATE
    return 0.75 if value is None else float(value)


def name_key(student: User) -> tuple[str, str, str]:
    return (student.last_name.casefold(), student.first_name.casefold(), student.username)


def courses_with_stats(courses: QuerySet[Course]) -> QuerySet[Course]:
    """Courses with their student, held-session and open-session counts, for the course list."""
    members = CourseMembership.objects.filter(course_id=OuterRef("pk"))
    held = Session.objects.filter(course_id=OuterRef("pk"), status__in=HELD_STATUSES)
    open_ = Session.objects.filter(course_id=OuterRef("pk"), status=Session.Status.OPEN)
    return courses.annotate(
        student_count=SubqueryCount(members),
        held_count=SubqueryCount(held),
        open_count=SubqueryCount(open_),
    ).order_by("-term", "code")
