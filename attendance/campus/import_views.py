"""Roster import: upload, preview every row's outcome, then import; a template to start from.

The upload is kept on the server under a token (campus.uploads) so the preview and the import read
the same bytes; a file that cannot be read is answered with the reason and the form again, and
nothing is written until the admin confirms the preview.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from attendance.campus import roster, uploads
from attendance.campus.forms import RosterUploadForm
from attendance.campus.importing import OUTCOMES, import_apply, import_plan
from attendance.campus.views import require_admin

PREVIEW_PAGE = 100


@login_required
@require_http_methods(["GET", "POST"])
def roster_import(request: HttpRequest) -> HttpResponse:
    user = require_admin(request)
    form = RosterUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        data = upload.read()
        try:
            roster.read_roster(data, upload.name)
        except roster.RosterFileError as exc:
            form.add_error("file", str(exc))
        else:
            token = uploads.upload_store(data=data, filename=upload.name, sync=form.cleaned_data["sync"], by=user)
            return redirect("campus-import-preview", token)
    return render(request, "campus/import.html", {"form": form})


@login_required
@require_http_methods(["GET", "POST"])
def roster_import_preview(request: HttpRequest, token: str) -> HttpResponse:
    user = require_admin(request)
    stored = uploads.upload_load(token=token, by=user)
    if stored is None:
        raise Http404("This upload is not there any more (uploads are kept for a day): upload the file again.")
    rows = roster.read_roster(stored.data, stored.filename)  # read once at upload: it cannot fail now
    if request.method == "POST":
        remove_absent = stored.sync and request.POST.get("remove_absent") == "on"
        plan = import_apply(rows, sync=stored.sync, remove_absent=remove_absent)
        uploads.upload_discard(token=token)
        counts = plan.counts()
        removed = f", {len(plan.removals)} removed from their course" if remove_absent and plan.removals else ""
        messages.success(request, f"Imported {stored.filename}: {counts['created']} created, {counts['updated']} "
                                  f"updated, {counts['unchanged']} unchanged, {counts['refused']} refused{removed}.")
        return redirect("campus-memberships")
    plan = import_plan(rows, sync=stored.sync)
    shown = request.GET.get("show", "")
    listed = [r for r in plan.rows if r.outcome == shown] if shown in OUTCOMES else plan.rows
    page = Paginator(listed, PREVIEW_PAGE).get_page(request.GET.get("page"))
    context = {"stored": stored, "plan": plan, "counts": plan.counts(), "page": page, "show": shown,
               "outcomes": OUTCOMES}
    return render(request, "campus/import_preview.html", context)


@login_required
@require_GET
def roster_template(request: HttpRequest, fmt: str) -> HttpResponse:
    require_admin(request)
    if fmt == "csv":
        response = HttpResponse(roster.template_csv(), content_type="text/csv; charset=utf-8")
    elif fmt == "xlsx":
        response = HttpResponse(
            roster.template_xlsx(), content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    else:
        raise Http404("The template comes as csv or xlsx.")
    response["Content-Disposition"] = f'attachment; filename="rollcall-roster-template.{fmt}"'
    return response
