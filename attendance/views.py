"""HTML pages. Each view parses input, checks permission, calls a selector or service, renders."""

from __future__ import annotations

from typing import cast

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from attendance import selectors
from attendance.health import run_checks
from attendance.models import User


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers and people: 200 only when the database, Redis and a worker answer."""
    checks = run_checks()
    healthy = all(check.ok for check in checks)
    body = {
        "status": "ok" if healthy else "degraded",
        "checks": {check.name: {"ok": check.ok, "detail": check.detail} for check in checks},
    }
    return JsonResponse(body, status=200 if healthy else 503)


@login_required
def home(request: HttpRequest) -> HttpResponse:
    user = cast(User, request.user)
    if user.is_admin:
        return render(request, "attendance/home_admin.html", {"stats": selectors.admin_overview()})
    if user.is_lecturer:
        return render(request, "attendance/home_lecturer.html", {"courses": selectors.lecturer_courses(lecturer=user)})
    context = {
        "courses": selectors.student_courses(student=user),
        "enrolment": selectors.student_current_enrolment(student=user),
    }
    return render(request, "attendance/home_student.html", context)
