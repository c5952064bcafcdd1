"""The README's first command on a fresh clone with no model hub: `./rollcall up` starts, says in one
line what it runs and why, and a student enrolled through the real worker is checked in.

No var/, no ROLLCALL_DETECTOR_MODEL, no model file copied: the hub and OpenCV Zoo are made
unreachable (an HTTPS proxy nobody listens on), so the site runs what ships in installed packages
(dlib's backbone and detector) and liveness degrades. The clone shares this checkout's virtual
environment, which `./rollcall up` then finds complete and leaves alone.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.attendance.enrolment_videos import KATIE_VIDEO, SPLIT_S, write_mp4
from tests.attendance.factories_faces import katie_probe_jpegs
from tests.conftest import REPO_ROOT
from tests.videos import video_frames

pytestmark = pytest.mark.slow

PASSWORD = "offline-admin-pw-1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Output:
    """The command's output, read in a thread, so that waiting for a line never blocks on a pipe."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert process.stdout is not None
        self._thread = threading.Thread(target=lambda: self.lines.extend(iter(process.stdout.readline, "")),
                                        daemon=True)
        self._thread.start()

    @property
    def text(self) -> str:
        return "".join(self.lines)


def _wait_for(check, *, seconds: float, what: str, output: Output):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(1.0)
    raise AssertionError(f"{what} within {seconds:.0f} s; output so far:\n{output.text[-6000:]}")


def _env(clone: Path, port: int) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith(("ROLLCALL_", "DJANGO_", "DATABASE_", "MEDIA_", "CELERY_", "HF_"))}
    return {
        **keep,
        "ROLLCALL_VENV": str((REPO_ROOT / ".venv").resolve()),
        "REDIS_URL": os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/1"),
        "PORT": str(port),
        "WEB_WORKERS": "1",
        "ROLLCALL_ADMIN_PASSWORD": PASSWORD,
        # Beat's first heartbeat comes one interval after it starts: 5 s, not a minute, so the
        # health read at the end shows the worker's -B beat sending it.
        "ROLLCALL_BEAT_HEARTBEAT_SECONDS": "5",
        "HTTPS_PROXY": "http://127.0.0.1:9",  # no model hub, no OpenCV Zoo, no GitHub
        "https_proxy": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }


def _manage(clone: Path, env: dict[str, str], code: str) -> str:
    python = str((REPO_ROOT / ".venv").resolve() / "bin" / "python")  # the venv's, not the interpreter it links to
    done = subprocess.run([python, "manage.py", "shell", "-c", code], cwd=clone, env=env, capture_output=True,
                          text=True, timeout=120, check=True)
    return done.stdout.strip()


def test_rollcall_up_on_a_fresh_clone_with_no_model_hub_enrols_and_checks_in(tmp_path, faces_dir, fresh_redis):
    clone = tmp_path / "rollcall"
    # What is committed here, as a newcomer would clone it.
    head = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    subprocess.run(["git", "clone", "--quiet", "--no-checkout", str(REPO_ROOT), str(clone)], check=True, timeout=120)
    subprocess.run(["git", "-C", str(clone), "checkout", "--quiet", head], check=True, timeout=120)
    assert not (clone / "var").exists()
    (clone / ".venv").unlink(missing_ok=True)  # ROLLCALL_VENV points at the shared one
    port = _free_port()
    env = _env(clone, port)
    process = subprocess.Popen(["./rollcall", "up"], cwd=clone, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    output = Output(process)
    base = f"http://127.0.0.1:{port}"
    try:
        def up() -> bool:
            assert process.poll() is None, output.text[-6000:]
            try:
                return requests.get(f"{base}/healthz?scope=web", timeout=5).status_code == 200
            except requests.RequestException:  # not listening yet, or its worker still booting
                return False

        _wait_for(up, seconds=600, what="the site did not answer", output=output)
        said = [line for line in output.lines if "Recognition runs" in line]
        assert len(said) == 1, output.text[-6000:]
        assert re.search(r"Recognition runs dlib's face ResNet \(auto: no ViT-B-32/openai CLIP weights cached", said[0])
        assert "dlib's HOG detector with 5-point landmarks (auto: no face_detection_yunet_2023mar.onnx" in said[0]

        ids = _manage(clone, env, (
            "from attendance.models import *; "
            "s = User.objects.create_user('katie', password='pw-katie-1', role='student', first_name='Katie'); "
            "c = Course.objects.create(code='OFF1', title='Offline', term='2026'); "
            "CourseMembership.objects.create(course=c, student=s); print(s.pk, c.pk)"
        )).split()
        student_id, course_id = int(ids[-2]), int(ids[-1])
        token = requests.post(f"{base}/api/auth/token/", data={"username": "admin", "password": PASSWORD},
                              timeout=30).json()["token"]
        auth = {"Authorization": f"Token {token}"}
        video = write_mp4(video_frames(KATIE_VIDEO, end_s=SPLIT_S), tmp_path / "katie.mp4")
        with video.open("rb") as handle:
            created = requests.post(f"{base}/api/enrolments/", headers=auth, timeout=60,
                                    data={"student": student_id, "consent": "true"}, files={"video": handle})
        assert created.status_code == 202, created.text

        def enrolled() -> dict | None:
            body = requests.get(base + created.json()["status_url"], headers=auth, timeout=30).json()
            return body if body["finished"] else None

        body = _wait_for(enrolled, seconds=600, what="the enrolment did not finish", output=output)
        assert body["status"] == "ready", body

        session = requests.post(f"{base}/api/courses/{course_id}/sessions/", headers=auth, timeout=30).json()
        answers = []
        for probe in katie_probe_jpegs()[:8]:
            answer = requests.post(f"{base}/api/sessions/{session['id']}/check-in/", headers={
                **auth, "Content-Type": "image/jpeg"}, data=probe, timeout=120)
            assert answer.status_code == 200, answer.text
            answers.append(answer.json())
            if student_id in answer.json()["marked"]:
                break
        assert any(student_id in a["marked"] for a in answers), answers
        assert {a["liveness"] for a in answers} == {"unavailable"}  # no MiniFASNet files: degraded, said so
        health = requests.get(f"{base}/healthz", headers=auth, timeout=30).json()
        assert health["checks"]["recognition"]["detail"] == "serving dlib:resnet_v1:mirror"
        assert health["checks"]["liveness"]["ok"] is False
        assert health["checks"]["beat"]["ok"] is True, health
        assert health["checks"]["beat"]["detail"].startswith("last heartbeat"), health  # the worker's -B beat
        assert requests.get(f"{base}/favicon.ico", timeout=30).status_code == 200  # followed to the icon
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)  # Ctrl-C
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
    def gone() -> bool:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return True
        return False

    _wait_for(gone, seconds=60, what="web and worker did not stop on Ctrl-C", output=output)
    assert "unbound variable" not in output.text
    assert "superuser privileges" not in output.text  # Celery's root warning, replaced by one line
    assert "Loading faiss" not in output.text
