"""Reads about the timetable: a course's series (a lecturer's classes of the day are on the home page,
courses.selectors.lecturer_sessions_on)."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from attendance.models import Course, Session, TimetableSeries


def course_series(*, course: Course) -> QuerySet[TimetableSeries]:
    return course.series.annotate(
        planned=Count("sessions", filter=Q(sessions__status=Session.Status.SCHEDULED), distinct=True),
        held=Count("sessions", filter=~Q(sessions__status=Session.Status.SCHEDULED), distinct=True),
        group_size=Count("students", distinct=True),
    ).order_by("starts_on", "start_time")
