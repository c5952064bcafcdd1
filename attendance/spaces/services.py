"""Recording the site's embedding space, and switching it (manage.py reembed)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from attendance import ml
from attendance.courses.indexes import courses_index_rebuild
from attendance.models import Course, EmbeddingSpace, FaceEmbedding, FaceEnrolment
from attendance.platform import biometric
from attendance.spaces.selectors import active_space
from recognition import BACKBONE_DEFAULTS, Embedder, RecognitionError
from recognition.enrol import EnrolmentRejection, EnrolmentRules, embed_views, one_person, video_views

logger = logging.getLogger(__name__)


class SpaceError(Exception):
    """The space cannot be recorded or switched as asked; the message says why."""


def space_record(*, embedder: Embedder) -> EmbeddingSpace:
    """The active space, recorded now from ``embedder`` when there is none yet (the first
    enrolment). Raises SpaceError when ``embedder`` is not of the active space: its vectors must
    not be stored (another process switched meanwhile; the job is retried in the new space)."""
    space = active_space()
    if space is None:
        spec = ml.served_spec()
        try:
            with transaction.atomic():  # a savepoint: a concurrent first enrolment may win the race
                space = EmbeddingSpace.objects.create(
                    name=embedder.name, backbone=spec.backbone, clip_model=spec.clip_model,
                    clip_pretrained=spec.clip_pretrained, clip_checkpoint=spec.clip_checkpoint,
                    dim=embedder.dim, active=True, activated_at=timezone.now(),
                )
            logger.info("embedding space recorded: %s", space.name)
        except IntegrityError:
            space = active_space()
        ml.forget_space()
    if space is None or space.name != embedder.name:
        raise SpaceError(_("The site serves %(space)s, not %(name)s: not stored.") % {"space": space,
                                                                                    "name": embedder.name})
    return space


@dataclass
class ReembedResult:
    space: str
    previous: str
    reembedded: int  # students re-embedded from their kept video
    reenrol: int  # students asked to enrol again (no kept video, or it no longer gives a face)


def space_reembed(*, progress: Callable[[int, int], None] | None = None) -> ReembedResult:
    """Switch the site to the space the settings ask for.

    Every ready enrolment whose video is kept is embedded again into the new space, while the site
    goes on serving the old one (the new vectors are stored but searched by nothing). Then, in one
    transaction: the new space becomes the active one, the old space's vectors are deleted and every
    course index is rebuilt in the new space. A check-in sees the old space or the new, never both.
    Students without a kept video keep their enrolment row but no vectors in the new space: their
    home page asks them to enrol again.
    """
    target = ml.configured_embedder()
    spec = ml.configured_spec()
    current = active_space()
    if current is not None and current.name == target.name:
        raise SpaceError(_("The site already serves %(name)s: nothing to switch.") % {"name": target.name})
    load = getattr(target, "load", None)
    if callable(load):
        load()  # ModelUnavailableError now, before anything changed
    # Leftovers of an interrupted run are redone.
    FaceEmbedding.objects.filter(backbone=target.name).delete()
    enrolments = list(FaceEnrolment.objects.filter(status=FaceEnrolment.Status.READY).order_by("pk"))
    done: list[int] = []
    for n, enrolment in enumerate(enrolments, start=1):
        if _reembed_one(enrolment, target):
            done.append(enrolment.pk)
        if progress:
            progress(n, len(enrolments))
    with transaction.atomic():
        EmbeddingSpace.objects.filter(active=True).update(active=False)
        space, _created = EmbeddingSpace.objects.update_or_create(
            name=target.name,
            defaults={"backbone": spec.backbone, "clip_model": spec.clip_model, "clip_pretrained": spec.clip_pretrained,
                      "clip_checkpoint": spec.clip_checkpoint, "dim": target.dim, "active": True,
                      "activated_at": timezone.now()},
        )
        FaceEmbedding.objects.exclude(backbone=target.name).delete()
        # And the new space's rows of any enrolment no longer ready (withdrawn after it was re-embedded).
        FaceEmbedding.objects.filter(backbone=target.name).exclude(enrolment__status=FaceEnrolment.Status.READY).delete()
        FaceEnrolment.objects.filter(pk__in=done).update(backbone=target.name)
        ml.forget_space()  # this transaction already sees the new space: the indexes are built in it
        courses_index_rebuild(course_ids=list(Course.objects.values_list("pk", flat=True)))
    ml.forget_space()
    logger.warning("embedding space switched from %s to %s: %d re-embedded, %d to enrol again",
                   current, target.name, len(done), len(enrolments) - len(done))
    return ReembedResult(space=space.name, previous=str(current or ""), reembedded=len(done),
                         reenrol=len(enrolments) - len(done))


def _reembed_one(enrolment: FaceEnrolment, embedder: Embedder) -> bool:
    name = enrolment.video.name
    if not name or not default_storage.exists(name):
        return False
    rules = EnrolmentRules()
    try:
        views, _times = video_views(Path(enrolment.video.path), detector=ml.detector(), crop=embedder.crop, rules=rules)
        vectors = embed_views(views, embedder, rules=rules)
        threshold = BACKBONE_DEFAULTS[embedder.backbone].threshold
        views, vectors = one_person(views, vectors, threshold=threshold, rules=rules)
    except (EnrolmentRejection, RecognitionError) as exc:
        logger.warning("enrolment %s not re-embedded (%s): the student is asked to enrol again", enrolment.pk, exc)
        return False
    if not len(vectors):
        return False
    with transaction.atomic():
        # Decoding and embedding ran outside any transaction: a withdrawal (or a new video) may have
        # come meanwhile. The row lock orders this with the withdrawal, which locks it too.
        if not FaceEnrolment.objects.select_for_update().filter(pk=enrolment.pk,
                                                                status=FaceEnrolment.Status.READY).exists():
            logger.info("enrolment %s withdrawn or replaced while it was re-embedded: nothing stored", enrolment.pk)
            return False
        ring = biometric.sealing_keyring()  # sealed in the transaction that stores them: see there
        rows = []
        for view, vector in zip(views, vectors, strict=True):
            key_id, sealed = biometric.vector_encrypt(vector, student_id=enrolment.student_id,
                                                      backbone=embedder.name, ring=ring)
            rows.append(FaceEmbedding(enrolment=enrolment, student_id=enrolment.student_id, backbone=embedder.name,
                                      dim=int(vectors.shape[1]), vector=sealed, key_id=key_id,
                                      frame_time=view.time_s, quality=view.quality))
        FaceEmbedding.objects.bulk_create(rows)
    return True
