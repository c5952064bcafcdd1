"""Rollcall's domain: people, courses, face enrolments, class sessions and attendance.

What must always hold is written as database constraints, not view code: one attendance record per
student per session, one active and one ready enrolment per student, k1 < k2 on a course.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import PurePosixPath

import numpy as np
from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class User(AbstractUser):
    class Role(models.TextChoices):
        ADMIN = "admin", _("Admin")
        LECTURER = "lecturer", _("Lecturer")
        STUDENT = "student", _("Student")

    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.STUDENT)
    student_number = models.CharField(
        _("student number"), max_length=32, blank=True, help_text=_("The university's ID for a student.")
    )
    # The language chosen in the app's language menu; blank follows the browser. Pages, messages and the
    # warning emails (attendance/warnings/emails.py) are in it.
    language = models.CharField(_("language"), max_length=16, blank=True, default="")

    class Meta:
        ordering = ["last_name", "first_name", "username"]
        constraints = [
            models.CheckConstraint(
                condition=Q(role__in=["admin", "lecturer", "student"]), name="user_role_valid"
            ),
            models.UniqueConstraint(
                fields=["student_number"],
                condition=~Q(student_number=""),
                name="user_student_number_unique",
            ),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.username

    @property
    def is_admin(self) -> bool:
        # A Django superuser is an admin whatever its role field says.
        return self.is_superuser or self.role == self.Role.ADMIN

    @property
    def is_lecturer(self) -> bool:
        return self.role == self.Role.LECTURER

    @property
    def is_student(self) -> bool:
        return self.role == self.Role.STUDENT and not self.is_superuser


class Course(models.Model):
    code = models.CharField(_("code"), max_length=32)
    title = models.CharField(_("title"), max_length=200)
    term = models.CharField(_("term"), max_length=32, help_text=_("For example 2026-autumn."))
    lecturers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="taught_courses", blank=True, verbose_name=_("lecturers"),
        limit_choices_to={"role": User.Role.LECTURER},
    )
    students = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="CourseMembership", related_name="courses", blank=True,
        verbose_name=_("students"),
    )
    # Recognition parameters for this course; empty means the backbone's calibrated default.
    k1 = models.PositiveSmallIntegerField(null=True, blank=True)
    k2 = models.PositiveSmallIntegerField(null=True, blank=True)
    threshold = models.FloatField(
        _("threshold"), null=True, blank=True, help_text=_("L2 distance between unit vectors (0-2).")
    )
    late_after_minutes = models.PositiveSmallIntegerField(
        _("late after minutes"), null=True, blank=True,
        help_text=_("Arrivals after this many minutes are marked late; empty: the site default."),
    )

    class Liveness(models.TextChoices):
        OFF = "off", _("Off: recognition only")
        PASSIVE = "passive", _("Passive: photo and screen check on every snapshot")
        CHALLENGE = "challenge", _("Passive and a head-turn challenge")

    # One policy for both the lecturer's page and the kiosk of this course; empty: the site's
    # ROLLCALL_LIVENESS_LECTURER and ROLLCALL_LIVENESS_KIOSK.
    liveness = models.CharField(
        _("liveness"), max_length=16, choices=Liveness.choices, blank=True, default="",
        help_text=_(
            "Liveness check for this course's check-ins (lecturer's page and kiosk); empty: the site defaults."
        ),
    )
    # Bumped every time the course's face index is rebuilt: web processes compare it with the
    # version of the index they hold in memory and reload only when it moved.
    index_version = models.PositiveIntegerField(default=0)
    # The "Unknown" threshold calibrated from the course's own gallery at the last index rebuild
    # (recognition.calibrate), for the embedding space it was computed in; a hand-set threshold wins.
    calibrated_threshold = models.FloatField(null=True, editable=False)
    calibration_source = models.CharField(
        max_length=16, blank=True, editable=False, choices=[("calibrated", _("calibrated")), ("default", _("default"))]
    )
    calibration_people = models.PositiveIntegerField(default=0, editable=False)
    calibration_space = models.CharField(max_length=100, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = pgettext_lazy("model name", "course")
        verbose_name_plural = pgettext_lazy("model name", "courses")
        ordering = ["-term", "code"]
        constraints = [
            models.UniqueConstraint(fields=["code", "term"], name="course_code_term_unique"),
            models.CheckConstraint(
                condition=Q(k1__isnull=True) | Q(k2__isnull=True) | Q(k1__lt=models.F("k2")),
                name="course_k1_below_k2",
            ),
            models.CheckConstraint(
                condition=Q(threshold__isnull=True) | (Q(threshold__gt=0) & Q(threshold__lte=2)),
                name="course_threshold_range",
            ),
            models.CheckConstraint(
                condition=Q(calibrated_threshold__isnull=True)
                | (Q(calibrated_threshold__gt=0) & Q(calibrated_threshold__lte=2)),
                name="course_calibrated_threshold_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.title} ({self.term})"


class CourseMembership(models.Model):
    """A student taking a course. Distinct from a face enrolment: one can exist without the other."""

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="memberships")
    # Only students take a course: the database refuses anyone else (triggers in migration 0008),
    # and the admin's and the forms' pickers offer only students.
    student = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships",
        limit_choices_to={"role": "student", "is_superuser": False},
    )
    joined_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["course", "student"]
        constraints = [
            models.UniqueConstraint(fields=["course", "student"], name="membership_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.student} in {self.course.code}"


def enrolment_video_path(instance: FaceEnrolment, filename: str) -> str:
    # The user's file name never reaches the file system: only its extension, and only if plain
    # ASCII (str.isalnum accepts fullwidth and other look-alike letters and digits).
    suffix = PurePosixPath(filename).suffix.lower()
    if not (suffix[1:].isascii() and suffix[1:].isalnum()) or len(suffix) > 6:
        suffix = ".bin"
    return f"enrolments/{instance.student_id}/{uuid.uuid4().hex}{suffix}"


class FaceEnrolment(models.Model):
    """One attempt to record a student's face from a video, and its outcome."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        PROCESSING = "processing", _("Processing")
        READY = "ready", _("Ready")
        FAILED = "failed", _("Failed")
        SUPERSEDED = "superseded", _("Superseded")
        WITHDRAWN = "withdrawn", _("Withdrawn")

    ACTIVE_STATUSES = (Status.QUEUED, Status.PROCESSING)

    student = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="face_enrolments")
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.QUEUED)
    consent_given_at = models.DateTimeField(help_text=_("When the student consented to biometric processing."))
    # Which consent text they agreed to (attendance.enrolment.consent.CONSENT_VERSION, a hash of it);
    # empty for enrolments made before the text was versioned.
    consent_version = models.CharField(max_length=32, blank=True)
    video = models.FileField(upload_to=enrolment_video_path, blank=True, max_length=255)
    # The embedding space (recognition's Embedder.name, e.g. "clip:ViT-B-32:openai"): a checkpoint's
    # file name can make it long.
    backbone = models.CharField(max_length=100, blank=True)
    progress = models.JSONField(default=dict, blank=True, help_text=_("Stage and counters shown to the student."))
    error_code = models.CharField(max_length=32, blank=True)
    error_message = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One video in flight per student: a second upload while one processes is refused.
            models.UniqueConstraint(
                fields=["student"], condition=Q(status__in=["queued", "processing"]), name="enrolment_one_active"
            ),
            models.UniqueConstraint(fields=["student"], condition=Q(status="ready"), name="enrolment_one_ready"),
        ]
        indexes = [models.Index(fields=["status", "started_at"])]

    def __str__(self) -> str:
        return f"Face enrolment of {self.student} ({self.status})"


