from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.translation import pgettext


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
    names: list[tuple[str, str]] = [(pgettext("navigation", "Home"), "home")]
    if user.is_admin:
        names += [
            (pgettext("navigation", "Courses"), "course-list"),
            (pgettext("navigation", "Reports"), "report-index"),
            (pgettext("navigation", "Excuses"), "excuse-inbox"),
            (pgettext("navigation", "Manage"), "campus-home"),
        ]
    elif user.is_lecturer:
        names += [
            (pgettext("navigation", "My courses"), "course-list"),
            (pgettext("navigation", "Reports"), "report-index"),
            (pgettext("navigation", "Excuses"), "excuse-inbox"),
            (pgettext("navigation", "Rosters"), "campus-home"),
            (pgettext("navigation", "Calendar"), "feed-list"),
        ]
    else:
        names += [
            (pgettext("navigation", "Enrol my face"), "enrolment"),
            (pgettext("navigation", "My attendance"), "my-attendance"),
            (pgettext("navigation", "My excuses"), "excuse-inbox"),
            (pgettext("navigation", "My warnings"), "my-warnings"),
            (pgettext("navigation", "Calendar"), "feed-list"),
        ]
    links = [link for label, name in names if (link := _link(label, name))]
    return {"nav_links": links}
