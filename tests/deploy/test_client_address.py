"""The client's address and scheme behind one trusted proxy (config/proxy.py), without a server."""

from __future__ import annotations

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

from config.proxy import ForwardedClientMiddleware, client_address


@pytest.mark.parametrize(("forwarded", "hops", "expected"), [
    ("198.51.100.7", 1, "198.51.100.7"),                     # nginx appended the client's address
    ("203.0.113.9, 198.51.100.7", 1, "198.51.100.7"),        # a forged entry first: ignored
    ("203.0.113.9, 198.51.100.7, 10.0.0.2", 2, "198.51.100.7"),  # a load balancer, then nginx
    ("198.51.100.7", 0, "10.0.0.1"),                         # no proxy trusted: the header means nothing
    ("", 1, "10.0.0.1"),                                     # not through the proxy
    ("203.0.113.9, not-an-address", 1, "10.0.0.1"),
    ("2001:db8::1", 1, "2001:db8::1"),
])
def test_the_address_is_the_one_the_trusted_proxy_appended(forwarded, hops, expected):
    meta = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": forwarded}
    assert client_address(meta, hops) == expected


def _seen(request: HttpRequest) -> HttpResponse:
    return HttpResponse(f"{request.META['REMOTE_ADDR']} {request.is_secure()}")


def test_the_middleware_gives_the_app_the_clients_address_and_scheme(settings):
    request = RequestFactory().get("/", REMOTE_ADDR="172.18.0.5", HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.7",
                                   HTTP_X_FORWARDED_PROTO="https")
    settings.ROLLCALL_TRUSTED_PROXY_HOPS = 1
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert ForwardedClientMiddleware(_seen)(request).content == b"198.51.100.7 True"


def test_without_a_proxy_the_forwarded_headers_are_ignored(settings):
    request = RequestFactory().get("/", REMOTE_ADDR="172.18.0.5", HTTP_X_FORWARDED_FOR="198.51.100.7",
                                   HTTP_X_FORWARDED_PROTO="https")
    settings.ROLLCALL_TRUSTED_PROXY_HOPS = 0
    settings.SECURE_PROXY_SSL_HEADER = None
    assert ForwardedClientMiddleware(_seen)(request).content == b"172.18.0.5 False"
