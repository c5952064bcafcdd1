"""Reads for the enrolment page and API: an attempt's progress, and what a student has enrolled."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.urls import reverse
from django.utils.translation import gettext

from attendance.enrolment.errors import failure_message
from attendance.enrolment.progress import STAGE_LABELS, progress_label
from attendance.models import FaceEmbedding, FaceEnrolment, User

# Keys of FaceEnrolment.progress that are not counters.
_PROGRESS_FIELDS = {"stage", "label", "percent", "done", "total", "previous"}
FINISHED_STATUSES = frozenset({
    FaceEnrolment.Status.READY, FaceEnrolment.Status.FAILED,
    FaceEnrolment.Status.SUPERSEDED, FaceEnrolment.Status.WITHDRAWN,
})


@dataclass(frozen=True)
class EnrolmentStatus:
    """One enrolment attempt as the page shows it while it runs and after."""

    id: int
    student: int
    status: str
    finished: bool
    stage: str
    label: str
    percent: int
    counters: dict[str, int]
    error_code: str
    error_message: str
    embeddings: int
    backbone: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int
    status_url: str = field(default="")


def enrolment_status(*, enrolment: FaceEnrolment) -> EnrolmentStatus:
    progress: dict[str, Any] = enrolment.progress if isinstance(enrolment.progress, dict) else {}
    counters = {
        key: int(value) for key, value in progress.items()
        if key not in _PROGRESS_FIELDS and isinstance(value, int) and not isinstance(value, bool)
    }
    embeddings = 0
    if enrolment.status == FaceEnrolment.Status.READY:
        embeddings = FaceEmbedding.objects.filter(enrolment=enrolment).count()
    status = str(enrolment.status)
    stage = str(progress.get("stage") or "")
    if status == FaceEnrolment.Status.FAILED:
        label = progress_label("failed")
    elif stage in STAGE_LABELS:
        done, total = progress.get("done"), progress.get("total")
        label = progress_label(stage, done=done if isinstance(done, int) else 0,
                               total=total if isinstance(total, int) else 0)
    else:
        # A label written by another feature (privacy's withdrawal, the retention sweep): an English msgid.
        label = gettext(str(progress["label"])) if progress.get("label") else str(enrolment.get_status_display())
    return EnrolmentStatus(
        id=enrolment.pk,
        student=enrolment.student_id,
        status=status,
        finished=status in FINISHED_STATUSES,
        stage=str(progress.get("stage") or status),
        label=label,
        percent=100 if status in FINISHED_STATUSES else int(progress.get("percent") or 0),
        counters=counters,
        error_code=enrolment.error_code,
        error_message=failure_message(enrolment.error_code, enrolment.error_message, progress.get("refusal"))
        if enrolment.error_message else "",
        embeddings=embeddings,
        backbone=enrolment.backbone,
        created_at=enrolment.created_at,
        started_at=enrolment.started_at,
        finished_at=enrolment.finished_at,
        attempts=enrolment.attempts,
        status_url=reverse("api-enrolment-detail", args=[enrolment.pk]),
    )


@dataclass(frozen=True)
class StudentFace:
    """What the enrolment page says about a student: the face data in use, and the latest attempt."""

    ready: FaceEnrolment | None
    ready_embeddings: int
    active: FaceEnrolment | None
    latest: FaceEnrolment | None


def student_face(*, student: User) -> StudentFace:
    enrolments = FaceEnrolment.objects.filter(student=student).order_by("-created_at")
    ready = enrolments.filter(status=FaceEnrolment.Status.READY).first()
    return StudentFace(
        ready=ready,
        ready_embeddings=FaceEmbedding.objects.filter(enrolment=ready).count() if ready else 0,
        active=enrolments.filter(status__in=FaceEnrolment.ACTIVE_STATUSES).first(),
        latest=enrolments.first(),
    )
