"""The schema of a whole term: timetable series, private calendar feeds and excuses.

Part of attendance.models (imported at its end, so there is one schema); references to the core
models are by name, so this module imports nothing of them and no import cycle forms.
"""

from __future__ import annotations

import uuid
from pathlib import PurePosixPath

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.dates import WEEKDAYS_ABBR
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _


class TimetableSeries(models.Model):
    """A recurring class of a course: weekdays, times, every N weeks between two dates, skipped dates.

    The sessions it plans are ordinary Session rows pointing back here; editing the series rewrites
    only those not yet held (still scheduled)."""

    course = models.ForeignKey("attendance.Course", on_delete=models.CASCADE, related_name="series")
    title = models.CharField(max_length=200, blank=True)
    weekdays = models.JSONField(default=list, help_text=_("ISO weekdays, Monday 1 to Sunday 7."))
    start_time = models.TimeField()
    end_time = models.TimeField()
    every_weeks = models.PositiveSmallIntegerField(default=1)
    starts_on = models.DateField()
    ends_on = models.DateField()
    skip_dates = models.JSONField(default=list, blank=True, help_text=_("ISO dates on which there is no class."))
    # A group of the course's students (a lab group, say); empty: the whole course.
    students = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="timetable_groups", blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["course", "starts_on", "start_time"]
        verbose_name_plural = _("timetable series")
        constraints = [
            models.CheckConstraint(condition=Q(end_time__gt=models.F("start_time")), name="series_ends_after_start"),
            models.CheckConstraint(condition=Q(ends_on__gte=models.F("starts_on")), name="series_dates_ordered"),
            models.CheckConstraint(condition=Q(every_weeks__gte=1), name="series_every_weeks_positive"),
        ]

    def __str__(self) -> str:
        return gettext("%(title)s (%(first)s to %(last)s)") % {
            "title": self.title or gettext("Series"), "first": f"{self.starts_on:%Y-%m-%d}",
            "last": f"{self.ends_on:%Y-%m-%d}"}

    @property
    def weekday_names(self) -> str:
        """"Mon, Wed" in the active language (Django's own abbreviations)."""
        return ", ".join(str(WEEKDAYS_ABBR[d - 1]) for d in sorted(self.weekdays))


class CalendarFeed(models.Model):
    """A private iCalendar URL: a course's sessions (course set) or the owner's own (course empty).

    The token is the only credential: revoking a feed gives it a new token, and the old URL is gone."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_feeds")
    course = models.ForeignKey("attendance.Course", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    token = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "course"], name="feed_one_per_owner_course"),
            models.UniqueConstraint(fields=["owner"], condition=Q(course__isnull=True), name="feed_one_personal"),
        ]

    def __str__(self) -> str:
        return f"Calendar feed of {self.owner_id} ({self.course_id or 'own sessions'})"


def excuse_document_path(instance: Excuse, filename: str) -> str:
    # The name is ours; the service passes the extension of the type found in the content.
    suffix = PurePosixPath(filename).suffix.lower()
    return f"excuses/{instance.student_id}/{uuid.uuid4().hex}{suffix if suffix in ('.pdf', '.png', '.jpg') else '.bin'}"


class Excuse(models.Model):
    """A student's request to have an absence or a late mark excused, and the lecturer's decision."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for the lecturer")
        APPROVED = "approved", _("Approved")
        DECLINED = "declined", _("Declined")

    record = models.ForeignKey("attendance.AttendanceRecord", on_delete=models.CASCADE, related_name="excuses")
    student = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="excuses")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    reason = models.TextField(max_length=2000)
    # The record's status when asked (absent or late), so the report can say what was excused.
    record_status = models.CharField(max_length=16)
    document = models.FileField(upload_to=excuse_document_path, blank=True, max_length=255)
    document_type = models.CharField(max_length=64, blank=True, help_text=_("The type found in the file's content."))
    created_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=500, blank=True, help_text=_("The lecturer's note to the student."))

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["record"], condition=Q(status="pending"), name="excuse_one_pending"),
            models.CheckConstraint(
                condition=Q(status="pending") | Q(decided_at__isnull=False), name="excuse_decided_has_decided_at"
            ),
        ]

    def __str__(self) -> str:
        return f"Excuse of {self.student_id} for record {self.record_id} ({self.status})"
