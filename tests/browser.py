"""Browser tests: Debian's Chromium driven by Playwright, with a Y4M file as its webcam.

A pytest plugin of the root conftest, so that every package (e2e, reliability) shares one Playwright:
two sync Playwright instances cannot be open in one process."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import REPO_ROOT

CHROMIUM = os.environ.get("ROLLCALL_CHROMIUM", "/usr/bin/chromium")
SCREENSHOT_DIR = Path(os.environ.get("ROLLCALL_SCREENSHOT_DIR", REPO_ROOT / "test-artifacts" / "screenshots"))

pytestmark = [pytest.mark.slow, pytest.mark.browser]

# The browser runs the live server in a thread of this process; Django refuses sync DB access from
# Playwright's event loop thread unless told that this is deliberate.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def write_y4m(frames: list[np.ndarray], path: Path, *, fps: int = 25) -> Path:
    """Write BGR frames as a Y4M file, the format Chromium's fake camera plays (.mp4 is refused)."""
    height, width = frames[0].shape[:2]
    width -= width % 2  # I420 needs even sizes
    height -= height % 2
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            frame = frame[:height, :width]
            out.write(b"FRAME\n")
            out.write(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
    return path




@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM}: run ./rollcall test, which installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture
def browser_with_camera(playwright_instance: object, tmp_path: Path) -> Iterator[Callable[..., object]]:
    """Launch Chromium whose webcam plays the given Y4M file (or its built-in test pattern), with any
    further command-line switches (a certificate to trust, say)."""
    browsers: list[object] = []

    def launch(y4m: Path | None = None, *, extra_args: Sequence[str] = ()) -> object:
        args = [
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", *extra_args,
        ]
        if y4m is not None:
            args.append(f"--use-file-for-fake-video-capture={y4m}")
        browser = playwright_instance.chromium.launch(  # type: ignore[attr-defined]
            executable_path=CHROMIUM, headless=True, args=args
        )
        browsers.append(browser)
        return browser

    yield launch
    for browser in browsers:
        browser.close()  # type: ignore[attr-defined]


def screenshot(page: object, name: str) -> Path:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path


def login(page: object, base_url: str, username: str, password: str = "pw-for-tests-only") -> None:
    page.goto(f"{base_url}/login/")  # type: ignore[attr-defined]
    page.fill("#id_username", username)  # type: ignore[attr-defined]
    page.fill("#id_password", password)  # type: ignore[attr-defined]
    page.click("button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_url(f"{base_url}/")  # type: ignore[attr-defined]
