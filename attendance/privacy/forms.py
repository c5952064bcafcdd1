"""The confirmations asked before a student's face data is deleted."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from attendance.models import User


class WithdrawConsentForm(forms.Form):
    confirm = forms.BooleanField(
        required=True,
        label=gettext_lazy(
            "I understand that my face data will be deleted and that lecturers will mark my attendance by hand."
        ),
        error_messages={"required": gettext_lazy("Tick the box to confirm that you want your face data deleted.")},
    )


class AdminWithdrawConsentForm(forms.Form):
    confirm_username = forms.CharField(
        label=gettext_lazy("Type the student's username to confirm"),
        error_messages={"required": gettext_lazy("Type the student's username to confirm the deletion.")},
    )

    def __init__(self, *args: object, student: User, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.student = student

    def clean_confirm_username(self) -> str:
        value = str(self.cleaned_data["confirm_username"]).strip()
        if value != self.student.username:
            raise forms.ValidationError(
                _("That is not %(name)s's username; type %(username)s exactly.")
                % {"name": self.student.display_name, "username": repr(self.student.username)}
            )
        return value
