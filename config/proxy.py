"""The client's address as the reverse proxy in front of gunicorn saw it.

Behind nginx every request reaches Django from nginx's address, so without this the per-address
sign-in limit (attendance/login_limit.py), the check-in rate limit and the logs would see one client:
the proxy. nginx appends the address it accepted the connection from to X-Forwarded-For; a client
may send that header too, with anything in it. So only the entries the trusted proxies appended are
believed: with ROLLCALL_TRUSTED_PROXY_HOPS = 1, the last one. A forged X-Forwarded-For ends up to
the left of the real address and is ignored. The scheme comes the same way (SECURE_PROXY_SSL_HEADER,
from X-Forwarded-Proto, which nginx overwrites).

With no proxy in front (0, the development default) the header is ignored altogether: anyone could
send it to gunicorn directly.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse


def client_address(meta: Mapping[str, Any], hops: int) -> str:
    """The address `hops` proxies back: X-Forwarded-For's `hops`-th entry from the right.
    REMOTE_ADDR when there is no proxy, or when the header is missing, short or not an address
    (a request that did not come through the proxies)."""
    remote = str(meta.get("REMOTE_ADDR", ""))
    if hops <= 0:
        return remote
    entries = [part.strip() for part in str(meta.get("HTTP_X_FORWARDED_FOR", "")).split(",")]
    entries = [part for part in entries if part]
    if len(entries) < hops:
        return remote
    candidate = entries[-hops]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote


class ForwardedClientMiddleware:
    """Replaces REMOTE_ADDR with the client's address (client_address) before anything reads it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        hops = int(settings.ROLLCALL_TRUSTED_PROXY_HOPS)
        if hops:
            request.META["REMOTE_ADDR"] = client_address(request.META, hops)
        return self.get_response(request)
