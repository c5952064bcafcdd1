"""nginx as docker-compose.yml runs it, started by the test on loopback: the config rendered from
deploy/nginx/rollcall.conf.template exactly as the nginx image does it (rollcall.envsh sourced,
then envsubst of the variables that are set), a certificate from deploy/campus-ca.sh, and a
gunicorn of the app behind it. Every process is owned by the fixture that starts it."""

from __future__ import annotations

import http.client
import os
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, stop_process
from tests.reliability.conftest import Gunicorn, Reply, app_env, free_port, wait_for

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
TEMPLATE = REPO_ROOT / "deploy" / "nginx" / "rollcall.conf.template"
ENVSH = REPO_ROOT / "deploy" / "nginx" / "rollcall.envsh"
CAMPUS_CA = REPO_ROOT / "deploy" / "campus-ca.sh"
# Smaller than the defaults, so that a limit that does not follow the settings shows.
ENROLMENT_MAX_MB = 3
CHECKIN_MAX_MB = 1


def render_template(environment: dict[str, str]) -> str:
    """What the nginx image's entrypoint writes to /etc/nginx/conf.d/: rollcall.envsh sourced into
    the environment, then `envsubst` with every variable that is set, and only those."""
    result = subprocess.run(
        ["sh", "-c", '. "$0" && env -0', str(ENVSH)], env={"PATH": os.environ["PATH"], **environment},
        capture_output=True, timeout=10,
    )
    if result.returncode != 0:
        raise RuntimeError(f"rollcall.envsh failed: {result.stderr.decode()}")
    variables = dict(item.split("=", 1) for item in result.stdout.decode().split("\0") if "=" in item)

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return variables[name] if name in variables else match.group(0)

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)", substitute, TEMPLATE.read_text())


@dataclass(frozen=True)
class Certificate:
    folder: Path

    @property
    def ca(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def chain(self) -> Path:
        return self.folder / "fullchain.pem"

    @property
    def key(self) -> Path:
        return self.folder / "privkey.pem"

    def spki_sha256(self) -> str:
        """The base64 SHA-256 of the server certificate's public key, as Chromium's
        --ignore-certificate-errors-spki-list takes it."""
        pipeline = (f'openssl x509 -in "{self.chain}" -pubkey -noout | openssl pkey -pubin -outform der '
                    "| openssl dgst -sha256 -binary | openssl base64 -A")
        return subprocess.run(["sh", "-c", pipeline], capture_output=True, text=True, check=True,
                              timeout=10).stdout.strip()

    def client_context(self) -> ssl.SSLContext:
        """A client that trusts only the campus authority, and checks the name as browsers do."""
        return ssl.create_default_context(cafile=str(self.ca))


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run([str(CAMPUS_CA), str(folder), "localhost", "127.0.0.1"], check=True, capture_output=True,
                   timeout=60)
    return Certificate(folder)


class Nginx:
    """The real nginx binary with the rendered config, in a folder of its own."""

    def __init__(self, folder: Path, *, upstream: str, certificate: Certificate, static_root: Path,
                 **environment: str) -> None:
        if not Path(NGINX).exists():
            pytest.fail(f"nginx is not installed at {NGINX}: run ./rollcall test, which installs it")
        self.folder = folder
        self.http_port = free_port()
        self.https_port = free_port()
        self.environment = {
            "ROLLCALL_UPSTREAM": upstream,
            "ROLLCALL_HTTP_PORT": f"127.0.0.1:{self.http_port}",
            "ROLLCALL_HTTPS_PORT": f"127.0.0.1:{self.https_port}",
            "ROLLCALL_PUBLIC_HTTPS_PORT": str(self.https_port),
            "ROLLCALL_TLS_CERT": str(certificate.chain),
            "ROLLCALL_TLS_KEY": str(certificate.key),
            "ROLLCALL_STATIC_ROOT": str(static_root),
            "ROLLCALL_ENROLMENT_MAX_UPLOAD_MB": str(ENROLMENT_MAX_MB),
            "ROLLCALL_CHECKIN_MAX_IMAGE_MB": str(CHECKIN_MAX_MB),
            "SECURE_HSTS_SECONDS": "31536000",
            **environment,
        }
        self.process: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "rollcall.conf").write_text(render_template(self.environment))
        # The image's nginx.conf around it (the same http {} settings, which the template must not
        # repeat), with every path inside this folder.
        user = "user root;\n" if os.geteuid() == 0 else ""  # workers must read the test's 0700 folders
        temp = "\n".join(f"    {kind}_temp_path {folder}/{kind};" for kind in
                         ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        self.config = folder / "nginx.conf"
        self.config.write_text(
            f"{user}worker_processes 1;\npid {folder}/nginx.pid;\nerror_log {folder}/error.log info;\n"
            "events { worker_connections 1024; }\n"
            "http {\n    include /etc/nginx/mime.types;\n    default_type application/octet-stream;\n"
            f"    access_log {folder}/access.log;\n    sendfile on;\n    keepalive_timeout 65;\n{temp}\n"
            f"    include {folder}/rollcall.conf;\n}}\n"
        )

    @property
    def url(self) -> str:
        return f"https://localhost:{self.https_port}"

    def command(self, *args: str) -> list[str]:
        return [NGINX, "-p", str(self.folder), "-e", str(self.folder / "error.log"), "-c", str(self.config), *args]

    def test_config(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command("-t"), capture_output=True, text=True, timeout=30)

    def start(self) -> None:
        checked = self.test_config()
        assert checked.returncode == 0, checked.stderr
        self.process = subprocess.Popen(self.command("-g", "daemon off;"), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)

        def listening() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.error_log()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.https_port), timeout=0.5).close()
                return True
            except OSError:
                return False

        wait_for(listening, timeout=15, what="nginx to listen")

    def error_log(self) -> str:
        path = self.folder / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        stop_process(self.process)


