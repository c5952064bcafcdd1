"""The term planned in one form in a real browser, then today's class opened from the home page in
one click, landing on its check-in page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.browser import login, screenshot

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def test_a_lecturer_plans_a_term_in_one_form_and_opens_todays_class_from_home(
    transactional_db, live_server, browser_with_camera, course, lecturer, make_user
):
    from playwright.sync_api import expect

    from attendance.models import Session

    today = timezone.localdate()
    page = browser_with_camera().new_context(viewport={"width": 1280, "height": 900}).new_page()  # type: ignore[attr-defined]
    base = live_server.url
    login(page, base, lecturer.username)
    page.goto(base + reverse("course-detail", args=[course.pk]))
    page.get_by_role("link", name="Timetable").click()

    page.fill("#id_title", "Lecture")
    for day in ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"):
        page.get_by_label(day, exact=True).check()
    page.fill("#id_start_time", "23:00")
    page.fill("#id_end_time", "23:45")
    page.fill("#id_every_weeks", "1")
    page.fill("#id_starts_on", today.isoformat())
    page.fill("#id_ends_on", (today + timedelta(days=13)).isoformat())
    page.fill("#id_skip_dates", (today + timedelta(days=3)).isoformat())
    page.get_by_role("button", name="Plan these sessions").click()
    expect(page.locator(".messages")).to_contain_text("13 planned")
    expect(page.locator("#series tr[data-series]")).to_contain_text("Lecture")
    screenshot(page, "timetable-1-planned")
    assert Session.objects.filter(course=course, status="scheduled").count() == 13

    page.get_by_role("link", name="Home").click()
    row = page.locator("#today tr[data-session]")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("23:00")
    row.get_by_role("button", name="Open and take attendance").click()
    page.wait_for_url(f"{base}/sessions/*/check-in/")
    opened = Session.objects.get(course=course, status="open")
    assert timezone.localdate(opened.scheduled_start) == today
    screenshot(page, "timetable-2-opened-from-home")
