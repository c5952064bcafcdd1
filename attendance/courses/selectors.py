"""Reads about courses: the home pages' lists and overview, face data, the threshold in use."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from attendance import ml
from attendance.models import Course, FaceEmbedding, FaceEnrolment, FaceRetention, Session, User
from attendance.platform.biometric_health import stored_key_problem


@dataclass(frozen=True)
class AdminOverview:
    courses: int
    lecturers: int
    students: int
    students_enrolled: int
    open_sessions: int
    face_data_due: int  # students on no course whose face data is in its notice period or past it
    biometric_key_problem: str  # why face features are stopped, for the admin; '' when they are not
    site_url_problem: str = ""  # ROLLCALL_SITE_URL left at its development default in production


def admin_overview() -> AdminOverview:
    people = User.objects.aggregate(
        lecturers=Count("id", filter=Q(role=User.Role.LECTURER)),
        students=Count("id", filter=Q(role=User.Role.STUDENT)),
    )
    return AdminOverview(
        courses=Course.objects.count(),
        lecturers=people["lecturers"],
        students=people["students"],
        students_enrolled=FaceEnrolment.objects.filter(status=FaceEnrolment.Status.READY).count(),
        open_sessions=Session.objects.filter(status=Session.Status.OPEN).count(),
        face_data_due=FaceRetention.objects.filter(no_course_since__lte=timezone.now() - timedelta(
            days=settings.ROLLCALL_BIOMETRIC_RETENTION_DAYS - settings.ROLLCALL_BIOMETRIC_NOTICE_DAYS
        )).count(),
        biometric_key_problem=stored_key_problem(),
        site_url_problem=site_url_problem(),
    )


def site_url_problem() -> str:
    """Why the links in emails would not reach anyone, for the admin; '' when they would."""
    if settings.DEBUG or settings.ROLLCALL_SITE_URL_SET:
        return ""
    return (
        f"ROLLCALL_SITE_URL is not set: the links in attendance warning emails point to {settings.ROLLCALL_SITE_URL}, "
        "which students cannot open. Set it to the address people reach Rollcall at (.env) and restart."
    )


def lecturer_courses(*, lecturer: User) -> QuerySet[Course]:
    return (
        Course.objects.filter(lecturers=lecturer)
        .annotate(
            student_count=Count("memberships", distinct=True),
            open_session_count=Count("sessions", filter=Q(sessions__status=Session.Status.OPEN), distinct=True),
        )
        .order_by("-term", "code")
    )


def student_courses(*, student: User) -> QuerySet[Course]:
    return Course.objects.filter(memberships__student=student).order_by("-term", "code")


def student_current_enrolment(*, student: User) -> FaceEnrolment | None:
    """The enrolment a student should see: one in flight, else the ready one, else the latest."""
    enrolments = FaceEnrolment.objects.filter(student=student)
    for statuses in (FaceEnrolment.ACTIVE_STATUSES, (FaceEnrolment.Status.READY,)):
        found = enrolments.filter(status__in=statuses).order_by("-created_at").first()
        if found is not None:
            return found
    return enrolments.order_by("-created_at").first()


def student_has_face_data(*, student: User) -> bool:
    return (
        FaceEmbedding.objects.filter(student=student).exists()
        or FaceEnrolment.objects.filter(student=student).exclude(status=FaceEnrolment.Status.WITHDRAWN).exists()
    )


@dataclass(frozen=True)
class ThresholdInUse:
    """The "Unknown" distance a course is recognised at, and where it came from, for its page."""

    value: float
    source: str  # hand | site | calibrated | default
    people: int  # enrolled students the calibration saw (0 where none ran)

    def describe(self) -> str:
        if self.source == "hand":
            return "set by hand for this course"
        if self.source == "site":
            return "the site's setting for every course"
        if self.source == "calibrated":
            return f"calibrated from the {self.people} enrolled students of this course"
        if self.people:
            return (f"the face model's default: {self.people} enrolled student{'s' if self.people != 1 else ''} "
                    f"are too few to calibrate from (5 are needed)")
        return "the face model's default (nobody is enrolled yet)"


def course_threshold(*, course: Course) -> ThresholdInUse:
    """A hand-set course threshold, else the site's, else the course's calibration in the embedding
    space now in use (a calibration from another space says nothing about this one), else the
    backbone's default."""
    if course.threshold is not None:
        return ThresholdInUse(course.threshold, "hand", 0)
    if settings.ROLLCALL_THRESHOLD is not None:
        return ThresholdInUse(float(settings.ROLLCALL_THRESHOLD), "site", 0)
    same_space = course.calibration_space == ml.embedder_name()
    if same_space and course.calibration_source == "calibrated" and course.calibrated_threshold is not None:
        return ThresholdInUse(course.calibrated_threshold, "calibrated", course.calibration_people)
    return ThresholdInUse(ml.recognition_params().threshold, "default", course.calibration_people if same_space else 0)
