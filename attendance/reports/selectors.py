"""The three reports (course, session, student) as rows for pages, CSV and the API."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from django.core.paginator import Page, Paginator
from django.db.models import (
    Exists,
    OuterRef,
    Q,
    QuerySet,
)
from django.utils.translation import gettext as _

from attendance.models import AttendanceChange, AttendanceRecord, Course, CourseMembership, Session, User
from attendance.reports.points import NO_POINTS, Points, points_for
from attendance.reports.rates import (
    COUNTS,
    COURSE_PAGE_SIZE,
    SESSION_PAGE_SIZE,
    STUDENT_PAGE_SIZE,
    Period,
    Rate,
    SubqueryCount,
    counted_records,
    held_sessions,
    held_times_and_groups,
    low_rate_threshold,
    name_key,
    rates_for,
)

COURSE_SORTS = ("name", "-name", "number", "-number", "rate", "-rate")


@dataclass(frozen=True)
class Cell:
    """One student at one session. `code` is the status, or "before" (not yet on the course) or "none"."""

    code: str
    method: str = ""

    @property
    def manual(self) -> bool:
        return self.method == AttendanceRecord.Method.MANUAL

    @property
    def label(self) -> str:
        if self.code == "before":
            return _("not on the course yet")
        if self.code == "none":
            return _("no record")
        return str(AttendanceRecord.Status(self.code).label)


@dataclass(frozen=True)
class StudentRow:
    student: User
    joined_at: datetime
    attended: int
    counted: int
    rate: float | None
    low: bool
    cells: list[Cell] = field(default_factory=list)
    points: Points = NO_POINTS


@dataclass(frozen=True)
class CourseSummary:
    students: int
    sessions: int
    average_rate: float | None
    below_threshold: int
    rates: list[float]


@dataclass(frozen=True)
class CourseReport:
    course: Course
    period: Period
    sort: str
    threshold: float
    only_low: bool
    sessions: list[Session]
    summary: CourseSummary
    page: Page
    rows: list[StudentRow]


@dataclass(frozen=True)
class _Standing:
    membership: CourseMembership
    rate: Rate
    points: Points = NO_POINTS


def _sorted(standings: list[_Standing], sort: str) -> list[_Standing]:
    def name(s: _Standing) -> tuple[str, str, str]:
        return name_key(s.membership.student)

    if sort in ("name", "-name"):
        return sorted(standings, key=name, reverse=sort == "-name")
    if sort in ("number", "-number"):
        by_name = sorted(standings, key=name)
        return sorted(by_name, key=lambda s: s.membership.student.student_number, reverse=sort == "-number")
    # By rate, ties by name, and students with no rate yet always last.
    by_name = sorted(standings, key=name)
    sign = -1 if sort == "-rate" else 1
    return sorted(by_name, key=lambda s: (s.rate.rate is None, sign * (s.rate.rate or 0.0)))


def course_standings(
    *, course: Course, period: Period, sort: str = "name", threshold: float = 0.0, only_low: bool = False
) -> list[_Standing]:
    """Every student of the course with their rate, sorted and optionally only those below the threshold."""
    memberships = list(CourseMembership.objects.filter(course=course).select_related("student").order_by())
    held = held_times_and_groups(course_ids=[course.pk], period=period)
    rates = rates_for(memberships, period=period, held=held)
    points = points_for(memberships, period=period, held=held)
    standings = [_Standing(m, rates[m.pk], points[m.pk]) for m in memberships]
    if only_low:
        standings = [s for s in standings if s.rate.rate is not None and s.rate.rate < threshold]
    return _sorted(standings, sort)


def course_sessions(*, course: Course, period: Period) -> list[Session]:
    """The course's held sessions in the period, oldest first, each with attended, expected and turnout.

    Expected: students on the course by the time the session took place, less those excused.
    """
    held = held_sessions(period=period).filter(course=course)
    sessions = list(held.order_by("held_at", "pk"))  # type: ignore[misc]  # an annotation the stubs cannot see
    joined_by_student = dict(CourseMembership.objects.filter(course=course).values_list("student_id", "joined_at"))
    joined = sorted(joined_by_student.values())
    counts = {
        row["session_id"]: (row["attended"], row["excused"])
        for row in cast(
            Iterable[dict[str, Any]],
            counted_records(course_ids=[course.pk], period=period)
            .filter(session_id__in=[s.pk for s in sessions])
            .values("session_id")
            .annotate(**COUNTS),
        )
    }
    # A query of its own only where the course has group series (most have none).
    has_groups = course.series.filter(students__isnull=False).exists()
    groups = held_times_and_groups(course_ids=[course.pk], period=period)[1] if has_groups else {}
    for session in sessions:
        attended, excused = counts.get(session.pk, (0, 0))
        expected = bisect_right(joined, session.held_at) - excused  # type: ignore[attr-defined]
        if (group := groups.get(session.pk)) is not None:  # only the group was expected
            expected = sum(
                1 for student, at in joined_by_student.items() if student in group.members and at <= group.held_at
            ) - excused
        # Set like annotations, so templates, CSV and API read session.turnout alike.
        session.attended = attended  # type: ignore[attr-defined]
        session.expected = expected  # type: ignore[attr-defined]
        session.turnout = attended / expected if expected > 0 else None  # type: ignore[attr-defined]
    return sessions


def _cells_for(memberships: Sequence[CourseMembership], sessions: Sequence[Session]) -> dict[int, list[Cell]]:
    records = AttendanceRecord.objects.filter(
        session_id__in=[s.pk for s in sessions], student_id__in=[m.student_id for m in memberships]
    ).values_list("student_id", "session_id", "status", "method")
    found = {(student_id, session_id): (status, method) for student_id, session_id, status, method in records}
    cells: dict[int, list[Cell]] = {}
    for membership in memberships:
        row = []
        for session in sessions:
            status_method = found.get((membership.student_id, session.pk))
            if status_method is not None:
                row.append(Cell(code=status_method[0], method=status_method[1]))
            elif session.held_at < membership.joined_at:  # type: ignore[attr-defined]
                row.append(Cell(code="before"))
            else:
                row.append(Cell(code="none"))
        cells[membership.student_id] = row
    return cells


def _student_rows(standings: Sequence[_Standing], sessions: Sequence[Session], threshold: float) -> list[StudentRow]:
    cells = _cells_for([s.membership for s in standings], sessions)
    return [
        StudentRow(
            student=s.membership.student, joined_at=s.membership.joined_at, attended=s.rate.attended,
            counted=s.rate.counted, rate=s.rate.rate, low=s.rate.rate is not None and s.rate.rate < threshold,
            cells=cells[s.membership.student_id], points=s.points,
        )
        for s in standings
    ]


def _summary(standings: Sequence[_Standing], *, threshold: float, sessions: int) -> CourseSummary:
    rates = [r for s in standings if (r := s.rate.rate) is not None]
    return CourseSummary(
        students=len(standings),
        sessions=sessions,
        average_rate=sum(rates) / len(rates) if rates else None,
        below_threshold=sum(1 for r in rates if r < threshold),
        rates=rates,
    )


def course_report(
    *,
    course: Course,
    period: Period | None = None,
    sort: str = "name",
    threshold: float | None = None,
    only_low: bool = False,
    page_number: int | str | None = 1,
    per_page: int = COURSE_PAGE_SIZE,
) -> CourseReport:
    """A students x sessions matrix, one page of students at a time, with rates and turnouts."""
    period = period or Period()
    threshold = low_rate_threshold() if threshold is None else threshold
    sort = sort if sort in COURSE_SORTS else "name"
    sessions = course_sessions(course=course, period=period)
    everyone = course_standings(course=course, period=period, sort=sort)
    shown = [s for s in everyone if s.rate.rate is not None and s.rate.rate < threshold] if only_low else everyone
    page = Paginator(shown, per_page).get_page(page_number)
    rows = _student_rows(list(page.object_list), sessions, threshold)
    return CourseReport(
        course=course, period=period, sort=sort, threshold=threshold, only_low=only_low, sessions=sessions,
        summary=_summary(everyone, threshold=threshold, sessions=len(sessions)), page=page, rows=rows,
    )


def course_report_all_rows(
    *, course: Course, period: Period, sort: str, threshold: float, only_low: bool, sessions: Sequence[Session],
    chunk: int = 500,
) -> Iterable[StudentRow]:
    """Every row of the matrix (for the CSV and the API), with the cells fetched a chunk of students at a time."""
    standings = course_standings(course=course, period=period, sort=sort, threshold=threshold, only_low=only_low)
    for start in range(0, len(standings), chunk):
        yield from _student_rows(standings[start : start + chunk], sessions, threshold)


@dataclass(frozen=True)
class SessionRow:
    student: User
    record: AttendanceRecord | None
    on_course: bool
    change_count: int


@dataclass(frozen=True)
class SessionReport:
    session: Session
    counts: dict[str, int]
    unmarked: int
    page: Page
    rows: list[SessionRow]
    changes: list[AttendanceChange]


def session_students(*, session: Session) -> QuerySet[User]:
    """Everyone on the session's course, and anyone with a record for it who has since left the course."""
    members = CourseMembership.objects.filter(course_id=session.course_id).values("student_id")
    recorded = AttendanceRecord.objects.filter(session=session).values("student_id")
    return (
        User.objects.filter(Q(pk__in=members) | Q(pk__in=recorded))
        .annotate(
            on_course=Exists(CourseMembership.objects.filter(course_id=session.course_id, student=OuterRef("pk")))
        )
        .order_by("last_name", "first_name", "username", "pk")
    )


