"""The "Enrol my face" page, and the same page for an admin enrolling a student on their behalf.

The page records in the browser (or takes a file) and posts it to the enrolment API, then polls the
API for progress. Without JavaScript the form posts here instead and the same service runs, so every
refusal is explained on the page either way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from functools import wraps
from typing import Any, cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods

from attendance import permissions
from attendance.enrolment import consent as consent_text
from attendance.enrolment import selectors as selectors_enrolment
from attendance.enrolment.api import error_status, too_large_message, upload_too_large
from attendance.enrolment.errors import EnrolmentError, failure_message
from attendance.enrolment.services import enrolment_create, max_upload_bytes
from attendance.models import User

# The in-browser recording: a countdown, then this many seconds with prompts to look straight,
# then turn slightly left and right (the poses the pipeline wants, well inside its length limit).
RECORD_SECONDS = 8
COUNTDOWN_SECONDS = 3
POLL_MS = 1000


def _page_config(student: User, *, self_service: bool, active: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "uploadUrl": reverse("api-enrolment-create"),
        "studentId": None if self_service else student.pk,
        "maxBytes": max_upload_bytes(),
        "maxMb": settings.ROLLCALL_ENROLMENT_MAX_UPLOAD_MB,
        "maxSeconds": settings.ROLLCALL_ENROLMENT_MAX_SECONDS,
        "recordSeconds": min(RECORD_SECONDS, settings.ROLLCALL_ENROLMENT_MAX_SECONDS),
        "countdownSeconds": COUNTDOWN_SECONDS,
        "pollMs": POLL_MS,
        "consentVersion": consent_text.consent_version(),
        "active": None,
    }
    if active is not None:
        # json_script encodes with DjangoJSONEncoder: dates become ISO strings.
        config["active"] = asdict(active)
    return config


def _render(
    request: HttpRequest, student: User, *, self_service: bool, error: EnrolmentError | None = None, status: int = 200
) -> HttpResponse:
    face = selectors_enrolment.student_face(student=student)
    active = selectors_enrolment.enrolment_status(enrolment=face.active) if face.active else None
    latest_failed = face.latest if face.latest is not None and face.latest.status == "failed" else None
    context = {
        "student": student,
        "self_service": self_service,
        "face": face,
        "active": active,
        "latest_failed": latest_failed,
        "latest_failed_message": (
            failure_message(latest_failed.error_code, latest_failed.error_message,
                            latest_failed.progress.get("refusal") if isinstance(latest_failed.progress, dict) else None)
            if latest_failed else ""
        ),
        "error": error,
        "max_mb": settings.ROLLCALL_ENROLMENT_MAX_UPLOAD_MB,
        "max_seconds": settings.ROLLCALL_ENROLMENT_MAX_SECONDS,
        "keeps_videos": settings.ROLLCALL_KEEP_ENROLMENT_VIDEOS,
        "stores_snapshots": settings.ROLLCALL_STORE_SNAPSHOTS,
        "snapshot_days": settings.ROLLCALL_SNAPSHOT_RETENTION_DAYS,
        "consent_version": consent_text.consent_version(),
        "retention_days": settings.ROLLCALL_BIOMETRIC_RETENTION_DAYS,
        "notice_days": settings.ROLLCALL_BIOMETRIC_NOTICE_DAYS,
        # Consented before to another text: the page says the text changed and asks again.
        "consent_changed": face.ready is not None and consent_text.consent_outdated(face.ready.consent_version),
        "enrol_config": _page_config(student, self_service=self_service, active=active),
    }
    return render(request, "enrolment/enrol.html", context, status=status)


def _post(request: HttpRequest, student: User, *, self_service: bool) -> HttpResponse:
    """The form without JavaScript: the same checks and service as the API, answered as a page."""
    user = cast(User, request.user)
    video = request.FILES.get("video")
    if video is None:
        error = EnrolmentError(code="no_video", message=_("Choose a video file (or record one) before sending."))
        return _render(request, student, self_service=self_service, error=error, status=400)
    consent = request.POST.get("consent") in {"on", "true", "1", "yes"}
    try:
        enrolment_create(
            student=student, video=video, consent=consent, by=user,
            consent_version=request.POST.get("consent_version") or None,
        )
    except EnrolmentError as exc:
        return _render(request, student, self_service=self_service, error=exc, status=error_status(exc))
    messages.success(request, _("Video received. It is being processed: this page shows the progress."))
    return redirect(request.path)


def refuse_oversized_uploads(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Answer an upload over the size limit from its Content-Length, before the CSRF check reads
    request.POST, which would parse the whole body (spooling the video to a temporary file) first.
    The refusal changes nothing, so it needs no CSRF token; every other request is checked as usual."""
    protected = csrf_protect(view)

    @csrf_exempt
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method == "POST" and upload_too_large(request.META.get("CONTENT_LENGTH")):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            return HttpResponse(
                render_to_string("enrolment/too_large.html", {"message": too_large_message()}, request=request),
                status=413,
            )
        return protected(request, *args, **kwargs)

    return wrapper


@refuse_oversized_uploads
@login_required
@require_http_methods(["GET", "POST"])
@never_cache
def enrolment(request: HttpRequest) -> HttpResponse:
    user = cast(User, request.user)
    if not user.is_student:
        raise PermissionDenied(
            _("Only students enrol a face. An admin enrols a student from the student's report page.")
        )
    if request.method == "POST":
        return _post(request, user, self_service=True)
    return _render(request, user, self_service=True)


@refuse_oversized_uploads
@login_required
@require_http_methods(["GET", "POST"])
@never_cache
def student_enrol(request: HttpRequest, pk: int) -> HttpResponse:
    user = cast(User, request.user)
    student = get_object_or_404(User, pk=pk)
    if student.pk == user.pk:
        return redirect("enrolment")
    if not permissions.can_enrol_face_of(user, student):
        raise PermissionDenied(_("Only an admin can enrol a face on a student's behalf."))
    if request.method == "POST":
        return _post(request, student, self_service=False)
    return _render(request, student, self_service=False)
