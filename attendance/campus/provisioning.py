"""Courses created or updated in bulk (the provisioning API), matched by code and term."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.models.functions import Lower, Upper
from django.utils.translation import gettext as _

from attendance.models import Course, User


def course_upsert_many(*, items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One result per item (index, outcome, detail); the caller rolls back if any is refused. The
    detail is in the active language (the request's): it is answered at once, never stored."""
    keys = {(str(i["code"]).strip().upper(), str(i["term"]).strip()) for i in items}
    matching = Course.objects.annotate(code_u=Upper("code")).filter(
        code_u__in={k[0] for k in keys}, term__in={k[1] for k in keys})
    existing: dict[tuple[str, str], Course] = {(c.code.upper(), c.term): c for c in matching}
    emails = {e.lower() for i in items for e in i.get("lecturers", [])}
    lecturers: dict[str, list[User]] = {}
    for user in User.objects.annotate(email_l=Lower("email")).filter(email_l__in=emails):
        lecturers.setdefault(user.email.lower(), []).append(user)
    results: list[dict[str, Any]] = []
    seen: dict[tuple[str, str], int] = {}
    for index, item in enumerate(items):
        key = (str(item["code"]).strip().upper(), str(item["term"]).strip())
        title = str(item["title"]).strip()

        def result(outcome: str, detail: str, index: int = index) -> None:
            results.append({"index": index, "outcome": outcome, "detail": detail})

        if key in seen:
            result("refused", _("%(code)s (%(term)s) is item %(item)s too.") % {"code": key[0], "term": key[1],
                                                                               "item": seen[key]})
            continue
        seen[key] = index
        teachers = []
        problem = ""
        for email in item.get("lecturers", []):
            found = lecturers.get(email.lower(), [])
            if len(found) != 1 or not found[0].is_lecturer:
                problem = (_("%(email)s is not a lecturer's email.") if found else
                           _("No account has the email %(email)s: create the lecturer first (provisioning/people).")
                           ) % {"email": email}
                break
            teachers.append(found[0])
        if problem:
            result("refused", problem)
            continue
        course: Course | None = existing.get(key)
        if course is None:
            course = Course.objects.create(code=key[0], title=title, term=key[1])
            existing[key] = course
            outcome, changes = "created", [_("new course")]
        else:
            outcome, changes = "unchanged", []
            if course.title != title:
                changes.append(_("title %(old)s → %(new)s") % {"old": course.title, "new": title})
                course.title = title
                course.save(update_fields=["title"])
                outcome = "updated"
        new_teachers = [t for t in teachers if not course.lecturers.filter(pk=t.pk).exists()]
        if new_teachers:
            course.lecturers.add(*new_teachers)
            changes.append(_("taught by %(names)s") % {"names": ", ".join(t.display_name for t in new_teachers)})
            outcome = "created" if outcome == "created" else "updated"
        result(outcome, "; ".join(changes))
    return results
