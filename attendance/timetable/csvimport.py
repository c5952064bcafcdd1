"""Sessions from a CSV file (a timetable exported from the university's planning system).

Columns, with a header row: date (YYYY-MM-DD), start and end (HH:MM, local time) and an optional
title. The whole file is checked first and nothing is created unless every line is right; the
errors name the line and the value, for the person who will fix the file, in their language.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, time

from django.db import transaction
from django.utils.translation import gettext as _

from attendance import permissions
from attendance.models import Course, Session, User
from attendance.timetable.planning import date_problem, local_datetime, site_zone
from attendance.timetable.services import TimetableError

MAX_CSV_BYTES = 1024 * 1024
MAX_CSV_ROWS = 1000
REQUIRED = ("date", "start", "end")


class TimetableCsvError(TimetableError):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class CsvImportResult:
    created: int
    already_planned: int


def _time(value: str) -> time:
    return datetime.strptime(value.strip(), "%H:%M").time()


def sessions_import_csv(*, course: Course, by: User, data: bytes) -> CsvImportResult:
    if not permissions.can_manage_course(by, course):
        raise TimetableError(_("Only an admin or a lecturer of this course can plan its sessions."))
    if len(data) > MAX_CSV_BYTES:
        raise TimetableCsvError([_("The file is larger than %(kb)s KB; split it into smaller files.")
                                 % {"kb": MAX_CSV_BYTES // 1024}])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise TimetableCsvError([_('The file is not UTF-8 text: save it as "CSV UTF-8" and try again.')]) from None
    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip().lower() for name in reader.fieldnames or []]
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise TimetableCsvError(
            [
                _("The first line must name the columns date, start, end (and optionally title); "
                  "missing: %(names)s.") % {"names": ", ".join(missing)}
            ]
        )
    reader.fieldnames = header
    zone = site_zone()
    errors: list[str] = []
    planned: list[tuple[datetime, datetime, str]] = []
    for line, row in enumerate(reader, start=2):
        if line - 1 > MAX_CSV_ROWS:
            errors.append(_("More than %(most)s sessions in one file; split it.") % {"most": MAX_CSV_ROWS})
            break
        values = {k: (v or "").strip() for k, v in row.items() if k is not None}
        if not any(values.values()):
            continue
        try:
            day = date.fromisoformat(values.get("date", ""))
        except ValueError:
            errors.append(_("Line %(line)s: %(value)s is not a date; write it as YYYY-MM-DD.")
                          % {"line": line, "value": repr(values.get("date", ""))})
            continue
        if (problem := date_problem(day)) is not None:
            errors.append(_("Line %(line)s: %(problem)s") % {"line": line, "problem": problem})
            continue
        try:
            start, end = _time(values.get("start", "")), _time(values.get("end", ""))
        except ValueError:
            errors.append(_("Line %(line)s: the start and end times must be written as HH:MM, for example 09:15.")
                          % {"line": line})
            continue
        if end <= start:
            errors.append(_("Line %(line)s: the end time %(end)s is not after the start time %(start)s.")
                          % {"line": line, "end": f"{end:%H:%M}", "start": f"{start:%H:%M}"})
            continue
        title = values.get("title", "")
        if len(title) > 200:
            errors.append(_("Line %(line)s: the title is longer than 200 characters.") % {"line": line})
            continue
        planned.append((local_datetime(day, start, zone), local_datetime(day, end, zone), title))
    if errors:
        raise TimetableCsvError(errors)
    if not planned:
        raise TimetableCsvError([_("The file has a header but no sessions.")])
    with transaction.atomic():
        existing = set(
            Session.objects.filter(course=course, scheduled_start__isnull=False).values_list(
                "scheduled_start", flat=True
            )
        )
        new = [
            Session(course=course, scheduled_start=s, scheduled_end=e, title=t)
            for s, e, t in planned
            if s not in existing
        ]
        Session.objects.bulk_create(new)
    return CsvImportResult(created=len(new), already_planned=len(planned) - len(new))
