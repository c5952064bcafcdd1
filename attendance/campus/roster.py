"""Reading a roster file (CSV or XLSX) into rows; nothing here touches the database.

Files come from a student system's export or from Excel: a UTF-8 byte-order mark, `;` as the
separator (Excel in most of Europe), headers in any case and order, student numbers that Excel
turned into numbers and dates stored as date cells. Each is read the way a person would read it.
The headers are read in English or in Croatian, whatever the reader's language; the template is
written in the language of the person who downloads it.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.utils.translation import gettext, gettext_lazy, gettext_noop
from openpyxl import Workbook, load_workbook
from openpyxl.utils.exceptions import InvalidFileException

MAX_ROWS = 50_000
MAX_BYTES = 20 * 1024 * 1024
PROGRESS_EVERY = 500  # rows between two calls of a reader's progress callback

# Called with (rows read so far, rows the file holds as far as its size tells): the import's progress.
ReadProgress = Callable[[int, int], None]

# Column -> the headers accepted for it (compared lower-case, with _ and - read as spaces), in English
# and in Croatian (the template's headers in both languages are among them).
HEADERS: dict[str, tuple[str, ...]] = {
    # Not a bare "ime" (a first name alone in Croatian exports, beside "prezime") nor "broj" (any number).
    "student_number": ("student number", "student no", "student id", "number", "matriculation number",
                       "broj studenta", "jmbag"),
    "name": ("name", "full name", "student name", "ime i prezime", "ime i prezime studenta"),
    "email": ("email", "e mail", "mail", "email address", "e pošta", "adresa e pošte", "e adresa"),
    "course_code": ("course code", "course", "code", "šifra kolegija", "kolegij", "šifra"),
    "term": ("term", "semester", "semestar"),
    "role": ("role", "uloga"),
    "joined_on": ("joined on", "joined", "enrolled on", "start date", "upisan", "datum upisa"),
}
REQUIRED = ("student_number", "name", "email", "course_code", "term")
# The template's first row (and the names of missing columns), in the reader's language.
TEMPLATE_HEADER = [gettext_lazy("Student number"), gettext_lazy("Name"), gettext_lazy("Email"),
                   gettext_lazy("Course code"), gettext_lazy("Term"), gettext_lazy("Role"), gettext_lazy("Joined on")]
TEMPLATE_EXAMPLE = ["s1234567", "Ana María López", "ana.lopez@example.edu", "CS101", "2026-autumn", "student",
                    "2026-09-01"]


class RosterFileError(Exception):
    """The file as a whole cannot be read; the message says why, for the person who uploaded it.

    Kept as the English msgid and its parameters (a background job stores them and the page
    translates them for its reader); str() is the message in the active language."""

    def __init__(self, message: str, **params: Any) -> None:
        super().__init__(message)
        self.message, self.params = message, params

    def __str__(self) -> str:
        return file_error_text(self.message, self.params)


def file_error_text(message: str, params: dict[str, Any] | None) -> str:
    """A file error kept as its msgid and parameters, in the active language. `columns` (column keys) is
    shown as the columns' names in that language: a background job stores keys, never English names."""
    shown = dict(params or {})
    if "columns" in shown:
        shown["names"] = ", ".join(str(TEMPLATE_HEADER[list(HEADERS).index(c)]) for c in shown.pop("columns"))
    return gettext(message) % shown if shown else gettext(message)


@dataclass(frozen=True)
class RosterRow:
    line: int  # as a spreadsheet numbers it: the header is line 1
    student_number: str
    first_name: str
    last_name: str
    email: str
    course_code: str
    term: str
    role: str
    joined_on: str  # ISO date or what the cell held; checked where it is used
    active: bool | None = None  # the provisioning API's account switch; None: leave it as it is

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


def split_name(full: str) -> tuple[str, str]:
    """"López, Ana María" -> ("Ana María", "López"); "Ana María López" -> ("Ana María", "López")."""
    full = " ".join(full.split())
    if "," in full:
        last, _comma, first = full.partition(",")
        return first.strip(), last.strip()
    first, _space, last = full.rpartition(" ")
    return (first, last) if first else ("", last)


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a student number Excel stored as a number
    return str(value).strip()


def _header_key(text: str) -> str:
    return re.sub(r"[\s_\-]+", " ", text.replace("\ufeff", "")).strip().lower()


