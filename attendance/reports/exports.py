"""The reports as CSV rows: UTF-8 with a byte-order mark, a header row, RFC 4180 quoting.

Excel opens a UTF-8 file correctly only when it starts with a BOM, and it runs a cell that starts
with = + - or @ as a formula; names and titles come from users, so such cells get a leading
apostrophe (OWASP's advice on CSV injection).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

from django.utils import timezone

from attendance.models import AttendanceRecord, Course, Session, User
from attendance.reports.selectors import Cell, SessionRow, StudentRow, StudentSessionRow

BOM = "\ufeff"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def text(value: object) -> str:
    """A user-supplied value made safe to open in a spreadsheet."""
    value = "" if value is None else str(value)
    return "'" + value if value.startswith(_FORMULA_START) else value


def when(value: datetime | None) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else ""


def percent(rate: float | None) -> str:
    return "" if rate is None else f"{rate * 100:.1f}"


def distance(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def liveness_score(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def session_label(session: Session) -> str:
    held_at = getattr(session, "held_at", None) or session.starts_at
    label = when(held_at)
    return f"{label} {session.title}".strip() if session.title else label


def _cell(cell: Cell) -> str:
    if cell.code == "none":
        return ""
    if cell.code == "before":
        return "n/a"
    return str(AttendanceRecord.Status(cell.code).label)


def _student_columns(student: User) -> list[str]:
    return [text(student.student_number), text(student.last_name), text(student.first_name), text(student.username)]


STUDENT_HEADER = ["Student number", "Last name", "First name", "Username"]


def course_rows(sessions: Sequence[Session], rows: Iterable[StudentRow]) -> Iterator[list[str]]:
    yield [*STUDENT_HEADER, *(text(session_label(s)) for s in sessions), "Attended", "Counted sessions", "Rate (%)"]
    for row in rows:
        yield [
            *_student_columns(row.student), *(_cell(c) for c in row.cells),
            str(row.attended), str(row.counted), percent(row.rate),
        ]
    yield ["Turnout (%)", "", "", "", *(percent(s.turnout) for s in sessions), "", "", ""]  # type: ignore[attr-defined]


def session_rows(rows: Iterable[SessionRow]) -> Iterator[list[str]]:
    yield [*STUDENT_HEADER, "Status", "Marked at", "Method", "Confidence (distance)", "Liveness score",
           "Liveness checks", "Marked by", "Manual changes", "On the course"]
    for row in rows:
        record = row.record
        yield [
            *_student_columns(row.student),
            record.get_status_display() if record else "",
            when(record.marked_at) if record else "",
            record.get_method_display() if record else "",
            distance(record.confidence) if record else "",
            liveness_score(record.liveness_score) if record else "",
            " ".join(record.liveness_checks) if record else "",
            text(record.marked_by.display_name) if record and record.marked_by else "",
            str(row.change_count),
            "yes" if row.on_course else "no",
        ]


def student_rows(rows: Iterable[StudentSessionRow]) -> Iterator[list[str]]:
    yield ["Course", "Course title", "Term", "Session", "Held at", "Status", "Method", "Marked at"]
    for row in rows:
        session, record = row.session, row.record
        yield [
            text(session.course.code), text(session.course.title), text(session.course.term),
            text(session.title), when(getattr(session, "held_at", None) or session.starts_at),
            record.get_status_display() if record else "",
            record.get_method_display() if record else "",
            when(record.marked_at) if record else "",
        ]


class _Echo:
    def write(self, value: str) -> str:
        return value


def encode(rows: Iterable[Sequence[str]]) -> Iterator[str]:
    """CSV text, line by line, starting with the BOM: feed it to a StreamingHttpResponse."""
    writer = csv.writer(_Echo(), dialect="excel")  # CRLF line ends and minimal quoting, as Excel writes
    yield BOM
    for row in rows:
        yield writer.writerow(row)


def filename(*parts: str) -> str:
    name = "-".join(p for p in parts if p)
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")[:120] + ".csv"


def course_filename(course: Course) -> str:
    return filename(course.code, course.term, "attendance")