def https_request(nginx: Nginx, certificate: Certificate, method: str, path: str, *, body: bytes | None = None,
                  headers: dict[str, str] | None = None, source: str = "127.0.0.1",
                  timeout: float = 10.0) -> Reply:
    """One request over TLS to nginx, from a chosen loopback address (127.0.0.0/8 is all loopback),
    checking the certificate against the campus authority."""
    connection = http.client.HTTPSConnection("localhost", nginx.https_port, timeout=timeout,
                                             context=certificate.client_context(), source_address=(source, 0))
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


def declared_only(connect: Callable[[], socket.socket], host: str, path: str, length: int, content_type: str,
                  headers: dict[str, str] | None = None) -> Reply:
    """A POST that announces a body of `length` bytes and sends none of it: a limit on the size must
    answer from the header alone. `connect` opens the connection (TLS to nginx, or plain to gunicorn)."""
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    with connect() as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
                     f"Content-Length: {length}\r\nAccept: application/json\r\n{extra}\r\n".encode())
        response = http.client.HTTPResponse(sock)  # type: ignore[arg-type]
        response.begin()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())


def tls_connection(nginx: Nginx, certificate: Certificate) -> socket.socket:
    raw = socket.create_connection(("127.0.0.1", nginx.https_port), timeout=10)
    return certificate.client_context().wrap_socket(raw, server_hostname="localhost")


@pytest.fixture(scope="session")
def static_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """collectstatic's output with the production settings (compressed copies included), as the
    compose file's migrate service writes it into the volume nginx serves."""
    folder = tmp_path_factory.mktemp("static")
    env = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "false",
           "SECRET_KEY": secrets.token_urlsafe(50), "STATIC_ROOT": str(folder),
           "ROLLCALL_VAR_DIR": str(tmp_path_factory.mktemp("var"))}
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput"], cwd=REPO_ROOT, env=env, check=True,
                   capture_output=True, timeout=120)
    return folder


@dataclass
class Stack:
    gunicorn: Gunicorn
    nginx: Nginx
    certificate: Certificate


@pytest.fixture(scope="module")
def stack(django_db_setup: None, django_db_blocker: object, certificate: Certificate, static_root: Path,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """gunicorn as the compose file runs it (2 sync workers, one trusted proxy hop) behind nginx."""
    folder = tmp_path_factory.mktemp("stack")
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        env = app_env(ROLLCALL_TRUSTED_PROXY_HOPS="1", ROLLCALL_ENROLMENT_MAX_UPLOAD_MB=str(ENROLMENT_MAX_MB),
                      ROLLCALL_CHECKIN_MAX_IMAGE_MB=str(CHECKIN_MAX_MB), ROLLCALL_LOGIN_MAX_FAILURES="2")
    server = Gunicorn(folder / "gunicorn.log", env=env, workers=2, threads=1)
    nginx = Nginx(folder / "nginx", upstream=f"127.0.0.1:{server.port}", certificate=certificate,
                  static_root=static_root)
    try:
        server.start()
        nginx.start()
        yield Stack(server, nginx, certificate)
    finally:
        nginx.stop()
        server.stop()


def elapsed(since: float) -> float:
    return time.monotonic() - since
