"""The student's request and the lecturer's decision."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from attendance.excuses.services import NOTE_MAX, REASON_MAX


class ExcuseRequestForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=REASON_MAX,
        label=_("Why were you absent or late?"),
        error_messages={"required": _("Say why you were absent or late.")},
    )
    document = forms.FileField(
        required=False,
        label=_("Document (optional)"),
        help_text=_("A PDF, PNG or JPEG, for example a doctor's note."),
        widget=forms.ClearableFileInput(attrs={"accept": "application/pdf,image/png,image/jpeg"}),
    )


class ExcuseDecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", _("Approve")), ("decline", _("Decline"))])
    note = forms.CharField(required=False, max_length=NOTE_MAX, label=_("Note to the student"))
