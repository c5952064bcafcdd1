"""Large roster imports in a Celery worker, with progress the import page polls.

A file of more than BACKGROUND_FROM_BYTES (100 kB: about 1,500 rows of CSV, 2,500 of XLSX) is
read, previewed and applied by the `attendance.roster_import_job` task; smaller files stay in the
request, which answers in well under a second. The job's state lives beside the upload (campus.uploads,
`<token>.job.json`, replaced whole so a reader never sees half a file): the stage, the rows read,
planned and written, and when it ends the outcome or the reason it stopped. The preview's rows are
kept as `<token>.plan.json` for the preview page to list. The apply is still one transaction
(importing.import_apply): a failed apply changes nothing, and the page says so and offers the
preview again. The progress is written outside the transaction (a file), so the page sees it while
the transaction is open.

What a person reads is translated when the page or the progress poll asks, in the reader's language
(the worker has no reader): the stage labels, the counters, and a failure kept as its English msgid
and parameters (`error`, `error_params`).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils.formats import number_format
from django.utils.translation import gettext, gettext_lazy, gettext_noop

from attendance import jobs
from attendance.campus import uploads
from attendance.campus.importing import OUTCOMES, Note, Removal, RowPlan, import_apply, import_plan
from attendance.campus.roster import RosterFileError, RosterRow, file_error_text, read_roster
from attendance.models import User

logger = logging.getLogger(__name__)

BACKGROUND_FROM_BYTES = 100 * 1024
PREVIEW, APPLY = "preview", "apply"
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
STAGES = {
    "queued": gettext_lazy("Waiting for a background worker"),
    "reading": gettext_lazy("Reading the file"),
    "planning": gettext_lazy("Checking every row"),
    "writing": gettext_lazy("Writing to the database"),
    "done": gettext_lazy("Done"),
    "failed": gettext_lazy("Stopped"),
}
# Where each stage starts and ends on the progress bar, in percent, for a preview and for an import.
_SPANS = {
    PREVIEW: {"reading": (0, 50), "planning": (50, 100)},
    APPLY: {"reading": (0, 20), "planning": (20, 40), "writing": (40, 100)},
}
# Kept in the job file in English, translated when shown (job_status).
NOT_STARTED = gettext_noop("The import could not be started: the background worker cannot be reached. Try again "
                           "in a minute; if it keeps failing, tell your administrator.")
STALLED = gettext_noop("The background worker stopped before it finished, and nothing was changed. Try again; if "
                       "it happens again, tell your administrator.")
APPLY_FAILED = gettext_noop("The import stopped on an error and nothing was changed: every person and course is "
                            "as it was before. Try again; if it fails again, tell your administrator.")


def in_background(size: int) -> bool:
    return size > BACKGROUND_FROM_BYTES


def _path(token: str, suffix: str) -> Path:
    return uploads.folder() / f"{token}{suffix}"


def _write_json(path: Path, value: object) -> None:
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(value))
    os.replace(temporary, path)  # whole or not at all, for the page polling it


def job_load(token: str) -> dict[str, Any] | None:
    """The upload's job, or None for a small file's (no job). A job queued or running that has not
    reported for longer than a task may run (the worker was killed, or its message was lost) is
    failed here, so the page does not wait for ever: an import that died was rolled back whole, and
    a late delivery of it finds the job failed and does nothing."""
    path = _path(token, ".job.json")
    try:
        job = json.loads(path.read_text())
        age = time.time() - path.stat().st_mtime
    except (FileNotFoundError, ValueError):
        return None
    if not isinstance(job, dict):
        return None
    if job.get("state") in (QUEUED, RUNNING) and age > settings.CELERY_TASK_TIME_LIMIT + 60:
        _finish(token, job, FAILED, error=STALLED)
    return job


def _job_write(token: str, job: dict[str, Any]) -> None:
    _write_json(_path(token, ".job.json"), job)


def job_start(*, token: str, kind: str, by: User, remove_absent: bool = False) -> None:
    """Queue the preview or the import of an upload. An import already queued or running is not
    queued twice (a second click, a second tab); a queue that cannot be reached fails the job in words."""
    if kind == APPLY:
        try:
            os.close(os.open(_path(token, ".apply"), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
    _job_write(token, {"kind": kind, "state": QUEUED, "stage": "queued", "read": 0, "planned": 0, "written": 0,
                       "total": 0, "write_total": 0, "remove_absent": remove_absent})
    try:
        jobs.send(jobs.ROSTER_IMPORT_JOB, token, by.pk, kind, remove_absent)
    except Exception:
        logger.exception("roster import %s: the task could not be queued", kind)
        _finish(token, {**(job_load(token) or {}), "kind": kind}, FAILED, error=NOT_STARTED)


def _finish(token: str, job: dict[str, Any], state: str, **fields: Any) -> None:
    job.update(state=state, stage=state, **fields)
    _job_write(token, job)
    if state == FAILED:
        _path(token, ".apply").unlink(missing_ok=True)  # the import may be tried again


def job_status(job: dict[str, Any]) -> dict[str, Any]:
    """What the page shows: the stage in words, a percentage and the counters."""
    stage, kind = job.get("stage", "queued"), job.get("kind", PREVIEW)
    start, end = _SPANS.get(kind, {}).get(stage, (100, 100) if stage in (DONE, FAILED) else (0, 0))
    done, total = {"reading": ("read", "total"), "planning": ("planned", "total"),
                   "writing": ("written", "write_total")}.get(stage, ("", ""))
    fraction = min(job.get(done, 0), job.get(total, 0)) / job[total] if done and job.get(total) else 0
    def n(key: str) -> str:
        return number_format(job.get(key, 0), force_grouping=True)

    counters = [gettext("Rows read: %(read)s of %(total)s") % {"read": n("read"), "total": n("total")}
                if job.get("total") else gettext("Rows read: %(read)s") % {"read": n("read")}]
    if stage in ("planning", "writing", DONE):
        counters.append(gettext("checked: %(planned)s") % {"planned": n("planned")})
    if kind == APPLY and stage in ("writing", DONE):
        counters.append(gettext("written: %(written)s of %(total)s") % {"written": n("written"),
                                                                         "total": n("write_total")})
    error = job.get("error", "")
    if error:
        error = file_error_text(error, job.get("error_params"))
    return {"kind": kind, "state": job.get("state", QUEUED), "stage": stage,
            "label": str(STAGES.get(stage, stage)), "percent": round(start + (end - start) * fraction),
            "counts": " · ".join(counters), "error": error,
            **{k: job.get(k, 0) for k in ("read", "planned", "written", "total", "write_total")}}


@dataclass(frozen=True)
class StoredPreview:
    """A finished background preview, as the preview page lists it (the fields of an ImportPlan it uses)."""

    rows: list[RowPlan]
    removals: list[Removal]
    changes_anything: bool

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(OUTCOMES, 0)
        for row in self.rows:
            counts[row.outcome] += 1
        return counts


def preview_load(token: str) -> StoredPreview | None:
    try:
        saved = json.loads(_path(token, ".plan.json").read_text())
    except (FileNotFoundError, ValueError):
        return None
    return StoredPreview(
        rows=[RowPlan(RosterRow(**r["row"]), r["outcome"], tuple(Note.from_json(n) for n in r["notes"]))
              if "notes" in r else RowPlan(RosterRow(**r["row"]), r["outcome"],
                                           (Note.from_json(r["detail"]),) if r.get("detail") else ())
              for r in saved["rows"]],
        removals=[Removal(**r) for r in saved["removals"]], changes_anything=bool(saved["changes_anything"]))


def job_run(*, token: str, user_id: int, kind: str, remove_absent: bool = False) -> str:
    """The worker's side: read, plan and (for an import) write, telling the job file how far it is."""
    user = User.objects.filter(pk=user_id).first()
    stored = uploads.upload_load(token=token, by=user) if user is not None else None
    job = job_load(token)
    if stored is None or job is None or job.get("kind") != kind:
        return "gone"  # discarded, or replaced by a later job of the same upload
    if job.get("state") in (DONE, FAILED):
        return str(job["state"])  # delivered twice

    def report(stage: str, **counts: int) -> None:
        job.update(state=RUNNING, stage=stage, **counts)
        _job_write(token, job)

    report("reading", read=0)
    try:
        rows = read_roster(stored.data, stored.filename, progress=lambda n, total: report("reading", read=n,
                                                                                          total=total))
    except RosterFileError as exc:
        _finish(token, job, FAILED, error=exc.message, error_params=exc.params)
        return FAILED
    report("planning", read=len(rows), total=len(rows), planned=0)
    on_planned = lambda n, _total: report("planning", planned=n)  # noqa: E731
    if kind == PREVIEW:
        plan = import_plan(rows, sync=stored.sync, progress=on_planned)
        _write_json(_path(token, ".plan.json"), {
            "rows": [{"row": asdict(r.row), "outcome": r.outcome, "notes": [n.as_json() for n in r.notes]}
                     for r in plan.rows],
            "removals": [asdict(r) for r in plan.removals], "changes_anything": plan.changes_anything})
        _finish(token, job, DONE, counts=plan.counts())
        return DONE
    try:
        plan = import_apply(rows, sync=stored.sync, remove_absent=remove_absent, planned=on_planned,
                            written=lambda n, total: report("writing", written=n, write_total=total))
    except Exception:
        logger.exception("roster import of upload %s failed; the transaction was rolled back", token[:8])
        _finish(token, job, FAILED, error=APPLY_FAILED)
        return FAILED
    removed = len(plan.removals) if stored.sync and remove_absent else 0
    _finish(token, job, DONE, counts=plan.counts(), removed=removed)
    return DONE
