"""Every page of every role audited with axe-core's WCAG 2.0/2.1 A and AA rules in Chromium, at a
desktop and at a phone viewport, with seeded data; on the phone, no page may be wider than the
screen. A failure lists each page, rule id, impact and the elements. Screenshots of each page go
to test-artifacts/screenshots/a11y-*.png.

The page list is tests/e2e/accessibility.py's PAGES."""

from __future__ import annotations

import re

import pytest

from tests.browser import CHROMIUM, login, screenshot
from tests.e2e.accessibility import (
    DESKTOP,
    PAGES,
    PHONE,
    ROLE_USERS,
    axe_run,
    axe_source,
    horizontal_overflow,
    seed_everything,
    small_targets,
)

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def axe() -> str:
    return axe_source()


@pytest.fixture
def browser(playwright_instance):
    # No camera at all: the live pages show their "no camera" state and never start recognition,
    # which these tests are not about (the check-in tests are).
    browser = playwright_instance.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu", "--no-first-run"]
    )
    yield browser
    browser.close()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
@pytest.mark.parametrize("role", list(PAGES))
def test_every_page_passes_axe_wcag_21_aa_and_fits_the_screen(live_server, browser, make_user, axe, role, viewport):
    seed = seed_everything(make_user)
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    pick = ROLE_USERS[role]
    if pick is not None:
        login(page, live_server.url, pick(seed).username)
    violations = []
    too_wide = []
    kind = "phone" if viewport is PHONE else "desktop"
    for audited in PAGES[role]:
        path = audited.url(seed)
        response = page.goto(live_server.url + path)
        assert response is not None and (
            response.status == audited.status if audited.status >= 400 else response.status < 400
        ), f"{role} {audited.name}: {path} answered {response and response.status}"
        page.wait_for_load_state("networkidle")
        if audited.before and audited.navigates:
            with page.expect_navigation():
                page.evaluate(audited.before)
            page.wait_for_load_state("networkidle")
        elif audited.before:
            page.evaluate(audited.before)
        name = f"{role} · {audited.name} ({kind})"
        violations += axe_run(page, axe, name=name, exclude=audited.exclude)
        if viewport is PHONE:
            overflow = horizontal_overflow(page)
            if overflow > 0:
                too_wide.append(f"{name}: {overflow} px wider than the {viewport['width']} px screen")
            too_wide += [f"{name}: tap target under 24 px: {target}" for target in small_targets(page)]
        screenshot(page, f"a11y-{kind}-{_slug(role)}-{_slug(audited.name)}")
    problems = [str(v) for v in violations] + too_wide
    assert not problems, f"{len(problems)} accessibility problems:\n" + "\n".join(problems)


ROSTER_GEOMETRY = """() => {
    const box = document.querySelector('#roster').closest('.table-wrap');
    const rect = (el) => el.getBoundingClientRect();
    const rows = [...document.querySelectorAll('#roster tbody tr[data-student]')].map((tr) => {
        const [name, status] = [...tr.querySelectorAll('td')].map(rect);
        const buttons = [...tr.querySelectorAll('button')].map(rect);
        return {
            student: tr.textContent.trim().slice(0, 30), nameRight: name.right, nameBottom: name.bottom,
            statusLeft: status.left, statusTop: status.top, statusRight: status.right, statusBottom: status.bottom,
            buttons: buttons.length, buttonsTop: Math.min(...buttons.map((b) => b.top)),
            buttonsLeft: Math.min(...buttons.map((b) => b.left)),
            buttonsRight: Math.max(...buttons.map((b) => b.right)),
        };
    });
    return {scrollWidth: box.scrollWidth, clientWidth: box.clientWidth, innerWidth: window.innerWidth, rows};
}"""


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_check_in_roster_stacks_on_a_phone_and_keeps_one_line_per_student_on_a_desktop(
    live_server, browser, make_user, viewport
):
    """On a 390 px phone each student's name and status share a line and the row's buttons come
    below them, so the list never scrolls sideways; at 1280 px the buttons stay beside the status."""
    from django.urls import reverse

    seed = seed_everything(make_user)
    page = browser.new_context(viewport=viewport).new_page()
    login(page, live_server.url, seed.lecturer.username)
    page.goto(live_server.url + reverse("session-checkin", args=[seed.open_session.pk]))
    page.wait_for_selector("#roster button[data-action]")
    kind = "phone" if viewport is PHONE else "desktop"
    screenshot(page, f"checkin-roster-{kind}")
    shape = page.evaluate(ROSTER_GEOMETRY)
    assert shape["scrollWidth"] <= shape["clientWidth"] + 1, f"the roster scrolls sideways: {shape}"
    assert len(shape["rows"]) == 5 and all(row["buttons"] >= 2 for row in shape["rows"]), shape
    for row in shape["rows"]:
        assert row["statusLeft"] >= row["nameRight"] - 1, row  # the status beside the name, not under it
        assert row["buttonsRight"] <= shape["innerWidth"], row
        if viewport is PHONE:
            assert row["statusTop"] < row["nameBottom"], row  # one line
            assert row["buttonsTop"] >= max(row["nameBottom"], row["statusBottom"]) - 1, row  # buttons below
        else:
            assert row["buttonsLeft"] >= row["statusRight"] - 1 and row["buttonsTop"] < row["nameBottom"], row
