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
from django.utils.translation import gettext_lazy as _

from attendance.models import AttendanceRecord, Course, CourseMembership, Session, User

RATE_DEFINITION = _(
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


@dataclass(frozen=True)
class GroupSession:
    """A held session planned for a group of the course's students (its timetable series has one)."""

    course_id: int
    held_at: datetime
    members: frozenset[int]


def held_times_and_groups(
    *, course_ids: Iterable[int], period: Period
) -> tuple[dict[int, list[datetime]], dict[int, GroupSession]]:
    """Each course's held-session times in the period, sorted (for counting with bisect), and the
    group sessions among them (students outside a group were never expected there), in one query:
    a group session comes once per member of its group."""
    times: dict[int, list[datetime]] = {}
    members: dict[int, tuple[int, datetime, set[int]]] = {}
    seen: set[int] = set()
    rows = held_sessions(period=period).filter(course_id__in=list(course_ids)).order_by().values_list(
        "pk", "course_id", "held_at", "series__students"  # type: ignore[misc]  # an annotation the stubs cannot see
    )
    for pk, course_id, held_at, student_id in rows:
        if pk not in seen:
            seen.add(pk)
            times.setdefault(course_id, []).append(held_at)
        if student_id is not None:
            members.setdefault(pk, (course_id, held_at, set()))[2].add(student_id)
    for values in times.values():
        values.sort()
    return times, {pk: GroupSession(c, h, frozenset(m)) for pk, (c, h, m) in members.items()}


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


HeldTimes = tuple[dict[int, list[datetime]], dict[int, GroupSession]]
"""held_times_and_groups()'s answer: each course's held-session times, and the group sessions."""


def expected_sessions(membership: CourseMembership, held: HeldTimes) -> int:
    """How many of the held sessions the student was expected at: those at or after joining,
    less the group sessions of groups they are not in."""
    times, groups = held
    course_times = times.get(membership.course_id, [])
    count = len(course_times) - bisect_left(course_times, membership.joined_at)
    return count - sum(
        1 for g in groups.values()
        if g.course_id == membership.course_id and g.held_at >= membership.joined_at
        and membership.student_id not in g.members
    )


def rates_for(
    memberships: Sequence[CourseMembership], *, period: Period | None = None, held: HeldTimes | None = None,
) -> dict[int, Rate]:
    """The attendance rate behind each membership (by membership id), in three queries at most.

    `held`: the courses' held_times_and_groups() for the same period, when the caller has them."""
    if not memberships:
        return {}
    period = period or Period()
    course_ids = {m.course_id for m in memberships}
    student_ids = {m.student_id for m in memberships}
    held = held_times_and_groups(course_ids=course_ids, period=period) if held is None else held
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
        attended, excused = counts.get((m.course_id, m.student_id), (0, 0))
        rates[m.pk] = Rate(held=expected_sessions(m, held), excused=excused, attended=attended)
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
