"""The same rows as the CSV files, as an XLSX workbook: real dates and numbers, a frozen bold
header and columns as wide as their content.

Excel stores no time zone, so dates are written in the site's time zone, as the pages show them.
Strings are typed as strings (openpyxl would otherwise take one starting with "=" for a formula),
and the control characters XML cannot hold are dropped rather than failing the download.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import datetime

from django.utils import timezone
from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from attendance.reports.exports import Number, Percent, Row, Value

CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DATE_FORMAT = "yyyy-mm-dd hh:mm"
PERCENT_FORMAT = "0.0%"
MAX_WIDTH = 60  # characters: a long session title must not push the rest off the screen
MIN_WIDTH = 6


def _plain(value: Value) -> str | int | float | datetime | None:
    if isinstance(value, datetime):
        return timezone.localtime(value).replace(tzinfo=None)
    if isinstance(value, Percent):
        return value.rate
    if isinstance(value, Number):
        return value.value
    if isinstance(value, str):
        return ILLEGAL_CHARACTERS_RE.sub("", value)
    return value


def _width(value: Value) -> int:
    if value is None:
        return 0
    if isinstance(value, datetime):
        return len(DATE_FORMAT)
    if isinstance(value, Percent | Number):
        return 7
    return max((len(line) for line in str(value).splitlines()), default=0)


def _cell(sheet: object, value: Value, *, bold: bool = False) -> WriteOnlyCell:
    cell = WriteOnlyCell(sheet, value=_plain(value))  # type: ignore[arg-type]
    if isinstance(value, str):
        cell.data_type = "s"  # never a formula, whatever the first character
    elif isinstance(value, datetime):
        cell.number_format = DATE_FORMAT
    elif isinstance(value, Percent):
        cell.number_format = PERCENT_FORMAT
    elif isinstance(value, Number):
        cell.number_format = "0." + "0" * value.places
    if bold:
        cell.font = Font(bold=True)
    return cell


def workbook(rows: Iterable[Row], *, title: str | None = None) -> bytes:
    """An .xlsx file of one sheet: the first row is the header. The sheet is named `title`, by
    default "Attendance" in the active language."""
    title = _("Attendance") if title is None else str(title)
    table = [list(row) for row in rows]
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=ILLEGAL_CHARACTERS_RE.sub("", title)[:31] or _("Sheet"))
    sheet.freeze_panes = "A2"
    columns = max((len(row) for row in table), default=0)
    for index in range(columns):
        width = max((_width(row[index]) for row in table if index < len(row)), default=0)
        sheet.column_dimensions[get_column_letter(index + 1)].width = min(max(width + 2, MIN_WIDTH), MAX_WIDTH)
    for number, row in enumerate(table):
        sheet.append([_cell(sheet, value, bold=number == 0) for value in row])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
