"""HTML pages. Each view parses input, checks permission, calls a selector or service, renders."""

from __future__ import annotations

from typing import Any, cast

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from attendance import login_limit, selectors
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


class LoginView(auth_views.LoginView):
    """Django's sign-in page, with failed attempts limited per account and per address
    (attendance/login_limit.py): past the limit the page answers 429 and says how long to wait."""

    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        block = login_limit.login_blocked(request, request.POST.get("username", ""))
        if block is not None:
            # An unbound form: binding it would validate it, and validating it checks the password.
            form = self.get_form_class()(request, initial={"username": request.POST.get("username", "")})
            context = self.get_context_data(form=form, login_blocked=block.message())
            response = self.render_to_response(context, status=429)
            response["Retry-After"] = str(block.retry_after)
            return response
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        login_limit.login_failed(self.request, self.request.POST.get("username", ""))
        return super().form_invalid(form)
