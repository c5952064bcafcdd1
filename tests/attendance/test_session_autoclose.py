"""Sessions close themselves at their planned end (or some hours after an unplanned opening), through
the same close as the lecturer's button: the same absences, the kiosk link gone."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from attendance.models import AttendanceRecord, CourseMembership, Session
from attendance.sessions.autoclose import sessions_close_due, sessions_due_to_close
from attendance.sessions.records import attendance_record_set
from attendance.sessions.services import session_close, session_kiosk_token_create, session_open
from config.celery import app
from tests.conftest import kiosk_pair


@pytest.fixture
def roster(course, make_user):
    students = [make_user("student") for _ in range(3)]
    for s in students:
        CourseMembership.objects.create(course=course, student=s)
    return students


def _planned_open(course, lecturer, *, start_ago: timedelta, length: timedelta) -> Session:
    start = timezone.now() - start_ago
    session = Session.objects.create(course=course, scheduled_start=start, scheduled_end=start + length)
    session = session_open(course=course, session=session, by=lecturer)
    # Opened at its start, as a lecturer pressing "Open" on time would.
    Session.objects.filter(pk=session.pk).update(opened_at=start)
    session.refresh_from_db()
    return session


def test_a_session_past_its_planned_end_closes_itself_with_the_same_absences_as_a_manual_close(
    course, lecturer, roster
):
    ended = _planned_open(course, lecturer, start_ago=timedelta(minutes=100), length=timedelta(minutes=90))
    by_hand = _planned_open(course, lecturer, start_ago=timedelta(minutes=100), length=timedelta(minutes=90))
    kiosk_pair(session_kiosk_token_create(session=ended, by=lecturer))
    for session in (ended, by_hand):
        attendance_record_set(session=session, student=roster[0], status="present", by=lecturer)
    session_close(session=by_hand, by=lecturer)
    Session.objects.filter(pk=by_hand.pk).update(status=Session.Status.OPEN, closed_at=None)  # reopen to compare
    by_hand_records = {(r.student_id, r.status, r.method) for r in by_hand.records.all()}

    assert sessions_close_due() == 2
    ended.refresh_from_db()
    assert ended.status == Session.Status.CLOSED and ended.kiosk_token is None and ended.closed_at is not None
    assert ended.kiosk_device_hash is None  # the paired kiosk stops too
    records = {(r.student_id, r.status, r.method) for r in ended.records.all()}
    assert records == by_hand_records
    assert {s for s, status, _ in records if status == AttendanceRecord.Status.ABSENT} == {roster[1].pk, roster[2].pk}
    assert all(r.marked_by is None for r in ended.records.filter(method=AttendanceRecord.Method.AUTO))


def test_a_session_still_running_or_scheduled_is_left_alone(course, lecturer, roster):
    running = _planned_open(course, lecturer, start_ago=timedelta(minutes=30), length=timedelta(minutes=90))
    past_start = timezone.now() - timedelta(hours=3)
    never_opened = Session.objects.create(
        course=course, scheduled_start=past_start, scheduled_end=past_start + timedelta(hours=1)
    )
    assert sessions_close_due() == 0
    running.refresh_from_db()
    never_opened.refresh_from_db()
    assert running.status == Session.Status.OPEN and never_opened.status == Session.Status.SCHEDULED
    assert not AttendanceRecord.objects.exists()


def test_an_unplanned_session_closes_after_the_set_number_of_hours(course, lecturer, roster, settings):
    settings.ROLLCALL_SESSION_AUTO_CLOSE_HOURS = 2
    young = session_open(course=course, by=lecturer)
    old = session_open(course=course, by=lecturer)
    Session.objects.filter(pk=young.pk).update(opened_at=timezone.now() - timedelta(minutes=119))
    Session.objects.filter(pk=old.pk).update(opened_at=timezone.now() - timedelta(minutes=121))
    assert list(sessions_due_to_close()) == [old]
    assert sessions_close_due() == 1
    assert Session.objects.get(pk=old.pk).records.filter(status="absent").count() == 3
    assert Session.objects.get(pk=young.pk).status == Session.Status.OPEN

    settings.ROLLCALL_SESSION_AUTO_CLOSE_HOURS = 0  # off: only planned ends close sessions
    Session.objects.filter(pk=young.pk).update(opened_at=timezone.now() - timedelta(hours=30))
    assert sessions_close_due() == 0


def test_a_session_opened_after_its_planned_end_runs_for_the_set_hours(course, lecturer, settings):
    settings.ROLLCALL_SESSION_AUTO_CLOSE_HOURS = 3
    start = timezone.now() - timedelta(hours=5)
    late = Session.objects.create(course=course, scheduled_start=start, scheduled_end=start + timedelta(hours=1))
    late = session_open(course=course, session=late, by=lecturer)  # a make-up class, opened now
    assert sessions_close_due() == 0
    Session.objects.filter(pk=late.pk).update(opened_at=timezone.now() - timedelta(hours=3, minutes=1))
    assert sessions_close_due() == 1


def test_the_beat_schedule_runs_the_close_task_every_minute():
    entry = next(e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "attendance.sessions_close_due")
    assert entry["schedule"] <= 60
    app.loader.import_default_modules()
    assert "attendance.sessions_close_due" in app.tasks


@pytest.mark.slow
def test_a_real_worker_closes_an_ended_session(celery_worker_process, course, lecturer, roster):
    ended = _planned_open(course, lecturer, start_ago=timedelta(hours=2), length=timedelta(hours=1))
    result = app.send_task("attendance.sessions_close_due")
    assert result.get(timeout=60) == 1, celery_worker_process.log()[-3000:]
    deadline = time.monotonic() + 10
    while Session.objects.get(pk=ended.pk).status != Session.Status.CLOSED and time.monotonic() < deadline:
        time.sleep(0.1)
    assert Session.objects.get(pk=ended.pk).records.filter(status="absent").count() == 3


def test_a_session_the_lecturer_closed_a_moment_ago_is_skipped(course, lecturer, roster, monkeypatch):
    ended = _planned_open(course, lecturer, start_ago=timedelta(minutes=100), length=timedelta(minutes=90))
    stale = list(sessions_due_to_close())  # read by the beat run...
    session_close(session=ended, by=lecturer)  # ...just before the lecturer's button wins the row
    monkeypatch.setattr("attendance.sessions.autoclose.sessions_due_to_close", lambda now=None: stale)
    assert sessions_close_due() == 0
    assert {r.marked_by_id for r in Session.objects.get(pk=ended.pk).records.all()} == {lecturer.pk}


def test_the_course_page_says_when_an_open_session_closes_itself(client, course, lecturer):
    ended = _planned_open(course, lecturer, start_ago=timedelta(minutes=10), length=timedelta(minutes=90))
    client.force_login(lecturer)
    page = client.get(reverse("course-detail", args=[course.pk])).content.decode()
    local = timezone.localtime(ended.scheduled_end)
    assert f"closes itself at {local:%H:%M}" in page


def test_the_api_tells_when_a_session_is_planned_to_end(client, course, lecturer):
    planned = _planned_open(course, lecturer, start_ago=timedelta(minutes=10), length=timedelta(minutes=90))
    client.force_login(lecturer)
    info = client.post(reverse("api-session-open", args=[planned.pk])).json()
    assert datetime.fromisoformat(info["ends_at"]) == planned.scheduled_end
    detail = client.get(reverse("api-session-detail", args=[planned.pk])).json()
    assert datetime.fromisoformat(detail["scheduled_end"]) == planned.scheduled_end


@pytest.mark.slow
def test_celery_beat_and_a_worker_close_an_ended_session_on_their_own(celery_worker_process, course, lecturer, roster,
                                                                       tmp_path):
    """The whole wiring as deployed: `celery beat` reads the schedule from the settings and sends the
    task, the worker closes the session. The check interval is shortened to 1 s for the test."""
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT, _worker_env, stop_process

    ended = _planned_open(course, lecturer, start_ago=timedelta(hours=2), length=timedelta(hours=1))
    env = {**_worker_env(), "ROLLCALL_SESSION_AUTO_CLOSE_CHECK_SECONDS": "1"}
    log = tmp_path / "beat.log"
    with log.open("wb") as out:
        beat = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO",
             "--schedule", str(tmp_path / "celerybeat-schedule")],
            cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90
        while Session.objects.get(pk=ended.pk).status != Session.Status.CLOSED:
            assert beat.poll() is None, log.read_text()[-3000:]
            if time.monotonic() > deadline:
                pytest.fail(f"not closed after 90 s\nbeat: {log.read_text()[-2000:]}\n"
                            f"worker: {celery_worker_process.log()[-2000:]}")
            time.sleep(0.2)
    finally:
        stop_process(beat)
    assert Session.objects.get(pk=ended.pk).records.filter(status="absent", marked_by=None).count() == 3
    assert "attendance.sessions_close_due" in log.read_text()
