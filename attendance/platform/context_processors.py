from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse


def _link(label: str, name: str) -> dict[str, str] | None:
    try:
        return {"label": label, "url": reverse(name)}
    except NoReverseMatch:  # a page that a later part of the app has not added yet
        return None


def navigation(request: HttpRequest) -> dict[str, Any]:
    """The navigation bar's links for the signed-in user's role."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_links": []}
    names: list[tuple[str, str]] = [("Home", "home")]
    if user.is_admin:
        names += [("Courses", "course-list"), ("Reports", "report-index"), ("Manage", "campus-home")]
    elif user.is_lecturer:
        names += [("My courses", "course-list"), ("Reports", "report-index"), ("Rosters", "campus-home")]
    else:
        names += [("Enrol my face", "enrolment"), ("My attendance", "my-attendance"), ("My warnings", "my-warnings")]
    links = [link for label, name in names if (link := _link(label, name))]
    return {"nav_links": links}
