"""The iCalendar text of a feed, built with the maintained `icalendar` library.

UIDs are the session's id and never change, so an edited session updates the event in a calendar
app instead of adding a second one; SEQUENCE is not tracked, LAST-MODIFIED-less clients still
replace events by UID on every refresh. Times carry the site's TZID with its VTIMEZONE."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

import icalendar
from django.utils import timezone

from attendance.models import Session

PRODID = "-//Rollcall//Attendance timetable//EN"
UNPLANNED_LENGTH = timedelta(hours=1)  # a session started by hand with no planned end


def session_uid(session: Session) -> str:
    return f"session-{session.pk}@rollcall"


def calendar_ics(*, name: str, sessions: Iterable[Session], zone_name: str) -> bytes:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(zone_name)
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", name)
    cal.add("x-wr-timezone", zone_name)
    stamp = timezone.now()
    for session in sessions:
        start = session.scheduled_start or session.opened_at
        if start is None:
            continue
        end = session.scheduled_end or session.closed_at or start + UNPLANNED_LENGTH
        if end <= start:
            end = start + UNPLANNED_LENGTH
        event = icalendar.Event()
        event.add("uid", session_uid(session))
        event.add("dtstamp", stamp)
        event.add("dtstart", start.astimezone(zone))
        event.add("dtend", end.astimezone(zone))
        title = session.title or session.course.title
        event.add("summary", f"{session.course.code} {title}")
        event.add("description", f"{session.course.code} {session.course.title} ({session.course.term})")
        if session.status == Session.Status.CLOSED:
            event.add("status", "CONFIRMED")
        event.add("categories", [session.course.code])
        cal.add_component(event)
    cal.add_missing_timezones()
    return cal.to_ical()
