"""Writes of the grades feature: a course's status set and warning settings."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from attendance.models import Course, CourseGrading, User


def course_grading_get(*, course: Course) -> CourseGrading:
    """The course's settings, unsaved defaults when it has none yet."""
    return CourseGrading.objects.filter(course=course).first() or CourseGrading(course=course)


@transaction.atomic
def course_grading_update(*, course: Course, by: User, values: dict[str, Any]) -> CourseGrading:
    """Store the points per status and the warning settings (cleaned CourseGradingForm data)."""
    percent = values.get("warning_percent")
    grading, _ = CourseGrading.objects.select_for_update().get_or_create(course=course)
    grading.points_present = values["points_present"]
    grading.points_late = values["points_late"]
    grading.points_excused = values["points_excused"]
    grading.points_absent = values["points_absent"]
    grading.warnings_enabled = bool(values.get("warnings_enabled"))
    grading.warning_rate = None if percent is None else percent / 100
    grading.warning_min_sessions = values["warning_min_sessions"]
    grading.warn_lecturers = bool(values.get("warn_lecturers"))
    grading.lecturer_digest = bool(values.get("lecturer_digest"))
    grading.updated_by = by
    grading.save()
    return grading
