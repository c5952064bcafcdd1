"""A student's attendance warnings."""

from __future__ import annotations

from typing import cast

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from attendance.models import User
from attendance.warnings import emails, selectors


@login_required
@require_GET
def my_warnings(request: HttpRequest) -> HttpResponse:
    user = cast(User, request.user)
    if not user.is_student:
        raise PermissionDenied(_("This page is for students: it shows the signed-in student's own warnings."))
    warnings = list(selectors.student_warnings(student=user))
    # As the emails write them: 74.6 % below a 75 % threshold, never "75 %" below it.
    rows = [(w, emails.percent(w.rate), emails.whole_percent(w.threshold)) for w in warnings]
    return render(request, "warnings/my_warnings.html", {"warnings": warnings, "rows": rows, "student": user})
