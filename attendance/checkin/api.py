"""Check-in API: snapshots in, faces and marks out; the live list and what the lecturer does on it.

Posting a snapshot is allowed to the course's lecturers, admins, and the kiosk device paired with
this open session: its device secret comes in the kiosk cookie (a browser) or the X-Kiosk-Token
header (a kiosk that is not a browser). The kiosk link's own token pairs a device once and never
posts. Everyone else gets 403, a session that is not open 409, an oversized body 413, a flood 429
and a body that is not an image 400, each with a message saying what to do.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any, NoReturn

from django.conf import settings
from django.http import UnreadablePostError
from django.utils.translation import gettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ParseError, PermissionDenied, Throttled
from rest_framework.parsers import BaseParser, JSONParser, MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from attendance import permissions
from attendance.checkin import lists as checkin_lists
from attendance.checkin import liveness as checkin_liveness
from attendance.checkin import selectors as checkin_selectors
from attendance.checkin import services as checkin_service
from attendance.checkin.serializers import (
    CheckinResultSerializer,
    MarkSerializer,
    RosterEntrySerializer,
    SessionStateSerializer,
)
from attendance.models import AttendanceRecord, Session
from attendance.platform.api import Conflict, PayloadTooLarge, ServiceUnavailable, error_responses, models_unavailable
from attendance.platform.redis import key, redis_client
from attendance.sessions.api import AUTHENTICATION, require_manager, session_or_404
from attendance.sessions.records import RecordError, RecordPermissionError, attendance_record_set
from attendance.sessions.selectors import session_info
from attendance.sessions.services import (
    SessionClosedError,
    kiosk_device_hash,
    kiosk_device_matches,
)
from recognition import ImageError, ModelUnavailableError

logger = logging.getLogger(__name__)

KIOSK_HEADER = "X-Kiosk-Token"
# The paired kiosk's device secret in a browser: HttpOnly (no script reads it) and SameSite=Strict.
KIOSK_COOKIE = "rollcall_kiosk"
KIOSK_PAGE_HEADER = "X-Rollcall-Kiosk"


class RawBodyParser(BaseParser):
    """Any body that is not multipart is taken as the image's bytes, so that a wrong upload gets the
    image decoder's message (400) rather than a bare "unsupported media type"."""

    media_type = "*/*"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        # DRF hands a non-mapping result on as request.data: here, the body's bytes.
        return stream.read() if stream is not None else b""


def _max_image_bytes() -> int:
    return int(settings.ROLLCALL_CHECKIN_MAX_IMAGE_MB) * 1024 * 1024


def _kiosk_secret(request: Request) -> str:
    """The device secret a kiosk sent: the header for a kiosk that is not a browser, else the cookie.

    No CSRF token is asked of the kiosk: it is not signed in (DRF's session authentication, which
    checks CSRF, does not apply to it), and its cookie is SameSite=Strict, so a POST from another
    site carries no device secret and is refused like any stranger's.
    """
    return (request.headers.get(KIOSK_HEADER, "").strip() or request.COOKIES.get(KIOSK_COOKIE, "")).strip()


def _kiosk_device_valid(session: Session, secret: str) -> bool:
    return session.status == Session.Status.OPEN and kiosk_device_matches(session, secret)


