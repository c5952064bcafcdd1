"""Celery beat keeps its schedule file in ROLLCALL_VAR_DIR wherever it is started from (issue 21:
a relative `var/celerybeat-schedule` made beat die at start when the folder was elsewhere)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, stop_process

pytestmark = [pytest.mark.slow]


def test_beat_writes_its_schedule_into_a_var_dir_outside_the_checkout_when_started_elsewhere(tmp_path: Path):
    var_dir = tmp_path / "var-outside"
    var_dir.mkdir()
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings_test",
        ROLLCALL_VAR_DIR=str(var_dir),
        PYTHONPATH=str(REPO_ROOT),
    )
    env.pop("CELERY_BEAT_SCHEDULE_FILENAME", None)
    log = tmp_path / "beat.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO"],
            cwd=elsewhere,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            if list(var_dir.glob("celerybeat-schedule*")) and "beat: Starting" in log.read_text(errors="replace"):
                break
            time.sleep(0.2)
        text = log.read_text(errors="replace")
        assert process.poll() is None, f"celery beat exited:\n{text[-3000:]}"
        assert list(var_dir.glob("celerybeat-schedule*")), f"no schedule file in {var_dir}:\n{text[-3000:]}"
        assert not list(elsewhere.iterdir()), "beat wrote into its working directory"
    finally:
        stop_process(process)


def test_a_relative_var_dir_is_taken_from_the_checkout_not_the_working_directory(tmp_path: Path):
    # A relative path from the checkout that lands in this test's folder, so nothing is written
    # into the checkout itself; the working directory is another folder.
    relative = os.path.relpath(tmp_path / "var-relative", REPO_ROOT)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    env = dict(
        os.environ, ROLLCALL_VAR_DIR=relative, PYTHONPATH=str(REPO_ROOT), DJANGO_SETTINGS_MODULE="config.settings_test"
    )
    env.pop("CELERY_BEAT_SCHEDULE_FILENAME", None)
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; "
            "print(settings.VAR_DIR.resolve()); print(settings.CELERY_BEAT_SCHEDULE_FILENAME)",
        ],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out[0] == str((tmp_path / "var-relative").resolve())
    assert (
        Path(out[1]).is_absolute()
        and Path(out[1]).resolve() == (tmp_path / "var-relative").resolve() / "celerybeat-schedule"
    )
