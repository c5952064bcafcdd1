"""Progress of an enrolment job, as FaceEnrolment.progress holds it and the page shows it."""

from __future__ import annotations

import time
from typing import Any

from attendance.models import FaceEnrolment

STAGE_LABELS = {
    "queued": "Queued: waiting for a worker",
    "reading": "Reading frames",
    "detecting": "Finding faces",
    "embedding": "Embedding faces",
    "indexing": "Updating the course index",
    "done": "Done",
    "failed": "Failed",
    "retrying": "Waiting to try again after a server error",
    "waiting_models": (
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
    label = STAGE_LABELS[stage]
    if total:
        if stage == "detecting":
            label = f"Finding faces: frame {done} of {total}"
        elif stage == "embedding":
            label = f"Embedding face {done} of {total}"
        elif stage == "indexing":
            label = f"Updating the index of {total} course{'s' if total != 1 else ''}"
    start = _STAGE_START.get(stage, 100)
    end = _STAGE_END.get(stage, start)
    percent = start + (end - start) * (min(done, total) / total if total else 0)
    return {"stage": stage, "label": label, "percent": round(percent), "done": done, "total": total, **counters}


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
