"""Keyboard-only walks in Chromium: the skip link, the user menu, the check-in list, the kiosk, the enrol
tabs and its steps. Keys only (Tab, Shift+Tab, Enter, Space, arrows, Escape): no clicks, no
element.focus() from the test. Focus must never fall back to the page body, and must be visible."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser import CHROMIUM, login, screenshot
from tests.e2e.accessibility import DESKTOP, seed_everything
from tests.e2e.test_enrol_browser import task_in_a_thread  # noqa: F401  (the fixture, shared)

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ACTIVE = "document.activeElement"


@pytest.fixture
def browser(playwright_instance):
    browser = playwright_instance.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu", "--no-first-run"]
    )
    yield browser
    browser.close()


def tab_to(page: Any, condition: str, *, key: str = "Tab", limit: int = 80) -> None:
    """Press Tab (or `key`) until the JS expression `condition` (about `el`, the focused element)
    holds."""
    for _ in range(limit):
        page.keyboard.press(key)
        if page.evaluate(f"() => {{ const el = {ACTIVE}; return Boolean({condition}); }}"):
            return
    raise AssertionError(f"{limit} presses of {key} never reached an element where {condition}")


def focused(page: Any, expression: str = "el.id") -> Any:
    return page.evaluate(f"() => {{ const el = {ACTIVE}; return {expression}; }}")


def watch_focus(page: Any) -> None:
    """Record every moment focus is on the page body from now on (window.__lost)."""
    page.evaluate(
        """() => { window.__lost = [];
                   setInterval(() => { if (document.activeElement === document.body)
                       window.__lost.push(document.title + ' ' + performance.now().toFixed(0)); }, 25); }"""
    )


def focus_lost(page: Any) -> list[str]:
    return page.evaluate("() => window.__lost")


def watch_announcements(page: Any) -> None:
    """Record what each live region would say from now on (window.__said): every change to a
    region with aria-live on, outside aria-hidden content, as [region id, its text]."""
    page.evaluate(
        """() => { window.__said = [];
            new MutationObserver((changes) => { for (const change of changes) {
                const node = change.target.nodeType === 1 ? change.target : change.target.parentElement;
                if (!node || node.closest('[aria-hidden="true"]')) continue;
                const region = node.closest('[aria-live]:not([aria-live="off"]), [role=status], [role=alert]');
                if (!region || region.hidden || region.getAttribute('aria-live') === 'off') continue;
                const said = [region.id, region.textContent.trim()];
                const last = window.__said[window.__said.length - 1];
                if (said[1] && !(last && last[0] === said[0] && last[1] === said[1])) window.__said.push(said);
            } }).observe(document.body, {subtree: true, childList: true, characterData: true}); }"""
    )


def announcements(page: Any) -> list[list[str]]:
    return page.evaluate("() => window.__said")


def ring(page: Any) -> str:
    return focused(page, "getComputedStyle(el).outlineStyle + ' ' + getComputedStyle(el).outlineWidth")


def test_the_skip_link_and_the_user_menu_work_from_the_keyboard(live_server, browser, make_user):
    seed = seed_everything(make_user)
    page = browser.new_context(viewport=DESKTOP).new_page()
    login(page, live_server.url, seed.lecturer.username)

    page.keyboard.press("Tab")
    assert focused(page, "el.className") == "skip-link"
    box = page.locator(".skip-link").bounding_box()
    assert box is not None and box["y"] >= 0, "the skip link must show when focused"
    assert ring(page) != "none 0px"
    page.keyboard.press("Enter")
    assert focused(page) == "main"

    page.keyboard.press("Shift+Tab")  # back up into the top bar, to the user menu
    assert focused(page, "el.tagName") == "SUMMARY"
    assert ring(page).startswith("solid")
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.querySelector('details.usermenu').open")
    page.keyboard.press("Tab")
    assert focused(page, "el.textContent") == "Sign out"
    page.keyboard.press("Escape")
    assert not page.evaluate("() => document.querySelector('details.usermenu').open")
    assert focused(page, "el.tagName") == "SUMMARY", "Escape gives focus back to the menu's button"
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    assert not page.evaluate("() => document.querySelector('details.usermenu').open")


def test_marking_from_the_keyboard_keeps_focus_on_the_students_row_and_is_announced(live_server, browser, make_user):
    from django.urls import reverse

    from attendance.models import AttendanceRecord

    seed = seed_everything(make_user)
    page = browser.new_context(viewport=DESKTOP).new_page()
    page.on("dialog", lambda dialog: dialog.dismiss())
    login(page, live_server.url, seed.lecturer.username)
    page.goto(live_server.url + reverse("session-checkin", args=[seed.open_session.pk]))
    katie = seed.student.pk
    row = f'#roster tr[data-student="{katie}"]'
    page.wait_for_selector(f"{row} button")

    tab_to(page, f"el.closest('tr') && el.closest('tr').dataset.student === '{katie}' && el.dataset.action === 'late'")
    watch_focus(page)
    assert ring(page).startswith("solid")
    page.keyboard.press("Enter")
    page.wait_for_selector(f'{row}[data-status="late"]')
    assert AttendanceRecord.objects.get(session=seed.open_session, student=seed.student).status == "late"
    # The list was rebuilt; focus is on the same student's row ("Late" is gone, so its first button).
    assert focused(page, "el.closest('tr') && el.closest('tr').dataset.student") == str(katie)
    assert focused(page, "el.dataset.action") == "present"
    assert "Katie Hill marked late" in page.inner_text("#roster-announce")

    page.keyboard.press("Space")
    page.wait_for_selector(f'{row}[data-status="present"]')
    assert focused(page, "el.closest('tr') && el.closest('tr').dataset.student") == str(katie)
    assert "Katie Hill marked present" in page.inner_text("#roster-announce")
    # Rebuilt by the poll with no change: focus stays where it is.
    page.wait_for_timeout(2500)
    assert focused(page, "el.closest('tr') && el.closest('tr').dataset.student") == str(katie)
    assert focus_lost(page) == []


def test_the_roster_shows_every_rows_buttons_and_names_on_one_line_at_1280_px(live_server, browser, make_user):
    from django.urls import reverse

    seed = seed_everything(make_user)
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    login(page, live_server.url, seed.lecturer.username)
    page.goto(live_server.url + reverse("session-checkin", args=[seed.open_session.pk]))
    page.wait_for_selector("#roster tbody button")
    screenshot(page, "checkin-roster-1280")
    clipped = page.evaluate(
        """() => { const box = document.querySelector('#roster').closest('.table-wrap').getBoundingClientRect();
                   return [...document.querySelectorAll('#roster tbody button')]
                     .map(b => [b.getAttribute('aria-label'), b.getBoundingClientRect()])
                     .filter(([, r]) => r.right > box.right + 0.5 || r.left < box.left - 0.5)
                     .map(([name]) => name); }"""
    )
    assert clipped == [], f"buttons cut off by the table's scroll box: {clipped}"
    lines = page.evaluate(
        f"""() => {{ const cell = document.querySelector('#roster tr[data-student="{seed.failed_student.pk}"] td');
                     const line = parseFloat(getComputedStyle(cell).lineHeight) || 20;
                     const name = cell.querySelector('span');
                     return Math.round(name.getBoundingClientRect().height / line); }}"""
    )
    assert lines <= 2, f"the longest name takes {lines} lines"
    overflow = page.evaluate(
        "() => { const w = document.querySelector('#roster').closest('.table-wrap'); "
        "return w.scrollWidth - w.clientWidth; }"
    )
    assert overflow <= 0, f"the roster scrolls sideways by {overflow} px at 1280 px"


def test_the_enrol_tabs_follow_the_arrow_keys_and_a_disabled_record_button_looks_disabled(
    live_server, browser, make_user
):
    from django.urls import reverse

    seed = seed_everything(make_user)
    page = browser.new_context(viewport=DESKTOP).new_page()
    login(page, live_server.url, seed.failed_student.username)
    page.goto(live_server.url + reverse("enrolment"))
    tab_to(page, "el.id === 'mode-record'")
    watch_focus(page)
    page.keyboard.press("ArrowRight")
    assert focused(page) == "mode-upload"
    assert page.get_attribute("#mode-upload", "aria-selected") == "true"
    assert page.is_visible("#upload-panel") and page.is_hidden("#record-panel")
    page.keyboard.press("ArrowRight")  # wraps round
    assert focused(page) == "mode-record" and page.is_visible("#record-panel")
    page.keyboard.press("End")
    assert focused(page) == "mode-upload"
    page.keyboard.press("Home")
    assert focused(page) == "mode-record"
    # One tab stop for the tab list: Tab leaves it for the panel's first control.
    page.keyboard.press("Tab")
    assert focused(page) == "camera-start"

    styles = page.evaluate(
        """() => Object.fromEntries(['record-start', 'send-recording'].map(id => {
              const b = document.getElementById(id), s = getComputedStyle(b);
              document.getElementById('recorded').hidden = false;
              return [id, {disabled: b.disabled, background: s.backgroundColor, border: s.borderStyle,
                           cursor: s.cursor, color: s.color}]; }))"""
    )
    record, enabled = styles["record-start"], styles["send-recording"]  # both .primary
    assert record["disabled"] and not enabled["disabled"]
    assert record["background"] != enabled["background"] and record["color"] != enabled["color"]
    assert record["border"] == "dashed" and record["cursor"] == "not-allowed"
    assert focus_lost(page) == []


def test_enrolling_from_the_keyboard_moves_focus_to_each_next_step_and_to_the_result(
    live_server,
    browser_with_camera,
    make_user,
    task_in_a_thread,  # noqa: F811
):
    """Chromium's built-in test pattern is the camera: no face, so the video is refused, which is
    what the result shows; the earlier refusal's stale line goes."""
    from django.urls import reverse

    seed = seed_everything(make_user)
    page = browser_with_camera(None).new_context(viewport=DESKTOP).new_page()
    login(page, live_server.url, seed.failed_student.username)
    page.goto(live_server.url + reverse("enrolment"))
    assert page.is_visible("#last-failure")
    tab_to(page, "el.id === 'consent'")
    page.keyboard.press("Space")
    assert page.is_checked("#consent")
    watch_focus(page)
    tab_to(page, "el.id === 'camera-start'")
    page.keyboard.press("Enter")
    page.wait_for_selector("#camera-start", state="hidden")
    page.wait_for_function("() => !document.getElementById('record-start').disabled")
    assert focused(page) == "record-start", "focus moves on to Record when Start the camera hides itself"
    watch_announcements(page)
    page.keyboard.press("Enter")
    page.wait_for_selector("#recorded:not([hidden])", timeout=30_000)
    assert focused(page) == "send-recording"
    # Each instruction is said once, not each tick of the countdown (11 s at 5 updates a second).
    said = announcements(page)
    spoken = [text for _, text in said]
    assert "Turn your head slightly to the left" in spoken and "Now slightly to the right" in spoken, said
    assert len(said) <= 8, f"{len(said)} announcements while recording: {said}"
    page.keyboard.press("Enter")
    page.wait_for_selector("#result:not([hidden])", timeout=120_000)
    assert focused(page) == "result"
    assert page.get_attribute("#result", "data-status") == "failed"
    assert page.locator("#last-failure").count() == 0
    screenshot(page, "enrol-keyboard-result")
    assert focus_lost(page) == []