class FaceEmbedding(models.Model):
    """One face crop's embedding: the source of truth from which every course index is built."""

    enrolment = models.ForeignKey(FaceEnrolment, on_delete=models.CASCADE, related_name="embeddings")
    student = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="face_embeddings")
    backbone = models.CharField(max_length=100, help_text=_("The embedding space, e.g. dlib:resnet_v1:mirror."))
    dim = models.PositiveSmallIntegerField()
    # AES-256-GCM of the float32 little-endian unit vector, bound to the student (platform.biometric).
    vector = models.BinaryField(help_text=_("Nonce and ciphertext of the float32 vector."))
    key_id = models.CharField(max_length=16, db_index=True, help_text=_("The id of the key that sealed the vector."))
    frame_time = models.FloatField(null=True, blank=True, help_text=_("Seconds into the source video."))
    quality = models.FloatField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["backbone", "student"])]
        constraints = [
            models.CheckConstraint(condition=Q(dim__gt=0), name="embedding_dim_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.backbone} embedding of {self.student_id}"

    def as_array(self) -> np.ndarray:
        """The plaintext vector, in this process's memory only."""
        from attendance.platform.biometric import vector_decrypt

        return vector_decrypt(
            bytes(self.vector), key_id=self.key_id, student_id=self.student_id, backbone=self.backbone, dim=self.dim
        )


class Session(models.Model):
    """A class meeting of a course, during which attendance is taken."""

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", _("Scheduled")
        OPEN = "open", _("Open")
        CLOSED = "closed", _("Closed")

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="sessions")
    title = models.CharField(_("title"), max_length=200, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.SCHEDULED)
    scheduled_start = models.DateTimeField(null=True, blank=True)
    # When the class is planned to end: an open session closes itself then (sessions.autoclose).
    scheduled_end = models.DateTimeField(null=True, blank=True)
    # The timetable series that planned it, if any; a held session keeps its own times when the series changes.
    series = models.ForeignKey(
        "attendance.TimetableSeries", on_delete=models.SET_NULL, null=True, blank=True, related_name="sessions"
    )
    opened_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # A kiosk link's token pairs one device at the door with this open session, once: the device
    # then holds a secret of its own (a cookie), of which only the sha256 is kept here. The token
    # itself never posts check-ins, so a photo of the projected QR code is worth nothing once used.
    kiosk_token = models.CharField(max_length=64, null=True, blank=True, unique=True)
    kiosk_device_hash = models.CharField(max_length=64, null=True, blank=True, unique=True)

    class Meta:
        ordering = ["-scheduled_start", "-opened_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="open") | Q(opened_at__isnull=False), name="session_open_has_opened_at"
            ),
            models.CheckConstraint(
                condition=~Q(status="closed") | Q(closed_at__isnull=False), name="session_closed_has_closed_at"
            ),
            models.CheckConstraint(
                condition=Q(scheduled_end__isnull=True) | Q(scheduled_start__isnull=True)
                | Q(scheduled_end__gt=models.F("scheduled_start")),
                name="session_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        when = self.opened_at or self.scheduled_start
        label = self.title or (f"{when:%Y-%m-%d %H:%M}" if when else f"#{self.pk}")
        return f"{self.course.code} {label}"

    @property
    def starts_at(self) -> datetime | None:
        return self.scheduled_start or self.opened_at


class AttendanceRecord(models.Model):
    class Status(models.TextChoices):
        PRESENT = "present", _("Present")
        LATE = "late", _("Late")
        ABSENT = "absent", _("Absent")
        EXCUSED = "excused", _("Excused")

    class Method(models.TextChoices):
        FACE = "face", _("Face")
        MANUAL = "manual", _("Manual")
        AUTO = "auto", _("Closing the session")

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="records")
    student = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="attendance_records")
    status = models.CharField(_("status"), max_length=16, choices=Status.choices)
    method = models.CharField(_("method"), max_length=16, choices=Method.choices)
    confidence = models.FloatField(null=True, blank=True, help_text=_("Recognition distance behind a face mark."))
    liveness_score = models.FloatField(
        null=True, blank=True, help_text=_("Median passive live score (0-1) of the snapshots behind a face mark.")
    )
    liveness_checks = models.JSONField(
        default=list, blank=True, help_text=_('Liveness checks a face mark passed ("passive", "motion", "challenge").')
    )
    marked_at = models.DateTimeField(default=timezone.now)
    marked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["session", "student"]
        constraints = [
            models.UniqueConstraint(fields=["session", "student"], name="attendance_one_per_student_session"),
        ]

    def __str__(self) -> str:
        return f"{self.student} {self.status} at {self.session}"


