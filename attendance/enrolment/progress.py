"""Progress of an enrolment job, as FaceEnrolment.progress holds it and the page shows it."""

from __future__ import annotations

import time
from typing import Any

from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from attendance.models import FaceEnrolment

STAGE_LABELS = {
    "queued": _("Queued: waiting for a worker"),
    "reading": _("Reading frames"),
    "detecting": _("Finding faces"),
    "embedding": _("Embedding faces"),
    "indexing": _("Updating the course index"),
    "done": _("Done"),
    "failed": _("Failed"),
    "retrying": _("Waiting to try again after a server error"),
    "waiting_models": _(
        "Face recognition is not available on this server right now; your administrator has been told. "
        "Your video is kept and will be processed when it is back."
    ),
}


# Where each stage starts on the page's progress bar, in percent.
_STAGE_START = {"queued": 0, "retrying": 0, "waiting_models": 0,
                "reading": 5, "detecting": 10, "embedding": 50, "indexing": 92, "done": 100}


_STAGE_END = {"reading": 10, "detecting": 50, "embedding": 92, "indexing": 99}


def progress_payload(stage: str, *, done: int = 0, total: int = 0, **counters: int) -> dict[str, Any]:
    """What FaceEnrolment.progress holds: the stage, a sentence for the page, a percentage and counters."""
    label = progress_label(stage, done=done, total=total)
    start = _STAGE_START.get(stage, 100)
    end = _STAGE_END.get(stage, start)
    percent = start + (end - start) * (min(done, total) / total if total else 0)
    return {"stage": stage, "label": label, "percent": round(percent), "done": done, "total": total, **counters}


def progress_label(stage: str, *, done: int = 0, total: int = 0) -> str:
    """The stage in words, in the active language (the stored label is the worker's English)."""
    if total:
        if stage == "detecting":
            return gettext("Finding faces: frame %(done)s of %(total)s") % {"done": done, "total": total}
        if stage == "embedding":
            return gettext("Embedding face %(done)s of %(total)s") % {"done": done, "total": total}
        if stage == "indexing":
            return ngettext("Updating the index of %(n)s course", "Updating the index of %(n)s courses",
                            total) % {"n": total}
    return str(STAGE_LABELS[stage])


class ClaimLost(Exception):
    """The row is no longer ours: withdrawn, or reclaimed after we were presumed dead."""


class Progress:
    """Writes progress to the claimed row, at most every 0.3 s (and at every stage change); the
    write is conditional on our claim, so it also notices when the job is no longer ours."""

    def __init__(self, enrolment: FaceEnrolment) -> None:
        self.enrolment_id = enrolment.pk
        self.attempt = enrolment.attempts
        self.stage = ""
        self.last_write = 0.0
        self.counters: dict[str, int] = {}

    def __call__(self, stage: str, *, done: int = 0, total: int = 0, **counters: int) -> None:
        self.counters.update(counters)
        now = time.monotonic()
        if stage == self.stage and now - self.last_write < 0.3 and done < total:
            return
        self.stage, self.last_write = stage, now
        payload = progress_payload(stage, done=done, total=total, **self.counters)
        updated = FaceEnrolment.objects.filter(
            pk=self.enrolment_id, status=FaceEnrolment.Status.PROCESSING, attempts=self.attempt
        ).update(progress=payload)
        if not updated:
            raise ClaimLost


# Marks, in FaceEnrolment.progress, a queued job whose task message never reached the broker.
UNSENT = "unsent"
