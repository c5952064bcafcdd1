"""The management area's lists: people, courses and memberships, searched and filtered."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from attendance.models import Course, CourseMembership, User


def _words(query: str) -> list[str]:
    return query.split()[:5]


def people_search(*, query: str = "", role: str = "", active: str = "", course: Course | None = None
                  ) -> QuerySet[User]:
    people = User.objects.annotate(course_count=Count("memberships", distinct=True),
                                   teaching_count=Count("taught_courses", distinct=True))
    for word in _words(query):
        people = people.filter(Q(username__icontains=word) | Q(first_name__icontains=word)
                               | Q(last_name__icontains=word) | Q(email__icontains=word)
                               | Q(student_number__icontains=word))
    if role:
        people = people.filter(role=role)
    if active in ("yes", "no"):
        people = people.filter(is_active=active == "yes")
    if course is not None:
        people = people.filter(Q(memberships__course=course) | Q(taught_courses=course))
    return people.order_by("last_name", "first_name", "username")


def course_search(*, query: str = "", term: str = "") -> QuerySet[Course]:
    courses = Course.objects.annotate(student_count=Count("memberships", distinct=True),
                                      lecturer_count=Count("lecturers", distinct=True))
    for word in _words(query):
        courses = courses.filter(Q(code__icontains=word) | Q(title__icontains=word))
    if term:
        courses = courses.filter(term=term)
    return courses.prefetch_related("lecturers").order_by("-term", "code")


def terms() -> list[str]:
    return list(Course.objects.order_by("-term").values_list("term", flat=True).distinct())


def membership_search(*, courses: QuerySet[Course], query: str = "", course: Course | None = None, term: str = ""
                      ) -> QuerySet[CourseMembership]:
    memberships = CourseMembership.objects.filter(course__in=courses).select_related("student", "course")
    for word in _words(query):
        memberships = memberships.filter(
            Q(student__first_name__icontains=word) | Q(student__last_name__icontains=word)
            | Q(student__student_number__icontains=word) | Q(student__email__icontains=word)
            | Q(student__username__icontains=word))
    if course is not None:
        memberships = memberships.filter(course=course)
    if term:
        memberships = memberships.filter(course__term=term)
    return memberships.order_by("course__code", "student__last_name", "student__first_name")
