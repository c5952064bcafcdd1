"""The student's request page, the excuses list (a lecturer's inbox, a student's own), decisions and documents."""

from __future__ import annotations

from typing import cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from attendance.excuses import selectors
from attendance.excuses.forms import ExcuseDecisionForm, ExcuseRequestForm
from attendance.excuses.services import ExcuseError, excuse_decide, excuse_request
from attendance.models import AttendanceRecord, User


@login_required
@require_http_methods(["GET", "POST"])
def excuse_request_view(request: HttpRequest, pk: int) -> HttpResponse:
    user = cast(User, request.user)
    # Someone else's record is "not found", never "forbidden": its existence is not told.
    record = get_object_or_404(AttendanceRecord.objects.select_related("session__course"), pk=pk, student=user)
    form = ExcuseRequestForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            excuse_request(
                record=record, by=user, reason=form.cleaned_data["reason"], document=form.cleaned_data.get("document")
            )
        except ExcuseError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("Your request is with the lecturer; its state is shown on My attendance."))
            return redirect("my-attendance")
    context = {"record": record, "form": form, "excuses": record.excuses.select_related("decided_by")}
    return render(request, "excuses/request.html", context, status=400 if form.errors else 200)


@login_required
@require_GET
def excuse_inbox(request: HttpRequest) -> HttpResponse:
    user = cast(User, request.user)
    pending, decided = selectors.excuses_inbox(user=user)
    pending_rows, decided_rows = list(pending), list(decided)
    for excuse in (*pending_rows, *decided_rows):
        # The status the record had when asked, by its label in the reader's language.
        excuse.record_status_display = AttendanceRecord.Status(excuse.record_status).label  # type: ignore[attr-defined]
    return render(request, "excuses/inbox.html", {"pending": pending_rows, "decided": decided_rows})


@login_required
@require_POST
def excuse_decide_view(request: HttpRequest, pk: int) -> HttpResponse:
    user = cast(User, request.user)
    excuse = get_object_or_404(selectors.excuses_visible_to(user).exclude(student=user), pk=pk)
    form = ExcuseDecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose to approve or decline, with a note of at most 500 characters."))
        return redirect("excuse-inbox")
    approve = form.cleaned_data["decision"] == "approve"
    try:
        excuse_decide(excuse=excuse, by=user, approve=approve, note=form.cleaned_data["note"])
    except ExcuseError as exc:
        messages.error(request, str(exc))
    else:
        name = excuse.student.display_name
        if approve:
            messages.success(request, _("Excuse of %(name)s approved.") % {"name": name})
        else:
            messages.success(request, _("Excuse of %(name)s declined.") % {"name": name})
    return redirect("excuse-inbox")


@login_required
@require_GET
def excuse_document(request: HttpRequest, pk: int) -> FileResponse:
    excuse = get_object_or_404(selectors.excuses_visible_to(cast(User, request.user)), pk=pk)
    if not excuse.document:
        raise Http404(_("This excuse has no document."))
    extension = {"application/pdf": "pdf", "image/png": "png", "image/jpeg": "jpg"}.get(excuse.document_type, "bin")
    response = FileResponse(
        excuse.document.open("rb"),
        as_attachment=True,
        filename=f"excuse-{excuse.pk}.{extension}",
        content_type=excuse.document_type or "application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response
