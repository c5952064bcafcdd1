"""Pages for taking attendance: a course's sessions, the check-in page, and the kiosk page at the door."""

from __future__ import annotations

from typing import Any, cast

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from attendance import ml, permissions, selectors_checkin
from attendance.apis_checkin import KIOSK_HEADER
from attendance.models import Course, Session, User
from attendance.services.checkin import doubtful_from
from attendance.services.sessions import (
    SessionError,
    session_close,
    session_kiosk_token_create,
    session_kiosk_token_revoke,
    session_late_after,
    session_open,
)

# Snapshots are scaled down in the browser to this longer side before upload: enough pixels for
# faces a few metres from a laptop camera, small enough to post several times a second.
SNAPSHOT_MAX_SIDE = 640


def _managed_course(request: HttpRequest, pk: int) -> Course:
    course = get_object_or_404(Course, pk=pk)
    if not permissions.can_manage_course(request.user, course):
        raise PermissionDenied("Only an admin or a lecturer of this course can manage its sessions.")
    return course


def _managed_session(request: HttpRequest, pk: int) -> Session:
    session = get_object_or_404(Session.objects.select_related("course"), pk=pk)
    if not permissions.can_manage_session(request.user, session):
        raise PermissionDenied("Only an admin or a lecturer of this course can manage its sessions.")
    return session


@login_required
@require_GET
def course_detail(request: HttpRequest, pk: int) -> HttpResponse:
    course = _managed_course(request, pk)
    students = list(selectors_checkin.course_students(course=course))
    context = {
        "course": course,
        "sessions": selectors_checkin.course_sessions(course=course),
        "students": students,
        "enrolled_count": sum(1 for student in students if getattr(student, "face_enrolled", False)),
    }
    return render(request, "checkin/course_detail.html", context)


@login_required
@require_POST
def course_session_start(request: HttpRequest, pk: int) -> HttpResponse:
    course = _managed_course(request, pk)
    session = session_open(course=course, by=cast(User, request.user), title=request.POST.get("title", ""))
    messages.success(request, f"Session {session} is open. Point the camera at the students as they arrive.")
    return redirect("session-checkin", pk=session.pk)


@login_required
@require_POST
def session_open_view(request: HttpRequest, pk: int) -> HttpResponse:
    session = _managed_session(request, pk)
    try:
        session = session_open(course=session.course, session=session, by=cast(User, request.user))
    except SessionError as exc:
        messages.error(request, str(exc))
        return redirect("course-detail", pk=session.course_id)
    messages.success(request, f"Session {session} is open.")
    return redirect("session-checkin", pk=session.pk)


@login_required
@require_POST
def session_close_view(request: HttpRequest, pk: int) -> HttpResponse:
    session = _managed_session(request, pk)
    try:
        result = session_close(session=session, by=cast(User, request.user))
    except SessionError as exc:
        messages.error(request, str(exc))
    else:
        absent = result.marked_absent
        messages.success(
            request, f"Session {session} is closed; {absent} student{'s' if absent != 1 else ''} marked absent."
        )
    return redirect("course-detail", pk=session.course_id)


@login_required
@require_POST
def session_kiosk_create(request: HttpRequest, pk: int) -> HttpResponse:
    session = _managed_session(request, pk)
    try:
        session_kiosk_token_create(session=session, by=cast(User, request.user))
    except SessionError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Kiosk link ready: open it on the device at the door, or scan the QR code.")
    return redirect(reverse("session-checkin", args=[session.pk]) + "#kiosk")


@login_required
@require_POST
def session_kiosk_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    session = _managed_session(request, pk)
    session_kiosk_token_revoke(session=session, by=cast(User, request.user))
    messages.success(request, "The kiosk link no longer works.")
    return redirect(reverse("session-checkin", args=[session.pk]) + "#kiosk")


def _qr_svg(url: str) -> str:
    image = qrcode.make(url, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2)
    return cast(str, image.to_string(encoding="unicode"))


def _page_config(session: Session, *, kiosk_token: str | None) -> dict[str, Any]:
    params = ml.recognition_params(k1=session.course.k1, k2=session.course.k2, threshold=session.course.threshold)
    config: dict[str, Any] = {
        "sessionId": session.pk,
        "open": session.status == Session.Status.OPEN,
        "checkinUrl": reverse("api-session-checkin", args=[session.pk]),
        "intervalMs": settings.ROLLCALL_CHECKIN_INTERVAL_MS,
        "maxSide": SNAPSHOT_MAX_SIDE,
        "jpegQuality": 0.85,
        "threshold": params.threshold,
        "doubtfulFrom": round(doubtful_from(params.threshold), 4),
        "kiosk": kiosk_token is not None,
    }
    if kiosk_token is not None:
        config["kioskHeader"] = KIOSK_HEADER
        config["kioskToken"] = kiosk_token
    else:
        config.update(
            stateUrl=reverse("api-session-state", args=[session.pk]),
            marksUrl=reverse("api-session-marks", args=[session.pk]),
            # The page puts a student id in place of the 0.
            doubtfulUrlTemplate=reverse("api-session-doubtful-dismiss", args=[session.pk, 0]),
            stateIntervalMs=1500,
        )
    return config


@login_required
@require_GET
@never_cache
def session_checkin(request: HttpRequest, pk: int) -> HttpResponse:
    session = _managed_session(request, pk)
    kiosk_url = qr_svg = None
    if session.kiosk_token and session.status == Session.Status.OPEN:
        kiosk_url = request.build_absolute_uri(reverse("kiosk", args=[session.kiosk_token]))
        qr_svg = mark_safe(_qr_svg(kiosk_url))  # noqa: S308 - generated here from our own URL, no user input
    context = {
        "session": session,
        "course": session.course,
        "roster": selectors_checkin.session_roster(session=session),
        "late_after_minutes": int(session_late_after(session=session).total_seconds() // 60),
        "kiosk_url": kiosk_url,
        "kiosk_qr": qr_svg,
        "checkin_config": _page_config(session, kiosk_token=None),
        "confirmations": settings.ROLLCALL_CHECKIN_CONFIRMATIONS,
        "store_snapshots": settings.ROLLCALL_STORE_SNAPSHOTS,
    }
    return render(request, "checkin/session.html", context)


@require_GET
@never_cache
def kiosk(request: HttpRequest, token: str) -> HttpResponse:
    """The check-in page for a device at the door: no sign-in, only this session, only while it is open."""
    session = selectors_checkin.session_for_kiosk_token(token=token)
    if session is None:
        return render(request, "checkin/kiosk_expired.html", status=404)
    context = {"session": session, "checkin_config": _page_config(session, kiosk_token=token)}
    response = render(request, "checkin/kiosk.html", context)
    response["Referrer-Policy"] = "no-referrer"  # the token is in this page's URL
    return response
