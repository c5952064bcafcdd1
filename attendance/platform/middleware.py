"""A backing service out of reach answers 503 with a sentence, never a 500 or a traceback.

PostgreSQL restarting, a dropped connection or Redis being down are outages that end by
themselves: the client should retry (the check-in page does, with backoff), and the operator should
see which service failed in the log. Django's own connection handling (CONN_HEALTH_CHECKS) and
redis-py's pool reconnect on the next request once the service is back, without a restart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.html import escape
from django.utils.translation import get_language, gettext, gettext_lazy
from kombu.exceptions import OperationalError as BrokerError

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5

MESSAGES = {
    "database": gettext_lazy("The database is not answering right now. Nothing was saved by this request; try "
                             "again in a few seconds."),
    "redis": gettext_lazy("The live check-in store (Redis) is not answering right now. This request was not "
                          "counted; try again in a few seconds."),
    "broker": gettext_lazy("The task queue (Redis) is not answering right now. Try again in a few seconds."),
}


def unavailable_service(exc: BaseException) -> str | None:
    """Which backing service an exception says is out of reach, or None for any other error."""
    if isinstance(exc, OperationalError | InterfaceError):
        return "database"
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        return "redis"
    if isinstance(exc, BrokerError):
        return "broker"
    return None


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", "")


class ServiceUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        service = unavailable_service(exception)
        if service is None:
            return None
        logger.error("%s %s: %s unavailable (%s: %s)", request.method, request.path, service,
                     type(exception).__name__, exception)
        message = str(MESSAGES[service])
        response: HttpResponse
        if _wants_json(request):
            response = JsonResponse({"detail": message, "code": f"{service}_unavailable"}, status=503)
        else:
            title = escape(gettext("Service unavailable"))
            response = HttpResponse(
                f"<!doctype html><html lang=\"{escape(get_language() or 'en')}\"><title>{title}</title>"
                f"<h1>{title}</h1><p>{escape(message)}</p>",
                status=503,
                content_type="text/html; charset=utf-8",
            )
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
