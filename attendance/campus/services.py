"""The management area's writes: people, courses and memberships, one at a time or in bulk.

Every membership written here goes through the same rule as everywhere else: only students take a
course (the database refuses anything else, see migration 0008), and a course's face index
follows its roster when a student with face data joins or leaves. The reasons a person is skipped
are written in the active language (the admin's request): they are shown at once, never stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.utils.translation import gettext as _

from attendance.campus.importing import indexes_follow_rosters
from attendance.models import Course, CourseMembership, User


class CampusError(Exception):
    """A management action that cannot be done; the message says why."""


@dataclass(frozen=True)
class BulkResult:
    done: int
    skipped: list[str]  # names of the people left as they were, and why


def memberships_add(*, course: Course, people: Iterable[User]) -> BulkResult:
    """Put the students among `people` on the course in one insert; others are named and skipped."""
    people = list(people)
    students = [p for p in people if p.is_student]
    skipped = [_("%(name)s (not a student)") % {"name": p.display_name} for p in people if not p.is_student]
    with transaction.atomic():
        existing = set(CourseMembership.objects.filter(course=course, student__in=students)
                       .values_list("student_id", flat=True))
        new = [s for s in students if s.pk not in existing]
        CourseMembership.objects.bulk_create([CourseMembership(course=course, student=s) for s in new],
                                             ignore_conflicts=True)
        indexes_follow_rosters({course.pk: {s.pk for s in new}})
    skipped += [_("%(name)s (already on %(course)s)") % {"name": s.display_name, "course": course.code}
                for s in students if s.pk in existing]
    return BulkResult(len(new), skipped)


def memberships_remove(*, memberships: Iterable[CourseMembership]) -> int:
    """Take students off courses; each course whose index held one of their faces is rebuilt."""
    rows = list(memberships)
    touched: dict[int, set[int]] = {}
    for m in rows:
        touched.setdefault(m.course_id, set()).add(m.student_id)
    with transaction.atomic():
        deleted, _count = CourseMembership.objects.filter(pk__in=[m.pk for m in rows]).delete()
        indexes_follow_rosters(touched)
    return deleted


def lecturers_assign(*, course: Course, people: Iterable[User]) -> BulkResult:
    people = list(people)
    lecturers = [p for p in people if p.is_lecturer]
    already = set(course.lecturers.filter(pk__in=[p.pk for p in lecturers]).values_list("pk", flat=True))
    course.lecturers.add(*lecturers)
    skipped = [_("%(name)s (not a lecturer)") % {"name": p.display_name} for p in people if not p.is_lecturer]
    skipped += [_("%(name)s (already teaches %(course)s)") % {"name": p.display_name, "course": course.code}
                for p in lecturers if p.pk in already]
    return BulkResult(len(lecturers) - len(already), skipped)


def users_set_active(*, people: Iterable[User], active: bool, by: User) -> BulkResult:
    """Switch accounts on or off; an admin cannot switch off their own account (they would be locked out)."""
    people = list(people)
    skipped = [_("%(name)s (your own account)") % {"name": p.display_name} for p in people
               if p.pk == by.pk and not active]
    ids = [p.pk for p in people if not (p.pk == by.pk and not active)]
    changed = User.objects.filter(pk__in=ids).exclude(is_active=active).update(is_active=active)
    return BulkResult(changed, skipped)
