"""A TCP forwarder run as the data host's PostgreSQL: it listens inside the data namespace and
connects, from the machine's own namespace, to the PostgreSQL the test database lives on.

    python tests/cluster/forward.py NAMESPACE LISTEN_ADDRESS PORT UPSTREAM_HOST UPSTREAM_PORT
"""

from __future__ import annotations

import os
import select
import socket
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.cluster.netns import enter


def pump(a: socket.socket, b: socket.socket) -> None:
    try:
        while True:
            readable, _, _ = select.select([a, b], [], [])
            for sock in readable:
                data = sock.recv(65536)
                if not data:
                    return
                (b if sock is a else a).sendall(data)
    except OSError:
        pass
    finally:
        a.close()
        b.close()


def main() -> None:
    namespace, address, port, upstream_host, upstream_port = sys.argv[1:6]
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    enter(namespace)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((address, int(port)))
    listener.listen(128)
    # Back to the machine's namespace: connections out of here reach its loopback.
    from tests.cluster.netns import CLONE_NEWNET, _libc

    if _libc.setns(home, CLONE_NEWNET) != 0:
        raise OSError("setns back to the machine's namespace failed")
    print(f"forwarding {address}:{port} to {upstream_host}:{upstream_port}", flush=True)
    while True:
        client, _ = listener.accept()
        try:
            server = socket.create_connection((upstream_host, int(upstream_port)), timeout=5)
            server.settimeout(None)
        except OSError:
            client.close()
            continue
        threading.Thread(target=pump, args=(client, server), daemon=True).start()


if __name__ == "__main__":
    main()
