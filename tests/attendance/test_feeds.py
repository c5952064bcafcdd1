"""Calendar feeds, parsed back with the icalendar library: events, stable UIDs, the time zone, groups,
and a reset link that makes the old URL 404."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest
from django.urls import reverse

from attendance.feeds.services import FeedError, feed_get_or_create, feed_revoke
from attendance.models import Course, CourseMembership, Session
from attendance.timetable.services import SeriesSpec, series_save

ZAGREB = ZoneInfo("Europe/Zagreb")


@pytest.fixture(autouse=True)
def zagreb(settings):
    settings.TIME_ZONE = "Europe/Zagreb"


def _series(course, lecturer, **changes):
    spec = dict(
        title="Lecture",
        weekdays=[1],
        start_time=time(10, 15),
        end_time=time(11, 45),
        every_weeks=1,
        starts_on=date(2026, 10, 19),
        ends_on=date(2026, 11, 2),
    )
    spec.update(changes)
    return series_save(course=course, by=lecturer, spec=SeriesSpec(**spec))[0]  # type: ignore[arg-type]


def _fetch(client, feed) -> icalendar.Calendar:
    response = client.get(reverse("feed-ics", args=[feed.token]))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/calendar")
    cal = icalendar.Calendar.from_ical(response.content)
    assert isinstance(cal, icalendar.Calendar)
    return cal


def _events(cal) -> dict[str, icalendar.Event]:
    return {str(e["UID"]): e for e in cal.walk("VEVENT")}


def test_a_course_feed_has_every_session_in_local_time_with_its_time_zone(client, course, lecturer):
    series = _series(course, lecturer)
    feed = feed_get_or_create(owner=lecturer, course=course)
    cal = _fetch(client, feed)
    assert str(cal["VERSION"]) == "2.0" and cal["PRODID"]
    zones = [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")]
    assert zones == ["Europe/Zagreb"]
    events = _events(cal)
    sessions = list(series.sessions.order_by("scheduled_start"))
    assert set(events) == {f"session-{s.pk}@rollcall" for s in sessions}
    for session in sessions:
        event = events[f"session-{session.pk}@rollcall"]
        start, end = event.decoded("DTSTART"), event.decoded("DTEND")
        assert start == session.scheduled_start and end == session.scheduled_end
        assert str(start.tzinfo) == "Europe/Zagreb" and (start.hour, start.minute) == (10, 15)  # both sides of DST
        assert event["DTSTART"].params["TZID"] == "Europe/Zagreb"
        assert str(event["SUMMARY"]) == f"{course.code} Lecture" and "DTSTAMP" in event


def test_uids_stay_the_same_when_a_series_moves_and_an_event_updates(client, course, lecturer):
    series = _series(course, lecturer)
    feed = feed_get_or_create(owner=lecturer, course=course)
    before = _events(_fetch(client, feed))
    _series_moved = series_save(
        course=course,
        by=lecturer,
        series=series,
        spec=SeriesSpec(
            title="Lecture",
            weekdays=[1],
            start_time=time(12, 0),
            end_time=time(13, 0),
            every_weeks=1,
            starts_on=date(2026, 10, 19),
            ends_on=date(2026, 11, 2),
        ),
    )
    after = _events(_fetch(client, feed))
    assert set(after) == set(before)
    assert {e.decoded("DTSTART").astimezone(ZAGREB).hour for e in after.values()} == {12}


def test_a_students_feed_has_their_courses_but_not_another_groups_sessions(client, course, lecturer, make_user):
    student, other = make_user("student"), make_user("student")
    for s in (student, other):
        CourseMembership.objects.create(course=course, student=s)
    _series(course, lecturer, title="Lecture")
    _series(course, lecturer, title="Lab B", weekdays=[3], students=[other])
    elsewhere = Course.objects.create(code="ZZ9", title="Not mine", term="2026-autumn")
    Session.objects.create(course=elsewhere, scheduled_start=datetime(2026, 10, 20, 9, tzinfo=ZAGREB))
    summaries = {str(e["SUMMARY"]) for e in _fetch(client, feed_get_or_create(owner=student)).walk("VEVENT")}
    assert summaries == {f"{course.code} Lecture"}
    other_summaries = [str(e["SUMMARY"]) for e in _fetch(client, feed_get_or_create(owner=other)).walk("VEVENT")]
    assert sorted(set(other_summaries)) == [f"{course.code} Lab B", f"{course.code} Lecture"]
    assert len(other_summaries) == 3 + 2  # three Mondays, two Wednesdays; no duplicates from the group join


def test_a_lecturers_feed_has_only_their_courses_and_an_unplanned_session_lasts_an_hour(
    client, course, lecturer, make_user
):
    _series(course, lecturer)
    theirs = Course.objects.create(code="OT1", title="Other", term="2026-autumn")
    theirs.lecturers.add(make_user("lecturer"))
    Session.objects.create(course=theirs, scheduled_start=datetime(2026, 10, 20, 9, tzinfo=ZAGREB))
    opened = datetime(2026, 10, 21, 14, tzinfo=ZAGREB)
    adhoc = Session.objects.create(course=course, status="open", opened_at=opened, title="Extra")
    events = _events(_fetch(client, feed_get_or_create(owner=lecturer)))
    assert len(events) == 4 and all(str(e["SUMMARY"]).startswith(course.code) for e in events.values())
    extra = events[f"session-{adhoc.pk}@rollcall"]
    assert extra.decoded("DTEND") - extra.decoded("DTSTART") == timedelta(hours=1)


def test_a_reset_link_gives_a_new_url_and_the_old_one_404s(client, course, lecturer):
    feed = feed_get_or_create(owner=lecturer, course=course)
    old = feed.token
    assert client.get(reverse("feed-ics", args=[old])).status_code == 200
    feed_revoke(feed=feed, by=lecturer)
    assert feed.token != old and len(feed.token) >= 40
    assert client.get(reverse("feed-ics", args=[old])).status_code == 404
    assert client.get(reverse("feed-ics", args=[feed.token])).status_code == 200
    assert client.get(reverse("feed-ics", args=["made-up-token"])).status_code == 404


def test_a_lecturer_removed_from_the_course_loses_its_feed_and_others_cannot_get_one(
    client, course, lecturer, make_user, student
):
    feed = feed_get_or_create(owner=lecturer, course=course)
    course.lecturers.remove(lecturer)
    assert client.get(reverse("feed-ics", args=[feed.token])).status_code == 404
    with pytest.raises(FeedError):
        feed_get_or_create(owner=student, course=course)
    with pytest.raises(FeedError):
        feed_revoke(feed=feed, by=make_user("lecturer"))


def test_the_calendar_page_makes_and_resets_links(client, course, lecturer):
    client.force_login(lecturer)
    client.post(reverse("feed-create"), {"course": course.pk})
    client.post(reverse("feed-create"))
    page = client.get(reverse("feed-list")).content.decode()
    tokens = {f.course_id: f.token for f in lecturer.calendar_feeds.all()}
    assert set(tokens) == {None, course.pk} and all(f"/calendar/{t}.ics" in page for t in tokens.values())
    client.post(reverse("feed-revoke"), {"course": course.pk})
    assert lecturer.calendar_feeds.get(course=course).token != tokens[course.pk]
    assert lecturer.calendar_feeds.get(course=None).token == tokens[None]
