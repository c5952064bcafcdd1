"""The access trail of personal data: who exported, enrolled on someone's behalf, rotated keys, and when."""

from __future__ import annotations

from attendance.models import AccessEvent, User


def access_event_record(
    *, kind: str, actor: User | None, subject: User | None = None, detail: str = "", actor_label: str = ""
) -> AccessEvent:
    """One line of the trail; labels are copied so it still reads after an account is deleted."""
    return AccessEvent.objects.create(
        kind=kind,
        actor=actor,
        actor_label=actor_label or (f"{actor.display_name} ({actor.username})" if actor else "system"),
        subject=subject,
        subject_label=f"{subject.display_name} ({subject.username})" if subject else "",
        detail=detail[:500],
    )
