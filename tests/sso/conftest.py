"""A real OpenLDAP slapd with a throwaway directory, started on a free loopback port.

The directory (dc=rollcall,dc=test) holds people under ou=people and groupOfNames role groups under
ou=groups; slapadd loads it before slapd starts, the way a directory is restored from a backup.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import stop_process

SLAPD = shutil.which("slapd") or "/usr/sbin/slapd"
SLAPADD = shutil.which("slapadd") or "/usr/sbin/slapadd"
BASE = "dc=rollcall,dc=test"
ROOT_DN = f"cn=admin,{BASE}"
ROOT_PASSWORD = "directory-admin-secret"  # a throwaway directory
PASSWORD = "directory-pw-for-tests"  # every directory person's

# (uid, given name, surname, mail, employeeNumber, groups)
PEOPLE = [
    ("ada", "Ada", "Admin", "ada@uni.test", "", ["admins"]),
    ("lena", "Lena", "Lecturer", "lena@uni.test", "", ["lecturers"]),
    ("sofia", "Sofía", "Núñez", "sofia@uni.test", "S1001", ["students"]),
    ("bob", "Bob", "Imported", "bob@uni.test", "", ["students"]),
    ("carl", "Carl", "Numbered", "carl.other@uni.test", "S2002", ["students"]),
    ("nobody", "No", "Group", "nobody@uni.test", "", []),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], what: str, *, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout} s")


def _ldif() -> str:
    entries = [
        f"dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\ndc: rollcall\no: Rollcall test university\n",
        f"dn: ou=people,{BASE}\nobjectClass: organizationalUnit\nou: people\n",
        f"dn: ou=groups,{BASE}\nobjectClass: organizationalUnit\nou: groups\n",
    ]
    for uid, given, surname, mail, number, _ in PEOPLE:
        lines = [
            f"dn: uid={uid},ou=people,{BASE}",
            "objectClass: inetOrgPerson",
            f"uid: {uid}",
            f"cn: {given} {surname}",
            f"givenName: {given}",
            f"sn: {surname}",
            f"mail: {mail}",
            f"userPassword: {PASSWORD}",
        ]
        if number:
            lines.append(f"employeeNumber: {number}")
        entries.append("\n".join(lines) + "\n")
    for group in ("admins", "lecturers", "students"):
        members = [f"member: uid={p[0]},ou=people,{BASE}" for p in PEOPLE if group in p[5]]
        entries.append(
            "\n".join([f"dn: cn={group},ou=groups,{BASE}", "objectClass: groupOfNames", f"cn: {group}", *members])
            + "\n"
        )
    return "\n".join(entries)


@dataclass(frozen=True)
class Directory:
    uri: str
    base: str
    bind_dn: str
    bind_password: str

    def group(self, name: str) -> str:
        return f"cn={name},ou=groups,{self.base}"


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Directory]:
    if not Path(SLAPD).exists():
        pytest.fail("slapd is not installed: apt-get install slapd ldap-utils (./rollcall test installs them)")
    root = tmp_path_factory.mktemp("slapd")
    (root / "data").mkdir()
    conf = root / "slapd.conf"
    conf.write_text(
        "\n".join(
            [
                *(f"include /etc/ldap/schema/{s}.schema" for s in ("core", "cosine", "inetorgperson", "nis")),
                f"pidfile {root}/slapd.pid",
                "modulepath /usr/lib/ldap",
                "moduleload back_mdb",
                "database mdb",
                f'suffix "{BASE}"',
                f'rootdn "{ROOT_DN}"',
                f"rootpw {ROOT_PASSWORD}",
                f"directory {root}/data",
                "maxsize 10485760",
                # Anyone may bind (that is how a password is checked); only a bound account reads.
                "access to attrs=userPassword by anonymous auth by * none",
                "access to * by users read by anonymous auth",
                "",
            ]
        )
    )
    (root / "directory.ldif").write_text(_ldif())
    subprocess.run([SLAPADD, "-f", str(conf), "-l", str(root / "directory.ldif")], check=True, capture_output=True)
    port = free_port()
    log = (root / "slapd.log").open("wb")
    # -d 0: stay in the foreground (so the fixture owns the process) without debug output.
    process = subprocess.Popen(
        [SLAPD, "-f", str(conf), "-h", f"ldap://127.0.0.1:{port}/", "-d", "0"], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_for_port(port, process, "slapd")
        yield Directory(uri=f"ldap://127.0.0.1:{port}", base=BASE, bind_dn=ROOT_DN, bind_password=ROOT_PASSWORD)
    finally:
        stop_process(process)
        log.close()


@pytest.fixture
def ldap_settings(settings: object, slapd: Directory) -> Directory:
    """Rollcall pointed at the directory, as config/sso.py builds it from the AUTH_LDAP_* variables."""
    import django_auth_ldap.config as ldap_config
    import ldap

    values = {
        "AUTH_LDAP_SERVER_URI": slapd.uri,
        "AUTH_LDAP_BIND_DN": slapd.bind_dn,
        "AUTH_LDAP_BIND_PASSWORD": slapd.bind_password,
        "AUTH_LDAP_USER_SEARCH": ldap_config.LDAPSearch(
            f"ou=people,{slapd.base}", ldap.SCOPE_SUBTREE, "(uid=%(user)s)"
        ),
        "AUTH_LDAP_GROUP_SEARCH": ldap_config.LDAPSearch(f"ou=groups,{slapd.base}", ldap.SCOPE_SUBTREE),
        "AUTH_LDAP_GROUP_TYPE": ldap_config.GroupOfNamesType(),
        "AUTH_LDAP_CONNECTION_OPTIONS": {ldap.OPT_REFERRALS: 0, ldap.OPT_NETWORK_TIMEOUT: 5},
        "ROLLCALL_LDAP_ENABLED": True,
        "ROLLCALL_LDAP_ADMIN_GROUP": slapd.group("admins"),
        "ROLLCALL_LDAP_LECTURER_GROUP": slapd.group("lecturers"),
        "ROLLCALL_LDAP_STUDENT_GROUP": "",
        "ROLLCALL_LDAP_STUDENT_NUMBER_ATTR": "employeeNumber",
        "AUTHENTICATION_BACKENDS": [
            "attendance.sso.backends.DirectoryBackend",
            "attendance.sso.backends.LocalPasswordBackend",
        ],
    }
    for name, value in values.items():
        setattr(settings, name, value)
    return slapd


# --- OpenID Connect: django-oauth-toolkit as the provider, in its own process ------------------------
PROVIDER_PASSWORD = "provider-pw-for-tests"  # every provider person's
PROVIDER_PEOPLE = [
    # (username, given name, surname, email, groups, extra claims)
    ("lena.oidc", "Lena", "Lehrerin", "lena.oidc@uni.test", ["lecturers"], {}),
    ("ines", "Inés", "Nogroup", "ines@uni.test", [], {}),
    ("tomas", "Tomás", "Numbered", "tomas.private@mail.test", ["students"], {"student_number": "S3003"}),
    # Someone else's address typed into a provider that does not check it: no claim, or the string "false".
    ("mallory", "Mal", "Lory", "victim@uni.test", [], {"email_verified": None}),
    ("eve", "Eve", "Dropper", "victim@uni.test", [], {"email_verified": "false"}),
]


@dataclass(frozen=True)
class Provider:
    url: str
    client_id: str
    client_secret: str

    def endpoint(self, path: str) -> str:
        return f"{self.url}/o/{path}"


@pytest.fixture(scope="session")
def oidc_provider(live_server: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    import json
    import os
    import secrets
    import sys

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from tests.conftest import REPO_ROOT

    root = tmp_path_factory.mktemp("oidc-provider")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.sso.provider.settings",
        "PYTHONPATH": str(REPO_ROOT),
        "PROVIDER_SECRET_KEY": secrets.token_urlsafe(40),
        "PROVIDER_DATABASE": str(root / "provider.sqlite3"),
        "PROVIDER_RSA_PRIVATE_KEY": pem,
        "PROVIDER_EXTRA_CLAIMS": str(root / "claims.json"),
    }
    provider = Provider(url="", client_id="rollcall-test-client", client_secret=secrets.token_urlsafe(30))
    spec = {
        "client": {
            "id": provider.client_id,
            "secret": provider.client_secret,
            "redirect_uri": f"{live_server.url}/oidc/callback/",  # type: ignore[attr-defined]
        },
        "people": [
            {
                "username": u,
                "password": PROVIDER_PASSWORD,
                "email": e,
                "first_name": g,
                "last_name": s,
                "groups": gr,
                "claims": c,
            }
            for u, g, s, e, gr, c in PROVIDER_PEOPLE
        ],
    }
    subprocess.run(
        [sys.executable, "-m", "tests.sso.provider.bootstrap"],
        input=json.dumps(spec),
        text=True,
        env=env,
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    port = free_port()
    log = (root / "provider.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "django", "runserver", f"127.0.0.1:{port}", "--noreload"],
        env=env,
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, process, "the OpenID Connect provider", timeout=60)
        yield Provider(
            url=f"http://127.0.0.1:{port}", client_id=provider.client_id, client_secret=provider.client_secret
        )
    finally:
        stop_process(process)
        log.close()


@pytest.fixture
def oidc_settings(settings: object, oidc_provider: Provider) -> Provider:
    """Rollcall's OpenID Connect settings pointed at the test provider, as .env.example names them."""
    values = {
        "ROLLCALL_OIDC_ENABLED": True,
        "OIDC_OP_AUTHORIZATION_ENDPOINT": oidc_provider.endpoint("authorize/"),
        "OIDC_OP_TOKEN_ENDPOINT": oidc_provider.endpoint("token/"),
        "OIDC_OP_USER_ENDPOINT": oidc_provider.endpoint("userinfo/"),
        "OIDC_OP_JWKS_ENDPOINT": oidc_provider.endpoint(".well-known/jwks.json"),
        "OIDC_RP_CLIENT_ID": oidc_provider.client_id,
        "OIDC_RP_CLIENT_SECRET": oidc_provider.client_secret,
        "ROLLCALL_OIDC_PROVIDER_NAME": "Test University",
        "ROLLCALL_OIDC_ROLE_CLAIM": "roles",
        "ROLLCALL_OIDC_LECTURER_ROLES": ["lecturers"],
        "ROLLCALL_OIDC_ADMIN_ROLES": ["admins"],
        "ROLLCALL_OIDC_STUDENT_ROLES": [],
        "ROLLCALL_OIDC_STUDENT_NUMBER_CLAIM": "student_number",
        "AUTHENTICATION_BACKENDS": [
            "attendance.sso.backends.OpenIDConnectBackend",
            "attendance.sso.backends.LocalPasswordBackend",
        ],
    }
    for name, value in values.items():
        setattr(settings, name, value)
    return oidc_provider