class CheckinRateThrottle(BaseThrottle):
    """ROLLCALL_CHECKIN_RATE_PER_MINUTE snapshots per session and sender, counted in Redis so the
    limit holds across web workers. A fixed one-minute window: cheap, and tight enough here."""

    def __init__(self) -> None:
        self._wait = 0.0

    def allow_request(self, request: Request, view: Any) -> bool:
        now = time.time()
        if request.user and request.user.is_authenticated:
            sender = f"user-{request.user.pk}"
        elif secret := _kiosk_secret(request):
            sender = "kiosk-" + kiosk_device_hash(secret)[:16]
        else:
            sender = "ip-" + str(request.META.get("REMOTE_ADDR", ""))
        name = key("rate", "checkin", view.kwargs.get("pk"), sender, int(now // 60))
        pipe = redis_client().pipeline(transaction=True)
        pipe.incr(name)
        pipe.expire(name, 61)
        count = int(pipe.execute()[0])
        self._wait = 60 - now % 60
        return count <= int(settings.ROLLCALL_CHECKIN_RATE_PER_MINUTE)

    def wait(self) -> float:
        return self._wait


def session_state_payload(session: Session) -> dict[str, Any]:
    roster = checkin_selectors.session_roster(session=session)
    counts = {choice: 0 for choice in AttendanceRecord.Status.values}
    counts["unmarked"] = 0
    for entry in roster:
        counts[entry.status or "unmarked"] += 1
    return {
        "session": session_info(session),
        "students": roster,
        "doubtful": checkin_lists.session_doubtful_matches(session=session)
        if session.status == Session.Status.OPEN else [],
        "not_live": [replace(face, reason=checkin_liveness.reason_words(face.reason))
                     for face in checkin_lists.session_not_live(session=session)]
        if session.status == Session.Status.OPEN else [],
        "counts": counts,
    }


class SessionCheckinApi(APIView):
    authentication_classes = AUTHENTICATION
    permission_classes = [AllowAny]  # decided in post(): a kiosk device is not a user
    parser_classes = [MultiPartParser, RawBodyParser]
    throttle_classes = [CheckinRateThrottle]

    def throttled(self, request: Request, wait: float | None) -> NoReturn:
        raise Throttled(
            wait=wait,
            detail=gettext(
                "Too many snapshots: at most %(rate)s a minute per session and device. The check-in page slows "
                "down by itself; wait a moment."
            ) % {"rate": settings.ROLLCALL_CHECKIN_RATE_PER_MINUTE},
        )

    @extend_schema(
        operation_id="session_check_in",
        summary="Post one webcam snapshot",
        description=(
            "Detects every face, embeds them in one batch, searches the course's index and applies the "
            "k1/k2/threshold vote; no two faces get the same student. A student is marked present (or late) "
            "only after ROLLCALL_CHECKIN_CONFIRMATIONS agreeing snapshots within "
            "ROLLCALL_CHECKIN_WINDOW_SECONDS. Send the JPEG/PNG as the raw body (Content-Type: image/jpeg) "
            "or as a multipart field named `image`."
        ),
        parameters=[
            OpenApiParameter(KIOSK_HEADER, OpenApiTypes.STR, OpenApiParameter.HEADER, required=False,
                             description="The device secret of this open session's paired kiosk, for a kiosk "
                             "that is not a browser (a browser sends it in its cookie). Never the kiosk link's "
                             "token: it only pairs a device."),
        ],
        request={
            "image/jpeg": OpenApiTypes.BINARY,
            "image/png": OpenApiTypes.BINARY,
            "multipart/form-data": inline_serializer("CheckinUpload", {"image": serializers.ImageField()}),
        },
        responses={200: CheckinResultSerializer, **error_responses(400, 403, 404, 409, 413, 429, 503)},
        examples=[OpenApiExample(
            "One known and one unknown face",
            response_only=True,
            value={"width": 640, "height": 480, "confirmations_needed": 3, "marked": [], "processing_ms": 180,
                   "faces": [
                       {"box": [220, 90, 120, 150], "outcome": "confirming", "student_id": 7, "name": "Katie Hill",
                        "distance": 0.17, "votes": 1, "confirmations": 2, "record_status": None},
                       {"box": [420, 110, 90, 110], "outcome": "unknown", "student_id": None, "name": "Unknown",
                        "distance": None, "votes": 0, "confirmations": 0, "record_status": None},
                   ]},
        )],
    )
    def post(self, request: Request, pk: int) -> Response:
        session = session_or_404(pk)
        secret = _kiosk_secret(request)
        device = _kiosk_device_valid(session, secret)
        manager = permissions.can_manage_session(request.user, session)
        # The paired kiosk gets the kiosk's liveness policy and answers. A browser signed in as the
        # lecturer and also paired (the lecturer tried the link) is the kiosk only on the kiosk
        # page, which says so (KIOSK_PAGE_HEADER): a header that can only ask for the stricter.
        kiosk = device and (not manager or request.headers.get(KIOSK_PAGE_HEADER) == "1")
        if not (device or manager):
            if secret:
                raise PermissionDenied(gettext(
                    "This kiosk link is no longer valid: the session was closed or the link was replaced. "
                    "Ask the lecturer for a new link."
                ))
            raise PermissionDenied(gettext(
                "Only a lecturer of this course, an admin or the session's kiosk link can post check-ins."
            ))
        _check_open(session)
        image = _image_bytes(request)
        try:
            result = checkin_service.session_check_in(session=session, image_bytes=image, kiosk=kiosk)
        except ImageError as exc:
            # recognition/ words its errors in English for the log; the person gets our sentence around it.
            raise ParseError(gettext(
                "The snapshot is not an image the server can read (%(detail)s). Send one JPEG or PNG snapshot, "
                "as the request body or a multipart field named 'image'."
            ) % {"detail": str(exc).rstrip(".")}) from exc
        except SessionClosedError as exc:
            raise Conflict(str(exc)) from exc
        except checkin_liveness.KioskPausedError as exc:
            raise ServiceUnavailable(str(exc)) from exc
        except ModelUnavailableError as exc:
            raise models_unavailable(request.user, exc) from exc
        answer = _in_reader_words(result)
        return Response(CheckinResultSerializer(_for_kiosk(answer) if kiosk else answer).data)


# A kiosk names a face only once it is marked, and nothing else about anyone: not whom a face that
# is still confirming (a photo, until liveness has failed it enough), doubtful, not live or already
# recorded resembles (posting faces would search the course's students), nor ids, distances, votes,
# live scores or why liveness failed (which would help tune a spoof). Its boxes still say what to do.
def _for_kiosk(result: checkin_service.CheckinResult) -> checkin_service.CheckinResult:
    faces = [
        replace(face, student_id=None, name=face.name if face.outcome in ("unknown", "marked") else "",
                record_status=face.record_status if face.outcome == "marked" else None,
                distance=None, votes=0, liveness_score=None, reason="")
        for face in result.faces
    ]
    return replace(result, faces=faces, marked=[])


def _in_reader_words(result: checkin_service.CheckinResult) -> checkin_service.CheckinResult:
    """The snapshot's answer with its words (an unknown face's name, liveness reasons) in the reader's
    language: the service words them in English, as the log and Redis keep them."""
    faces = [
        replace(face, name=gettext("Unknown") if face.student_id is None else face.name,
                reason=checkin_liveness.reason_words(face.reason))
        for face in result.faces
    ]
    return replace(result, faces=faces)


def _check_open(session: Session) -> None:
    if session.status == Session.Status.CLOSED:
        raise Conflict(gettext("This session is closed: check-ins are no longer accepted. Start a new session to "
                               "take attendance again, or correct records by hand."))
    if session.status != Session.Status.OPEN:
        raise Conflict(gettext("This session has not been opened yet: open it from the course page first."))


def _image_bytes(request: Request) -> bytes:
    try:
        return _read_image_bytes(request)
    except UnreadablePostError as exc:
        # The client went away mid-upload (a network cut, a closed tab): its answer goes nowhere,
        # but the log gets a line, not a server error's traceback.
        logger.info("check-in body not read whole: %s", exc)
        raise ParseError(gettext("The snapshot did not arrive whole (the connection broke): send it again.")) from exc


def _read_image_bytes(request: Request) -> bytes:
    limit = _max_image_bytes()
    too_large = gettext(
        "The image is larger than the %(limit)s MB limit: send a smaller JPEG "
        "(the check-in page sends snapshots of about 640 pixels)."
    ) % {"limit": settings.ROLLCALL_CHECKIN_MAX_IMAGE_MB}
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    # Checked before the body is read; the multipart envelope adds a little to the image itself.
    if declared > limit + 64 * 1024:
        raise PayloadTooLarge(too_large)
    if request.content_type.startswith("multipart/form-data"):
        upload = request.FILES.get("image")
        if upload is None:
            raise ParseError(gettext("No image in the form: send the snapshot as a multipart field named 'image', "
                                     "or as the raw request body with Content-Type: image/jpeg."))
        if upload.size is not None and upload.size > limit:
            raise PayloadTooLarge(too_large)
        return upload.read()
    data = request.data
    if not isinstance(data, bytes) or not data:
        raise ParseError(gettext("The request has no body: send one JPEG or PNG snapshot as the body "
                                 "(Content-Type: image/jpeg) or as a multipart field named 'image'."))
    if len(data) > limit:
        raise PayloadTooLarge(too_large)
    return data


class SessionStateApi(APIView):
    authentication_classes = AUTHENTICATION
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="session_state",
        summary="The live list of a session",
        description="Every student of the course with their record in this session (no photos), the doubtful "
        "matches waiting for the lecturer, and counts per status. Polled by the check-in page.",
        responses={200: SessionStateSerializer, **error_responses(403, 404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        session = session_or_404(pk)
        require_manager(request, session)
        return Response(SessionStateSerializer(session_state_payload(session)).data)


class SessionMarkApi(APIView):
    authentication_classes = AUTHENTICATION
    permission_classes = [IsAuthenticated]
    parser_classes = [JSONParser, MultiPartParser]

    @extend_schema(
        operation_id="session_mark",
        summary="Mark or unmark a student by hand",
        description="Sets the student's status in this session (present, late, absent, excused) with an audit "
        "row; a mark made by hand is never changed by the camera afterwards. Unmarking is setting absent.",
        request=MarkSerializer,
        responses={200: RosterEntrySerializer, **error_responses(400, 403, 404)},
    )
    def post(self, request: Request, pk: int) -> Response:
        session = session_or_404(pk)
        user = require_manager(request, session)
        if session.status == Session.Status.SCHEDULED:
            raise Conflict(gettext("This session has not been opened yet: open it before marking anyone."))
        form = MarkSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        # Only people the caller may see: an id from elsewhere gets the answer an unknown id gets, so
        # probing ids reveals neither who exists nor their names.
        student = permissions.students_visible_to(user).filter(pk=form.validated_data["student"]).first()
        if student is None:
            raise NotFound(gettext("No such student on your courses."))
        try:
            attendance_record_set(session=session, student=student, status=form.validated_data["status"],
                                  by=user, reason=form.validated_data["reason"])
        except RecordPermissionError as exc:
            raise PermissionDenied(str(exc)) from exc
        except RecordError as exc:
            raise ParseError(str(exc)) from exc
        checkin_lists.forget_doubtful(session_id=session.pk, student_id=student.pk)
        checkin_lists.forget_not_live(session_id=session.pk, student_id=student.pk)
        entry = next(e for e in checkin_selectors.session_roster(session=session) if e.student_id == student.pk)
        return Response(RosterEntrySerializer(entry).data)


class SessionDoubtfulDismissApi(APIView):
    authentication_classes = AUTHENTICATION
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="session_doubtful_dismiss",
        summary="Dismiss a doubtful match",
        description="The lecturer judged a doubtful match wrong: it leaves the list until it is seen again.",
        request=None,
        responses={204: None, **error_responses(403, 404)},
    )
    def delete(self, request: Request, pk: int, student_id: int) -> Response:
        session = session_or_404(pk)
        require_manager(request, session)
        checkin_lists.forget_doubtful(session_id=session.pk, student_id=student_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
