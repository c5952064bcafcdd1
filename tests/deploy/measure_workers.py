"""gunicorn's worker model measured: sync against gthread, on this machine, behind no proxy.

Not part of the suite (the name does not start with test_; timings are not assertions). Run it by
naming it, on a machine with nothing else busy:

    pytest tests/deploy/measure_workers.py -s

For each model it starts gunicorn against the test database with one enrolled student and an open
session, and runs two short bounded loads: 8 clients fetching the sign-in page (a light page: a
template, a session, no model), then 4 clients posting webcam snapshots to the check-in API (a
detector pass and an embedding each: CPU-bound) while one more client fetches the sign-in page, to
see what a lecturer opening a page waits for while check-ins keep every worker busy. The figures go
to the README's production section.
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.urls import reverse

from attendance.sessions.services import session_open
from tests.attendance.factories_faces import enrol_with_vectors, katie_enrolment_vectors, katie_probe_jpegs
from tests.conftest import REPO_ROOT
from tests.reliability.conftest import Gunicorn, api_token, app_env, request

SECONDS = float(os.environ.get("ROLLCALL_MEASURE_SECONDS", "4"))
MODELS = [(2, 1), (2, 4), (4, 1), (1, 8)]  # (workers, threads): threads > 1 is gthread


def _load(call: Callable[[], int], clients: int, seconds: float) -> list[float]:
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def loop() -> None:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            status = call()
            took = time.perf_counter() - started
            assert status == 200, status
            with lock:
                latencies.append(took)

    threads = [threading.Thread(target=loop) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 120)
    return latencies


def _summary(latencies: list[float], seconds: float) -> dict[str, float]:
    cuts = statistics.quantiles(latencies, n=20) if len(latencies) >= 2 else [latencies[0]] * 19
    return {"per_s": round(len(latencies) / seconds, 1), "p50_ms": round(statistics.median(latencies) * 1000),
            "p95_ms": round(cuts[18] * 1000)}


def _measure(server: Gunicorn, checkin_url: str, token: str, probes: tuple[bytes, ...],
             concurrency: int) -> dict[str, Any]:
    sent = iter(range(10**9))

    def page() -> int:
        return request("GET", server.url + "/login/", timeout=60).status

    def checkin() -> int:
        body = probes[next(sent) % len(probes)]
        return request("POST", checkin_url, body=body, timeout=60, headers={
            "Content-Type": "image/jpeg", "Authorization": f"Token {token}"}).status

    _load(page, 4, 1.0)  # warm: templates, connections
    _load(checkin, concurrency, 1.0)
    pages = _summary(_load(page, 8, SECONDS), SECONDS)
    page_during: list[float] = []
    background = threading.Thread(target=lambda: page_during.extend(_load(page, 1, SECONDS)))
    background.start()
    checkins = _summary(_load(checkin, 4, SECONDS), SECONDS)
    background.join(timeout=SECONDS + 120)
    return {"pages_alone": pages, "checkins_4_clients": checkins,
            "page_during_checkins": _summary(page_during, SECONDS)}


@pytest.mark.slow
def test_measure_worker_models(transactional_db, course, lecturer, make_user, tmp_path):
    katie = make_user("student", first_name="Katie", last_name="Hill")
    enrol_with_vectors(student=katie, vectors=katie_enrolment_vectors(), courses=[course])
    session = session_open(course=course, by=lecturer)
    token = api_token(lecturer)
    probes = katie_probe_jpegs()
    results = []
    for workers, threads in MODELS:
        server = Gunicorn(tmp_path / f"gunicorn-{workers}-{threads}.log", workers=workers, threads=threads,
                          env=app_env(ROLLCALL_CHECKIN_RATE_PER_MINUTE="1000000", DEBUG="false",
                                      SECRET_KEY="measure-" + "x" * 40, SESSION_COOKIE_SECURE="false"))
        server.start()
        try:
            figures = _measure(server, server.url + reverse("api-session-checkin", args=[session.pk]), token,
                               probes, workers * threads)
        finally:
            server.stop()
        row = {"model": "sync" if threads == 1 else "gthread", "workers": workers, "threads": threads, **figures}
        results.append(row)
        print(json.dumps(row))
    artifacts = REPO_ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "worker-models.json").write_text(json.dumps({"cpus": os.cpu_count(), "seconds": SECONDS,
                                                              "results": results}, indent=2) + "\n")
