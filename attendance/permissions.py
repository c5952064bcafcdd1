"""Who may see and manage what: decided here, once per resource, for both the HTML pages and the API.

Admins see and manage everything. Lecturers see and manage their own courses, those courses'
sessions and records, and the students taking them. Students see only their own enrolment and
attendance (and the bare facts of the courses and sessions they attend). Views never decide access
by hiding links: they take their rows from these querysets or ask these predicates.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet

from attendance.models import AttendanceRecord, Course, CourseMembership, FaceEnrolment, Session, User

AnyUser = User | AnonymousUser


def _is_signed_in(user: AnyUser) -> bool:
    return bool(user.is_authenticated and user.is_active)


def is_staff_role(user: AnyUser) -> bool:
    """Admins and lecturers: the people who look at other people's attendance."""
    return _is_signed_in(user) and isinstance(user, User) and (user.is_admin or user.is_lecturer)


# --- Courses ----------------------------------------------------------------------------------

def courses_visible_to(user: AnyUser) -> QuerySet[Course]:
    if not _is_signed_in(user) or not isinstance(user, User):
        return Course.objects.none()
    if user.is_admin:
        return Course.objects.all()
    if user.is_lecturer:
        return Course.objects.filter(lecturers=user)
    return Course.objects.filter(memberships__student=user)


def courses_managed_by(user: AnyUser) -> QuerySet[Course]:
    """Courses whose reports, sessions and records the user may see and change."""
    if not is_staff_role(user):
        return Course.objects.none()
    return courses_visible_to(user)


def can_manage_course(user: AnyUser, course: Course) -> bool:
    if not is_staff_role(user):
        return False
    assert isinstance(user, User)
    if user.is_admin:
        return True
    return course.lecturers.filter(pk=user.pk).exists()


# --- Sessions ---------------------------------------------------------------------------------

def sessions_visible_to(user: AnyUser) -> QuerySet[Session]:
    """Sessions the user may see: all of a managed course's, and a student's own courses' sessions."""
    return Session.objects.filter(course__in=courses_visible_to(user))


def sessions_managed_by(user: AnyUser) -> QuerySet[Session]:
    return Session.objects.filter(course__in=courses_managed_by(user))


def can_manage_session(user: AnyUser, session: Session) -> bool:
    return can_manage_course(user, session.course)


# --- Students and their records ----------------------------------------------------------------

def students_visible_to(user: AnyUser) -> QuerySet[User]:
    """People whose enrolment and attendance the user may see: themselves, or a managed course's students."""
    if not _is_signed_in(user) or not isinstance(user, User):
        return User.objects.none()
    if user.is_admin:
        return User.objects.filter(role=User.Role.STUDENT)
    if user.is_lecturer:
        member_ids = CourseMembership.objects.filter(course__lecturers=user).values("student_id")
        return User.objects.filter(pk__in=member_ids)
    return User.objects.filter(pk=user.pk)


def can_view_student(user: AnyUser, student: User) -> bool:
    return students_visible_to(user).filter(pk=student.pk).exists()


def records_visible_to(user: AnyUser) -> QuerySet[AttendanceRecord]:
    if not _is_signed_in(user) or not isinstance(user, User):
        return AttendanceRecord.objects.none()
    if user.is_admin:
        return AttendanceRecord.objects.all()
    if user.is_lecturer:
        return AttendanceRecord.objects.filter(session__course__lecturers=user)
    return AttendanceRecord.objects.filter(student=user)


def can_change_record(user: AnyUser, session: Session) -> bool:
    """Setting a record by hand is managing the session's course."""
    return can_manage_session(user, session)


# --- Privacy ----------------------------------------------------------------------------------

def can_withdraw_consent_for(user: AnyUser, student: User) -> bool:
    """A student withdraws their own consent; an admin may do it for them on request. Lecturers may not."""
    if not _is_signed_in(user) or not isinstance(user, User) or not student.is_student:
        return False
    return user.pk == student.pk or user.is_admin


def can_export_data_of(user: AnyUser, student: User) -> bool:
    """The JSON export of a student's personal data: the student, or an admin answering a request."""
    return can_withdraw_consent_for(user, student)


def can_revoke_tokens(user: AnyUser) -> bool:
    return _is_signed_in(user) and isinstance(user, User) and user.is_admin



# --- Face enrolment ---------------------------------------------------------------------------

def can_enrol_face_of(user: AnyUser, student: User) -> bool:
    """A student enrols their own face; an admin may enrol a student on their behalf. Lecturers may not:
    biometric data is given by the student, not collected about them."""
    if not _is_signed_in(user) or not isinstance(user, User) or not student.is_student:
        return False
    return user.pk == student.pk or user.is_admin


def enrolments_visible_to(user: AnyUser) -> QuerySet[FaceEnrolment]:
    """Enrolment attempts (status and progress, never the video) of the students the user may see."""
    return FaceEnrolment.objects.filter(student__in=students_visible_to(user))
