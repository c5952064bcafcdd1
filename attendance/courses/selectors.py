"""Reads about courses: the home pages' lists and overview, face data, the threshold in use."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from attendance import ml
from attendance.models import Course, EmbeddingSpace, FaceEmbedding, FaceEnrolment, FaceRetention, Session, User
from attendance.platform.biometric_health import stored_key_problem
from attendance.platform.health import Check, check_beat, check_liveness, check_recognition, check_worker


@dataclass(frozen=True)
class AdminOverview:
    courses: int
    lecturers: int
    students: int
    students_enrolled: int
    open_sessions: int
    face_data_due: int  # students on no course whose face data is in its notice period or past it
    biometric_key_problem: str  # why face features are stopped, for the admin; '' when they are not
    space: str = ""  # the embedding space the site serves
    space_mismatch: str = ""  # the settings ask for another space: what to do
    problems: tuple[Check, ...] = ()  # failing checks (models, worker, beat), with the operator's detail

    @property
    def degraded(self) -> bool:
        return bool(self.problems)
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
        space=ml.embedder_name(),
        space_mismatch=ml.space_mismatch() or "",
        problems=tuple(
            check
            for check in (check_recognition(operator=True), check_liveness(operator=True), check_worker(timeout=0.5),
                          check_beat())
            if not check.ok
        ),
        site_url_problem=site_url_problem(),
    )


def site_url_problem() -> str:
    """Why the links in emails would not reach anyone, for the admin; '' when they would."""
    if settings.DEBUG or settings.ROLLCALL_SITE_URL_SET:
        return ""
    return gettext(
        "ROLLCALL_SITE_URL is not set: the links in attendance warning emails point to %(url)s, "
        "which students cannot open. Set it to the address people reach Rollcall at (.env) and restart."
    ) % {"url": settings.ROLLCALL_SITE_URL}


def lecturer_courses(*, lecturer: User) -> QuerySet[Course]:
    return (
        Course.objects.filter(lecturers=lecturer)
        .annotate(
            student_count=Count("memberships", distinct=True),
            open_session_count=Count("sessions", filter=Q(sessions__status=Session.Status.OPEN), distinct=True),
        )
        .order_by("-term", "code")
    )


def lecturer_sessions_on(*, lecturer: User, day: date | None = None) -> QuerySet[Session]:
    """The lecturer's sessions planned (or, unplanned, opened) on a day of the site's calendar, today
    by default: the day's bounds are local midnights, so a class at 00:30 local is on its own day."""
    zone = ZoneInfo(settings.TIME_ZONE)
    day = day or timezone.now().astimezone(zone).date()
    start = datetime.combine(day, time(0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    on_day = Q(scheduled_start__gte=start, scheduled_start__lt=end) | Q(
        scheduled_start__isnull=True, opened_at__gte=start, opened_at__lt=end
    )
    return (
        Session.objects.filter(on_day, course__lecturers=lecturer)
        .select_related("course")
        .order_by("scheduled_start", "opened_at", "pk")
    )


def student_next_sessions(*, student: User, limit: int = 5) -> QuerySet[Session]:
    """The student's next planned classes (not another group's), soonest first."""
    return (
        Session.objects.filter(
            course__memberships__student=student, status=Session.Status.SCHEDULED,
            scheduled_start__gte=timezone.now() - timedelta(hours=1),
        )
        .filter(Q(series__isnull=True) | Q(series__students__isnull=True) | Q(series__students=student))
        .select_related("course")
        .distinct()
        .order_by("scheduled_start", "pk")[:limit]
    )


def student_reenrolment_needed(*, student: User) -> bool:
    """The student has face data, but none in the space the site now serves (it switched backbone
    with `manage.py reembed` and their video was not kept): recognised again only after a new video."""
    space = EmbeddingSpace.objects.filter(active=True).first()
    if space is None:
        return False
    ready = FaceEnrolment.objects.filter(student=student, status=FaceEnrolment.Status.READY)
    return ready.exists() and not ready.filter(embeddings__backbone=space.name).exists()


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
            return gettext("set by hand for this course")
        if self.source == "site":
            return gettext("the site's setting for every course")
        if self.source == "calibrated":
            return ngettext(
                "calibrated from the %(n)s enrolled student of this course",
                "calibrated from the %(n)s enrolled students of this course", self.people,
            ) % {"n": self.people}
        if self.people:
            return ngettext(
                "the face model's default: %(n)s enrolled student is too few to calibrate from (5 are needed)",
                "the face model's default: %(n)s enrolled students are too few to calibrate from (5 are needed)",
                self.people,
            ) % {"n": self.people}
        return gettext("the face model's default (nobody is enrolled yet)")


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
