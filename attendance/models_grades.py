"""Points per status, attendance warnings and the warning emails (issue 17).

Kept out of models.py only for its length; re-exported there. Foreign keys name their models as
strings, so this module imports nothing of attendance's (no import cycle with models.py).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class CourseGrading(models.Model):
    """A course's status set (the points each status earns) and its attendance warnings.

    A course without a row uses the defaults: Moodle attendance's status set (present 2, late 1,
    excused 1, absent 0) and the site's low-attendance rate as the warning threshold.
    """

    course = models.OneToOneField("attendance.Course", on_delete=models.CASCADE, related_name="grading")
    points_present = models.PositiveSmallIntegerField(default=2)
    points_late = models.PositiveSmallIntegerField(default=1)
    points_excused = models.PositiveSmallIntegerField(default=1)
    points_absent = models.PositiveSmallIntegerField(default=0)
    warnings_enabled = models.BooleanField(default=True)
    # Empty: the site's ROLLCALL_LOW_ATTENDANCE_RATE, the rate the reports highlight.
    warning_rate = models.FloatField(null=True, blank=True, help_text=_("From 0 to 1; empty: the site default."))
    # One absence from the first session is a rate of 0 %: no warning before this many counted sessions.
    warning_min_sessions = models.PositiveSmallIntegerField(default=3)
    warn_lecturers = models.BooleanField(default=False)
    lecturer_digest = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(points_present__lte=100) & Q(points_late__lte=100) & Q(points_excused__lte=100)
                & Q(points_absent__lte=100),
                name="grading_points_at_most_100",
            ),
            models.CheckConstraint(
                condition=Q(points_present__gt=0) | Q(points_late__gt=0) | Q(points_excused__gt=0)
                | Q(points_absent__gt=0),
                name="grading_some_status_earns_points",
            ),
            models.CheckConstraint(
                condition=Q(warning_rate__isnull=True) | (Q(warning_rate__gt=0) & Q(warning_rate__lte=1)),
                name="grading_warning_rate_range",
            ),
        ]

    def __str__(self) -> str:
        return f"Grading of {self.course_id}"


class AttendanceWarning(models.Model):
    """A student's rate in a course fell below the course's threshold: one row per crossing.

    At most one open warning per student and course (the database says so), closed when the rate
    is back at or above the threshold; a later fall is a new crossing and a new warning."""

    course = models.ForeignKey("attendance.Course", on_delete=models.CASCADE, related_name="attendance_warnings")
    student = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="attendance_warnings")
    rate = models.FloatField(help_text=_("The student's rate when it fell below."))
    threshold = models.FloatField()
    attended = models.PositiveIntegerField()
    counted = models.PositiveIntegerField()
    crossed_at = models.DateTimeField(default=timezone.now, db_index=True)
    recovered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-crossed_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["course", "student"], condition=Q(recovered_at__isnull=True), name="warning_one_open"
            ),
        ]

    def __str__(self) -> str:
        return f"Warning for {self.student_id} in {self.course_id} at {self.crossed_at:%Y-%m-%d}"


class WarningEmail(models.Model):
    """An email about attendance warnings: written when due, marked sent only once the SMTP server
    accepted it. `key` says what it is about (one crossing and one recipient, or one lecturer's digest
    of one course and week), so a retry or a second sweep never writes or sends it twice."""

    class Kind(models.TextChoices):
        STUDENT = "student", _("To the student")
        LECTURER = "lecturer", _("To a lecturer")
        DIGEST = "digest", _("Weekly digest")

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting to be sent")
        SENT = "sent", pgettext_lazy("email", "Sent")
        FAILED = "failed", _("Not sent")

    key = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    warning = models.ForeignKey(
        "attendance.AttendanceWarning", on_delete=models.CASCADE, null=True, blank=True, related_name="emails"
    )
    course = models.ForeignKey("attendance.Course", on_delete=models.CASCADE, related_name="warning_emails")
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="warning_emails"
    )
    to_address = models.EmailField()
    subject = models.CharField(max_length=200)
    body = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} to {self.to_address} ({self.status})"
