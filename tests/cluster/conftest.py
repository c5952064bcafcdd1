"""A small cluster on this one machine: a data host (PostgreSQL and Redis), two web hosts (gunicorn),
two worker hosts (Celery) and HAProxy in front of the web hosts, each in its own network namespace.

    data     10.213.0.2   redis-server of its own (started and stopped by the test) and PostgreSQL:
                          a forwarder (forward.py) listening here and connecting to the machine's
                          own PostgreSQL on 127.0.0.1, where pytest-django's test database is
    lb       10.213.0.5   HAProxy, health checks on /healthz?scope=web, no sticky sessions
    web1/2   10.213.0.11/12  gunicorn, 1 worker x 2 threads, each its own ROLLCALL_INDEX_DIR
    worker1/2 10.213.0.21/22 Celery, solo pool (concurrency 1), each its own ROLLCALL_INDEX_DIR
    client   10.213.0.100 the test's load clients (threads of the pytest process moved into it)

MEDIA_ROOT is one folder all hosts see (the shared storage). Every namespace, veth and process is
removed when the fixture ends, pass or fail; namespaces carry the pytest process's id, so a run
killed before its clean-up is cleared by the next one and no other namespace is ever touched.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.cluster import netns
from tests.conftest import REPO_ROOT, stop_process
from tests.reliability.conftest import app_env, wait_for

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
HOSTS = {"data": 2, "lb": 5, "web1": 11, "web2": 12, "worker1": 21, "worker2": 22, "client": 100}
WEB_PORT = 8000
T = TypeVar("T")

HAPROXY_CFG = """\
global
    maxconn 512
    log stdout format raw local0
    stats socket {socket} mode 600 level admin

defaults
    mode http
    log global
    option httplog
    timeout connect 2s
    timeout client 60s
    timeout server 40s
    timeout queue 40s
    timeout check 2s
    # A request is sent to another server only when the connection to the first failed (nothing
    # reached it), never after it was delivered: a check-in is not sent twice by the balancer.
    retries 3
    option redispatch

frontend rollcall
    bind {address}:80
    default_backend web