def test_the_kiosk_page_walks_from_the_keyboard_with_focus_always_visible(live_server, browser, make_user):
    """The kiosk is watched, not operated: its controls are few (the skip link, the brand link, and
    whatever the camera's state offers). Tab reaches each in turn with a visible ring; past the last
    one focus leaves the document for the browser's own controls (as on every page) and the next
    Tab comes back to the skip link, whose Enter takes focus to the page's content."""
    seed = seed_everything(make_user)
    page = browser.new_context(viewport=DESKTOP).new_page()
    page.goto(live_server.url + f"/kiosk/{seed.kiosk_token}/", wait_until="networkidle")
    with page.expect_navigation():
        page.click("text=Start the kiosk")
    page.wait_for_load_state("networkidle")

    page.keyboard.press("Tab")
    assert focused(page, "el.className") == "skip-link"
    assert ring(page) != "none 0px"
    stops = [focused(page, "el.outerHTML.slice(0, 80)")]
    for _ in range(20):
        page.keyboard.press("Tab")
        if focused(page, "el === document.body"):  # out of the page, to the browser's controls
            break
        stops.append(focused(page, "el.outerHTML.slice(0, 80)"))
        assert ring(page) != "none 0px", f"no visible focus on {stops[-1]}"
    else:
        raise AssertionError(f"Tab never left the page: {stops}")
    assert len(stops) >= 2, stops  # the skip link and at least the brand link
    page.keyboard.press("Tab")
    assert focused(page, "el.className") == "skip-link", "Tab comes round to the skip link again"
    screenshot(page, "keyboard-kiosk")
    page.keyboard.press("Enter")
    assert focused(page) == "main"
