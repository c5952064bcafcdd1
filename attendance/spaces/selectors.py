"""Reads of the recorded embedding space."""

from __future__ import annotations

from attendance.models import EmbeddingSpace


def active_space() -> EmbeddingSpace | None:
    """The space every process embeds and searches in; None before the first enrolment."""
    return EmbeddingSpace.objects.filter(active=True).first()

