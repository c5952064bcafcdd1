"""Sign-in and health: the pages every role and every load balancer uses."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from attendance.platform import login_limit
from attendance.platform.health import run_checks


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Health for people and monitoring: 200 only when the database, Redis and a worker answer.

    `?scope=web` is a web host's own health, for a load balancer: the database and Redis only. A
    web host serves check-ins without any worker, and a worker busy with an enrolment (the solo
    pool) answers no ping, so with the worker in it a balancer took every web host out while the
    workers were busy or one was lost (tests/cluster).
    """
    checks = run_checks(worker=request.GET.get("scope") != "web")
    healthy = all(check.ok for check in checks)
    body = {
        "status": "ok" if healthy else "degraded",
        "checks": {check.name: {"ok": check.ok, "detail": check.detail} for check in checks},
    }
    return JsonResponse(body, status=200 if healthy else 503)


class LoginView(auth_views.LoginView):
    """Django's sign-in page, with failed attempts limited per account and per address
    (attendance/platform/login_limit.py): past the limit the page answers 429 and says how long to wait."""

    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        # "Sign in with <provider>" when OpenID Connect is set up (attendance/sso); the provider's
        # refusal or an error on the way back lands here with ?sso=failed.
        context["oidc_provider_name"] = settings.ROLLCALL_OIDC_PROVIDER_NAME if settings.ROLLCALL_OIDC_ENABLED else ""
        context["sso_failed"] = self.request.GET.get("sso") == "failed"
        # Set by attendance/sso's directory backend: the directory took the password, Rollcall refused the account.
        context["sign_in_refused"] = getattr(self.request, "sign_in_refused", False)
        context["local_passwords_admins_only"] = not settings.ROLLCALL_LOCAL_PASSWORD_SIGNIN
        return context

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