def _column_map(header: list[str]) -> dict[str, int]:
    wanted = {alias: column for column, aliases in HEADERS.items() for alias in aliases}
    found: dict[str, int] = {}
    for i, cell in enumerate(header):
        column = wanted.get(_header_key(cell))
        if column and column not in found:
            found[column] = i
    missing = [c for c in REQUIRED if c not in found]
    if missing:
        raise RosterFileError(
            gettext_noop("The first row must name the columns; missing: %(names)s. Download the template to see "
                         "the layout."), columns=missing)
    return found


def _rows_from_table(table: list[list[str]]) -> list[RosterRow]:
    if not table:
        raise RosterFileError(gettext_noop("The file is empty."))
    columns = _column_map(table[0])
    rows = []
    for line, cells in enumerate(table[1:], start=2):
        if not any(cells):
            continue  # blank lines at the end of an export

        def get(column: str, cells: list[str] = cells) -> str:
            i = columns.get(column)
            return cells[i].strip() if i is not None and i < len(cells) else ""

        first, last = split_name(get("name"))
        rows.append(RosterRow(
            line=line, student_number=get("student_number"), first_name=first, last_name=last,
            email=get("email").lower(), course_code=get("course_code").upper(), term=get("term"),
            role=get("role").lower() or "student", joined_on=get("joined_on"),
        ))
    if len(rows) > MAX_ROWS:
        raise RosterFileError(gettext_noop("The file has %(rows)s rows; import at most %(most)s at a time."),
                              rows=len(rows), most=MAX_ROWS)
    if not rows:
        raise RosterFileError(gettext_noop("The file has a header row but no people in it."))
    return rows


def _read_csv(data: bytes, progress: ReadProgress | None = None) -> list[list[str]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RosterFileError(gettext_noop(
            "The file is not UTF-8 text. In Excel, save it as “CSV UTF-8 (Comma delimited)” or upload the .xlsx."
        )) from None
    first_line = text.split("\n", 1)[0]
    delimiter = max(";,\t", key=first_line.count)
    if progress is None:
        return [[c.strip() for c in row] for row in csv.reader(io.StringIO(text), delimiter=delimiter)]
    expected = max(0, text.count("\n") - 1)
    table = []
    for row in csv.reader(io.StringIO(text), delimiter=delimiter):
        table.append([c.strip() for c in row])
        if len(table) % PROGRESS_EVERY == 1 and len(table) > 1:
            progress(len(table) - 1, expected)
    return table


def _read_xlsx(data: bytes, progress: ReadProgress | None = None) -> list[list[str]]:
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError, OSError):
        raise RosterFileError(gettext_noop("The file could not be read as an Excel workbook (.xlsx).")) from None
    try:
        sheet = book.worksheets[0]
        if progress is None:
            return [[_cell_text(v) for v in row] for row in sheet.iter_rows(values_only=True)]
        expected = max(0, (sheet.max_row or 0) - 1)  # the sheet's stated size; None when it does not say
        table = []
        for values in sheet.iter_rows(values_only=True):
            table.append([_cell_text(v) for v in values])
            if len(table) % PROGRESS_EVERY == 1 and len(table) > 1:
                progress(len(table) - 1, expected)
        return table
    finally:
        book.close()


def read_roster(data: bytes, filename: str, progress: ReadProgress | None = None) -> list[RosterRow]:
    """The rows of an uploaded roster, XLSX recognised by its content (a ZIP), anything else as CSV;
    `progress`, if given, is told every few hundred rows how many have been read."""
    if len(data) > MAX_BYTES:
        raise RosterFileError(gettext_noop("The file is larger than %(mb)s MB; split it."),
                              mb=MAX_BYTES // (1024 * 1024))
    if data[:4] == b"PK\x03\x04":
        return _rows_from_table(_read_xlsx(data, progress))
    if filename.lower().endswith((".xlsx", ".xlsm")):
        raise RosterFileError(gettext_noop("The file is named .xlsx but is not an Excel workbook."))
    return _rows_from_table(_read_csv(data, progress))


def template_csv() -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([str(h) for h in TEMPLATE_HEADER])
    writer.writerow(TEMPLATE_EXAMPLE)
    return ("\ufeff" + out.getvalue()).encode("utf-8")  # the mark makes Excel read it as UTF-8


def template_xlsx() -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = gettext("Roster")
    sheet.append([str(h) for h in TEMPLATE_HEADER])
    sheet.append([*TEMPLATE_EXAMPLE[:-1], date.fromisoformat(TEMPLATE_EXAMPLE[-1])])
    sheet["A2"].number_format = "@"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
