"""Forms of the management area: a course, a person, a roster upload."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import password_validation
from django.utils.translation import gettext_lazy as _

from attendance.campus import roster
from attendance.courses.services import user_role_problem
from attendance.models import Course, User


class CourseForm(forms.ModelForm):
    class Meta:
        model = Course
        fields = ["code", "title", "term", "lecturers", "late_after_minutes", "liveness"]
        widgets = {"lecturers": forms.CheckboxSelectMultiple}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["lecturers"].queryset = User.objects.filter(  # type: ignore[attr-defined]
            role=User.Role.LECTURER, is_active=True).order_by("last_name", "first_name")
        self.fields["code"].help_text = _("As the student system writes it, e.g. CS101.")

    def clean_code(self) -> str:
        return str(self.cleaned_data["code"]).strip().upper()


class PersonForm(forms.ModelForm):
    new_password = forms.CharField(
        required=False, widget=forms.PasswordInput(render_value=False), strip=False, label=_("Set a password"),
        help_text=_("Only for a local sign-in; leave empty to keep the current one (or none, for single sign-on)."),
    )

    class Meta:
        model = User
        fields = ["username", "first_name", "last_name", "email", "role", "student_number", "is_active"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["first_name"].required = True
        self.fields["last_name"].required = True
        self.fields["username"].help_text = _("What they sign in with; a student's is usually their student number.")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        role = cleaned.get("role")
        if role == User.Role.STUDENT and not cleaned.get("student_number"):
            self.add_error("student_number", _("A student needs a student number."))
        if role and self.instance.pk and (problem := user_role_problem(user=self.instance, role=str(role))):
            self.add_error("role", problem)
        if password := cleaned.get("new_password"):
            try:
                password_validation.validate_password(password, self.instance)
            except forms.ValidationError as exc:
                self.add_error("new_password", exc)
        return cleaned

    def save(self, commit: bool = True) -> User:
        user = super().save(commit=False)
        if password := self.cleaned_data.get("new_password"):
            user.set_password(password)
        elif user.pk is None:
            user.set_unusable_password()  # they sign in through single sign-on, or an admin sets one
        if commit:
            user.save()
        return user


class RosterUploadForm(forms.Form):
    file = forms.FileField(label=_("Roster file (CSV or XLSX)"))
    sync = forms.BooleanField(
        required=False, label=_("Sync: also take students who are not in the file off its courses"),
        help_text=_("You see who would be removed before anything is removed."),
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > roster.MAX_BYTES:
            raise forms.ValidationError(_("The file is larger than %(mb)s MB; split it.")
                                        % {"mb": roster.MAX_BYTES // (1024 * 1024)})
        return upload


class StudentNumbersForm(forms.Form):
    numbers = forms.CharField(
        label=_("Student numbers"), widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("One or more, separated by spaces, commas or new lines."),
    )

    def numbers_list(self) -> list[str]:
        text = str(self.cleaned_data["numbers"]).replace(",", " ").replace(";", " ")
        return list(dict.fromkeys(text.split()))
