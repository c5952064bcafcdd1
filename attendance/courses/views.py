"""The home page: each role's courses (an admin's overview, a lecturer's courses, a student's own)."""

from __future__ import annotations

from typing import cast

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from attendance.courses import selectors
from attendance.models import User


@login_required
def home(request: HttpRequest) -> HttpResponse:
    user = cast(User, request.user)
    if user.is_admin:
        return render(request, "attendance/home_admin.html", {"stats": selectors.admin_overview()})
    if user.is_lecturer:
        context: dict[str, object] = {
            "courses": selectors.lecturer_courses(lecturer=user),
            "today": selectors.lecturer_sessions_on(lecturer=user),
        }
        return render(request, "attendance/home_lecturer.html", context)
    context = {
        "courses": selectors.student_courses(student=user),
        "next_sessions": selectors.student_next_sessions(student=user),
        "enrolment": selectors.student_current_enrolment(student=user),
        "reenrolment_needed": selectors.student_reenrolment_needed(student=user),
    }
    return render(request, "attendance/home_student.html", context)
