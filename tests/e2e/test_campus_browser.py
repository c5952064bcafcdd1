"""An admin imports a course roster from an XLSX file in Chromium, without the Django admin, and the
course's lecturer then sees it on their roster page."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import pytest
from openpyxl import Workbook

from tests.browser import login, screenshot

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def _roster(path: Path) -> Path:
    book = Workbook()
    sheet = book.active
    sheet.append(["Student number", "Name", "Email", "Course code", "Term", "Role", "Joined on"])
    sheet.append(["s1001", "Zoë Ñúñez", "zoe@uni.example", "CV101", "2026-autumn", "student", date(2026, 9, 1)])
    sheet.append([1002, "Émile Dubois", "emile@uni.example", "CV101", "2026-autumn", "student", None])
    sheet.append(["s1003", "Wrong Mail", "wrong@", "CV101", "2026-autumn", "student", None])
    out = io.BytesIO()
    book.save(out)
    path.write_bytes(out.getvalue())
    return path


def test_an_admin_imports_an_xlsx_roster_and_the_lecturer_sees_it(
    live_server, browser_with_camera, admin_user, lecturer, tmp_path, settings
):
    from attendance.models import Course, CourseMembership

    settings.MEDIA_ROOT = tmp_path / "media"
    course = Course.objects.create(code="CV101", title="Computer Vision", term="2026-autumn")
    course.lecturers.add(lecturer)
    browser = browser_with_camera()
    page = browser.new_page(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    login(page, live_server.url, admin_user.username)
    page.click("text=Import a roster")
    page.set_input_files("#id_file", str(_roster(tmp_path / "cv101.xlsx")))
    page.click("text=Upload and preview")
    page.wait_for_selector("#preview-rows")
    screenshot(page, "campus-import-preview")
    def count(outcome: str) -> str:
        return page.inner_text(f'#import-counts a:has(.stat-label:text-is("{outcome}")) .stat-value').strip()

    assert (count("created"), count("updated"), count("unchanged"), count("refused")) == ("2", "0", "0", "1")
    assert "is not an email address" in page.inner_text("#preview-rows")
    assert not CourseMembership.objects.exists()
    page.click("button:has-text('Import')")
    page.wait_for_url("**/manage/memberships/")
    assert "2 created" in page.inner_text(".messages") and "1 refused" in page.inner_text(".messages")
    screenshot(page, "campus-memberships")
    # The page's tick-all box ticks every row and the bulk area says how many.
    assert page.inner_text(".bulk-count") == "none ticked"
    page.check("input.checkall")
    assert all(box.is_checked() for box in page.query_selector_all("input.rowcheck"))
    assert page.inner_text(".bulk-count") == "2 ticked"
    page.click("nav.subnav >> text=People")
    page.fill("#q", "ñúñez")
    page.click("button:text-is('Filter')")
    page.wait_for_url("**/manage/people/?q=*")
    assert "Zoë Ñúñez" in page.inner_text("table") and "Émile" not in page.inner_text("table")
    screenshot(page, "campus-people")
    assert set(CourseMembership.objects.values_list("student__student_number", flat=True)) == {"s1001", "1002"}

    lecturer_page = browser.new_page(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    login(lecturer_page, live_server.url, lecturer.username)
    lecturer_page.click("td.links a:text-is('Roster')")
    lecturer_page.wait_for_url(f"**/manage/courses/{course.pk}/roster/")
    text = lecturer_page.inner_text("main")
    assert "Zoë Ñúñez" in text and "Émile Dubois" in text and "Wrong Mail" not in text
    screenshot(lecturer_page, "campus-roster-lecturer")


def test_a_ten_thousand_row_file_shows_its_progress_and_then_the_preview_and_the_outcome(
    live_server, browser_with_camera, admin_user, celery_worker_process
):
    """In Chromium: the progress page polls the worker's job and, once it is done, shows the preview,
    then the import's outcome. The status line is told once per stage, never per count (a screen
    reader must not be flooded), while the bar and the counters follow each answer. While the
    worker waits on a held lock on the courses table, the page has read all 10,000 rows and checked none."""
    import psycopg
    from django.db import connection

    from attendance.models import Course, CourseMembership
    from tests.attendance.test_campus_import_scale import _xlsx

    for c in range(20):
        Course.objects.create(code=f"BIG{c}", title="Big course", term="2026-autumn")
    db = connection.settings_dict
    lock = psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"])
    browser = browser_with_camera()
    page = browser.new_page(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    login(page, live_server.url, admin_user.username)
    page.goto(f"{live_server.url}/manage/import/")
    try:
        lock.execute("LOCK TABLE attendance_course IN ACCESS EXCLUSIVE MODE")
        page.set_input_files("#id_file", files=[{"name": "big.xlsx", "mimeType": "application/octet-stream",
                                                 "buffer": _xlsx(10_000, 20)}])
        page.click("text=Upload and preview")
        page.wait_for_selector("#import-bar")
        page.evaluate("""() => {
            window.changes = {status: [], counters: 0};
            const status = document.getElementById("import-status");
            const watch = {childList: true, characterData: true, subtree: true};
            new MutationObserver(() => window.changes.status.push(status.textContent)).observe(status, watch);
            new MutationObserver(() => { window.changes.counters += 1; })
                .observe(document.getElementById("import-counters"), watch);
        }""")
        page.wait_for_function("document.getElementById('import-counters').textContent.includes('checked: 0')")
        assert page.get_attribute("#import-status", "aria-live") == "polite"
        assert page.inner_text("#import-status") == "Checking every row"
        assert "Rows read: 10,000 of 10,000" in page.inner_text("#import-counters")
        assert 0 < int(page.get_attribute("#import-bar", "value") or "0") < 100
        screenshot(page, "campus-import-progress")
        told = page.evaluate("window.changes")
        # Three more answers while the worker waits: the counters follow each, the status line is not told again.
        page.wait_for_function(f"window.changes.counters >= {told['counters'] + 3}")
        changes = page.evaluate("window.changes.status")
        assert changes == told["status"] and len(changes) == len(set(changes)), changes
        assert set(changes) <= {"Reading the file", "Checking every row"}, changes
        lock.rollback()
    finally:
        lock.close()
    page.wait_for_selector("#preview-rows", timeout=240_000)
    assert page.inner_text('#import-counts a:has(.stat-label:text-is("created")) .stat-value').strip() == "10000"
    page.click("button:has-text('Import')")
    page.wait_for_url("**/manage/memberships/", timeout=240_000)
    assert "10000 created" in page.inner_text(".messages")
    assert CourseMembership.objects.count() == 10_000
