"""Opening and closing sessions, kiosk links, late arrivals, and the course and check-in pages."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from attendance.models import AttendanceRecord, CourseMembership, Session
from attendance.sessions.records import attendance_record_mark_face, attendance_record_set
from attendance.sessions.services import (
    SessionClosedError,
    SessionError,
    session_arrival_status,
    session_close,
    session_kiosk_token_create,
    session_kiosk_token_revoke,
    session_open,
)


@pytest.fixture
def roster(course, make_user):
    students = [make_user("student") for _ in range(3)]
    for s in students:
        CourseMembership.objects.create(course=course, student=s)
    return students


@pytest.fixture
def open_session(course, lecturer):
    return session_open(course=course, by=lecturer, title="Week 1")


def test_starting_a_session_opens_it_now_on_behalf_of_the_lecturer(course, lecturer):
    session = session_open(course=course, by=lecturer, title="  Week 1 lecture ")
    assert session.status == Session.Status.OPEN
    assert session.opened_by == lecturer and session.opened_at is not None
    assert session.title == "Week 1 lecture"


def test_a_scheduled_session_is_opened_once_and_a_second_open_changes_nothing(course, lecturer):
    planned = timezone.now() + timedelta(minutes=5)
    scheduled = Session.objects.create(course=course, scheduled_start=planned)
    opened = session_open(course=course, session=scheduled, by=lecturer)
    assert opened.pk == scheduled.pk and opened.status == Session.Status.OPEN
    first_opened_at = opened.opened_at
    again = session_open(course=course, session=scheduled, by=lecturer)
    assert again.opened_at == first_opened_at
    assert Session.objects.filter(course=course).count() == 1


def test_a_closed_session_cannot_be_reopened(course, lecturer, open_session):
    session_close(session=open_session, by=lecturer)
    with pytest.raises(SessionClosedError, match="cannot be reopened"):
        session_open(course=course, session=open_session, by=lecturer)


def test_a_session_of_another_course_is_not_opened_through_this_one(course, lecturer, make_user):
    from attendance.models import Course

    other = Course.objects.create(code="OTHER1", title="Other", term="2026-autumn")
    scheduled = Session.objects.create(course=other)
    with pytest.raises(SessionError, match="another course"):
        session_open(course=course, session=scheduled, by=lecturer)


def test_closing_marks_everyone_without_a_record_absent_and_keeps_the_others(open_session, lecturer, roster):
    here, corrected, missing = roster
    attendance_record_mark_face(session=open_session, student=here, distance=0.12)
    attendance_record_set(session=open_session, student=corrected, status="excused", by=lecturer, reason="ill")
    result = session_close(session=open_session, by=lecturer)
    assert result.marked_absent == 1
    assert result.session.status == Session.Status.CLOSED and result.session.closed_at is not None
    records = {r.student_id: r for r in AttendanceRecord.objects.filter(session=open_session)}
    assert (records[here.pk].status, records[here.pk].method) == ("present", "face")
    assert (records[corrected.pk].status, records[corrected.pk].method) == ("excused", "manual")
    assert (records[missing.pk].status, records[missing.pk].method) == ("absent", "auto")


def test_closing_twice_says_the_session_is_already_closed(open_session, lecturer):
    session_close(session=open_session, by=lecturer)
    with pytest.raises(SessionClosedError, match="already closed"):
        session_close(session=open_session, by=lecturer)


def test_a_scheduled_session_cannot_be_closed_before_it_opens(course, lecturer):
    scheduled = Session.objects.create(course=course)
    with pytest.raises(SessionError, match="open it first"):
        session_close(session=scheduled, by=lecturer)


def test_a_kiosk_token_replaces_the_previous_one_and_dies_when_the_session_closes(open_session, lecturer, client):
    first = session_kiosk_token_create(session=open_session, by=lecturer)
    second = session_kiosk_token_create(session=open_session, by=lecturer)
    assert first != second and len(second) >= 40
    assert client.get(reverse("kiosk", args=[first])).status_code == 404
    assert client.post(reverse("kiosk", args=[second])).status_code == 303  # paired, on to the kiosk page
    session_close(session=open_session, by=lecturer)
    open_session.refresh_from_db()
    assert open_session.kiosk_token is None
    response = client.get(reverse("kiosk", args=[second]))
    assert response.status_code == 404
    assert "no longer works" in response.content.decode()


def test_a_revoked_kiosk_link_stops_working(open_session, lecturer, client):
    token = session_kiosk_token_create(session=open_session, by=lecturer)
    session_kiosk_token_revoke(session=open_session, by=lecturer)
    assert client.get(reverse("kiosk", args=[token])).status_code == 404


def test_a_kiosk_token_is_only_made_for_an_open_session(course, lecturer):
    scheduled = Session.objects.create(course=course)
    with pytest.raises(SessionError, match="open session"):
        session_kiosk_token_create(session=scheduled, by=lecturer)


def test_arrivals_after_the_courses_minutes_are_late_and_the_site_default_applies_otherwise(
    course, lecturer, settings
):
    settings.ROLLCALL_LATE_AFTER_MINUTES = 10
    start = timezone.now() - timedelta(minutes=30)
    session = Session.objects.create(course=course, status="open", opened_at=start)
    assert session_arrival_status(session=session, at=start + timedelta(minutes=9)) == "present"
    assert session_arrival_status(session=session, at=start + timedelta(minutes=11)) == "late"
    course.late_after_minutes = 45
    course.save()
    session.refresh_from_db()
    assert session_arrival_status(session=session, at=start + timedelta(minutes=30)) == "present"


def test_a_scheduled_start_counts_for_lateness_rather_than_when_the_lecturer_pressed_open(course, lecturer, settings):
    settings.ROLLCALL_LATE_AFTER_MINUTES = 10
    scheduled = Session.objects.create(course=course, scheduled_start=timezone.now() - timedelta(minutes=20))
    session = session_open(course=course, session=scheduled, by=lecturer)
    assert session_arrival_status(session=session) == "late"


# --- Pages ------------------------------------------------------------------------------------

def test_the_course_page_lists_sessions_with_open_and_close_buttons_for_its_lecturer(
    client, course, lecturer, open_session
):
    scheduled = Session.objects.create(course=course, title="Planned lab")
    client.force_login(lecturer)
    page = client.get(reverse("course-detail", args=[course.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Planned lab" in html and "Week 1" in html
    assert reverse("session-open", args=[scheduled.pk]) in html
    assert reverse("session-close", args=[open_session.pk]) in html
    assert reverse("session-checkin", args=[open_session.pk]) in html
    assert reverse("course-session-start", args=[course.pk]) in html


@pytest.mark.parametrize("who", ["student", "other_lecturer", "anonymous"])
def test_the_course_page_and_session_actions_are_refused_to_others(client, course, open_session, make_user, who):
    if who == "student":
        user = make_user("student")
        CourseMembership.objects.create(course=course, student=user)
        client.force_login(user)
    elif who == "other_lecturer":
        client.force_login(make_user("lecturer"))
    expected = {302} if who == "anonymous" else {403}
    assert client.get(reverse("course-detail", args=[course.pk])).status_code in expected
    assert client.get(reverse("session-checkin", args=[open_session.pk])).status_code in expected
    assert client.post(reverse("session-close", args=[open_session.pk])).status_code in expected
    assert client.post(reverse("course-session-start", args=[course.pk])).status_code in expected
    assert client.post(reverse("session-kiosk", args=[open_session.pk])).status_code in expected
    open_session.refresh_from_db()
    assert open_session.status == "open" and open_session.kiosk_token is None


def test_an_admin_can_start_a_session_from_the_course_page_and_lands_on_the_check_in_page(client, course, admin_user):
    client.force_login(admin_user)
    response = client.post(reverse("course-session-start", args=[course.pk]), {"title": "Extra tutorial"})
    session = Session.objects.get(course=course)
    assert session.status == "open" and session.title == "Extra tutorial"
    assert response.status_code == 302 and response["Location"] == reverse("session-checkin", args=[session.pk])


def test_opening_a_scheduled_session_and_closing_it_through_the_pages(client, course, lecturer, roster):
    scheduled = Session.objects.create(course=course)
    client.force_login(lecturer)
    response = client.post(reverse("session-open", args=[scheduled.pk]))
    assert response["Location"] == reverse("session-checkin", args=[scheduled.pk])
    response = client.post(reverse("session-close", args=[scheduled.pk]), follow=True)
    assert "3 students marked absent" in response.content.decode()
    assert AttendanceRecord.objects.filter(session=scheduled, status="absent", method="auto").count() == 3
    # A second close (another tab) explains instead of failing.
    response = client.post(reverse("session-close", args=[scheduled.pk]), follow=True)
    assert "already closed" in response.content.decode()


def test_the_check_in_page_carries_its_configuration_and_the_roster_without_photos(
    client, lecturer, open_session, roster, settings
):
    settings.ROLLCALL_CHECKIN_INTERVAL_MS = 350
    client.force_login(lecturer)
    page = client.get(reverse("session-checkin", args=[open_session.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    config = page.context["checkin_config"]
    assert config["intervalMs"] == 350 and config["open"] is True and config["kiosk"] is False
    assert config["checkinUrl"] == reverse("api-session-checkin", args=[open_session.pk])
    assert 'id="checkin-config"' in html and "js/checkin.js" in html
    for student in roster:
        assert student.display_name in html
    assert "<img" not in html
    assert "kioskToken" not in html


def test_the_lecturer_makes_a_kiosk_link_shown_as_a_qr_code_and_the_kiosk_page_needs_no_sign_in(
    client, lecturer, open_session
):
    client.force_login(lecturer)
    response = client.post(reverse("session-kiosk", args=[open_session.pk]))
    assert response.status_code == 302
    open_session.refresh_from_db()
    token = open_session.kiosk_token
    page = client.get(reverse("session-checkin", args=[open_session.pk])).content.decode()
    assert reverse("kiosk", args=[token]) in page and "<svg" in page
    client.logout()
    pairing = client.post(reverse("kiosk", args=[token]))
    assert pairing.status_code == 303 and pairing["Location"] == reverse("kiosk-page")
    assert pairing["Referrer-Policy"] == "no-referrer"
    kiosk = client.get(pairing["Location"])
    assert kiosk.status_code == 200
    config = json.loads(kiosk.content.decode().split('id="checkin-config" type="application/json">')[1].split("<")[0])
    assert config["kiosk"] is True
    assert "stateUrl" not in config  # the door shows no class list


def test_a_closed_sessions_page_shows_the_records_without_a_camera(client, lecturer, open_session, roster):
    session_close(session=open_session, by=lecturer)
    client.force_login(lecturer)
    page = client.get(reverse("session-checkin", args=[open_session.pk]))
    html = page.content.decode()
    assert page.status_code == 200 and page.context["checkin_config"]["open"] is False
    assert "<video" not in html and "Absent" in html


def test_a_lecturers_home_page_links_each_course_to_its_sessions(client, lecturer, course):
    client.force_login(lecturer)
    assert reverse("course-detail", args=[course.pk]) in client.get(reverse("home")).content.decode()
