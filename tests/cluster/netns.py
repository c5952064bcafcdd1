"""Linux network namespaces for the cluster test: one per host, joined by a bridge in a namespace of
its own, so nothing is added to the machine's own network (no interface, address or route).

Every namespace is named `rccl<pid>-<host>`; the veths live only inside them and go when they are
deleted. `remove_stale()` deletes the namespaces of earlier runs whose process is gone (a run killed
before its clean-up), and only those.
"""

from __future__ import annotations

import ctypes
import os
import re
import subprocess
from pathlib import Path

CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/run/netns")
PREFIX = "rccl"
SUBNET = "10.213.0"  # only inside the namespaces this module makes
_libc = ctypes.CDLL(None, use_errno=True)


def ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")


def enter(namespace: str) -> None:
    """Move the calling thread (only it: network namespaces are per thread) into the namespace;
    sockets it opens afterwards belong there."""
    fd = os.open(NETNS_DIR / namespace, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns into {namespace}: {os.strerror(errno)}")
    finally:
        os.close(fd)


def can_make_namespaces() -> str | None:
    """None when namespaces can be made here, else why not."""
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs as root)"
    probe = f"{PREFIX}{os.getpid()}-probe"
    try:
        ip("netns", "add", probe)
    except (RuntimeError, FileNotFoundError) as exc:
        return f"cannot make a network namespace: {exc}"
    ip("netns", "del", probe)
    return None


def remove_stale() -> list[str]:
    removed = []
    for path in NETNS_DIR.glob(f"{PREFIX}*-*") if NETNS_DIR.is_dir() else []:
        match = re.fullmatch(rf"{PREFIX}(\d+)-.+", path.name)
        if match and not Path(f"/proc/{match.group(1)}").exists():
            ip("netns", "del", path.name)
            removed.append(path.name)
    return removed


class Network:
    """Hosts on one switch: `add(host, last_octet)` gives the host a namespace and the address
    10.213.0.<last_octet> on its eth0, plugged into the switch's port `p-<host>`."""

    def __init__(self) -> None:
        self.prefix = f"{PREFIX}{os.getpid()}"
        self.switch = f"{self.prefix}-sw"
        self.namespaces: list[str] = []
        self.addresses: dict[str, str] = {}

    def namespace(self, host: str) -> str:
        return f"{self.prefix}-{host}"

    def up(self) -> None:
        self._add_namespace(self.switch)
        ip("-n", self.switch, "link", "add", "name", "br0", "type", "bridge")
        ip("-n", self.switch, "link", "set", "br0", "up")

    def _add_namespace(self, name: str) -> None:
        ip("netns", "add", name)
        self.namespaces.append(name)
        ip("-n", name, "link", "set", "lo", "up")

    def add(self, host: str, octet: int) -> str:
        ns = self.namespace(host)
        self._add_namespace(ns)
        port = f"p-{host}"
        ip("-n", self.switch, "link", "add", "name", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
        ip("-n", self.switch, "link", "set", port, "master", "br0", "up")
        address = f"{SUBNET}.{octet}"
        ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
        ip("-n", ns, "link", "set", "eth0", "up")
        self.addresses[host] = address
        return address

    def cut(self, host: str) -> None:
        """Unplug the host's cable at the switch: its packets go nowhere, nothing tells it."""
        ip("-n", self.switch, "link", "set", f"p-{host}", "down")

    def plug(self, host: str) -> None:
        ip("-n", self.switch, "link", "set", f"p-{host}", "up")

    def exec_prefix(self, host: str) -> list[str]:
        return ["ip", "netns", "exec", self.namespace(host)]

    def down(self) -> None:
        """Delete every namespace made (their veths and the bridge go with them)."""
        for name in reversed(self.namespaces):
            if (NETNS_DIR / name).exists():
                subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=20)
        self.namespaces.clear()

    def leftovers(self) -> list[str]:
        return sorted(p.name for p in NETNS_DIR.glob(f"{self.prefix}-*")) if NETNS_DIR.is_dir() else []
