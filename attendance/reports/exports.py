"""The reports as rows of typed values, written as CSV or XLSX (attendance.reports.xlsx).

Each row generator yields the header first, then plain values: str, int, datetime, `Percent` or
`Number`; each format renders them its own way (a CSV cell is text, an XLSX cell a real date or
number). CSV is UTF-8 with a byte-order mark and RFC 4180 quoting: Excel opens a UTF-8 file
correctly only when it starts with a BOM, and it runs a cell that starts with = + - or @ as a
formula; names and titles come from users, so such cells get a leading apostrophe (OWASP's advice
on CSV injection). An XLSX cell is typed as a string, which no spreadsheet evaluates.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone, translation
from django.utils.translation import gettext as _

from attendance.models import AttendanceRecord, Course, Session, User
from attendance.reports.selectors import Cell, SessionRow, StudentRow, StudentSessionRow

BOM = "\ufeff"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Percent:
    """A rate from 0 to 1: "75.0" in a CSV, 0.75 formatted as a percentage in a spreadsheet."""

    rate: float | None


@dataclass(frozen=True)
class Number:
    """A measurement shown with a fixed number of decimals."""

    value: float | None
    places: int


Value = str | int | datetime | Percent | Number | None
Row = Sequence[Value]


def text(value: object) -> str:
    """A user-supplied value made safe to open in a spreadsheet."""
    value = "" if value is None else str(value)
    return "'" + value if value.startswith(_FORMULA_START) else value


def when(value: datetime | None) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else ""


def percent(rate: float | None) -> str:
    return "" if rate is None else f"{rate * 100:.1f}"


def csv_value(value: Value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return when(value)
    if isinstance(value, Percent):
        return percent(value.rate)
    if isinstance(value, Number):
        return "" if value.value is None else f"{value.value:.{value.places}f}"
    if isinstance(value, int):
        return str(value)
    return text(value)


def session_label(session: Session) -> str:
    held_at = getattr(session, "held_at", None) or session.starts_at
    label = when(held_at)
    return f"{label} {session.title}".strip() if session.title else label


def _cell(cell: Cell) -> str:
    if cell.code == "none":
        return ""
    if cell.code == "before":
        return _("n/a")
    return str(AttendanceRecord.Status(cell.code).label)


def _student_columns(student: User) -> list[Value]:
    return [student.student_number, student.last_name, student.first_name, student.username]


def _student_header() -> list[Value]:
    return [_("Student number"), _("Last name"), _("First name"), _("Username")]


def course_rows(sessions: Sequence[Session], rows: Iterable[StudentRow]) -> Iterator[list[Value]]:
    yield [
        *_student_header(), *(session_label(s) for s in sessions), _("Attended"), _("Counted sessions"),
        _("Rate (%)"), _("Points"), _("Possible points"), _("Points (%)"),
    ]
    for row in rows:
        yield [
            *_student_columns(row.student), *(_cell(c) for c in row.cells),
            row.attended, row.counted, Percent(row.rate),
            row.points.earned, row.points.possible, Percent(row.points.share),
        ]
    yield [_("Turnout (%)"), None, None, None, *(Percent(s.turnout) for s in sessions),  # type: ignore[attr-defined]
           None, None, None, None, None, None]


def session_rows(rows: Iterable[SessionRow]) -> Iterator[list[Value]]:
    yield [*_student_header(), _("Status"), _("Marked at"), _("Method"), _("Confidence (distance)"),
           _("Liveness score"), _("Liveness checks"), _("Marked by"), _("Manual changes"), _("On the course")]
    for row in rows:
        record = row.record
        yield [
            *_student_columns(row.student),
            record.get_status_display() if record else None,
            record.marked_at if record else None,
            record.get_method_display() if record else None,
            Number(record.confidence, 3) if record else None,
            Number(record.liveness_score, 2) if record else None,
            " ".join(record.liveness_checks) if record else None,
            record.marked_by.display_name if record and record.marked_by else None,
            row.change_count,
            _("yes") if row.on_course else _("no"),
        ]


def student_rows(rows: Iterable[StudentSessionRow]) -> Iterator[list[Value]]:
    yield [_("Course"), _("Course title"), _("Term"), _("Session"), _("Held at"), _("Status"), _("Method"),
           _("Marked at")]
    for row in rows:
        session, record = row.session, row.record
        yield [
            session.course.code, session.course.title, session.course.term,
            session.title, getattr(session, "held_at", None) or session.starts_at,
            record.get_status_display() if record else None,
            record.get_method_display() if record else None,
            record.marked_at if record else None,
        ]


class _Echo:
    def write(self, value: str) -> str:
        return value


def encode(rows: Iterable[Row]) -> Iterator[str]:
    """CSV text, line by line, starting with the BOM: feed it to a StreamingHttpResponse.

    The response is read after the view has returned, perhaps on another thread: each row is made in
    the language that was active when encode() was called (the requester's), for its headers and
    status words."""
    return _encode(rows, translation.get_language())


def _encode(rows: Iterable[Row], language: str | None) -> Iterator[str]:
    writer = csv.writer(_Echo(), dialect="excel")  # CRLF line ends and minimal quoting, as Excel writes
    yield BOM
    values = iter(rows)
    while True:
        with translation.override(language):
            row = next(values, None)
            if row is None:
                return
            line = writer.writerow([csv_value(v) for v in row])
        yield line


def basename(*parts: str) -> str:
    """A download's name without its extension: the parts joined, only safe ASCII kept."""
    name = "-".join(p for p in parts if p)
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")[:120]


def filename(*parts: str, extension: str = "csv") -> str:
    return f"{basename(*parts)}.{extension}"


def course_filename(course: Course, extension: str = "csv") -> str:
    return filename(course.code, course.term, "attendance", extension=extension)
