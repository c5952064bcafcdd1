"""10,000 roster rows: a benchmark that prints how long each step takes (run with -s to see it).

Nothing is asserted about time (it depends on the machine); what is asserted is what makes it fast
on any machine: the number of queries does not grow with the rows (bulk reads and writes, never one
query per row), and the second import of the same file changes nothing.
"""

from __future__ import annotations

import io
import time

import pytest
from openpyxl import Workbook

from attendance.campus.importing import import_apply, import_plan
from attendance.campus.roster import read_roster
from attendance.models import Course, CourseMembership, User

ROWS = 10_000


def _xlsx(rows: int, courses: int) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(["Student number", "Name", "Email", "Course code", "Term", "Role"])
    for i in range(rows):
        sheet.append([f"b{i:06d}", f"Student Number{i}", f"s{i}@uni.example", f"BIG{i % courses}", "2026-autumn",
                      "student"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.mark.slow
def test_ten_thousand_rows_import_in_a_bounded_number_of_queries(db, django_assert_max_num_queries):
    for c in range(20):
        Course.objects.create(code=f"BIG{c}", title="Big course", term="2026-autumn")
    data = _xlsx(ROWS, 20)
    t0 = time.perf_counter()
    rows = read_roster(data, "big.xlsx")
    t1 = time.perf_counter()
    with django_assert_max_num_queries(15):
        plan = import_plan(rows)
    t2 = time.perf_counter()
    with django_assert_max_num_queries(40):
        applied = import_apply(rows)
    t3 = time.perf_counter()
    again = import_apply(rows)
    t4 = time.perf_counter()
    assert plan.counts()["created"] == ROWS and applied.counts()["created"] == ROWS
    assert again.counts()["unchanged"] == ROWS and not again.changes_anything
    assert User.objects.filter(role="student").count() == ROWS and CourseMembership.objects.count() == ROWS
    print(f"\nroster import of {ROWS} rows ({len(data) / 1e6:.1f} MB XLSX): read {t1 - t0:.2f} s, "
          f"preview {t2 - t1:.2f} s, apply {t3 - t2:.2f} s, re-import (nothing to change) {t4 - t3:.2f} s")
