"""Slow clients against bare gunicorn and against nginx in front of it.

50 connections that each hold a request open: half send a header that never ends, half a complete
header and then a body one byte a second (slowloris and slow POST). gunicorn's 2 sync workers each
read one of them and wait, so a normal request behind them gets no answer; nginx reads them all
itself and passes on only complete requests, so the same normal request is answered at once.
Everything is bounded: the slow clients stop after the test, and every wait has a timeout.
"""

from __future__ import annotations

import socket
import statistics
import threading
import time
from collections.abc import Callable

import pytest

from tests.deploy.conftest import Stack, https_request, tls_connection
from tests.reliability.conftest import request

pytestmark = pytest.mark.slow

SLOW_CLIENTS = 50
SETTLE_S = 2.0  # the slow clients have sent their first bytes and the workers have picked theirs up
STALL_PROBE_TIMEOUT_S = 3.0


class SlowClients:
    """Connections that each trickle one byte a second from a single thread, until closed."""

    def __init__(self, connect: Callable[[], socket.socket], host: str, count: int) -> None:
        self.sockets: list[socket.socket] = []
        self.pending: list[bytes] = []
        self.stop = threading.Event()
        for n in range(count):
            sock = connect()
            if n % 2 == 0:  # a header that never ends
                opening = f"GET /login/ HTTP/1.1\r\nHost: {host}\r\nX-Slow: ".encode()
                trickle = b"a" * 3600
            else:  # a complete header, then a body a byte a second
                opening = (f"POST /login/ HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded"
                           "\r\nContent-Length: 3600\r\n\r\n").encode()
                trickle = b"a" * 3600
            sock.sendall(opening)
            self.sockets.append(sock)
            self.pending.append(trickle)
        self.thread = threading.Thread(target=self._trickle, daemon=True)
        self.thread.start()

    def _trickle(self) -> None:
        while not self.stop.wait(1.0):
            for n, sock in enumerate(self.sockets):
                if not self.pending[n]:
                    continue
                try:
                    sock.send(self.pending[n][:1])
                    self.pending[n] = self.pending[n][1:]
                except OSError:
                    self.pending[n] = b""  # the server gave up on it

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        for sock in self.sockets:
            try:
                sock.close()
            except OSError:
                pass


def _timed(call: Callable[[], int]) -> tuple[float, int | None]:
    started = time.monotonic()
    try:
        status: int | None = call()
    except OSError:  # TimeoutError included
        status = None
    return time.monotonic() - started, status


def test_slow_clients_stall_bare_gunicorn_but_not_the_proxy_in_front_of_it(stack: Stack):
    nginx, server, certificate = stack.nginx, stack.gunicorn, stack.certificate

    def through_proxy() -> int:
        return https_request(nginx, certificate, "GET", "/login/", timeout=5).status

    def to_gunicorn() -> int:
        return request("GET", server.url + "/login/", timeout=STALL_PROBE_TIMEOUT_S).status

    # Before: both answer.
    assert _timed(through_proxy)[1] == 200 and _timed(to_gunicorn)[1] == 200

    slow = SlowClients(lambda: tls_connection(nginx, certificate), f"localhost:{nginx.https_port}", SLOW_CLIENTS)
    try:
        time.sleep(SETTLE_S)
        probes = [_timed(through_proxy) for _ in range(3)]
    finally:
        slow.close()
    print(f"\nthrough nginx with {SLOW_CLIENTS} slow clients: " + ", ".join(f"{s * 1000:.0f} ms" for s, _ in probes))
    assert [status for _, status in probes] == [200, 200, 200]
    assert statistics.median(s for s, _ in probes) < 1.0, probes
    assert '"POST /login/' not in server.log()  # no slow request ever reached gunicorn

    slow = SlowClients(lambda: socket.create_connection(("127.0.0.1", server.port), timeout=10),
                       f"127.0.0.1:{server.port}", SLOW_CLIENTS)
    try:
        time.sleep(SETTLE_S)
        seconds, status = _timed(to_gunicorn)
    finally:
        slow.close()
    print(f"bare gunicorn (2 sync workers) with {SLOW_CLIENTS} slow clients: "
          f"{'no answer' if status is None else status} after {seconds:.1f} s")
    assert status is None and seconds >= STALL_PROBE_TIMEOUT_S - 0.1, (status, seconds)

    # And it recovers once they are gone: the stall was theirs.
    def recovered() -> bool:
        return _timed(to_gunicorn)[1] == 200

    deadline = time.monotonic() + 30
    while not recovered():
        assert time.monotonic() < deadline, "gunicorn did not recover after the slow clients left"
