"""Query-string input for the report pages and the report API."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from attendance.reports.rates import Period


class ReportFilterForm(forms.Form):
    """?from=2026-09-01&to=2026-12-20&sort=-rate&low=1&threshold=75 on a course report."""

    SORTS = [
        ("name", gettext_lazy("Name (A-Z)")),
        ("-name", gettext_lazy("Name (Z-A)")),
        ("number", gettext_lazy("Student number")),
        ("rate", gettext_lazy("Rate, lowest first")),
        ("-rate", gettext_lazy("Rate, highest first")),
    ]

    start = forms.DateField(
        required=False, label=gettext_lazy("From"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"invalid": gettext_lazy("Enter the start date as YYYY-MM-DD, for example 2026-09-28.")},
    )
    end = forms.DateField(
        required=False, label=gettext_lazy("To"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"invalid": gettext_lazy("Enter the end date as YYYY-MM-DD, for example 2026-12-18.")},
    )
    sort = forms.ChoiceField(required=False, choices=SORTS, label=gettext_lazy("Sort by"))
    threshold = forms.IntegerField(
        required=False, min_value=0, max_value=100, label=gettext_lazy("Highlight below (%)"),
        error_messages={
            "invalid": gettext_lazy("The highlight threshold is a whole percentage, for example 75."),
            "min_value": gettext_lazy("The highlight threshold is a percentage between 0 and 100."),
            "max_value": gettext_lazy("The highlight threshold is a percentage between 0 and 100."),
        },
    )
    low = forms.BooleanField(required=False, label=gettext_lazy("Only students below the threshold"))

    def __init__(self, data: Any = None, *, default_threshold: float = 0.75) -> None:
        # The query string uses from/to; Django form fields cannot be named `from`.
        if data is not None and hasattr(data, "get"):
            data = {
                "start": data.get("from", ""), "end": data.get("to", ""), "sort": data.get("sort", ""),
                "threshold": data.get("threshold", ""), "low": data.get("low", ""),
            }
        super().__init__(data)
        self.default_threshold = default_threshold
        self.fields["threshold"].widget.attrs["placeholder"] = f"{round(default_threshold * 100)}"

    def clean(self) -> dict[str, object]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and start > end:
            raise forms.ValidationError(
                _("The start date %(start)s is after the end date %(end)s: swap them or clear one.")
                % {"start": f"{start:%Y-%m-%d}", "end": f"{end:%Y-%m-%d}"}
            )
        return cleaned

    def values(self) -> tuple[Period, str, float, bool]:
        """The period, sort, threshold (0-1) and low-only flag; defaults for anything invalid."""
        data = self.cleaned_data if self.is_valid() else {}
        period = Period(start=data.get("start"), end=data.get("end"))
        threshold = data.get("threshold")
        return (
            period,
            data.get("sort") or "name",
            self.default_threshold if threshold is None else threshold / 100,
            bool(data.get("low")),
        )
