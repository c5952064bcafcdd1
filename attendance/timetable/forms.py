"""The one form a lecturer plans (or changes) a recurring class with, and the CSV upload."""

from __future__ import annotations

from datetime import date
from typing import Any

from django import forms
from django.utils.dates import WEEKDAYS_ABBR
from django.utils.translation import gettext_lazy as _

from attendance.models import Course, TimetableSeries, User
from attendance.timetable.planning import format_skip_dates, parse_skip_dates
from attendance.timetable.services import SeriesSpec

# ISO weekdays 1-7 with Django's own (translated) abbreviations, Mon ... Sun (WEEKDAYS_ABBR counts from 0).
WEEKDAYS = [(d, WEEKDAYS_ABBR[d - 1]) for d in range(1, 8)]


class SeriesForm(forms.Form):
    title = forms.CharField(max_length=200, required=False, label=_("Title"),
                            help_text=_("For example: Lecture, or Lab group A."))
    weekdays = forms.TypedMultipleChoiceField(
        choices=WEEKDAYS,
        coerce=int,
        label=_("Weekdays"),
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Choose at least one weekday.")},
    )
    start_time = forms.TimeField(
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        label=_("Starts at"),
        error_messages={"invalid": _("Enter the start time as HH:MM, for example 10:15.")},
    )
    end_time = forms.TimeField(
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        label=_("Ends at"),
        error_messages={"invalid": _("Enter the end time as HH:MM, for example 11:45.")},
    )
    every_weeks = forms.IntegerField(
        min_value=1,
        max_value=8,
        initial=1,
        label=_("Every N weeks"),
        error_messages={"min_value": _("Repeat every 1 to 8 weeks."), "max_value": _("Repeat every 1 to 8 weeks.")},
    )
    starts_on = forms.DateField(
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        label=_("First day"),
        error_messages={"invalid": _("Enter the first day as YYYY-MM-DD, for example 2026-10-05.")},
    )
    ends_on = forms.DateField(
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        label=_("Last day"),
        error_messages={"invalid": _("Enter the last day as YYYY-MM-DD, for example 2027-01-29.")},
    )
    skip_dates = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label=_("No class on"),
        help_text=_("Holidays: dates or ranges, one per line, e.g. 2026-11-01 or 2026-12-24 to 2027-01-06."),
    )
    students = forms.ModelMultipleChoiceField(
        queryset=User.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label=_("Only for these students"),
        help_text=_("Leave empty for the whole course."),
    )

    def __init__(self, *args: Any, course: Course, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["students"].queryset = User.objects.filter(memberships__course=course).order_by(  # type: ignore[attr-defined]
            "last_name", "first_name"
        )

    @classmethod
    def initial_for(cls, series: TimetableSeries) -> dict[str, Any]:
        return {
            "title": series.title,
            "weekdays": series.weekdays,
            "start_time": series.start_time,
            "end_time": series.end_time,
            "every_weeks": series.every_weeks,
            "starts_on": series.starts_on,
            "ends_on": series.ends_on,
            "skip_dates": format_skip_dates(date.fromisoformat(d) for d in series.skip_dates),
            "students": list(series.students.all()),
        }

    def clean_skip_dates(self) -> list[Any]:
        try:
            return parse_skip_dates(self.cleaned_data.get("skip_dates", ""))
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("start_time"), data.get("end_time")
        if start and end and end <= start:
            self.add_error("end_time", _("The end time must be after the start time."))
        first, last = data.get("starts_on"), data.get("ends_on")
        if first and last and last < first:
            self.add_error("ends_on", _("The last day must be on or after the first day."))
        return data

    def spec(self) -> SeriesSpec:
        d = self.cleaned_data
        return SeriesSpec(
            title=d["title"],
            weekdays=d["weekdays"],
            start_time=d["start_time"],
            end_time=d["end_time"],
            every_weeks=d["every_weeks"],
            starts_on=d["starts_on"],
            ends_on=d["ends_on"],
            skip_dates=d["skip_dates"],
            students=list(d["students"]),
        )


class CsvImportForm(forms.Form):
    file = forms.FileField(label=_("CSV file"), error_messages={"required": _("Choose a CSV file to import.")})
