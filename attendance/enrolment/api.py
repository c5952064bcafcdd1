"""Enrolment API: upload a face video (multipart) and follow its processing.

Errors are JSON objects `{code, message}`: `code` for programs, `message` a sentence for the student
saying what to do. 400: the upload is wrong (no consent, not a video, empty, cut off, too long, not
a student); 403: enrolling someone else without being an admin; 404: an enrolment the caller may
not see; 409: a video of this student is still being processed; 413: the file is over
ROLLCALL_ENROLMENT_MAX_UPLOAD_MB, refused from its Content-Length before the body is read.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, cast

from django.conf import settings
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from attendance import permissions
from attendance.enrolment import selectors as selectors_enrolment
from attendance.enrolment.errors import EnrolmentError
from attendance.enrolment.services import enrolment_create, max_upload_bytes
from attendance.models import FaceEnrolment, User

# Token first: a request without credentials gets 401 with a WWW-Authenticate header, not 403.
AUTHENTICATION = [TokenAuthentication, SessionAuthentication]
# The multipart envelope (boundaries, headers, the consent field) adds a little to the video itself.
MULTIPART_SLACK_BYTES = 64 * 1024


def too_large_message() -> str:
    limit = settings.ROLLCALL_ENROLMENT_MAX_UPLOAD_MB
    return _(
        "The video is over the %(limit)s MB limit. Record a shorter clip (about 10 seconds is enough) "
        "or at a lower resolution."
    ) % {"limit": limit}


def upload_too_large(content_length: str | None) -> bool:
    """Whether a request declares a body too large for any acceptable video. Checked before Django
    reads the body, so an oversized upload is neither buffered nor written to a temporary file."""
    try:
        declared = int(content_length or 0)
    except ValueError:
        return False
    return declared > max_upload_bytes() + MULTIPART_SLACK_BYTES


def error_status(exc: EnrolmentError) -> int:
    # The service reports a file over the limit as a bad upload; HTTP has a code of its own for it.
    return status.HTTP_413_REQUEST_ENTITY_TOO_LARGE if exc.code == "too_large" else exc.status_code


class EnrolmentApiError(exceptions.APIException):
    def __init__(self, code: str, message: str, status_code: int) -> None:
        super().__init__(detail=message, code=code)
        self.status_code = status_code
        self.error_code = code


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text=gettext_lazy(
        "For programs: consent_required, not_a_video, empty_file, truncated, "
        "too_large, too_long, forbidden, in_progress, not_a_student, no_video, ..."
    ))
    message = serializers.CharField(
        help_text=gettext_lazy("A sentence for the student: what went wrong and what to do."),
    )


class EnrolmentStatusSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    student = serializers.IntegerField(help_text=gettext_lazy("The student's user id."))
    status = serializers.ChoiceField(choices=FaceEnrolment.Status.choices)
    finished = serializers.BooleanField(
        help_text=gettext_lazy("True once ready, failed, superseded or withdrawn: stop polling."),
    )
    stage = serializers.CharField(
        help_text=gettext_lazy("queued, reading, detecting, embedding, indexing, done, failed, retrying.")
    )
    label = serializers.CharField(
        help_text=gettext_lazy('The stage in words, e.g. "Embedding face 8 of 20".'),
    )  # type: ignore[assignment]
    percent = serializers.IntegerField(min_value=0, max_value=100)
    counters = serializers.DictField(
        child=serializers.IntegerField(),
        help_text=gettext_lazy("frames_total, frames_read, faces_found, usable_faces, to_embed, embedded, embeddings: "
        "those reached so far."),
    )
    error_code = serializers.CharField(allow_blank=True)
    error_message = serializers.CharField(allow_blank=True, help_text=gettext_lazy("Why it failed and what to do."))
    embeddings = serializers.IntegerField(help_text=gettext_lazy("Face embeddings stored (ready enrolments only)."))
    backbone = serializers.CharField(allow_blank=True, help_text=gettext_lazy("The embedding space they were made in."))
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    attempts = serializers.IntegerField()
    status_url = serializers.CharField(help_text=gettext_lazy("Poll this URL for progress."))


class EnrolmentUploadSerializer(serializers.Serializer):
    video = serializers.FileField(help_text=gettext_lazy("MP4 or WebM, at most ROLLCALL_ENROLMENT_MAX_UPLOAD_MB and "
                                  "ROLLCALL_ENROLMENT_MAX_SECONDS long."))
    consent = serializers.BooleanField(
        help_text=gettext_lazy("The student consents to their face being processed and stored."),
    )
    consent_version = serializers.CharField(
        required=False,
        help_text=gettext_lazy("The version of the consent text shown (refused with consent_outdated when older)."),
    )
    student = serializers.IntegerField(
        required=False, help_text=gettext_lazy("Admins only: the student enrolled on their behalf.")
    )


def _errors(*codes: int) -> dict[int, OpenApiResponse]:
    descriptions = {
        400: "The upload is wrong: no consent, no file, not a video, empty, cut off, too long, not a student.",
        401: "Not signed in and no API token.",
        403: "Enrolling another person's face without being an admin.",
        404: "No such enrolment, or not one the caller may see.",
        409: "A video of this student is still being processed.",
        413: "The file is larger than ROLLCALL_ENROLMENT_MAX_UPLOAD_MB.",
    }
    return {code: OpenApiResponse(ErrorSerializer, description=descriptions[code]) for code in codes}


class CodeMessageErrorsMixin:
    """Every refusal as `{code, message}`, DRF's own (authentication, parsing) included. Errors that are
    not refusals (the database down) are left to the middleware that turns them into a 503."""

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, Http404):
            exc = EnrolmentApiError(
                code="not_found",
                message=_("No such enrolment, or not one you may see."),
                status_code=404,
            )
        response = cast(Response, super().handle_exception(exc))  # type: ignore[misc]
        if isinstance(exc, exceptions.APIException) and isinstance(response.data, dict):
            code = getattr(exc, "error_code", None) or exc.default_code
            detail = response.data.get("detail")
            if detail is None:  # field errors from a serializer
                detail = " ".join(f"{name}: {' '.join(map(str, errs))}" for name, errs in response.data.items())
            response.data = {"code": str(code), "message": str(detail)}
        return response


def _target_student(request: Request, user: User) -> User:
    raw = request.data.get("student") if hasattr(request.data, "get") else None
    if raw in (None, ""):
        return user
    try:
        student_id = int(str(raw))
    except ValueError:
        raise EnrolmentApiError(
            code="bad_student",
            message=_("student must be a user id (a whole number)."),
            status_code=400,
        ) from None
    student = User.objects.filter(pk=student_id).first()
    if student is None:
        if user.is_admin:
            raise EnrolmentApiError(
                code="unknown_student",
                message=_("There is no user with id %(id)s.") % {"id": student_id},
                status_code=400
            )
        # Whether an id exists is nobody else's business: the same answer as for a real one.
        raise EnrolmentApiError(
            code="forbidden",
            message=_("You can only enrol your own face. An administrator can enrol a student on their behalf."),
            status_code=403,
        )
    return student  # who may enrol whom is the service's decision (403 there)


def _consent(request: Request) -> bool:
    raw = request.data.get("consent", "") if hasattr(request.data, "get") else ""
    return str(raw).strip().lower() in {"1", "true", "on", "yes"}


def _consent_version(request: Request) -> str | None:
    raw = request.data.get("consent_version", "") if hasattr(request.data, "get") else ""
    return str(raw).strip() or None


class EnrolmentUploadApi(CodeMessageErrorsMixin, APIView):
    authentication_classes = AUTHENTICATION
    permission_classes = [IsAuthenticated]
    parser_classes = [MultiPartParser, FormParser]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # Before authentication: SessionAuthentication's CSRF check reads request.POST, which would
        # parse the whole multipart body (spooling the video to a temporary file) first.
        if request.method == "POST" and upload_too_large(request.META.get("CONTENT_LENGTH")):
            raise EnrolmentApiError(code="too_large", message=too_large_message(), status_code=413)
        super().initial(request, *args, **kwargs)

    @extend_schema(
        operation_id="enrolment_upload",
        summary="Upload a face video to enrol",
        description=(
            "Checks at once what can be checked (consent, who enrols whom, size, that the file is a video "
            "and not too long), stores it and queues it for a worker; answers 202 with the enrolment and a "
            "URL to poll. The worker samples frames, keeps one person's usable faces, embeds them and "
            "rebuilds the student's course indexes; a rejected video ends `failed` with the reason. The "
            "previous enrolment stays in use until the new one is ready."
        ),
        request={"multipart/form-data": EnrolmentUploadSerializer},
        responses={202: EnrolmentStatusSerializer, **_errors(400, 401, 403, 409, 413)},
        examples=[OpenApiExample(
            "Queued",
            response_only=True,
            status_codes=["202"],
            value={"id": 12, "student": 7, "status": "queued", "finished": False, "stage": "queued",
                   "label": "Queued: waiting for a worker", "percent": 0, "counters": {}, "error_code": "",
                   "error_message": "", "embeddings": 0, "backbone": "", "created_at": "2026-09-14T09:00:00Z",
                   "started_at": None, "finished_at": None, "attempts": 0, "status_url": "/api/enrolments/12/"},
        )],
    )
    def post(self, request: Request) -> Response:
        if not request.content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
            raise EnrolmentApiError(
                code="not_multipart",
                message=_("Send the video as multipart/form-data: a file field named 'video' and consent=true."),
                status_code=400,
            )
        user = cast(User, request.user)
        student = _target_student(request, user)
        if student.pk != user.pk and not permissions.can_enrol_face_of(user, student):
            # Refused before the upload is looked at: what is wrong with it is none of the caller's business.
            raise EnrolmentApiError(
                code="forbidden",
                message=_("You can only enrol your own face. An administrator can enrol a student on their behalf."),
                status_code=403,
            )
        video = request.FILES.get("video")
        if video is None:
            raise EnrolmentApiError(
                code="no_video",
                message=_("No video in the upload: send the file as a multipart field named 'video'."),
                status_code=400
            )
        try:
            enrolment = enrolment_create(
                student=student, video=video, consent=_consent(request), by=user,
                consent_version=_consent_version(request),
            )
        except EnrolmentError as exc:
            raise EnrolmentApiError(exc.code, exc.message, error_status(exc)) from exc
        body = EnrolmentStatusSerializer(asdict(selectors_enrolment.enrolment_status(enrolment=enrolment))).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["status_url"]})


class EnrolmentDetailApi(CodeMessageErrorsMixin, APIView):
    authentication_classes = AUTHENTICATION
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="enrolment_status",
        summary="Progress and outcome of an enrolment",
        description="Polled by the enrolment page: the stage, a percentage, counters (frames read, faces found, "
        "embedded) and, once finished, the outcome with the reason of a failure. Students see their own; "
        "admins everyone's; lecturers their courses' students'.",
        responses={200: EnrolmentStatusSerializer, **_errors(401, 404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        enrolment = get_object_or_404(permissions.enrolments_visible_to(request.user), pk=pk)
        data: dict[str, Any] = asdict(selectors_enrolment.enrolment_status(enrolment=enrolment))
        return Response(EnrolmentStatusSerializer(data).data, headers={"Cache-Control": "no-store"})
