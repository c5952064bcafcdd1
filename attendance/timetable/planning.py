"""Dates and times of a series, in the site's time zone: pure functions, no database.

A class at 10:15 stays at 10:15 local time on both sides of a daylight-saving change (its UTC time
moves); combining a date with a wall-clock time in a `zoneinfo` zone does exactly that.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils.translation import gettext as _

MAX_SESSIONS_PER_SERIES = 400  # a term of daily classes is ~120; more is a mistyped year
MAX_SERIES_DAYS = 731  # two years: any longer plan is a typing mistake
FIRST_YEAR, LAST_YEAR = 2000, 2100  # dates outside are typing mistakes (and year 1 cannot move to UTC)


def date_problem(day: date) -> str | None:
    """Why a date cannot be planned on, in words (the active language's); None when it can."""
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        return _("%(day)s is not a plausible class date (years %(first)s to %(last)s).") % {
            "day": day.isoformat(), "first": FIRST_YEAR, "last": LAST_YEAR}
    return None


def site_zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def local_datetime(day: date, at: time, zone: ZoneInfo | None = None) -> datetime:
    """The aware datetime of a wall-clock time on a day. A time that does not exist (inside the
    spring-forward gap) becomes the same instant after the gap, as calendar apps show it."""
    zone = zone or site_zone()
    naive = datetime.combine(day, at).replace(tzinfo=zone)
    return naive.astimezone(UTC).astimezone(zone)


def local_date(moment: datetime, zone: ZoneInfo | None = None) -> date:
    return moment.astimezone(zone or site_zone()).date()


def series_dates(
    *, weekdays: Iterable[int], every_weeks: int, starts_on: date, ends_on: date, skip: Iterable[date] = ()
) -> list[date]:
    """Every date from starts_on to ends_on (inclusive) on one of the ISO weekdays, in every
    every_weeks-th week counted from the week of starts_on, except the skipped dates."""
    days = set(weekdays)
    skipped = set(skip)
    first_monday = starts_on - timedelta(days=starts_on.weekday())
    found: list[date] = []
    day = starts_on
    while day <= ends_on:
        week = (day - first_monday).days // 7
        if day.isoweekday() in days and week % every_weeks == 0 and day not in skipped:
            found.append(day)
        day += timedelta(days=1)
    return found


@dataclass(frozen=True)
class PlannedSession:
    day: date
    start: datetime
    end: datetime


def series_plan(
    *,
    weekdays: Iterable[int],
    every_weeks: int,
    starts_on: date,
    ends_on: date,
    skip: Iterable[date],
    start_time: time,
    end_time: time,
) -> list[PlannedSession]:
    zone = site_zone()
    return [
        PlannedSession(day=day, start=local_datetime(day, start_time, zone), end=local_datetime(day, end_time, zone))
        for day in series_dates(
            weekdays=weekdays, every_weeks=every_weeks, starts_on=starts_on, ends_on=ends_on, skip=skip
        )
    ]


def parse_skip_dates(text: str) -> list[date]:
    """Dates separated by commas or lines; a holiday as a range "2026-12-24 to 2027-01-06".
    Raises ValueError with a message for the person who typed it."""
    found: list[date] = []
    for raw in text.replace(",", "\n").splitlines():
        item = raw.strip()
        if not item:
            continue
        first, sep, last = (part.strip() for part in item.partition(" to "))
        try:
            start = date.fromisoformat(first)
            end = date.fromisoformat(last) if sep else start
        except ValueError:
            raise ValueError(
                _("%(item)s is not a date or a range: write dates as YYYY-MM-DD, ranges as 2026-12-24 to "
                  "2027-01-06.") % {"item": repr(item)}
            ) from None
        if end < start:
            raise ValueError(_("The range %(item)s ends before it starts.") % {"item": repr(item)})
        if (end - start).days > 366:
            raise ValueError(_("The range %(item)s is longer than a year.") % {"item": repr(item)})
        if (problem := date_problem(start) or date_problem(end)) is not None:
            raise ValueError(problem)
        found.extend(start + timedelta(days=n) for n in range((end - start).days + 1))
    return sorted(set(found))


def format_skip_dates(days: Iterable[date]) -> str:
    """The skipped dates as the form takes them: runs of consecutive days as one range a line."""
    lines: list[str] = []
    ordered = sorted(set(days))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] - ordered[j] == timedelta(days=1):
            j += 1
        first, last = ordered[i], ordered[j]
        lines.append(first.isoformat() if first == last else f"{first.isoformat()} to {last.isoformat()}")
        i = j + 1
    return "\n".join(lines)