class AttendanceChange(models.Model):
    """Audit trail: every manual change to a record, so a lecturer's correction is never lost."""

    record = models.ForeignKey(AttendanceRecord, on_delete=models.CASCADE, related_name="changes")
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    changed_at = models.DateTimeField(default=timezone.now)
    old_status = models.CharField(max_length=16, blank=True)
    new_status = models.CharField(max_length=16)
    # The record as it was before the change (empty for a record made by hand): how it was marked,
    # when the student arrived and how sure recognition was, so a correction never erases them.
    old_method = models.CharField(max_length=16, blank=True)
    old_marked_at = models.DateTimeField(null=True, blank=True)
    old_confidence = models.FloatField(null=True, blank=True)
    new_method = models.CharField(max_length=16, blank=True)
    reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-changed_at"]

    def __str__(self) -> str:
        return f"{self.old_status or 'none'} -> {self.new_status} by {self.changed_by_id}"


class CheckinSnapshot(models.Model):
    """A check-in frame kept only when ROLLCALL_STORE_SNAPSHOTS is on, deleted after the retention period."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="snapshots")
    image = models.FileField(upload_to="snapshots/%Y/%m/%d/", max_length=255)
    taken_at = models.DateTimeField(default=timezone.now, db_index=True)
    students = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="checkin_snapshots", blank=True)

    def __str__(self) -> str:
        return f"Snapshot of {self.session_id} at {self.taken_at:%Y-%m-%d %H:%M:%S}"


class FaceRetention(models.Model):
    """The clock of a student's face data once they are on no course: deleted when it runs out.

    Started by the retention sweep the first time it finds the student on no course (hourly, so
    within the hour of the last membership ending), dropped when they join a course again."""

    student = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="face_retention")
    no_course_since = models.DateTimeField()
    notice_sent_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Face data of {self.student_id} unused since {self.no_course_since:%Y-%m-%d}"


class AccessEvent(models.Model):
    """The access trail of personal data: exports, enrolments on a student's behalf, key rotations,
    deletions after the retention period. Kept when the student's data is deleted."""

    class Kind(models.TextChoices):
        EXPORT = "export", _("Data export")
        ENROLMENT_ON_BEHALF = "enrolment_on_behalf", _("Enrolment on a student's behalf")
        KEY_ROTATION = "key_rotation", _("Biometric key rotation")
        RETENTION_DELETION = "retention_deletion", _("Face data deleted after the retention period")

    kind = models.CharField(max_length=32, choices=Kind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # A label too, so the trail still says who when the account is deleted (or "manage.py").
    actor_label = models.CharField(max_length=200, blank=True)
    subject = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    subject_label = models.CharField(max_length=200, blank=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    detail = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} by {self.actor_label or 'system'} at {self.at:%Y-%m-%d %H:%M}"


# Models that live beside this module (the 450-line limit), imported here so that Django sees one
# schema and `from attendance.models import X` works for every model.
from attendance.models_grades import AttendanceWarning, CourseGrading, WarningEmail  # noqa: E402
from attendance.models_spaces import EmbeddingSpace  # noqa: E402
from attendance.models_sso import SsoIdentity  # noqa: E402
from attendance.models_term import CalendarFeed, Excuse, TimetableSeries  # noqa: E402

__all__ = [
    "AccessEvent", "AttendanceChange", "AttendanceRecord", "AttendanceWarning", "CalendarFeed", "CheckinSnapshot",
    "Course", "CourseGrading", "CourseMembership", "EmbeddingSpace", "Excuse", "FaceEmbedding", "FaceEnrolment",
    "FaceRetention", "Session", "SsoIdentity", "TimetableSeries", "User", "WarningEmail",
]
