"""Roster import: upload, preview every row's outcome, then import; a template to start from.

The upload is kept on the server under a token (campus.uploads) so the preview and the import read
the same bytes; a file that cannot be read is answered with the reason and the form again, and
nothing is written until the admin confirms the preview. A file over 100 kB is previewed and imported
by a Celery worker (campus.import_jobs): the preview address then shows a progress bar until the
preview, or the import's outcome, is ready.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from attendance.campus import import_jobs, roster, uploads
from attendance.campus.forms import RosterUploadForm
from attendance.campus.importing import OUTCOME_LABELS, OUTCOMES, import_apply, import_plan
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
        if import_jobs.in_background(len(data)):  # read and checked by the worker, with progress
            token = uploads.upload_store(data=data, filename=upload.name, sync=form.cleaned_data["sync"], by=user)
            import_jobs.job_start(token=token, kind=import_jobs.PREVIEW, by=user)
            return redirect("campus-import-preview", token)
        try:
            roster.read_roster(data, upload.name)
        except roster.RosterFileError as exc:
            form.add_error("file", str(exc))
        else:
            token = uploads.upload_store(data=data, filename=upload.name, sync=form.cleaned_data["sync"], by=user)
            return redirect("campus-import-preview", token)
    return render(request, "campus/import.html", {"form": form})


def _stored_or_404(request: HttpRequest, token: str) -> tuple[object, uploads.StoredUpload]:
    user = require_admin(request)
    stored = uploads.upload_load(token=token, by=user)
    if stored is None:
        raise Http404(_("This upload is not there any more (uploads are kept for a day): upload the file again."))
    return user, stored


def _imported(request: HttpRequest, stored: uploads.StoredUpload, counts: dict[str, int], removed: int) -> HttpResponse:
    uploads.upload_discard(token=stored.token)
    params = {"file": stored.filename, **counts, "removed": removed}
    if removed:
        text = _("Imported %(file)s: %(created)s created, %(updated)s updated, %(unchanged)s unchanged, "
                 "%(refused)s refused, %(removed)s removed from their course.") % params
    else:
        text = _("Imported %(file)s: %(created)s created, %(updated)s updated, %(unchanged)s unchanged, "
                 "%(refused)s refused.") % params
    messages.success(request, text)
    return redirect("campus-memberships")


def _preview_page(request: HttpRequest, stored: uploads.StoredUpload, plan: object, error: str = "") -> HttpResponse:
    shown = request.GET.get("show", "")
    rows = plan.rows  # type: ignore[attr-defined]
    listed = [r for r in rows if r.outcome == shown] if shown in OUTCOMES else rows
    page = Paginator(listed, PREVIEW_PAGE).get_page(request.GET.get("page"))
    context = {"stored": stored, "plan": plan, "counts": plan.counts(), "page": page, "show": shown,  # type: ignore[attr-defined]
               "show_label": OUTCOME_LABELS.get(shown, shown), "outcomes": OUTCOMES,
               "outcome_labels": [(o, OUTCOME_LABELS[o]) for o in OUTCOMES], "error": error}
    return render(request, "campus/import_preview.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def roster_import_preview(request: HttpRequest, token: str) -> HttpResponse:
    _user, stored = _stored_or_404(request, token)
    job = import_jobs.job_load(token)
    if job is not None:
        return _background(request, stored, job)
    rows = roster.read_roster(stored.data, stored.filename)  # read once at upload: it cannot fail now
    if request.method == "POST":
        remove_absent = stored.sync and request.POST.get("remove_absent") == "on"
        plan = import_apply(rows, sync=stored.sync, remove_absent=remove_absent)
        return _imported(request, stored, plan.counts(), len(plan.removals) if remove_absent else 0)
    return _preview_page(request, stored, import_plan(rows, sync=stored.sync))


def _background(request: HttpRequest, stored: uploads.StoredUpload, job: dict) -> HttpResponse:
    """A large file: its job's progress, its preview once ready, the import's outcome once done."""
    previewed = (job["kind"] == import_jobs.PREVIEW and job["state"] == import_jobs.DONE) or (
        job["kind"] == import_jobs.APPLY and job["state"] == import_jobs.FAILED)
    if request.method == "POST":
        if previewed:
            import_jobs.job_start(token=stored.token, kind=import_jobs.APPLY, by=request.user,  # type: ignore[arg-type]
                                  remove_absent=stored.sync and request.POST.get("remove_absent") == "on")
        return redirect("campus-import-preview", stored.token)
    if job["kind"] == import_jobs.APPLY and job["state"] == import_jobs.DONE:
        return _imported(request, stored, job["counts"], job.get("removed", 0))
    plan = import_jobs.preview_load(stored.token) if previewed else None
    if plan is not None:
        return _preview_page(request, stored, plan, error=import_jobs.job_status(job)["error"])
    status = import_jobs.job_status(job)
    return render(request, "campus/import_progress.html", {"stored": stored, "status": status})


@login_required
@require_GET
def roster_import_progress(request: HttpRequest, token: str) -> JsonResponse:
    """What the progress page polls: the stage, a percentage, the counters; `state` done or failed ends it."""
    _user, stored = _stored_or_404(request, token)
    job = import_jobs.job_load(stored.token)
    if job is None:
        raise Http404(_("This upload has no background job."))
    return JsonResponse(import_jobs.job_status(job))


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
        raise Http404(_("The template comes as csv or xlsx."))
    response["Content-Disposition"] = f'attachment; filename="rollcall-roster-template.{fmt}"'
    return response
