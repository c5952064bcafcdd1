"""A course's status set and warning settings, as the lecturer edits them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.utils.translation import gettext_lazy as _

from attendance.models import CourseGrading

if TYPE_CHECKING:
    from django.utils.functional import _StrPromise

_POINTS_ERRORS = {
    "required": _("Enter the points for this status, a whole number from 0 to 100."),
    "invalid": _("Points are a whole number from 0 to 100, for example 2."),
    "min_value": _("Points are a whole number from 0 to 100."),
    "max_value": _("Points are a whole number from 0 to 100."),
}


def _points(label: str | _StrPromise) -> forms.IntegerField:
    return forms.IntegerField(label=label, min_value=0, max_value=100, error_messages=_POINTS_ERRORS)


class CourseGradingForm(forms.Form):
    points_present = _points(_("Present"))
    points_late = _points(_("Late"))
    points_excused = _points(_("Excused"))
    points_absent = _points(_("Absent"))
    warnings_enabled = forms.BooleanField(required=False, label=_("Email students who fall below the threshold"))
    warning_percent = forms.IntegerField(
        required=False, min_value=1, max_value=100, label=_("Warning threshold (%)"),
        error_messages={
            "invalid": _("The warning threshold is a whole percentage, for example 75."),
            "min_value": _("The warning threshold is a percentage from 1 to 100."),
            "max_value": _("The warning threshold is a percentage from 1 to 100."),
        },
    )
    warning_min_sessions = forms.IntegerField(
        min_value=1, max_value=100, label=_("Warn only after this many counted sessions"),
        error_messages={
            "required": _("Enter after how many counted sessions a warning may be sent, for example 3."),
            "invalid": _("Enter a whole number of sessions, for example 3."),
            "min_value": _("Enter a whole number of sessions from 1 to 100."),
            "max_value": _("Enter a whole number of sessions from 1 to 100."),
        },
    )
    warn_lecturers = forms.BooleanField(required=False, label=_("Also email the course's lecturers at each warning"))
    lecturer_digest = forms.BooleanField(required=False, label=_("A weekly digest for the lecturers"))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        points = [data.get(f"points_{s}") for s in ("present", "late", "excused", "absent")]
        if all(p is not None for p in points) and not any(points):
            raise forms.ValidationError(_("At least one status must earn points, or no one could earn any."))
        return data

    @classmethod
    def initial_for(cls, grading: CourseGrading) -> dict[str, Any]:
        return {
            "points_present": grading.points_present, "points_late": grading.points_late,
            "points_excused": grading.points_excused, "points_absent": grading.points_absent,
            "warnings_enabled": grading.warnings_enabled,
            "warning_percent": None if grading.warning_rate is None else round(grading.warning_rate * 100),
            "warning_min_sessions": grading.warning_min_sessions, "warn_lecturers": grading.warn_lecturers,
            "lecturer_digest": grading.lecturer_digest,
        }
