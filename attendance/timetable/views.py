"""The course's timetable page: its series, the form that plans or changes one, and the CSV import."""

from __future__ import annotations

from typing import cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST

from attendance import permissions
from attendance.models import Course, TimetableSeries, User
from attendance.timetable import selectors
from attendance.timetable.csvimport import MAX_CSV_BYTES, TimetableCsvError, sessions_import_csv
from attendance.timetable.forms import CsvImportForm, SeriesForm
from attendance.timetable.planning import site_zone
from attendance.timetable.services import SyncResult, TimetableError, series_delete, series_save


def _managed_course(request: HttpRequest, pk: int) -> Course:
    course = get_object_or_404(Course, pk=pk)
    if not permissions.can_manage_course(request.user, course):
        raise PermissionDenied(_("Only an admin or a lecturer of this course can plan its sessions."))
    return course


def _summary(result: SyncResult) -> str:
    counts = {"created": result.created, "updated": result.updated, "removed": result.removed, "held": result.held}
    if result.held:
        return _("Timetable saved: %(created)s planned, %(updated)s moved, %(removed)s removed; %(held)s already "
                 "held, left as they were.") % counts
    return _("Timetable saved: %(created)s planned, %(updated)s moved, %(removed)s removed.") % counts


@login_required
@require_http_methods(["GET", "POST"])
def course_timetable(request: HttpRequest, pk: int) -> HttpResponse:
    course = _managed_course(request, pk)
    form = SeriesForm(request.POST or None, course=course)
    if request.method == "POST" and form.is_valid():
        try:
            _series, result = series_save(course=course, by=cast(User, request.user), spec=form.spec())
        except TimetableError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _summary(result))
            return redirect("course-timetable", pk=course.pk)
    return _render(request, course, form, series=None)


def _render(
    request: HttpRequest,
    course: Course,
    form: SeriesForm,
    *,
    series: TimetableSeries | None,
    csv_form: CsvImportForm | None = None,
) -> HttpResponse:
    context = {
        "course": course,
        "form": form,
        "editing": series,
        "series_list": selectors.course_series(course=course),
        "csv_form": csv_form or CsvImportForm(),
        "time_zone": str(site_zone()),
        "csv_max_kb": MAX_CSV_BYTES // 1024,
    }
    return render(request, "timetable/timetable.html", context, status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def series_edit(request: HttpRequest, pk: int, series_pk: int) -> HttpResponse:
    course = _managed_course(request, pk)
    series = get_object_or_404(TimetableSeries, pk=series_pk, course=course)
    form = SeriesForm(request.POST or None, course=course, initial=SeriesForm.initial_for(series))
    if request.method == "POST" and form.is_valid():
        try:
            _series, result = series_save(course=course, by=cast(User, request.user), spec=form.spec(), series=series)
        except TimetableError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _summary(result))
            return redirect("course-timetable", pk=course.pk)
    return _render(request, course, form, series=series)


@login_required
@require_POST
def series_delete_view(request: HttpRequest, pk: int, series_pk: int) -> HttpResponse:
    course = _managed_course(request, pk)
    series = get_object_or_404(TimetableSeries, pk=series_pk, course=course)
    removed = series_delete(series=series, by=cast(User, request.user))
    messages.success(request, ngettext("Series deleted with its %(n)s planned session; held sessions are kept.",
                                       "Series deleted with its %(n)s planned sessions; held sessions are kept.",
                                       removed) % {"n": removed})
    return redirect("course-timetable", pk=course.pk)


@login_required
@require_POST
def sessions_import(request: HttpRequest, pk: int) -> HttpResponse:
    course = _managed_course(request, pk)
    csv_form = CsvImportForm(request.POST, request.FILES)
    if csv_form.is_valid():
        upload = csv_form.cleaned_data["file"]
        try:
            if upload.size > MAX_CSV_BYTES:
                raise TimetableCsvError([_("The file is larger than %(kb)s KB; split it.")
                                         % {"kb": MAX_CSV_BYTES // 1024}])
            result = sessions_import_csv(course=course, by=cast(User, request.user), data=upload.read())
        except TimetableCsvError as exc:
            for error in exc.errors[:20]:
                csv_form.add_error("file", error)
        else:
            params = {"n": result.created, "already": result.already_planned}
            if result.already_planned:
                text = ngettext("%(n)s session imported; already planned: %(already)s.",
                                "%(n)s sessions imported; already planned: %(already)s.", result.created)
            else:
                text = ngettext("%(n)s session imported.", "%(n)s sessions imported.", result.created)
            messages.success(request, text % params)
            return redirect("course-timetable", pk=course.pk)
    response = _render(request, course, SeriesForm(course=course), series=None, csv_form=csv_form)
    response.status_code = 400
    return response
