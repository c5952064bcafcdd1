"""The PostgreSQL connection dropped and restored under a running gunicorn.

gunicorn reaches the test database through a TCP proxy of this test's own. Cutting the proxy drops
every open connection (the web worker's persistent one included) and refuses new ones, as a
database restart or a reset network path does; stalling it lets new connections hang unanswered, as
a network that drops packets does. Requests meanwhile must fail cleanly: 503 with a
sentence, never a traceback or a hang; once the path is back, the very next request works, in the
same server process, and check-in picks up where it was.
"""

from __future__ import annotations

import time

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from attendance.models import AttendanceRecord
from attendance.sessions.services import session_open
from tests.attendance.factories_faces import enrol_with_vectors, katie_enrolment_vectors, katie_probe_jpegs
from tests.reliability.conftest import Gunicorn, TcpProxy, api_token, app_env, request

pytestmark = pytest.mark.slow


def test_requests_fail_cleanly_while_the_database_is_unreachable_and_recover_when_it_returns(
    transactional_db, course, lecturer, make_user, tmp_path
):
    katie = make_user("student", first_name="Katie", last_name="Hill")
    enrol_with_vectors(student=katie, vectors=katie_enrolment_vectors(), courses=[course])
    session = session_open(course=course, by=lecturer)
    token = api_token(lecturer)
    client = Client()
    client.force_login(lecturer)
    cookie = client.cookies["sessionid"].value

    db = connection.settings_dict
    proxy = TcpProxy((db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432)))
    # Liveness off: this test is about the database connection, and re-sends the same frames.
    env = app_env(DATABASE_URL=f"postgres://{db['USER']}@127.0.0.1:{proxy.port}/{db['NAME']}",
                  ROLLCALL_LIVENESS_LECTURER="off")
    server = Gunicorn(tmp_path / "gunicorn.log", env=env, workers=1, threads=2)
    server.start()
    api = {"Authorization": f"Token {token}", "Accept": "application/json"}
    checkin_url = server.url + reverse("api-session-checkin", args=[session.pk])
    probes = katie_probe_jpegs()

    def check_in(frame: bytes):
        return request("POST", checkin_url, body=frame, headers={**api, "Content-Type": "image/jpeg"}, timeout=20)

    def pages():
        return {
            "check-in": check_in(probes[0]),
            "live list": request("GET", server.url + reverse("api-session-state", args=[session.pk]), headers=api),
            "course page": request("GET", server.url + reverse("course-detail", args=[course.pk]),
                                   headers={"Cookie": f"sessionid={cookie}"}),
        }

    try:
        assert check_in(probes[0]).json()["faces"][0]["outcome"] == "confirming"
        assert {name: r.status for name, r in pages().items()} == {
            "check-in": 200, "live list": 200, "course page": 200}

        proxy.cut()
        started = time.monotonic()
        down = pages()
        down_s = time.monotonic() - started
        assert {name: r.status for name, r in down.items()} == {
            "check-in": 503, "live list": 503, "course page": 503}, {n: r.text[:300] for n, r in down.items()}
        for name, reply in down.items():
            assert "database is not answering" in reply.text and "Traceback" not in reply.text, (name, reply.text)
            assert reply.headers.get("retry-after") == "5"
        assert down["check-in"].json()["code"] == "database_unavailable"
        assert down["course page"].headers["content-type"].startswith("text/html")
        assert down_s < 10, f"three requests took {down_s:.1f} s to fail"
        health = request("GET", server.url + "/healthz")
        assert health.status == 503 and "database" in health.text
        assert proxy.refused >= 3

        proxy.restore()
        started = time.monotonic()
        back = pages()
        recovered_s = time.monotonic() - started
        assert {name: r.status for name, r in back.items()} == {
            "check-in": 200, "live list": 200, "course page": 200}, {n: r.text[:300] for n, r in back.items()}
        # Check-in goes on from where it was: the two snapshots counted before the outage still count,
        # so the first one after it is the third agreeing snapshot and marks her; later ones find the
        # record and add none.
        assert back["check-in"].json()["faces"][0]["outcome"] == "marked"
        outcomes = [check_in(frame).json()["faces"][0]["outcome"] for frame in probes[1:3]]
        assert outcomes == ["recorded", "recorded"], outcomes
        assert AttendanceRecord.objects.filter(session=session, student=katie).count() == 1

        # Packets lost instead of refused: a new connection hangs. DATABASE_CONNECT_TIMEOUT (5 s)
        # bounds the wait, well inside gunicorn's 60 s worker timeout.
        proxy.stall()
        started = time.monotonic()
        stalled = request("GET", server.url + reverse("api-session-state", args=[session.pk]), headers=api)
        stalled_s = time.monotonic() - started
        assert stalled.status == 503 and "database is not answering" in stalled.text, stalled.text[:300]
        assert stalled_s < 15, f"a stalled database held the request for {stalled_s:.1f} s"
        proxy.restore()
        live = request("GET", server.url + reverse("api-session-state", args=[session.pk]), headers=api)
        assert live.status == 200 and live.json()["counts"]["present"] == 1

        assert server.process is not None and server.process.poll() is None
        assert server.log().count("Booting worker") == 1
    finally:
        server.stop()
        proxy.close()
    print(f"\ndatabase cut: 3 requests answered 503 in {down_s:.2f} s; after restore 3 requests "
          f"answered 200 in {recovered_s:.2f} s; a stalled path answered 503 after {stalled_s:.1f} s")
