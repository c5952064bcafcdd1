"""The feed itself (no sign-in: the token is the credential) and the page that hands out the links."""

from __future__ import annotations

from typing import cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST, require_safe

from attendance import permissions
from attendance.feeds import selectors
from attendance.feeds.ics import calendar_ics
from attendance.feeds.services import FeedError, feed_get_or_create, feed_revoke
from attendance.models import CalendarFeed, Course, User
from attendance.platform.language import supported


@require_safe  # GET and HEAD: some calendar apps look before they download
def feed_ics(request: HttpRequest, token: str) -> HttpResponse:
    feed = selectors.feed_by_token(token)
    if feed is None:
        raise Http404(_("No such calendar."))
    # A calendar app fetches without signing in or a useful Accept-Language: the owner's language it is.
    with translation.override(supported(feed.owner.language) or settings.LANGUAGE_CODE):
        if feed.course:
            name = _("%(code)s sessions") % {"code": feed.course.code}
        else:
            name = _("%(name)s: classes") % {"name": feed.owner.display_name}
        body = calendar_ics(name=name, sessions=selectors.feed_sessions(feed=feed), zone_name=settings.TIME_ZONE)
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="rollcall.ics"'
    response["Cache-Control"] = "private, max-age=300"
    response["Referrer-Policy"] = "no-referrer"
    return response


@login_required
@require_GET
def feed_list(request: HttpRequest) -> HttpResponse:
    user = cast(User, request.user)
    feeds = {f.course_id: f for f in CalendarFeed.objects.filter(owner=user)}
    courses = list(permissions.courses_managed_by(user).order_by("-term", "code"))

    def url(feed: CalendarFeed | None) -> str:
        return request.build_absolute_uri(reverse("feed-ics", args=[feed.token])) if feed else ""

    context = {
        "personal": url(feeds.get(None)),
        "personal_allowed": user.is_lecturer or user.is_student,
        "courses": [(course, url(feeds.get(course.pk))) for course in courses],
    }
    return render(request, "feeds/feeds.html", context)


@login_required
@require_POST
def feed_create(request: HttpRequest) -> HttpResponse:
    user = cast(User, request.user)
    course = get_object_or_404(Course, pk=request.POST["course"]) if request.POST.get("course") else None
    try:
        feed_get_or_create(owner=user, course=course)
    except FeedError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Calendar link ready: add it to your calendar app as a subscription."))
    return redirect("feed-list")


@login_required
@require_POST
def feed_revoke_view(request: HttpRequest) -> HttpResponse:
    user = cast(User, request.user)
    course_id = request.POST.get("course") or None
    feed = get_object_or_404(CalendarFeed, owner=user, course_id=course_id)
    try:
        feed_revoke(feed=feed, by=user)
    except FeedError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("The old link no longer works; subscribe again with the new one."))
    return redirect("feed-list")
