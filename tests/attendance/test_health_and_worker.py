from __future__ import annotations

import pytest

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


def test_a_task_runs_in_a_real_worker_and_its_result_returns_through_redis(celery_worker_process, client):
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
