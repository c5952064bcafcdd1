"""Course memberships: who is on a course, and the course's index following them."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext

from attendance.courses.indexes import course_index_rebuild
from attendance.models import Course, CourseMembership, FaceEmbedding, FaceEnrolment, User


class MembershipError(Exception):
    """A membership that cannot be made: `code` for programs, `message` for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _has_face_data(student: User) -> bool:
    return FaceEmbedding.objects.filter(student=student, enrolment__status=FaceEnrolment.Status.READY).exists()


def course_membership_add(*, course: Course, student: User, rebuild_index: bool = True) -> CourseMembership:
    """Put a student on a course; the course's index then includes their face (rebuilt at once).

    Adding someone already on the course changes nothing. A student without face data leaves
    the index as it is, so it is not rebuilt.
    """
    if not student.is_student:
        raise MembershipError(
            code="not_a_student", message=gettext("%(name)s is not a student.") % {"name": student.display_name}
        )
    with transaction.atomic():
        membership, created = CourseMembership.objects.get_or_create(course=course, student=student)
        if created and rebuild_index and _has_face_data(student):
            course_index_rebuild(course=course)
    return membership


def course_membership_remove(*, course: Course, student: User, rebuild_index: bool = True) -> bool:
    """Take a student off a course and their face out of its index; False if they were not on it."""
    with transaction.atomic():
        deleted, _ = CourseMembership.objects.filter(course=course, student=student).delete()
        if deleted and rebuild_index and _has_face_data(student):
            course_index_rebuild(course=course)
    return bool(deleted)


def course_lecturer_add(*, course: Course, lecturer: User) -> None:
    """Make a lecturer teach a course; anyone else is refused (the database refuses them too)."""
    if not lecturer.is_lecturer:
        raise MembershipError(
            code="not_a_lecturer", message=gettext("%(name)s is not a lecturer.") % {"name": lecturer.display_name}
        )
    course.lecturers.add(lecturer)


def course_lecturer_remove(*, course: Course, lecturer: User) -> bool:
    removed = course.lecturers.filter(pk=lecturer.pk).exists()
    course.lecturers.remove(lecturer)
    return removed


def user_role_problem(*, user: User, role: str, is_superuser: bool | None = None) -> str:
    """Why `user` cannot take `role` now ('' when it can): the courses they are on in their old role."""
    superuser = user.is_superuser if is_superuser is None else is_superuser
    if user.pk is None:
        return ""
    if (role != User.Role.STUDENT or superuser) and CourseMembership.objects.filter(student=user).exists():
        return gettext("%(name)s is on courses as a student: take them off those courses first.") % {
            "name": user.display_name}
    if role != User.Role.LECTURER and Course.objects.filter(lecturers=user).exists():
        return gettext("%(name)s teaches courses: take them off those courses first.") % {"name": user.display_name}
    return ""
