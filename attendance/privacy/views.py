"""Privacy pages: a student's data export and the withdrawal of consent (by the student or an admin)."""

from __future__ import annotations

import json
from typing import cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from attendance import permissions
from attendance.courses import selectors as courses_selectors
from attendance.models import User
from attendance.privacy import selectors as privacy_selectors
from attendance.privacy import services as privacy
from attendance.privacy.forms import AdminWithdrawConsentForm, WithdrawConsentForm


def _user(request: HttpRequest) -> User:
    return cast(User, request.user)


def _require_student(request: HttpRequest) -> User:
    user = _user(request)
    if not user.is_student:
        raise PermissionDenied(_("This page is for students: it shows the signed-in student's own attendance."))
    return user


def _export_response(student: User, *, by: User) -> HttpResponse:
    data = privacy.student_data_export(student=student, by=by)
    body = json.dumps(data, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False)
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    stamp = timezone.localdate().isoformat()
    response["Content-Disposition"] = f'attachment; filename="rollcall-{student.username}-{stamp}.json"'
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_GET
def my_data_export(request: HttpRequest) -> HttpResponse:
    student = _require_student(request)
    return _export_response(student, by=student)


@login_required
@require_GET
def student_data_export(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    student = get_object_or_404(User, pk=pk)
    if not permissions.can_export_data_of(user, student):
        raise PermissionDenied(_("Only an admin can export another person's data."))
    return _export_response(student, by=user)


def _withdrawn_message(result: privacy.WithdrawalResult, *, student: User | None = None) -> str:
    """What was deleted; `student` when an admin withdrew on their behalf (None: the student's own)."""
    counts = {"embeddings": result.embeddings_deleted, "videos": result.videos_deleted,
              "snapshots": result.snapshots_deleted}
    if student is None:
        deleted = _("Your face data has been deleted: %(embeddings)s face embedding(s), %(videos)s video(s) and "
                    "%(snapshots)s check-in snapshot(s).") % counts
    else:
        deleted = _("%(name)s's face data has been deleted: %(embeddings)s face embedding(s), %(videos)s video(s) "
                    "and %(snapshots)s check-in snapshot(s).") % {**counts, "name": student.display_name}
    return deleted + " " + _("Attendance history is kept; from now on attendance is marked by hand.")


@login_required
@require_http_methods(["GET", "POST"])
def withdraw_consent(request: HttpRequest) -> HttpResponse:
    student = _require_student(request)
    form = WithdrawConsentForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        result = privacy.consent_withdraw(student=student, by=student)
        messages.success(request, _withdrawn_message(result))
        return redirect("my-attendance")
    context = {
        "form": form, "student": student, "self_service": True,
        "has_face_data": courses_selectors.student_has_face_data(student=student),
        "keeps_videos": settings.ROLLCALL_KEEP_ENROLMENT_VIDEOS,
    }
    return render(request, "privacy/withdraw_consent.html", context, status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def student_withdraw_consent(request: HttpRequest, pk: int) -> HttpResponse:
    user = _user(request)
    student = get_object_or_404(User, pk=pk)
    if not permissions.can_withdraw_consent_for(user, student):
        raise PermissionDenied(_("Only an admin can withdraw consent on a student's behalf."))
    if student.pk == user.pk:
        return redirect("withdraw-consent")
    form = AdminWithdrawConsentForm(request.POST if request.method == "POST" else None, student=student)
    if request.method == "POST" and form.is_valid():
        result = privacy.consent_withdraw(student=student, by=user)
        messages.success(request, _withdrawn_message(result, student=student))
        return redirect("student-report", pk=student.pk)
    context = {
        "form": form, "student": student, "self_service": False,
        "has_face_data": courses_selectors.student_has_face_data(student=student),
    }
    return render(request, "privacy/withdraw_consent.html", context, status=400 if form.errors else 200)


@login_required
@require_GET
def privacy_notice(request: HttpRequest) -> HttpResponse:
    """What Rollcall stores about a person, in which form, for how long, and how to exercise their rights."""
    context = {
        "self_service": _user(request).is_student,
        "keeps_videos": settings.ROLLCALL_KEEP_ENROLMENT_VIDEOS,
        "retention_days": settings.ROLLCALL_BIOMETRIC_RETENTION_DAYS,
        "notice_days": settings.ROLLCALL_BIOMETRIC_NOTICE_DAYS,
        "snapshot_days": settings.ROLLCALL_SNAPSHOT_RETENTION_DAYS,
        "stores_snapshots": settings.ROLLCALL_STORE_SNAPSHOTS,
    }
    return render(request, "privacy/notice.html", context)


@login_required
@require_GET
def biometric_overview(request: HttpRequest) -> HttpResponse:
    """For admins: the key in use, face data due for deletion, and the access trail."""
    if not _user(request).is_admin:
        raise PermissionDenied(_("Only an admin can see the biometric data overview."))
    return render(request, "privacy/biometric_overview.html", privacy_selectors.biometric_overview())