def _session_rows(session: Session, students: Sequence[User]) -> list[SessionRow]:
    records = {
        r.student_id: r
        for r in AttendanceRecord.objects.filter(session=session, student__in=[s.pk for s in students])
        .select_related("marked_by")
        .annotate(change_count=SubqueryCount(AttendanceChange.objects.filter(record=OuterRef("pk"))))
    }
    return [
        SessionRow(
            student=s, record=records.get(s.pk), on_course=s.on_course,  # type: ignore[attr-defined]
            change_count=getattr(records.get(s.pk), "change_count", 0),
        )
        for s in students
    ]


def session_changes(*, session: Session) -> list[AttendanceChange]:
    return list(
        AttendanceChange.objects.filter(record__session=session)
        .select_related("changed_by", "record__student")
        .order_by("-changed_at", "-pk")
    )


def session_report(
    *, session: Session, page_number: int | str | None = 1, per_page: int = SESSION_PAGE_SIZE
) -> SessionReport:
    students = session_students(session=session)
    page = Paginator(students, per_page).get_page(page_number)
    rows = _session_rows(session, list(page.object_list))
    counts = {status: 0 for status in AttendanceRecord.Status.values}
    for status in AttendanceRecord.objects.filter(session=session).values_list("status", flat=True):
        counts[status] += 1
    unmarked = max(page.paginator.count - sum(counts.values()), 0)
    return SessionReport(
        session=session, counts=counts, unmarked=unmarked, page=page, rows=rows,
        changes=session_changes(session=session),
    )


