"""Pages for taking attendance: the check-in page, the kiosk link that pairs a device and the kiosk page at the door."""

from __future__ import annotations

from typing import Any, cast

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from attendance import ml
from attendance.checkin import selectors as checkin_selectors
from attendance.checkin.api import KIOSK_COOKIE
from attendance.checkin.services import doubtful_from
from attendance.courses.selectors import course_threshold
from attendance.models import Session
from attendance.sessions.services import (
    KioskLinkUsedError,
    KioskPairing,
    kiosk_device_matches,
    session_kiosk_device_pair,
    session_late_after,
)
from attendance.sessions.views import managed_session

# Snapshots are scaled down in the browser to this longer side before upload: enough pixels for
# faces a few metres from a laptop camera, small enough to post several times a second.
SNAPSHOT_MAX_SIDE = 640


def _qr_svg(url: str) -> str:
    image = qrcode.make(url, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2)
    return cast(str, image.to_string(encoding="unicode"))


def _page_config(session: Session, *, kiosk: bool) -> dict[str, Any]:
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
        "kiosk": kiosk,
        # The kiosk previews the camera as a mirror (what people expect when they see themselves),
        # so a head-turn prompt's arrow and the face on screen move the same way. Snapshots are
        # always sent unmirrored.
        "mirror": kiosk,
        # Snapshots a little faster while a head-turn prompt is open, to catch the turn in time.
        "challengeIntervalMs": max(150, settings.ROLLCALL_CHECKIN_INTERVAL_MS * 2 // 3),
    }
    # The kiosk's page carries no credential: its device cookie goes with its same-origin posts.
    if not kiosk:
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
        "kiosk_paired": bool(session.kiosk_device_hash),
        "checkin_config": _page_config(session, kiosk=False),
        "confirmations": settings.ROLLCALL_CHECKIN_CONFIRMATIONS,
        "store_snapshots": settings.ROLLCALL_STORE_SNAPSHOTS,
        # The wide layout (base.html's <main> class); from here, as a class name is not text to translate.
        "page_class": " page-wide",
    }
    return render(request, "checkin/session.html", context)


@require_http_methods(["GET", "POST"])
@never_cache
def kiosk(request: HttpRequest, token: str) -> HttpResponse:
    """A kiosk link: the device that confirms it (a POST, so that a chat app previewing the link or a
    browser prefetching it pairs nothing) is paired with the link's open session and sent on to the
    kiosk page, whose URL holds no credential (the address bar, history and logs keep nothing usable).

    Anyone else opening the link later (a student who photographed the QR code) is refused: the
    token pairs once and never posts check-ins itself.
    """
    secret = request.COOKIES.get(KIOSK_COOKIE, "")
    pairing: KioskPairing | None = None
    try:
        if request.method == "POST":
            pairing = session_kiosk_device_pair(token=token, secret=secret)
        elif (session := checkin_selectors.session_for_kiosk_link(token=token)) is not None:
            if not session.kiosk_device_hash:
                response = render(request, "checkin/kiosk_start.html", {"session": session})
                # The token is in this page's URL: the origin only, never the path. Not no-referrer,
                # under which the browser sends "Origin: null" with the form and CSRF refuses it.
                response["Referrer-Policy"] = "strict-origin"
                return response
            if not kiosk_device_matches(session, secret):
                raise KioskLinkUsedError
            pairing = KioskPairing(session=session, secret="")  # the paired device, back again
    except KioskLinkUsedError:
        response = render(request, "checkin/kiosk_taken.html", status=409)
    else:
        if pairing is None:
            response = render(request, "checkin/kiosk_expired.html", status=404)
        else:
            response = HttpResponseRedirect(reverse("kiosk-page"))
            response.status_code = 303  # See Other: the kiosk page is fetched with a GET
            if pairing.secret:
                # A browser-session cookie: the kiosk is paired for this session only, and a new
                # link, a revoke or the close clears its hash anyway. SameSite=Strict keeps it off
                # every request another site starts (see api._kiosk_secret on CSRF).
                response.set_cookie(
                    KIOSK_COOKIE, pairing.secret, path="/", httponly=True, samesite="Strict",
                    secure=settings.SESSION_COOKIE_SECURE,
                )
    response["Referrer-Policy"] = "no-referrer"  # the token is in this page's URL
    return response


@require_GET
@never_cache
def kiosk_page(request: HttpRequest) -> HttpResponse:
    """The check-in page for the device at the door: no sign-in, only its paired session, only while it is open."""
    session = checkin_selectors.session_for_kiosk_device(secret=request.COOKIES.get(KIOSK_COOKIE, ""))
    if session is None:
        return render(request, "checkin/kiosk_expired.html", status=404)
    context = {"session": session, "checkin_config": _page_config(session, kiosk=True)}
    return render(request, "checkin/kiosk.html", context)
