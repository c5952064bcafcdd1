"""Pages for a course's sessions: the course page, starting, opening and closing a session, kiosk links."""

from __future__ import annotations

from typing import cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext, ngettext
from django.views.decorators.http import require_GET, require_POST

from attendance import permissions
from attendance.courses.selectors import course_threshold
from attendance.models import Course, Session, User
from attendance.sessions import selectors as session_selectors
from attendance.sessions.services import (
    SessionError,
    session_close,
    session_kiosk_token_create,
    session_kiosk_token_revoke,
    session_open,
)


def _managed_course(request: HttpRequest, pk: int) -> Course:
    course = get_object_or_404(Course, pk=pk)
    if not permissions.can_manage_course(request.user, course):
        raise PermissionDenied(gettext("Only an admin or a lecturer of this course can manage its sessions."))
    return course


def managed_session(request: HttpRequest, pk: int) -> Session:
    session = get_object_or_404(Session.objects.select_related("course"), pk=pk)
    if not permissions.can_manage_session(request.user, session):
        raise PermissionDenied(gettext("Only an admin or a lecturer of this course can manage its sessions."))
    return session


@login_required
@require_GET
def course_detail(request: HttpRequest, pk: int) -> HttpResponse:
    course = _managed_course(request, pk)
    students = list(session_selectors.course_students(course=course))
    context = {
        "course": course,
        "sessions": session_selectors.course_sessions(course=course),
        "students": students,
        "enrolled_count": sum(1 for student in students if getattr(student, "face_enrolled", False)),
        "threshold": course_threshold(course=course),
    }
    return render(request, "checkin/course_detail.html", context)


@login_required
@require_POST
def course_session_start(request: HttpRequest, pk: int) -> HttpResponse:
    course = _managed_course(request, pk)
    session = session_open(course=course, by=cast(User, request.user), title=request.POST.get("title", ""))
    messages.success(request, gettext("Session %(session)s is open. Point the camera at the students as they arrive.")
                     % {"session": session})
    return redirect("session-checkin", pk=session.pk)


@login_required
@require_POST
def session_open_view(request: HttpRequest, pk: int) -> HttpResponse:
    session = managed_session(request, pk)
    try:
        session = session_open(course=session.course, session=session, by=cast(User, request.user))
    except SessionError as exc:
        messages.error(request, str(exc))
        return redirect("course-detail", pk=session.course_id)
    messages.success(request, gettext("Session %(session)s is open.") % {"session": session})
    return redirect("session-checkin", pk=session.pk)


@login_required
@require_POST
def session_close_view(request: HttpRequest, pk: int) -> HttpResponse:
    session = managed_session(request, pk)
    try:
        result = session_close(session=session, by=cast(User, request.user))
    except SessionError as exc:
        messages.error(request, str(exc))
    else:
        absent = result.marked_absent
        messages.success(request, ngettext(
            "Session %(session)s is closed; %(absent)s student marked absent.",
            "Session %(session)s is closed; %(absent)s students marked absent.", absent,
        ) % {"session": session, "absent": absent})
    return redirect("course-detail", pk=session.course_id)


@login_required
@require_POST
def session_kiosk_create(request: HttpRequest, pk: int) -> HttpResponse:
    session = managed_session(request, pk)
    try:
        session_kiosk_token_create(session=session, by=cast(User, request.user))
    except SessionError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, gettext("Kiosk link ready: open it on the device at the door, or scan the QR code."))
    return redirect(reverse("session-checkin", args=[session.pk]) + "#kiosk")


@login_required
@require_POST
def session_kiosk_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    session = managed_session(request, pk)
    session_kiosk_token_revoke(session=session, by=cast(User, request.user))
    messages.success(request, gettext("The kiosk link no longer works."))
    return redirect(reverse("session-checkin", args=[session.pk]) + "#kiosk")
