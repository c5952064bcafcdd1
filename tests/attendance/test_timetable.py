"""The timetable: series in local time across daylight-saving changes and the new year, skipped
dates, every N weeks, editing after some sessions were held, groups, CSV imports, today's classes."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from attendance.models import AttendanceRecord, CourseMembership, Session, TimetableSeries
from attendance.sessions.records import attendance_record_set
from attendance.sessions.services import session_close, session_open
from attendance.timetable.csvimport import TimetableCsvError, sessions_import_csv
from attendance.timetable.planning import local_datetime, parse_skip_dates, series_dates
from attendance.timetable.services import SeriesSpec, TimetableError, series_delete, series_save

ZAGREB = ZoneInfo("Europe/Zagreb")


@pytest.fixture(autouse=True)
def zagreb(settings):
    settings.TIME_ZONE = "Europe/Zagreb"


def _spec(**changes) -> SeriesSpec:
    base = dict(
        title="Lecture",
        weekdays=[1],
        start_time=time(10, 15),
        end_time=time(11, 45),
        every_weeks=1,
        starts_on=date(2026, 10, 19),
        ends_on=date(2026, 11, 2),
    )
    base.update(changes)
    return SeriesSpec(**base)  # type: ignore[arg-type]


def _starts(series: TimetableSeries) -> list[datetime]:
    return [s.scheduled_start.astimezone(ZAGREB) for s in series.sessions.order_by("scheduled_start")]


def test_a_class_stays_at_its_local_time_across_the_october_daylight_saving_change(course, lecturer):
    # Croatia leaves summer time on the last Sunday of October (2026-10-25): UTC+2, then UTC+1.
    series, result = series_save(course=course, by=lecturer, spec=_spec())
    assert result.created == 3
    local = _starts(series)
    assert [d.date() for d in local] == [date(2026, 10, 19), date(2026, 10, 26), date(2026, 11, 2)]
    assert {(d.hour, d.minute) for d in local} == {(10, 15)}
    utc = [d.astimezone(UTC) for d in local]
    assert [(d.hour, d.minute) for d in utc] == [(8, 15), (9, 15), (9, 15)]
    ends = [s.scheduled_end - s.scheduled_start for s in series.sessions.all()]
    assert set(ends) == {timedelta(minutes=90)}


def test_a_time_inside_the_spring_forward_gap_becomes_the_time_after_it(settings):
    # 2027-03-28 02:30 does not exist in Zagreb (clocks go from 02:00 to 03:00).
    moment = local_datetime(date(2027, 3, 28), time(2, 30), ZAGREB)
    assert (moment.hour, moment.minute) == (3, 30) and moment.utcoffset() == timedelta(hours=2)


def test_a_term_crossing_the_new_year_with_the_holidays_skipped(course, lecturer):
    skip = parse_skip_dates("2026-12-24 to 2027-01-06")
    series, _ = series_save(
        course=course,
        by=lecturer,
        spec=_spec(
            weekdays=[4],
            starts_on=date(2026, 12, 10),
            ends_on=date(2027, 1, 21),
            skip_dates=skip,
        ),
    )
    assert [d.date() for d in _starts(series)] == [
        date(2026, 12, 10),
        date(2026, 12, 17),
        date(2027, 1, 7),
        date(2027, 1, 14),
        date(2027, 1, 21),
    ]
    assert "2026-12-31" in series.skip_dates and "2027-01-06" in series.skip_dates


def test_skipped_single_dates_and_every_second_week():
    days = series_dates(
        weekdays=[1, 3],
        every_weeks=2,
        starts_on=date(2026, 10, 7),
        ends_on=date(2026, 11, 4),
        skip=[date(2026, 10, 21)],
    )
    # Week of 2026-10-05 (its Wednesday only, Monday is before the start), then two weeks later...
    assert days == [date(2026, 10, 7), date(2026, 10, 19), date(2026, 11, 2), date(2026, 11, 4)]


@pytest.mark.parametrize(
    "text, message",
    [
        ("2026-13-01", "not a date"),
        ("2027-01-06 to 2026-12-24", "ends before"),
        ("24.12.2026", "YYYY-MM-DD"),
    ],
)
def test_skipped_dates_in_a_wrong_form_are_refused_in_words(text, message):
    with pytest.raises(ValueError, match=message):
        parse_skip_dates(text)


def test_editing_a_series_after_some_sessions_were_held_never_changes_the_held_ones(course, lecturer, make_user):
    student = make_user("student")
    CourseMembership.objects.create(course=course, student=student)
    series, _ = series_save(course=course, by=lecturer, spec=_spec(weekdays=[1, 3], ends_on=date(2026, 11, 6)))
    sessions = list(series.sessions.order_by("scheduled_start"))
    assert len(sessions) == 6
    held = sessions[:2]
    for s in held:
        session_open(course=course, session=s, by=lecturer)
    attendance_record_set(session=held[0], student=student, status="present", by=lecturer)
    session_close(session=held[0], by=lecturer)
    before = {
        s.pk: (s.scheduled_start, s.scheduled_end, s.title) for s in Session.objects.filter(pk__in=[h.pk for h in held])
    }

    _, result = series_save(
        course=course,
        by=lecturer,
        series=series,
        spec=_spec(
            title="Lecture (room B)",
            weekdays=[1, 3],
            start_time=time(12, 0),
            end_time=time(13, 30),
            ends_on=date(2026, 11, 6),
        ),
    )
    assert result.held == 2 and result.created == 0 and result.updated == 4 and result.removed == 0
    after = {s.pk: (s.scheduled_start, s.scheduled_end, s.title) for s in Session.objects.filter(pk__in=before)}
    assert after == before
    assert Session.objects.get(pk=held[0].pk).status == Session.Status.CLOSED
    assert Session.objects.get(pk=held[1].pk).status == Session.Status.OPEN
    assert AttendanceRecord.objects.get(session=held[0], student=student).status == "present"
    planned = series.sessions.filter(status=Session.Status.SCHEDULED)
    assert {(s.scheduled_start.astimezone(ZAGREB).hour, s.title) for s in planned} == {(12, "Lecture (room B)")}
    # One session a day: the held days get no second session.
    assert series.sessions.count() == 6

    # Dropping Wednesdays and ending a week earlier removes only planned sessions.
    _, result = series_save(
        course=course, by=lecturer, series=series, spec=_spec(weekdays=[1], ends_on=date(2026, 10, 31))
    )
    assert result.held == 2 and set(Session.objects.filter(pk__in=before).values_list("pk", flat=True)) == set(before)
    assert series.sessions.filter(status=Session.Status.SCHEDULED).count() == 1  # Mon 26 Oct

    removed = series_delete(series=series, by=lecturer)
    assert removed == 1 and Session.objects.filter(pk__in=before, series__isnull=True).count() == 2


def test_a_group_series_marks_only_its_group_absent_when_closed(course, lecturer, make_user):
    group, others = [make_user("student") for _ in range(2)], [make_user("student") for _ in range(2)]
    for s in group + others:
        CourseMembership.objects.create(course=course, student=s)
    series, _ = series_save(course=course, by=lecturer, spec=_spec(title="Lab A", students=group))
    session = session_open(course=course, session=series.sessions.first(), by=lecturer)
    session_close(session=session, by=lecturer)
    assert set(session.records.values_list("student_id", flat=True)) == {s.pk for s in group}


def test_a_series_is_refused_in_words_for_bad_plans_and_other_lecturers(course, lecturer, make_user):
    with pytest.raises(TimetableError, match="end time must be after"):
        series_save(course=course, by=lecturer, spec=_spec(end_time=time(9, 0)))
    with pytest.raises(TimetableError, match="more than 400"):
        series_save(course=course, by=lecturer, spec=_spec(weekdays=[1, 2, 3, 4, 5, 6, 7], ends_on=date(2028, 10, 1)))
    with pytest.raises(TimetableError, match="Not on"):
        series_save(course=course, by=lecturer, spec=_spec(students=[make_user("student")]))
    with pytest.raises(TimetableError, match="Only an admin or a lecturer"):
        series_save(course=course, by=make_user("lecturer"), spec=_spec())
    assert not Session.objects.exists() and not TimetableSeries.objects.exists()


def test_sessions_are_imported_from_csv_and_a_rerun_adds_no_duplicates(course, lecturer):
    data = "\ufeffDate,Start,End,Title\n2026-10-26,10:15,11:45,Lecture 1\n\n2026-11-02,10:15,11:45,\n".encode()
    result = sessions_import_csv(course=course, by=lecturer, data=data)
    assert (result.created, result.already_planned) == (2, 0)
    first = Session.objects.get(title="Lecture 1")
    assert first.scheduled_start == datetime(2026, 10, 26, 9, 15, tzinfo=UTC)  # after the change: UTC+1
    assert first.scheduled_end - first.scheduled_start == timedelta(minutes=90)
    assert sessions_import_csv(course=course, by=lecturer, data=data).already_planned == 2
    assert Session.objects.count() == 2


def test_a_csv_with_mistakes_imports_nothing_and_names_each_line(course, lecturer):
    data = (
        b"date,start,end\n2026-10-26,10:15,11:45\n2026-02-30,10:15,11:45\n2026-10-27,11:00,10:00\n2026-10-28,9h,10h\n"
    )
    with pytest.raises(TimetableCsvError) as caught:
        sessions_import_csv(course=course, by=lecturer, data=data)
    errors = caught.value.errors
    assert errors[0].startswith("Line 3: '2026-02-30' is not a date")
    assert errors[1].startswith("Line 4: the end time 10:00 is not after") and errors[2].startswith("Line 5: ")
    assert not Session.objects.exists()
    with pytest.raises(TimetableCsvError, match="not UTF-8"):
        sessions_import_csv(
            course=course, by=lecturer, data="date,start,end\n2026-10-26,10:15,11:45 \xe9t\xe9".encode("latin-1")
        )
    with pytest.raises(TimetableCsvError, match="missing: end"):
        sessions_import_csv(course=course, by=lecturer, data=b"date,start\n2026-10-26,10:15\n")


def test_the_lecturer_plans_a_term_in_one_form_and_sees_errors_in_words(client, course, lecturer, make_user):
    client.force_login(lecturer)
    url = reverse("course-timetable", args=[course.pk])
    form = {
        "title": "Lecture",
        "weekdays": ["1", "4"],
        "start_time": "10:15",
        "end_time": "11:45",
        "every_weeks": "1",
        "starts_on": "2026-10-19",
        "ends_on": "2026-11-01",
        "skip_dates": "2026-10-22",
    }
    response = client.post(url, form, follow=True)
    assert response.status_code == 200 and "Timetable saved: 3 planned" in response.content.decode()
    assert Session.objects.filter(course=course).count() == 3
    bad = client.post(url, {**form, "end_time": "09:00", "skip_dates": "soon"})
    assert bad.status_code == 400
    page = bad.content.decode()
    assert "The end time must be after the start time." in page and "is not a date or a range" in page
    assert Session.objects.filter(course=course).count() == 3

    series = TimetableSeries.objects.get()
    edit = client.post(
        reverse("series-edit", args=[course.pk, series.pk]),
        {**form, "start_time": "08:15", "end_time": "09:45"},
        follow=True,
    )
    assert "3 moved" in edit.content.decode()

    upload = SimpleUploadedFile(
        "plan.csv", b"date,start,end,title\n2026-12-01,08:00,09:00,Exam\n", content_type="text/csv"
    )
    assert (
        "1 session imported."
        in client.post(reverse("sessions-import", args=[course.pk]), {"file": upload}, follow=True).content.decode()
    )

    client.force_login(make_user("lecturer"))
    assert client.get(url).status_code == 403


def test_the_lecturers_home_shows_todays_sessions_and_opens_one_in_one_click(client, course, lecturer, make_user):
    # Noon of the local day, whatever the time of the run: never tomorrow, never yesterday.
    noon = datetime.combine(timezone.now().astimezone(ZAGREB).date(), time(12), tzinfo=ZAGREB)
    today = Session.objects.create(
        course=course, title="Today's lecture", scheduled_start=noon, scheduled_end=noon + timedelta(minutes=90)
    )
    Session.objects.create(course=course, title="Next week", scheduled_start=noon + timedelta(days=7))
    other = make_user("lecturer")
    client.force_login(lecturer)
    page = client.get(reverse("home")).content.decode()
    assert "Today&#x27;s lecture" in page and "Next week" not in page and f'data-session="{today.pk}"' in page
    assert reverse("session-open", args=[today.pk]) in page
    response = client.post(reverse("session-open", args=[today.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("session-checkin", args=[today.pk])
    assert Session.objects.get(pk=today.pk).status == Session.Status.OPEN
    client.force_login(other)
    assert f'data-session="{today.pk}"' not in client.get(reverse("home")).content.decode()


def test_another_groups_sessions_do_not_count_against_a_students_rate(course, lecturer, make_user):
    from attendance.reports.rates import Period, rates_for
    from attendance.reports.selectors import course_sessions

    in_group, outside = make_user("student"), make_user("student")
    memberships = [CourseMembership.objects.create(course=course, student=s,
                                                   joined_at=timezone.now() - timedelta(days=400))
                   for s in (in_group, outside)]
    lab, _ = series_save(course=course, by=lecturer, spec=_spec(title="Lab A", students=[in_group]))
    lecture = Session.objects.create(course=course, title="Lecture", scheduled_start=timezone.now() - timedelta(days=1))
    for session in (lab.sessions.order_by("scheduled_start").first(), lecture):
        opened = session_open(course=course, session=session, by=lecturer)
        attendance_record_set(session=opened, student=in_group, status="present", by=lecturer)
        session_close(session=opened, by=lecturer)
    rates = rates_for(memberships)
    assert (rates[memberships[0].pk].held, rates[memberships[0].pk].attended) == (2, 2)
    # The student outside the group missed only the lecture: one held, none attended, not two.
    assert (rates[memberships[1].pk].held, rates[memberships[1].pk].attended) == (1, 0)
    expected = {s.title: s.expected for s in course_sessions(course=course, period=Period())}
    assert expected == {"Lab A": 1, "Lecture": 2}


def test_a_student_sees_their_next_classes_but_not_another_groups(client, course, lecturer, make_user):
    mine, other = make_user("student"), make_user("student")
    for s in (mine, other):
        CourseMembership.objects.create(course=course, student=s)
    start = timezone.localdate() + timedelta(days=1)
    lecture, _ = series_save(course=course, by=lecturer, spec=_spec(starts_on=start, ends_on=start + timedelta(days=6),
                                                                    weekdays=[1, 2, 3, 4, 5, 6, 7]))
    series_save(course=course, by=lecturer, spec=_spec(title="Lab B", starts_on=start, ends_on=start,
                                                                weekdays=[1, 2, 3, 4, 5, 6, 7], students=[other]))
    client.force_login(mine)
    page = client.get(reverse("home")).content.decode()
    first = lecture.sessions.order_by("scheduled_start").first()
    assert f'data-session="{first.pk}"' in page and "Lab B" not in page
    assert page.count("data-session=") == 5  # the next five
    client.force_login(other)
    assert "Lab B" in client.get(reverse("home")).content.decode()


def test_skipped_dates_come_back_to_the_edit_form_as_the_ranges_typed(client, course, lecturer):
    from attendance.timetable.planning import format_skip_dates

    typed = "2026-11-01\n2026-12-24 to 2027-01-06"
    assert format_skip_dates(parse_skip_dates(typed)) == typed
    series, _ = series_save(course=course, by=lecturer, spec=_spec(skip_dates=parse_skip_dates(typed)))
    client.force_login(lecturer)
    page = client.get(reverse("series-edit", args=[course.pk, series.pk])).content.decode()
    assert "2026-11-01\n2026-12-24 to 2027-01-06</textarea>" in page
    monday = re.search(r'<input type="checkbox" name="weekdays" value="1"[^>]*>', page)
    tuesday = re.search(r'<input type="checkbox" name="weekdays" value="2"[^>]*>', page)
    assert monday and "checked" in monday.group(0) and tuesday and "checked" not in tuesday.group(0)


def test_the_api_plans_a_series_with_the_same_rules_as_the_form(course, lecturer, make_user):
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(lecturer)
    url = reverse("api-course-timetable", args=[course.pk])
    body = {"title": "Lecture", "weekdays": [1], "start_time": "10:15", "end_time": "11:45",
            "starts_on": "2026-10-19", "ends_on": "2026-11-02", "skip_dates": ["2026-10-26"]}
    made = api.post(url, body, format="json")
    assert made.status_code == 201, made.content
    assert made.json()["planned"] == 2 and made.json()["weekdays"] == [1]
    assert [s["id"] for s in api.get(url).json()] == [made.json()["id"]]
    wrong = api.post(url, {**body, "end_time": "09:00"}, format="json")
    assert wrong.status_code == 400 and "end time must be after" in wrong.json()["detail"]
    assert api.post(url, {**body, "students": [999999]}, format="json").status_code == 400
    api.force_authenticate(make_user("lecturer"))
    assert api.get(url).status_code == 403


def test_implausible_dates_and_endless_series_are_refused_in_words(course, lecturer):
    with pytest.raises(TimetableError, match="not a plausible class date"):
        series_save(course=course, by=lecturer, spec=_spec(starts_on=date(1, 1, 1)))
    with pytest.raises(TimetableError, match="two years at most"):
        series_save(course=course, by=lecturer, spec=_spec(weekdays=[1], ends_on=date(2029, 1, 1)))
    with pytest.raises(ValueError, match="not a plausible class date"):
        parse_skip_dates("9999-12-31")
    with pytest.raises(TimetableCsvError, match="Line 2: 0001-01-01 is not a plausible"):
        sessions_import_csv(course=course, by=lecturer, data=b"date,start,end\n0001-01-01,10:00,11:00\n")
    assert not Session.objects.exists()
