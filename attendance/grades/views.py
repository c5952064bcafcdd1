"""Points and warnings settings of a course, and its gradebook download (CSV or XLSX)."""

from __future__ import annotations

from typing import cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from attendance import permissions
from attendance.grades import selectors, services
from attendance.grades.forms import CourseGradingForm
from attendance.models import Course, User
from attendance.reports import exports, xlsx
from attendance.reports.points import POINTS_DEFINITION
from attendance.reports.rates import low_rate_threshold


def _managed_course(request: HttpRequest, pk: int) -> Course:
    user = cast(User, request.user)
    if not permissions.is_staff_role(user):
        raise PermissionDenied(_("Points, warnings and the gradebook are for the course's lecturers and admins."))
    return get_object_or_404(permissions.courses_managed_by(user), pk=pk)


@login_required
@require_http_methods(["GET", "POST"])
def course_grading(request: HttpRequest, pk: int) -> HttpResponse:
    course = _managed_course(request, pk)
    grading = services.course_grading_get(course=course)
    if request.method == "POST":
        form = CourseGradingForm(request.POST)
        if form.is_valid():
            services.course_grading_update(course=course, by=cast(User, request.user), values=form.cleaned_data)
            messages.success(request, _("Points and warnings of %(course)s saved.") % {"course": course.code})
            return redirect("course-grading", pk=course.pk)
    else:
        form = CourseGradingForm(initial=CourseGradingForm.initial_for(grading))
    context = {
        "course": course, "form": form, "points_definition": POINTS_DEFINITION,
        "site_threshold_percent": round(low_rate_threshold() * 100),
    }
    return render(request, "grades/course_grading.html", context, status=400 if form.errors else 200)


@login_required
@require_GET
def course_gradebook(request: HttpRequest, pk: int, extension: str) -> HttpResponse:
    course = _managed_course(request, pk)
    rows = selectors.gradebook_rows(course=course)
    name = exports.basename(course.code, course.term, "gradebook")
    response: HttpResponse | StreamingHttpResponse
    if extension == "xlsx":
        response = HttpResponse(xlsx.workbook(rows, title=_("Gradebook")), content_type=xlsx.CONTENT_TYPE)
    else:
        response = StreamingHttpResponse(exports.encode(rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}.{extension}"'
    response["Cache-Control"] = "no-store"
    return response  # type: ignore[return-value]
