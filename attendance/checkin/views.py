"""Pages for taking attendance: the check-in page and the kiosk page at the door."""

from __future__ import annotations

from typing import Any, cast

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from attendance import ml
from attendance.checkin import selectors as checkin_selectors
from attendance.checkin.api import KIOSK_HEADER
from attendance.checkin.services import doubtful_from
from attendance.courses.selectors import course_threshold
from attendance.models import Session
from attendance.sessions.services import (
    session_late_after,
)
from attendance.sessions.views import managed_session

# Snapshots are scaled down in the browser to this longer side before upload: enough pixels for
# faces a few metres from a laptop camera, small enough to post several times a second.
SNAPSHOT_MAX_SIDE = 640


def _qr_svg(url: str) -> str:
    image = qrcode.make(url, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2)
    return cast(str, image.to_string(encoding="unicode"))


def _page_config(session: Session, *, kiosk_token: str | None) -> dict[str, Any]:
    course = session.course
    params = ml.recognition_params(k1=course.k1, k2=course.k2, threshold=course_threshold(course=course).value)
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
        # The kiosk previews the camera as a mirror (what people expect when they see themselves),
        # so a head-turn prompt's arrow and the face on screen move the same way. Snapshots are
        # always sent unmirrored.
        "mirror": kiosk_token is not None,
        # Snapshots a little faster while a head-turn prompt is open, to catch the turn in time.
        "challengeIntervalMs": max(150, settings.ROLLCALL_CHECKIN_INTERVAL_MS * 2 // 3),
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
    session = managed_session(request, pk)
    kiosk_url = qr_svg = None
    if session.kiosk_token and session.status == Session.Status.OPEN:
        kiosk_url = request.build_absolute_uri(reverse("kiosk", args=[session.kiosk_token]))
        qr_svg = mark_safe(_qr_svg(kiosk_url))  # noqa: S308 - generated here from our own URL, no user input
    context = {
        "session": session,
        "course": session.course,
        "roster": checkin_selectors.session_roster(session=session),
        "late_after_minutes": int(session_late_after(session=session).total_seconds() // 60),
        "kiosk_url": kiosk_url,
        "kiosk_qr": qr_svg,
        "checkin_config": _page_config(session, kiosk_token=None),
        "confirmations": settings.ROLLCALL_CHECKIN_CONFIRMATIONS,
        "store_snapshots": settings.ROLLCALL_STORE_SNAPSHOTS,
        # The wide layout (base.html's <main> class); from here, as a class name is not text to translate.
        "page_class": " page-wide",
    }
    return render(request, "checkin/session.html", context)


@require_GET
@never_cache
def kiosk(request: HttpRequest, token: str) -> HttpResponse:
    """The check-in page for a device at the door: no sign-in, only this session, only while it is open."""
    session = checkin_selectors.session_for_kiosk_token(token=token)
    if session is None:
        return render(request, "checkin/kiosk_expired.html", status=404)
    context = {"session": session, "checkin_config": _page_config(session, kiosk_token=token)}
    response = render(request, "checkin/kiosk.html", context)
    response["Referrer-Policy"] = "no-referrer"  # the token is in this page's URL
    return response