backend web
    balance leastconn
    option httpchk
    http-check send meth GET uri /healthz?scope=web ver HTTP/1.1 hdr Host rollcall-cluster
    http-check expect status 200
    # /healthz?scope=web: the database and Redis, not a Celery worker (a busy solo worker answers
    # no ping, and check-ins need none). One check-in at a time per host (its one gunicorn
    # worker), the rest wait here; a host marked down has its open requests closed at once, so
    # their clients retry instead of waiting.
    default-server check inter 1s fall 2 rise 2 maxconn 1 on-marked-down shutdown-sessions
{servers}
"""


def in_namespace(namespace: str, fn: Callable[[], T], *, timeout: float = 60.0) -> T:
    """Run fn on a thread inside the namespace (its sockets are that host's) and return its result."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            netns.enter(namespace)
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    if "error" in box:
        raise box["error"]
    if "value" not in box:
        raise TimeoutError(f"no answer from inside {namespace} within {timeout} s")
    return box["value"]


class Service:
    """One process on one host, started with `ip netns exec` (which execs it: the pid is the process)."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.name, self.argv, self.log_path, self.env = name, argv, log, env
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        out = self.log_path.open("ab")
        self.process = subprocess.Popen(self.argv, cwd=REPO_ROOT, env=self.env, stdout=out,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        self.starts += 1

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_log(self, text: str, *, count: int = 1, timeout: float = 120.0) -> None:
        def seen() -> bool:
            if not self.running():
                raise RuntimeError(f"{self.name} exited early:\n{self.log()[-3000:]}")
            return self.log().count(text) >= count

        wait_for(seen, timeout=timeout, what=f"{self.name}: {text!r}")

    def kill(self) -> None:
        if self.running():
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        stop_process(self.process)


class Cluster:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.net = netns.Network()
        self.services: dict[str, Service] = {}
        self.media = workdir / "media"
        self.index_dirs = {h: workdir / h / "indexes" for h in ("web1", "web2", "worker1", "worker2")}
        self.haproxy_socket = workdir / "haproxy.sock"

    def address(self, host: str) -> str:
        return self.net.addresses[host]

    @property
    def url(self) -> str:
        return f"http://{self.address('lb')}"

    def web_url(self, host: str) -> str:
        return f"http://{self.address(host)}:{WEB_PORT}"

    def host_env(self, host: str) -> dict[str, str]:
        from django.db import connection

        db = connection.settings_dict
        data = self.address("data")
        redis_url = f"redis://{data}:6379/0"
        var = self.workdir / host / "var"
        var.mkdir(parents=True, exist_ok=True)
        return app_env(
            DATABASE_URL=f"postgres://{db['USER']}@{data}:{db['PORT'] or 5432}/{db['NAME']}",
            REDIS_URL=redis_url, CELERY_BROKER_URL=redis_url, CELERY_RESULT_BACKEND=redis_url,
            MEDIA_ROOT=str(self.media), ROLLCALL_INDEX_DIR=str(self.index_dirs.get(host, var / "indexes")),
            ROLLCALL_VAR_DIR=str(var), ALLOWED_HOSTS="*", SECRET_KEY="cluster-test-" + "k" * 40,
            ROLLCALL_BACKBONE="dlib", ROLLCALL_INFERENCE_THREADS="1",
            # Scaling and faults are tested here, not liveness (tests/attendance/test_checkin_liveness.py):
            # the load replays the same still photos, which liveness rightly refuses.
            ROLLCALL_LIVENESS_LECTURER="off", ROLLCALL_LIVENESS_KIOSK="off",
            # Many snapshots from one client in a short run: the rate limit is not what is tested.
            ROLLCALL_CHECKIN_RATE_PER_MINUTE="100000",
        )

    def build(self) -> None:
        from django.db import connection

        netns.remove_stale()
        self.net.up()
        for host, octet in HOSTS.items():
            self.net.add(host, octet)
        self.media.mkdir(parents=True, exist_ok=True)
        for folder in self.index_dirs.values():
            folder.mkdir(parents=True, exist_ok=True)
        data = self.address("data")
        db = connection.settings_dict
        self._add("forwarder", [sys.executable, str(REPO_ROOT / "tests" / "cluster" / "forward.py"),
                                self.net.namespace("data"), data, "5432", db["HOST"] or "127.0.0.1",
                                str(db["PORT"] or 5432)], host=None)
        self.services["forwarder"].start()
        self.services["forwarder"].wait_log("forwarding", timeout=20)
        redis_dir = self.workdir / "data" / "redis"
        redis_dir.mkdir(parents=True, exist_ok=True)
        self._add("redis", [REDIS_SERVER, "--bind", data, "--port", "6379", "--save", "", "--appendonly", "no",
                            "--dir", str(redis_dir), "--protected-mode", "no"], host="data")
        self.start_redis()
        for host in ("worker1", "worker2"):
            self._add(host, [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo",
                             "--concurrency", "1", "--loglevel", "INFO", "--hostname", f"{host}@{self.net.prefix}",
                             "--without-gossip", "--without-mingle"], host=host, env=self.host_env(host))
            self.services[host].start()
        for host in ("web1", "web2"):
            self._add(host, [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind",
                             f"{self.address(host)}:{WEB_PORT}", "--workers", "1", "--threads", "2",
                             "--worker-class", "gthread", "--timeout", "60", "--graceful-timeout", "5"],
                      host=host, env=self.host_env(host))
            self.services[host].start()
        servers = "\n".join(f"    server {h} {self.address(h)}:{WEB_PORT}" for h in ("web1", "web2"))
        config = self.workdir / "haproxy.cfg"
        config.write_text(HAPROXY_CFG.format(socket=self.haproxy_socket, address=self.address("lb"), servers=servers))
        self._add("haproxy", [HAPROXY, "-db", "-f", str(config)], host="lb")
        for host in ("worker1", "worker2"):
            self.services[host].wait_log("ready.", timeout=120)
        for host in ("web1", "web2"):
            self.services[host].wait_log("warmed up", timeout=180)
        self.start_haproxy()

    def _add(self, name: str, argv: list[str], *, host: str | None, env: dict[str, str] | None = None) -> None:
        prefix = self.net.exec_prefix(host) if host else []
        self.services[name] = Service(name, prefix + argv, self.workdir / f"{name}.log", env)

    def start_redis(self) -> None:
        self.services["redis"].start()
        self.services["redis"].wait_log("Ready to accept connections", count=self.services["redis"].starts,
                                        timeout=20)

    def start_haproxy(self) -> None:
        self.services["haproxy"].start()
        wait_for(lambda: self.haproxy_socket.exists() and self.backend_states() is not None, timeout=20,
                 what="HAProxy's stats socket")

    def backend_states(self) -> dict[str, str] | None:
        """{server: 'UP' | 'DOWN' | ...} from HAProxy's stats socket, None if it does not answer."""
        try:
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(2)
                sock.connect(str(self.haproxy_socket))
                sock.sendall(b"show stat\n")
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
        except OSError:
            return None
        lines = data.decode().splitlines()
        if not lines or not lines[0].startswith("# "):
            return None
        header = lines[0][2:].split(",")
        states = {}
        for line in lines[1:]:
            row = dict(zip(header, line.split(","), strict=False))
            if row.get("pxname") == "web" and row.get("svname") in ("web1", "web2"):
                states[row["svname"]] = row["status"].split()[0]
        return states

    def served(self, host: str) -> set[int]:
        """The sessions whose check-ins HAProxy sent to the host (from its request log)."""
        found = re.findall(rf"web/{host} .*?POST /api/sessions/(\d+)/check-in/", self.services["haproxy"].log())
        return {int(pk) for pk in found}

    def run_in(self, host: str, code: str, *, timeout: float = 120.0) -> str:
        """python -c CODE on the host, with Django set up as the host's processes have it."""
        result = subprocess.run(
            [*self.net.exec_prefix(host), sys.executable, "-c", "import django; django.setup()\n" + code],
            cwd=REPO_ROOT, env=self.host_env(host), capture_output=True, text=True, timeout=timeout,
        )
        if result.returncode != 0:
            raise RuntimeError(f"on {host}: {result.stderr[-2000:]}")
        return result.stdout

    def teardown(self) -> list[str]:
        """Stop every process, then delete every namespace. Returns what could not be removed."""
        running = [s for s in self.services.values() if s.running()]
        for service in running:  # all told at once, then waited for: SIGTERM, SIGKILL after 20 s
            assert service.process is not None
            service.process.terminate()
        for service in running:
            try:
                stop_process(service.process)
            except Exception:  # keep going: the rest must still go
                service.kill()
        # Anything still running inside the hosts (a gunicorn worker whose master died) is ours.
        for ns in list(self.net.namespaces):
            listed = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
            for pid in listed.stdout.split():
                if int(pid) != os.getpid():
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        self.net.down()
        return self.net.leftovers()


@pytest.fixture
def cluster(transactional_db: None, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    if reason := netns.can_make_namespaces():
        pytest.skip(reason)
    if not Path(HAPROXY).exists():
        pytest.fail(f"HAProxy is not installed at {HAPROXY}: run ./rollcall test, which installs it")
    built = Cluster(tmp_path)
    request.addfinalizer(lambda: _teardown(built))
    try:
        built.build()
    except BaseException:
        for name, service in built.services.items():
            print(f"--- {name} log ---\n{service.log()[-2500:]}")
        raise
    yield built


def _teardown(built: Cluster) -> None:
    left = built.teardown()
    assert not left, f"namespaces left behind: {left}"