def session_report_all_rows(*, session: Session, chunk: int = 500) -> Iterable[SessionRow]:
    paginator = Paginator(session_students(session=session), chunk)
    for number in paginator.page_range:
        yield from _session_rows(session, list(paginator.page(number).object_list))


@dataclass(frozen=True)
class CourseRate:
    course: Course
    joined_at: datetime
    attended: int
    counted: int
    rate: float | None
    low: bool
    points: Points = NO_POINTS


@dataclass(frozen=True)
class StudentSessionRow:
    session: Session
    record: AttendanceRecord | None


@dataclass(frozen=True)
class StudentReport:
    student: User
    courses: list[CourseRate]
    attended: int
    counted: int
    rate: float | None
    low: bool
    threshold: float
    page: Page
    rows: list[StudentSessionRow]


def student_sessions(*, student: User, courses: QuerySet[Course]) -> QuerySet[Session]:
    """Held sessions of the given courses that the student was on the course for, newest first."""
    joined = CourseMembership.objects.filter(
        course_id=OuterRef("course_id"), student=student, joined_at__lte=OuterRef("held_at")
    )
    return (
        held_sessions()
        .filter(course__in=courses)
        .filter(Exists(joined))
        .select_related("course")
        .order_by("-held_at", "-pk")  # type: ignore[misc]
    )


def _student_session_rows(student: User, sessions: Sequence[Session]) -> list[StudentSessionRow]:
    found = AttendanceRecord.objects.filter(student=student, session__in=[s.pk for s in sessions])
    records = {r.session_id: r for r in found.prefetch_related("excuses")}  # the row shows the latest excuse
    return [StudentSessionRow(session=s, record=records.get(s.pk)) for s in sessions]


def student_report(
    *,
    student: User,
    courses: QuerySet[Course],
    page_number: int | str | None = 1,
    per_page: int = STUDENT_PAGE_SIZE,
) -> StudentReport:
    """A student's rate in each of `courses` (those the viewer may see) and their sessions there."""
    threshold = low_rate_threshold()
    memberships = list(
        CourseMembership.objects.filter(student=student, course__in=courses)
        .select_related("course")
        .order_by("-course__term", "course__code")
    )
    rates = rates_for(memberships)
    points = points_for(memberships)
    course_rates = [
        CourseRate(
            course=m.course, joined_at=m.joined_at, attended=rates[m.pk].attended, counted=rates[m.pk].counted,
            rate=rates[m.pk].rate, low=rates[m.pk].rate is not None and rates[m.pk].rate < threshold,  # type: ignore[operator]
            points=points[m.pk],
        )
        for m in memberships
    ]
    attended = sum(c.attended for c in course_rates)
    counted = sum(c.counted for c in course_rates)
    rate = attended / counted if counted else None
    page = Paginator(student_sessions(student=student, courses=courses), per_page).get_page(page_number)
    return StudentReport(
        student=student, courses=course_rates, attended=attended, counted=counted, rate=rate,
        low=rate is not None and rate < threshold, threshold=threshold,
        page=page, rows=_student_session_rows(student, list(page.object_list)),
    )


def student_report_all_rows(
    *, student: User, courses: QuerySet[Course], chunk: int = 500
) -> Iterable[StudentSessionRow]:
    paginator = Paginator(student_sessions(student=student, courses=courses), chunk)
    for number in paginator.page_range:
        yield from _student_session_rows(student, list(paginator.page(number).object_list))
