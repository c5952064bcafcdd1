"""Report pages and their CSV files, for lecturers and admins; a student's own attendance."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import cast

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from attendance import permissions
from attendance.courses import selectors
from attendance.models import AttendanceWarning, Session, User
from attendance.reports import charts, points, rates, xlsx
from attendance.reports import exports as report_csv
from attendance.reports import selectors as reports
from attendance.reports.forms import ReportFilterForm


def _user(request: HttpRequest) -> User:
    return cast(User, request.user)


def _require_staff(request: HttpRequest) -> User:
    user = _user(request)
    if not permissions.is_staff_role(user):
        raise PermissionDenied(_("Reports are for lecturers and admins. Your own attendance is under My attendance."))
    return user


def _require_student(request: HttpRequest) -> User:
    user = _user(request)
    if not user.is_student:
        raise PermissionDenied(_("This page is for students: it shows the signed-in student's own attendance."))
    return user


def _export(rows: Iterable[report_csv.Row], name: str, extension: str) -> HttpResponse:
    """The rows as a CSV download (streamed) or an XLSX one; `name` without its extension."""
    response: HttpResponse | StreamingHttpResponse
    if extension == "xlsx":
        response = HttpResponse(xlsx.workbook(rows), content_type=xlsx.CONTENT_TYPE)
    else:
        response = StreamingHttpResponse(report_csv.encode(rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}.{extension}"'
    response["Cache-Control"] = "no-store"
    return response  # type: ignore[return-value]  # both are responses a view may return


@login_required
@require_GET
def course_list(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    courses = rates.courses_with_stats(permissions.courses_visible_to(user))
    return render(request, "reports/course_list.html", {"courses": courses, "manage": permissions.is_staff_role(user)})


@login_required
@require_GET
def report_index(request: HttpRequest) -> HttpResponse:
    user = _require_staff(request)
    query = request.GET.get("q", "").strip()
    students = permissions.students_visible_to(user).order_by("last_name", "first_name", "username")
    if query:
        students = students.filter(
            Q(username__icontains=query) | Q(first_name__icontains=query) | Q(last_name__icontains=query)
            | Q(student_number__icontains=query)
        )
    context = {
        "courses": rates.courses_with_stats(permissions.courses_managed_by(user)),
        "query": query,
        "students": students[:50] if query else [],
        "rate_definition": rates.RATE_DEFINITION,
    }
    return render(request, "reports/index.html", context)


def _session_day_time(value: datetime) -> str:
    """"1 Oct 09:00" in English, "1. listopada 09:00" in Croatian: the day and the time of a session."""
    local = timezone.localtime(value)
    return f'{formats.date_format(local, "MONTH_DAY_FORMAT")} {formats.time_format(local, "H:i")}'


def _session_name(session: Session) -> str:
    """A session for a person to read: its date and time in their language's format, then its title."""
    held_at = timezone.localtime(getattr(session, "held_at", None) or session.starts_at)
    when = formats.date_format(held_at, "SHORT_DATETIME_FORMAT")
    return f"{when} {session.title}" if session.title else when


def _course_report_input(request: HttpRequest) -> ReportFilterForm:
    return ReportFilterForm(request.GET, default_threshold=rates.low_rate_threshold())


