"""Fixtures shared by every test package: people, courses and a real Celery worker."""

from __future__ import annotations

import os

# The test machines are small and shared: one thread per library, set before numpy, OpenCV or
# torch start their pools (the browser plugin below imports them).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import itertools  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING, Any  # noqa: E402

import pytest  # noqa: E402

if TYPE_CHECKING:
    from recognition import FaceDetector

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = Path(os.environ.get("ROLLCALL_SHARED_DIR", REPO_ROOT.parent / "shared"))
FACES_DIR = Path(os.environ.get("ROLLCALL_FACES_DIR", SHARED_DIR / "faces"))
DETECTOR_MODEL = Path(
    os.environ.get("ROLLCALL_TEST_DETECTOR_MODEL", SHARED_DIR / "models" / "face_detection_yunet_2023mar.onnx")
)

# The Chromium fixtures, for every test package (a second sync Playwright in one process fails).
pytest_plugins = ["tests.browser"]

_counter = itertools.count(1)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Compile the translations the way ./rollcall does, when a catalogue is newer than its .mo.

    The tests read Croatian pages: a bare `pytest` after editing a .po must not test the old words.
    """
    catalogues = [*(REPO_ROOT / "locale").rglob("*.po"), *(REPO_ROOT / "config").rglob("locale_*/**/*.po")]
    stale = [po for po in catalogues if not po.with_suffix(".mo").exists()
             or po.with_suffix(".mo").stat().st_mtime < po.stat().st_mtime]
    for po in stale:
        try:
            subprocess.run(["msgfmt", "--check", "-o", str(po.with_suffix(".mo")), str(po)], check=True)
        except FileNotFoundError:
            pytest.exit("msgfmt (GNU gettext) is missing: ./rollcall test installs it, or apt-get install gettext", 4)


@pytest.fixture(autouse=True)
def _english_after_each_test() -> Iterator[None]:
    """LocaleMiddleware leaves the thread in the last request's language: a test that fetched a
    Croatian page must not make the next test's English assertions read Croatian."""
    yield
    from django.utils import translation

    translation.deactivate()


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    if not (FACES_DIR / "people").is_dir():
        pytest.skip(f"the test faces are not at {FACES_DIR} (set ROLLCALL_FACES_DIR)")
    return FACES_DIR


@pytest.fixture(scope="session")
def detector_model() -> Path:
    if not DETECTOR_MODEL.is_file():
        pytest.skip(f"the YuNet model is not at {DETECTOR_MODEL} (set ROLLCALL_TEST_DETECTOR_MODEL)")
    return DETECTOR_MODEL


@pytest.fixture(scope="session")
def detector(detector_model: Path) -> FaceDetector:
    from recognition import FaceDetector

    return FaceDetector(detector_model)


@pytest.fixture
def liveness_off(settings: object) -> None:
    """Liveness off on the lecturer's page and at the kiosk, for tests of recognition, confirmations
    and marking rather than of liveness: they post the same snapshots again and again (a frozen
    face, rightly refused) and faces far smaller than a webcam's. Liveness has its own tests."""
    settings.ROLLCALL_LIVENESS_LECTURER = "off"  # type: ignore[attr-defined]
    settings.ROLLCALL_LIVENESS_KIOSK = "off"  # type: ignore[attr-defined]


@dataclass
class KioskDevice:
    """A device paired with a session's kiosk link, as the kiosk at the door is."""

    client: Any  # its browser (a Django test Client): the device cookie goes with every request
    secret: str  # the device secret in that cookie, for the X-Kiosk-Token header of a kiosk that is not a browser

    @property
    def header(self) -> dict[str, str]:
        return {"HTTP_X_KIOSK_TOKEN": self.secret}


def kiosk_pair(token: str, client: Any = None) -> KioskDevice:
    """Open the kiosk link in a browser (a new Django test Client unless one is given) and start the
    kiosk there, as a kiosk does: that pairs it and leaves the device secret in its cookie."""
    from django.test import Client
    from django.urls import reverse

    from attendance.checkin.api import KIOSK_COOKIE

    client = client if client is not None else Client()
    assert client.get(reverse("kiosk", args=[token])).status_code == 200  # "Use this device as the kiosk?"
    response = client.post(reverse("kiosk", args=[token]))  # Start the kiosk
    assert response.status_code == 303, (response.status_code, response.content[:300])
    return KioskDevice(client=client, secret=client.cookies[KIOSK_COOKIE].value)


@pytest.fixture
def fresh_redis() -> Iterator[None]:
    """The test Redis database emptied before and after (confirmation counts, rate limits)."""
    from attendance.platform.redis import redis_client

    redis_client().flushdb()
    yield
    redis_client().flushdb()


def stop_process(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, then SIGKILL if it has not gone within 20 s."""
    if process and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def make_user(db: None) -> Callable[..., object]:
    from attendance.models import User

    def make(role: str = "student", **fields: object) -> User:
        n = next(_counter)
        fields.setdefault("username", f"{role}{n}")
        fields.setdefault("first_name", role.title())
        fields.setdefault("last_name", f"Number{n}")
        user = User.objects.create_user(role=role, password="pw-for-tests-only", **fields)  # type: ignore[arg-type]
        return user

    return make


@pytest.fixture
def admin_user(make_user: Callable[..., object]) -> object:
    return make_user("admin", is_staff=True, is_superuser=True)


@pytest.fixture
def lecturer(make_user: Callable[..., object]) -> object:
    return make_user("lecturer")


@pytest.fixture
def student(make_user: Callable[..., object]) -> object:
    return make_user("student")


@pytest.fixture
def course(db: None, lecturer: object) -> object:
    from attendance.models import Course

    course = Course.objects.create(code=f"CS{next(_counter)}", title="Computer Vision", term="2026-autumn")
    course.lecturers.add(lecturer)  # type: ignore[arg-type]
    return course


def _worker_env() -> dict[str, str]:
    """The worker must see the test database, not the development one, and the same media folders."""
    from django.conf import settings
    from django.db import connection

    env = dict(os.environ)
    db = connection.settings_dict
    env["DATABASE_URL"] = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    env["DJANGO_SETTINGS_MODULE"] = "config.settings_test"
    env["MEDIA_ROOT"] = str(settings.MEDIA_ROOT)
    env["ROLLCALL_INDEX_DIR"] = str(settings.ROLLCALL_INDEX_DIR)
    return env


class WorkerProcess:
    """A real `celery worker` subprocess, started and stopped by a test."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, timeout: float = 60.0) -> None:
        from config.celery import app

        hostname = f"test-{os.getpid()}-{time.monotonic_ns()}@localhost"
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "--loglevel", "INFO",
             "--hostname", hostname, "--without-gossip", "--without-mingle"],
            cwd=REPO_ROOT, env=_worker_env(), stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the Celery worker exited early:\n{self.log_path.read_text()[-3000:]}")
            if app.control.ping(destination=[hostname], timeout=0.5):
                return
        self.stop()
        raise RuntimeError(f"the Celery worker did not answer within {timeout} s:\n{self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: what a crash or the out-of-memory killer does; no chance to clean up."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        stop_process(self.process)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def celery_worker_process(transactional_db: None, tmp_path: Path) -> Iterator[WorkerProcess]:
    """A real worker against the test database. Tests using it need committed rows (transactional_db)."""
    from config.celery import app

    app.control.purge()  # leftovers from an earlier test must not run in this one
    worker = WorkerProcess(tmp_path / "celery-worker.log")
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
