"""The embedding space a site's faces are stored in (part of attendance.models, imported at its end)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class EmbeddingSpace(models.Model):
    """An embedding space the site's faces are stored in, with what it takes to embed into it again.

    Recorded at the first enrolment; the active one is what every process embeds and searches in,
    whatever ROLLCALL_BACKBONE says later (a different setting is reported, not obeyed): vectors of
    two spaces are never comparable. `manage.py reembed` makes another one active, atomically.
    """

    name = models.CharField(max_length=100, unique=True,
                            help_text=_("As stored with embeddings: dlib:resnet_v1:mirror."))
    backbone = models.CharField(max_length=16)
    clip_model = models.CharField(max_length=100, blank=True)
    clip_pretrained = models.CharField(max_length=100, blank=True)
    clip_checkpoint = models.CharField(max_length=500, blank=True, help_text=_("The file CLIP was loaded from."))
    dim = models.PositiveSmallIntegerField()
    active = models.BooleanField(default=False)
    recorded_at = models.DateTimeField(default=timezone.now)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["active"], condition=Q(active=True), name="embedding_space_one_active"),
        ]

    def __str__(self) -> str:
        return self.name
