"""schemathesis against the OpenAPI schema (/api/schema/), once per role: no request ever gets a 5xx.

Cases are generated from the schema (positive and negative: wrong types, missing fields, junk
bodies) for every operation and sent through the real WSGI application with the role's token (or a
kiosk token, or nothing). Path ids are drawn half the time from rows that exist, so the fuzzing
reaches the views' real work and not only their 404s. Tokens are put back before each call, since a
generated DELETE may revoke the caller's own.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token

from tests.security.conftest import World

EXAMPLES_PER_OPERATION = int(os.environ.get("ROLLCALL_FUZZ_EXAMPLES", "15"))
ROLES = ["admin", "lecturer_b", "student_b", "kiosk_b", "anonymous"]


@pytest.fixture
def wsgi_app() -> Iterator[WSGIHandler]:
    """The app as gunicorn runs it, inside the test's transaction: Django's test client does the same
    thing, keeping each request from closing the connection that holds the transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _ids(world: World) -> list[int]:
    rows = [world.b.course, world.b.session, world.b.scheduled, world.b.closed, world.b.student, world.b.enrolment,
            world.b.lecturer, world.a.course, world.a.session, world.a.student, world.a.enrolment]
    return sorted({row.pk for row in rows})  # type: ignore[attr-defined]


def _headers(world: World, role: str) -> dict[str, str]:
    if role == "anonymous":
        return {}
    if role == "kiosk_b":
        return {"X-Kiosk-Token": world.b.kiosk_secret}  # a kiosk that is not a browser
    return {"Authorization": f"Token {world.tokens[role]}"}


@pytest.mark.parametrize("role", ROLES)
def test_no_operation_answers_a_server_error(world: World, wsgi_app, role):
    schema = schemathesis.openapi.from_wsgi("/api/schema/", wsgi_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20, [op.label for op in operations]
    ids = _ids(world)
    errors: list[str] = []
    statuses: Counter[int] = Counter()
    sent = 0

    for operation in operations:
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(), data=st.data())
        def check(case, data) -> None:
            nonlocal sent
            for name in list(case.path_parameters or {}):
                if data.draw(st.booleans()):
                    case.path_parameters[name] = data.draw(st.sampled_from(ids))
            for who in ("admin", "lecturer_b", "student_b"):  # a generated DELETE may have revoked one
                user = world.user(who)
                Token.objects.filter(user=user).exclude(key=world.tokens[who]).delete()
                Token.objects.get_or_create(user=user, defaults={"key": world.tokens[who]})
            response = case.call(headers=_headers(world, role))
            sent += 1
            statuses[response.status_code] += 1
            if response.status_code >= 500:
                errors.append(f"{case.method} {case.formatted_path} -> {response.status_code}: "
                              f"{response.text[:300]}")

        check()
    assert sent >= len(operations) * 2
    assert not errors, f"{len(errors)} server errors as {role}:\n" + "\n".join(errors[:20])
    print(f"\n{role}: {sent} requests over {len(operations)} operations, by status:", dict(sorted(statuses.items())))