@login_required
@require_GET
def course_report(request: HttpRequest, pk: int) -> HttpResponse:
    user = _require_staff(request)
    course = get_object_or_404(permissions.courses_managed_by(user), pk=pk)
    form = _course_report_input(request)
    period, sort, threshold, only_low = form.values()
    report = reports.course_report(
        course=course, period=period, sort=sort, threshold=threshold, only_low=only_low,
        page_number=request.GET.get("page"),
    )
    turnout_bars = [
        charts.Bar(
            # Two sessions on one day must be told apart (issue 16): the time too, the title in the tooltip.
            label=_session_day_time(s.held_at),  # type: ignore[attr-defined]
            value=s.turnout,  # type: ignore[attr-defined]
            title=_("%(session)s: %(attended)s of %(expected)s attended") % {
                "session": _session_name(s),
                "attended": s.attended, "expected": s.expected,  # type: ignore[attr-defined]
            },
        )
        for s in report.sessions
    ]
    context = {
        "course": course,
        "report": report,
        "form": form,
        "in_progress": list(rates.sessions_in_progress(course=course)),
        "rate_definition": rates.RATE_DEFINITION,
        "points_definition": points.POINTS_DEFINITION,
        # Students with an open attendance warning (emailed once when they fell below the course's threshold).
        "warned": set(
            AttendanceWarning.objects.filter(course=course, recovered_at__isnull=True)
            .values_list("student_id", flat=True)
        ),
        "scheme": points.course_scheme(course),
        "turnout_chart": charts.turnout_chart(turnout_bars, threshold=threshold),
        "rates_chart": charts.rate_histogram(report.summary.rates, threshold=threshold),
        "threshold_percent": round(threshold * 100),
    }
    return render(request, "reports/course_report.html", context)


@login_required
@require_GET
def course_report_export(request: HttpRequest, pk: int, extension: str) -> HttpResponse:
    user = _require_staff(request)
    course = get_object_or_404(permissions.courses_managed_by(user), pk=pk)
    period, sort, threshold, only_low = _course_report_input(request).values()
    sessions = reports.course_sessions(course=course, period=period)
    rows = reports.course_report_all_rows(
        course=course, period=period, sort=sort, threshold=threshold, only_low=only_low, sessions=sessions
    )
    name = report_csv.basename(course.code, course.term, "attendance")
    return _export(report_csv.course_rows(sessions, rows), name, extension)


def _managed_session(request: HttpRequest, pk: int) -> Session:
    user = _require_staff(request)
    return get_object_or_404(
        permissions.sessions_managed_by(user).select_related("course", "opened_by"), pk=pk
    )


@login_required
@require_GET
def session_report(request: HttpRequest, pk: int) -> HttpResponse:
    session = _managed_session(request, pk)
    report = reports.session_report(session=session, page_number=request.GET.get("page"))
    return render(request, "reports/session_report.html", {"session": session, "report": report})


@login_required
@require_GET
def session_report_export(request: HttpRequest, pk: int, extension: str) -> HttpResponse:
    session = _managed_session(request, pk)
    name = report_csv.basename(session.course.code, session.course.term, f"session-{session.pk}")
    return _export(report_csv.session_rows(reports.session_report_all_rows(session=session)), name, extension)


@login_required
@require_GET
def student_report(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    student = get_object_or_404(permissions.students_visible_to(user), pk=pk)
    if student.pk == user.pk and user.is_student:
        return redirect("my-attendance")
    report = reports.student_report(
        student=student, courses=permissions.courses_visible_to(user), page_number=request.GET.get("page")
    )
    context = {
        "student": student,
        "report": report,
        "enrolment": selectors.student_current_enrolment(student=student),
        "rate_definition": rates.RATE_DEFINITION,
        "can_withdraw": permissions.can_withdraw_consent_for(user, student),
        "has_face_data": selectors.student_has_face_data(student=student),
    }
    return render(request, "reports/student_report.html", context)


@login_required
@require_GET
def student_report_export(request: HttpRequest, pk: int, extension: str) -> HttpResponse:
    user = _user(request)
    student = get_object_or_404(permissions.students_visible_to(user), pk=pk)
    rows = reports.student_report_all_rows(student=student, courses=permissions.courses_visible_to(user))
    name = report_csv.basename(student.username, "attendance")
    return _export(report_csv.student_rows(rows), name, extension)


@login_required
@require_GET
def my_attendance(request: HttpRequest) -> HttpResponse:
    student = _require_student(request)
    report = reports.student_report(
        student=student, courses=permissions.courses_visible_to(student), page_number=request.GET.get("page")
    )
    context = {
        "student": student,
        "report": report,
        "enrolment": selectors.student_current_enrolment(student=student),
        "rate_definition": rates.RATE_DEFINITION,
        "has_face_data": selectors.student_has_face_data(student=student),
    }
    return render(request, "reports/my_attendance.html", context)
