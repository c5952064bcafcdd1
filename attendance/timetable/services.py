"""Writing the timetable: a series and the sessions it plans, kept in step; sessions from a CSV file.

A held session (opened or closed) is history: editing or deleting its series never moves, retitles
or removes it. Only sessions still scheduled follow the series.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, time

from django.db import transaction
from django.utils.translation import gettext as _

from attendance import permissions
from attendance.models import Course, Session, TimetableSeries, User
from attendance.timetable.planning import (
    MAX_SERIES_DAYS,
    MAX_SESSIONS_PER_SERIES,
    date_problem,
    local_date,
    series_plan,
)


class TimetableError(Exception):
    """A timetable change that cannot be made; the message says why and what to do, in the active
    language (the request's: it is shown at once, never stored)."""


@dataclass(frozen=True)
class SeriesSpec:
    title: str
    weekdays: Sequence[int]
    start_time: time
    end_time: time
    every_weeks: int
    starts_on: date
    ends_on: date
    skip_dates: Sequence[date] = ()
    students: Sequence[User] = ()


@dataclass(frozen=True)
class SyncResult:
    created: int
    updated: int
    removed: int
    held: int  # sessions of the series already held, left exactly as they were


def _check(*, course: Course, by: User, spec: SeriesSpec) -> None:
    if not permissions.can_manage_course(by, course):
        raise TimetableError(_("Only an admin or a lecturer of this course can plan its sessions."))
    if not spec.weekdays or any(d not in range(1, 8) for d in spec.weekdays):
        raise TimetableError(_("Choose at least one weekday."))
    if spec.end_time <= spec.start_time:
        raise TimetableError(_("The end time must be after the start time (a class cannot run past midnight)."))
    if spec.ends_on < spec.starts_on:
        raise TimetableError(_("The last day must be on or after the first day."))
    for day in (spec.starts_on, spec.ends_on, *spec.skip_dates):
        if (problem := date_problem(day)) is not None:
            raise TimetableError(problem)
    if (spec.ends_on - spec.starts_on).days > MAX_SERIES_DAYS:
        raise TimetableError(_("A series runs for two years at most; plan each year's term on its own."))
    if spec.every_weeks < 1:
        raise TimetableError(_("Repeat every 1 week or more."))
    members = set(course.memberships.values_list("student_id", flat=True))
    strangers = [s.display_name for s in spec.students if s.pk not in members]
    if strangers:
        raise TimetableError(_("Not on %(course)s: %(names)s. A group is made of the course's students.")
                             % {"course": course.code, "names": ", ".join(strangers)})


def series_save(
    *, course: Course, by: User, spec: SeriesSpec, series: TimetableSeries | None = None
) -> tuple[TimetableSeries, SyncResult]:
    """Create a series (or change one) and bring its not-yet-held sessions in line with it."""
    _check(course=course, by=by, spec=spec)
    with transaction.atomic():
        if series is None:
            series = TimetableSeries(course=course, created_by=by)
        elif series.course_id != course.pk:
            raise TimetableError(_("This series belongs to another course."))
        else:
            series = TimetableSeries.objects.select_for_update().get(pk=series.pk)
        series.title = spec.title.strip()[:200]
        series.weekdays = sorted(set(spec.weekdays))
        series.start_time, series.end_time = spec.start_time, spec.end_time
        series.every_weeks = spec.every_weeks
        series.starts_on, series.ends_on = spec.starts_on, spec.ends_on
        series.skip_dates = [d.isoformat() for d in sorted(set(spec.skip_dates))]
        series.save()
        series.students.set(spec.students)
        result = series_sessions_sync(series=series)
    return series, result


def series_sessions_sync(*, series: TimetableSeries) -> SyncResult:
    """Scheduled sessions of the series moved, retitled, created or removed to match it; held ones kept."""
    plan = series_plan(
        weekdays=series.weekdays,
        every_weeks=series.every_weeks,
        starts_on=series.starts_on,
        ends_on=series.ends_on,
        skip=[date.fromisoformat(d) for d in series.skip_dates],
        start_time=series.start_time,
        end_time=series.end_time,
    )
    if len(plan) > MAX_SESSIONS_PER_SERIES:
        raise TimetableError(
            _("This series would plan %(n)s sessions, more than %(most)s: check the dates.")
            % {"n": len(plan), "most": MAX_SESSIONS_PER_SERIES}
        )
    wanted = {p.day: p for p in plan}
    title = series.title
    sessions = list(Session.objects.select_for_update().filter(series=series).order_by("scheduled_start", "pk"))
    held_days = {
        local_date(s.scheduled_start or s.opened_at)  # type: ignore[arg-type]
        for s in sessions
        if s.status != Session.Status.SCHEDULED and (s.scheduled_start or s.opened_at)
    }
    done: set[date] = set()
    updated = removed = 0
    for session in sessions:
        if session.status != Session.Status.SCHEDULED:
            continue
        day = local_date(session.scheduled_start) if session.scheduled_start else None
        planned = wanted.get(day) if day is not None else None
        if planned is None or day in done or day in held_days:
            session.delete()
            removed += 1
            continue
        done.add(planned.day)
        if (session.scheduled_start, session.scheduled_end, session.title) != (planned.start, planned.end, title):
            session.scheduled_start, session.scheduled_end, session.title = planned.start, planned.end, title
            session.save(update_fields=["scheduled_start", "scheduled_end", "title"])
            updated += 1
    new = [
        Session(course_id=series.course_id, series=series, title=title, scheduled_start=p.start, scheduled_end=p.end)
        for p in plan
        if p.day not in done and p.day not in held_days
    ]
    Session.objects.bulk_create(new)
    held = sum(1 for s in sessions if s.status != Session.Status.SCHEDULED)
    return SyncResult(created=len(new), updated=updated, removed=removed, held=held)


def series_delete(*, series: TimetableSeries, by: User) -> int:
    """Delete a series and its sessions not yet held; held sessions stay, without a series. Returns how
    many planned sessions went."""
    if not permissions.can_manage_course(by, series.course):
        raise TimetableError(_("Only an admin or a lecturer of this course can plan its sessions."))
    with transaction.atomic():
        _count, deleted = Session.objects.filter(series=series, status=Session.Status.SCHEDULED).delete()
        series.delete()  # held sessions keep their rows: Session.series is SET_NULL
    return deleted.get(Session._meta.label, 0)
