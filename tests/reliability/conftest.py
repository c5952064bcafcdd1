"""Real services to break on purpose: a private redis-server, a TCP proxy in front of PostgreSQL and a
gunicorn serving the app, each on a free loopback port and owned by the test that starts it.

The shared PostgreSQL and Redis that other test runs use are never stopped: a test that takes a
service away takes away its own copy (Redis) or its own path to it (the proxy).
"""

from __future__ import annotations

import http.client
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, WorkerProcess, _worker_env, stop_process

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Reply:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> dict:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")


def request(method: str, url: str, *, body: bytes | None = None, headers: dict[str, str] | None = None,
            timeout: float = 30.0) -> Reply:
    """One HTTP request on a fresh connection (the standard library: nothing between us and gunicorn)."""
    rest = url.removeprefix("http://")
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    connection = http.client.HTTPConnection(host, int(port or 80), timeout=timeout)
    try:
        connection.request(method, "/" + path, body=body, headers=headers or {})
        response = connection.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes, str]]) -> tuple[bytes, str]:
    """A multipart/form-data body and its Content-Type, as a browser's form sends it."""
    boundary = f"reliability{time.monotonic_ns()}"
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (filename, data, content_type) in files.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                     f"Content-Type: {content_type}\r\n\r\n".encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def wait_for(predicate: object, *, timeout: float, interval: float = 0.2, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class RedisServer:
    """A redis-server of our own (no persistence: a restart loses its data, as a crashed one would)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir), "--logfile", str(self.workdir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for(self.answers, timeout=10, what=f"redis-server on port {self.port}")

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """SIGKILL, as a crash: nothing flushed, every client connection cut."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


class TcpProxy:
    """Forwards a loopback port to PostgreSQL; `cut()` drops every connection and refuses new ones
    (as a restarting database or a reset network path does); `stall()` drops them and lets new ones
    connect but never answers (packets lost on the way); `restore()` lets them through again."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = int(self.listener.getsockname()[1])
        self.open = True
        self.stalled = False
        self._held: list[socket.socket] = []
        self.closed = False
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.accepted = self.refused = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.stalled:
                self._held.append(client)  # connected, and then silence
                continue
            if not self.open:
                self.refused += 1
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                client.close()  # RST: "connection reset", at once
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            self.accepted += 1
            with self._lock:
                self._sockets.update((client, server))
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                readable, _, _ = select.select([a, b], [], [], 1.0)
                if not self.open and not readable:
                    break
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        raise OSError("closed")
                    (b if sock is a else a).sendall(data)
        except (OSError, ValueError):
            pass
        finally:
            for sock in (a, b):
                self._drop(sock)

    def _drop(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        try:
            sock.close()
        except OSError:
            pass

    def cut(self) -> None:
        self.open = False
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._drop(sock)

    def stall(self) -> None:
        self.cut()
        self.stalled = True

    def restore(self) -> None:
        self.stalled = False
        for sock in self._held:
            sock.close()
        self._held.clear()
        self.open = True

    def close(self) -> None:
        self.closed = True
        self.cut()
        self.listener.close()


class Gunicorn:
    """`gunicorn config.wsgi` (sync workers, or gthread with threads > 1), against the test database."""

    def __init__(self, log_path: Path, *, env: dict[str, str], workers: int = 1, threads: int = 1) -> None:
        self.port = free_port()
        self.log_path = log_path
        self.env = env
        self.workers = workers
        self.threads = threads
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, timeout: float = 90.0) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
             "--workers", str(self.workers), "--threads", str(self.threads), "--timeout", "60",
             "--graceful-timeout", "5"],
            cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )

        def up() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited early:\n{self.log()[-3000:]}")
            try:
                return request("GET", self.url + "/login/", timeout=2).status == 200
            except OSError:
                return False

        wait_for(up, timeout=timeout, what="gunicorn to answer")
        # Each worker loads the models and the open courses' indexes in the background at start;
        # timing starts once they have, as in a deployment that has been up for a minute.
        wait_for(lambda: self.log().count("recognition warmed up") + self.log().count("warm-up failed")
                 >= self.workers, timeout=timeout, what="the web workers' warm-up")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.process)


def app_env(**overrides: str) -> dict[str, str]:
    """What a web or worker process of the app needs to use the test database and media folders."""
    env = _worker_env()
    env.setdefault("DEBUG", "true")
    env["LOG_LEVEL"] = "INFO"
    env.update(overrides)
    return env


def redis_env(redis_url: str, **overrides: str) -> dict[str, str]:
    """An app process whose Redis (live state, cache, broker, results) is the given one."""
    return app_env(REDIS_URL=redis_url, CELERY_BROKER_URL=redis_url, CELERY_RESULT_BACKEND=redis_url, **overrides)


class EnvWorker(WorkerProcess):
    """A real Celery worker started with the given environment (another Redis, say)."""

    def __init__(self, log_path: Path, env: dict[str, str]) -> None:
        super().__init__(log_path)
        self.env = env

    def start(self, *, timeout: float = 60.0) -> None:
        hostname = f"reliability-{os.getpid()}-{time.monotonic_ns()}@localhost"
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "--loglevel", "INFO",
             "--hostname", hostname, "--without-gossip", "--without-mingle"],
            cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )
        wait_for(lambda: "ready." in self.log() or self._exited(), timeout=timeout, what="the Celery worker")
        if self._exited():
            raise RuntimeError(f"the Celery worker exited early:\n{self.log()[-3000:]}")

    def _exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None


def api_token(user: object) -> str:
    from rest_framework.authtoken.models import Token

    return str(Token.objects.get_or_create(user=user)[0].key)


class SmallDisk:
    """A tmpfs of a few hundred kilobytes mounted for one test: a real file system that runs out of
    room (ENOSPC), as a full media or index disk does."""

    def __init__(self, path: Path, size_kb: int) -> None:
        self.path = path
        self.size_kb = size_kb

    def mount(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size_kb}k", "tmpfs", str(self.path)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            pytest.fail(f"cannot mount a tmpfs at {self.path} ({result.stderr.strip()}): the full-disk tests "
                        "need root or CAP_SYS_ADMIN, as CI has")

    def fill(self) -> None:
        """Take every free byte, leaving the disk full."""
        with (self.path / "ballast").open("wb", buffering=0) as out:
            try:
                while True:
                    out.write(b"\0" * 4096)
            except OSError:
                pass

    def files(self) -> list[Path]:
        return sorted(p for p in self.path.rglob("*") if p.is_file() and p.name != "ballast")

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[object]:
    disks: list[SmallDisk] = []

    def make(name: str, size_kb: int) -> SmallDisk:
        disk = SmallDisk(tmp_path / name, size_kb)
        disk.mount()
        disks.append(disk)
        return disk

    yield make
    for disk in disks:
        disk.unmount()
