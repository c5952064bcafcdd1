from __future__ import annotations

import subprocess
import sys
import time

import pytest

from attendance.platform.health import BEAT_AWAITED_KEY, BEAT_LAST_KEY, check_beat
from attendance.platform.redis import redis_client
from attendance.tasks import ping

pytestmark = pytest.mark.slow


def test_healthz_reports_a_stopped_worker_as_down(client, transactional_db):
    from config.celery import app

    assert not app.control.ping(timeout=0.5), "a stray Celery worker is running on the test broker"
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 503
    assert body["checks"]["worker"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is True

    # A web host's own health, for a load balancer: it serves check-ins without a worker.
    response = client.get("/healthz?scope=web")
    assert response.status_code == 200, response.json()
    assert set(response.json()["checks"]) == {"database", "redis"}


def test_a_task_runs_in_a_real_worker_and_its_result_returns_through_redis(fresh_redis, celery_worker_process, client):
    # fresh_redis first (before the worker binds its queue): a fresh start, no beat expected yet.
    result = ping.delay(41)
    assert result.get(timeout=30) == 42
    # While the worker runs, /healthz reports everything up.
    response = client.get("/healthz")
    assert response.status_code == 200, response.json()
    assert response.json()["checks"]["worker"]["ok"] is True
    # And once it stops, down again: healthz does not cache a stale answer.
    celery_worker_process.stop()
    assert client.get("/healthz").json()["checks"]["worker"]["ok"] is False


def test_celery_refuses_pickle():
    from config.celery import app

    assert app.conf.accept_content == ["json"]
    assert app.conf.task_serializer == "json"
    assert app.conf.task_acks_late is True


def test_beat_is_awaited_after_a_fresh_start_and_missing_once_its_heartbeat_is_late(fresh_redis, settings):
    settings.ROLLCALL_BEAT_HEARTBEAT_SECONDS = 60
    client = redis_client()
    first = check_beat()
    assert first.ok and "waiting for the first heartbeat" in first.detail
    assert float(client.get(BEAT_AWAITED_KEY)) == pytest.approx(time.time(), abs=5)
    # Still none three minutes after the site first looked: beat died at start, or never ran.
    client.set(BEAT_AWAITED_KEY, repr(time.time() - 181))
    never = check_beat()
    assert not never.ok and "is `celery beat` running?" in never.detail
    client.set(BEAT_LAST_KEY, repr(time.time() - 30))
    assert check_beat().ok
    client.set(BEAT_LAST_KEY, repr(time.time() - 181))
    late = check_beat()
    assert not late.ok and "181 s ago" in late.detail


def test_a_real_beat_keeps_healthz_ok_and_its_absence_degrades_it(fresh_redis, celery_worker_process, client,
                                                                   admin_user, settings, tmp_path):
    """`celery beat` as deployed, its heartbeat every second (so missing after three): /healthz and the
    admin overview say ok while it runs and degraded once it stops; the load balancer's scope never."""
    from tests.conftest import REPO_ROOT, _worker_env, stop_process

    settings.ROLLCALL_BEAT_HEARTBEAT_SECONDS = 1
    log = tmp_path / "beat.log"
    with log.open("wb") as out:
        beat = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO",
             "--schedule", str(tmp_path / "celerybeat-schedule")],
            cwd=REPO_ROOT, env={**_worker_env(), "ROLLCALL_BEAT_HEARTBEAT_SECONDS": "1"},
            stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while not client.get("/healthz").json()["checks"]["beat"]["detail"].startswith("last heartbeat"):
            assert beat.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"no heartbeat after 60 s\n{log.read_text()[-3000:]}"
            time.sleep(0.2)
        response = client.get("/healthz")
        assert response.status_code == 200, response.json()
        # Two more heartbeats: beat keeps sending them, not just the first.
        first = float(redis_client().get(BEAT_LAST_KEY))
        deadline = time.monotonic() + 30
        while float(redis_client().get(BEAT_LAST_KEY)) < first + 1.5:
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        assert client.get("/healthz").status_code == 200
    finally:
        stop_process(beat)
    assert "attendance.beat_heartbeat" in log.read_text()

    deadline = time.monotonic() + 30
    while (response := client.get("/healthz")).status_code == 200:
        assert time.monotonic() < deadline, response.json()
        time.sleep(0.2)
    body = response.json()
    assert body["status"] == "degraded" and body["checks"]["beat"]["ok"] is False, body
    assert body["checks"]["worker"]["ok"] is True  # only beat is missing
    assert "is `celery beat` running?" in body["checks"]["beat"]["detail"]
    assert client.get("/healthz?scope=web").status_code == 200
    client.force_login(admin_user)
    overview = client.get("/").content.decode()
    assert 'id="degraded"' in overview and "<strong>beat</strong>: no heartbeat from Celery beat" in overview
