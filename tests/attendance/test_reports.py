from __future__ import annotations

import csv
import io
import re
import time
from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from attendance.reports import charts
from attendance.reports import selectors as reports
from attendance.reports.rates import Period
from tests.attendance.report_factories import known_course, large_course


@pytest.fixture(autouse=True)
def _utc(settings):
    settings.TIME_ZONE = "UTC"


@pytest.fixture
def known(make_user):
    return known_course(make_user)


def _csv(response) -> tuple[str, list[list[str]]]:
    body = b"".join(response.streaming_content).decode("utf-8")
    return body, list(csv.reader(io.StringIO(body.removeprefix("\ufeff"))))


# --- Rates and turnout ------------------------------------------------------------------------

def test_attendance_rate_counts_present_and_late_over_sessions_held_since_joining_without_excused(known):
    report = reports.course_report(course=known.course)
    rates = {row.student.username: (row.attended, row.counted, row.rate) for row in report.rows}
    # The third session is still open: in progress, in no one's rate (issue 16).
    assert rates["alice"] == (2, 2, 1.0)  # present, late
    assert rates["bob"] == (0, 1, 0.0)  # absent, excused (left out)
    assert rates["cleo"] == (1, 1, 1.0)  # joined after the first session: it does not count for her
    assert rates["zoe"] == (1, 2, 0.5)


def test_turnout_is_attendance_over_students_on_the_course_at_the_time_less_the_excused(known):
    sessions = reports.course_sessions(course=known.course, period=Period())
    # Neither the scheduled one nor the open one (in progress: it counts once closed).
    assert [s.pk for s in sessions] == [known.intro.pk, known.faces.pk]
    assert [(s.attended, s.expected) for s in sessions] == [(2, 3), (2, 3)]
    assert [round(s.turnout, 3) for s in sessions] == [0.667, 0.667]


def test_a_forgotten_open_session_counts_once_it_is_closed(known):
    from django.utils import timezone

    before = {r.student.username: r.counted for r in reports.course_report(course=known.course).rows}
    known.third.status, known.third.closed_at = "closed", timezone.now()
    known.third.save()
    after = {r.student.username: r.counted for r in reports.course_report(course=known.course).rows}
    assert {name: after[name] - before[name] for name in after} == {"alice": 1, "bob": 1, "cleo": 1, "zoe": 1}


def test_students_below_the_threshold_are_highlighted_and_can_be_listed_alone(known):
    report = reports.course_report(course=known.course, threshold=0.75)
    assert {row.student.username for row in report.rows if row.low} == {"bob", "zoe"}
    assert report.summary.below_threshold == 2
    only_low = reports.course_report(course=known.course, threshold=0.75, only_low=True)
    assert [row.student.username for row in only_low.rows] == ["bob", "zoe"]


def test_course_report_sorts_by_rate_with_students_without_a_rate_last(known, make_user):
    from attendance.models import CourseMembership

    newcomer = make_user("student", username="newcomer", last_name="Abbott")
    CourseMembership.objects.create(course=known.course, student=newcomer)  # joined now: no session counts yet
    lowest = reports.course_report(course=known.course, sort="rate")
    assert [r.student.username for r in lowest.rows] == ["bob", "zoe", "cleo", "alice", "newcomer"]
    highest = reports.course_report(course=known.course, sort="-rate")
    assert [r.student.username for r in highest.rows][-1] == "newcomer"
    assert [r.student.username for r in reports.course_report(course=known.course, sort="-name").rows] == [
        "alice", "zoe", "bob", "cleo", "newcomer",
    ]


def test_date_range_limits_both_the_sessions_and_the_rates(known):
    report = reports.course_report(course=known.course, period=Period(start=date(2026, 10, 8), end=date(2026, 10, 8)))
    assert [s.pk for s in report.sessions] == [known.faces.pk]
    rates = {row.student.username: (row.attended, row.counted) for row in report.rows}
    assert rates == {"alice": (1, 1), "bob": (0, 0), "cleo": (1, 1), "zoe": (0, 1)}
    bob = next(r for r in report.rows if r.student.username == "bob")
    assert bob.rate is None and not bob.low  # excused at the only session: no rate, not "0 %"


def test_matrix_cells_tell_apart_no_record_and_not_yet_on_the_course(known):
    report = reports.course_report(course=known.course)
    cells = {row.student.username: [(c.code, c.manual) for c in row.cells] for row in report.rows}
    assert cells["cleo"] == [("before", False), ("present", True)]
    assert cells["bob"] == [("absent", False), ("excused", True)]


def test_student_report_lists_sessions_across_courses_with_a_rate_per_course(known, make_user):
    from attendance.models import AttendanceRecord, Course, CourseMembership, Session
    from tests.attendance.report_factories import at

    other = Course.objects.create(code="ML200", title="Machine Learning", term="2026-autumn")
    CourseMembership.objects.create(course=other, student=known.alice, joined_at=at(1, 0, month=9))
    ml1 = Session.objects.create(course=other, status="closed", scheduled_start=at(2, 14), opened_at=at(2, 14),
                                 closed_at=at(2, 15))
    AttendanceRecord.objects.create(session=ml1, student=known.alice, status="absent", method="auto")
    report = reports.student_report(student=known.alice, courses=Course.objects.all())
    assert {(c.course.code, c.attended, c.counted) for c in report.courses} == {("CV101", 2, 2), ("ML200", 0, 1)}
    assert (report.attended, report.counted) == (2, 3) and report.rate == pytest.approx(2 / 3)
    assert [row.session.pk for row in report.rows] == [known.faces.pk, ml1.pk, known.intro.pk]  # not the open one
    # A lecturer of CV101 only sees CV101 in the same student's report.
    mine = reports.student_report(student=known.alice, courses=Course.objects.filter(pk=known.course.pk))
    assert [c.course.code for c in mine.courses] == ["CV101"] and len(mine.rows) == 2


def test_session_report_shows_every_student_and_the_manual_changes(known):
    report = reports.session_report(session=known.faces)
    assert [row.student.username for row in report.rows] == ["cleo", "bob", "zoe", "alice"]
    assert report.counts == {"present": 1, "late": 1, "absent": 1, "excused": 1} and report.unmarked == 0
    assert [(c.record.student.username, c.old_status, c.new_status, c.reason) for c in report.changes] == [
        ("cleo", "absent", "present", "Camera missed her"),
        ("bob", "", "excused", "Doctor's note"),
    ]
    third = reports.session_report(session=known.third)
    assert third.unmarked == 2  # bob and zoe have not checked in at the open session


# --- CSV --------------------------------------------------------------------------------------

def test_course_csv_has_exact_rows_quoted_and_excel_friendly(client, known):
    client.force_login(known.lecturer)
    response = client.get(reverse("course-report-csv", args=[known.course.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="CV101-2026-autumn-attendance.csv"'
    body, rows = _csv(response)
    assert body.startswith("\ufeff") and "\r\n" in body
    assert '"O\'Neil, Jr."' in body and '"Dupont ""CD"""' in body  # RFC 4180 quoting
    assert rows == [
        ["Student number", "Last name", "First name", "Username", "2026-10-01 09:00 Intro", "2026-10-08 09:00 Faces",
         "Attended", "Counted sessions", "Rate (%)", "Points", "Possible points", "Points (%)"],
        ["S003", 'Dupont "CD"', "'=Cleo", "cleo", "n/a", "Present", "1", "1", "100.0", "2", "2", "100.0"],
        ["S002", "O'Neil, Jr.", "Bob", "bob", "Absent", "Excused", "0", "1", "0.0", "1", "4", "25.0"],
        ["S004", "Young", "Zoë", "zoe", "Present", "Absent", "1", "2", "50.0", "2", "4", "50.0"],
        ["S001", "Zephyr", "Alice", "alice", "Present", "Late", "2", "2", "100.0", "3", "4", "75.0"],
        ["Turnout (%)", "", "", "", "66.7", "66.7", "", "", "", "", "", ""],
    ]


def test_course_csv_follows_the_pages_filters(client, known):
    client.force_login(known.lecturer)
    response = client.get(reverse("course-report-csv", args=[known.course.pk]), {"sort": "rate", "from": "2026-10-08"})
    _, rows = _csv(response)
    assert rows[0][4:6] == ["2026-10-08 09:00 Faces", "Attended"]  # the open session of the 15th is in progress
    # Ties by name; bob, excused at the only closed session, has no rate and goes last.
    assert [r[3] for r in rows[1:-1]] == ["zoe", "cleo", "alice", "bob"]


def test_session_csv_has_exact_rows(client, known):
    from attendance.models import AttendanceRecord

    # Alice's face mark passed liveness: its score and checks are in the report.
    AttendanceRecord.objects.filter(session=known.faces, student=known.alice).update(
        liveness_score=0.9712, liveness_checks=["passive", "motion"])
    client.force_login(known.lecturer)
    response = client.get(reverse("session-report-csv", args=[known.faces.pk]))
    _, rows = _csv(response)
    assert rows == [
        ["Student number", "Last name", "First name", "Username", "Status", "Marked at", "Method",
         "Confidence (distance)", "Liveness score",
         "Liveness checks", "Marked by", "Manual changes", "On the course"],
        ["S003", 'Dupont "CD"', "'=Cleo", "cleo", "Present", "2026-10-08 09:20", "Manual", "", "", "", "Ada Lovelace",
         "1", "yes"],
        ["S002", "O'Neil, Jr.", "Bob", "bob", "Excused", "2026-10-08 08:00", "Manual", "", "", "", "Ada Lovelace", "1",
         "yes"],
        ["S004", "Young", "Zoë", "zoe", "Absent", "2026-10-08 10:30", "Closing the session", "", "", "",
         "Ada Lovelace", "0", "yes"],
        ["S001", "Zephyr", "Alice", "alice", "Late", "2026-10-08 09:14", "Face", "0.350", "0.97", "passive motion",
         "", "0", "yes"],
    ]


def test_student_csv_has_exact_rows(client, known):
    client.force_login(known.alice)
    response = client.get(reverse("student-report-csv", args=[known.alice.pk]))
    assert response["Content-Disposition"] == 'attachment; filename="alice-attendance.csv"'
    _, rows = _csv(response)
    assert rows == [
        ["Course", "Course title", "Term", "Session", "Held at", "Status", "Method", "Marked at"],
        ["CV101", "Computer Vision", "2026-autumn", "Faces", "2026-10-08 09:00", "Late", "Face", "2026-10-08 09:14"],
        ["CV101", "Computer Vision", "2026-autumn", "Intro", "2026-10-01 09:00", "Present", "Face", "2026-10-01 09:02"],
    ]


# --- Pages ------------------------------------------------------------------------------------

def test_session_report_puts_each_students_status_first_as_my_attendance_does(client, known):
    """On a phone only the first columns are in view before the table scrolls: the status leads."""
    client.force_login(known.lecturer)
    html = client.get(reverse("session-report", args=[known.third.pk])).content.decode()
    students = html[html.index("<h2>Students</h2>"):html.index('id="changes"')]
    headers = re.findall(r"<th(?:\s[^>]*)?>([^<]*)", students)
    assert headers[:3] == ["Status", "Student", "Number"], headers
    rows = re.findall(r"<tr>\s*<td[^>]*>(.*?)</td>", students, flags=re.S)
    assert rows and all('class="badge badge-' in row or "not checked in yet" in row for row in rows), rows
    assert any("not checked in yet" in row for row in rows)  # the open session: nobody's absent yet


def test_course_report_page_shows_the_matrix_the_rates_the_definition_and_two_charts(client, known):
    client.force_login(known.lecturer)
    response = client.get(reverse("course-report", args=[known.course.pk]), {"threshold": "60"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "sessions held (closed) since the" in html  # the rate's definition is on the page
    assert html.count('class="row-low"') == 2  # bob 0 % and zoe 50 % are under 60 %
    assert "50 %" in html and "100 %" in html
    assert "In progress" in html and "in progress</span>" in html  # the open session of the 15th
    assert 'class="session-time">09:00</span>' in html and 'class="session-title">Faces</span>' in html
    assert 'class="chart chart-turnout"' in html and 'class="chart chart-rates"' in html
    assert reverse("session-report", args=[known.faces.pk]) in html
    assert "&#x27;=Cleo" not in html and "=Cleo" in html  # shown as typed, escaped by the template


def test_course_report_page_explains_bad_filter_input(client, known):
    client.force_login(known.lecturer)
    response = client.get(reverse("course-report", args=[known.course.pk]),
                          {"from": "yesterday", "to": "2026-10-01", "threshold": "150"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "Enter the start date as YYYY-MM-DD" in html
    assert "between 0 and 100" in html
    swapped = client.get(reverse("course-report", args=[known.course.pk]), {"from": "2026-10-09", "to": "2026-10-01"})
    assert "is after the end date" in swapped.content.decode()


def test_session_report_page_lists_who_changed_what_and_why(client, known):
    client.force_login(known.lecturer)
    html = client.get(reverse("session-report", args=[known.faces.pk])).content.decode()
    assert "Camera missed her" in html and "Doctor&#x27;s note" in html and "Ada Lovelace" in html
    assert "0.350" in html


def test_my_attendance_page_shows_the_students_own_rates_and_privacy_actions(client, known):
    client.force_login(known.zoe)
    response = client.get(reverse("my-attendance"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "50.0 %" in html and 'class="row-low"' in html
    assert reverse("my-data-export") in html
    assert "Alice" not in html  # nobody else's attendance


def test_report_index_finds_only_students_the_lecturer_teaches(client, known, make_user):
    stranger = make_user("student", username="stranger", last_name="Zephyr-Other")
    client.force_login(known.lecturer)
    html = client.get(reverse("report-index"), {"q": "zephyr"}).content.decode()
    assert reverse("student-report", args=[known.alice.pk]) in html
    assert reverse("student-report", args=[stranger.pk]) not in html


def test_course_list_links_each_visible_course_to_its_report(client, known, make_user):
    from attendance.models import Course

    hidden = Course.objects.create(code="HID1", title="Not mine", term="2026-autumn")
    client.force_login(known.lecturer)
    html = client.get(reverse("course-list")).content.decode()
    assert reverse("course-report", args=[known.course.pk]) in html
    assert "HID1" not in html and reverse("course-report", args=[hidden.pk]) not in html


# --- Charts -----------------------------------------------------------------------------------

def test_charts_are_self_contained_svg_with_escaped_labels():
    svg = charts.turnout_chart(
        [charts.Bar("1 Oct", 0.5, "<script>alert(1)</script>"), charts.Bar("8 Oct", None, "nobody expected")],
        threshold=0.75,
    )
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert 'role="img"' in svg and "<title" in svg
    histogram = charts.rate_histogram([0.0, 0.05, 0.55, 1.0, 1.0], threshold=0.75)
    assert "0 to 9 %: 2 students" in histogram and "90 to 100 %: 2 students" in histogram
    assert "50 to 59 %: 1 student<" in histogram


# --- Speed ------------------------------------------------------------------------------------

def _queries(client, url: str, params: dict | None = None) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, params or {})
        if hasattr(response, "streaming_content"):
            b"".join(response.streaming_content)
    assert response.status_code == 200, url
    return len(ctx.captured_queries)


def test_report_query_counts_do_not_grow_with_students_or_sessions(client, admin_user, make_user):
    small, small_sessions = large_course(make_user, students=4, sessions=3, code="SMALL")
    big, big_sessions = large_course(make_user, students=120, sessions=12, code="BIG")
    client.force_login(admin_user)
    from attendance.models import CourseMembership

    small_student = CourseMembership.objects.filter(course=small).first().student
    big_student = CourseMembership.objects.filter(course=big).first().student
    pairs = [
        ("course-report", small.pk, big.pk, {"sort": "-rate"}),
        ("course-report-csv", small.pk, big.pk, {}),
        ("session-report", small_sessions[0].pk, big_sessions[0].pk, {}),
        ("session-report-csv", small_sessions[0].pk, big_sessions[0].pk, {}),
        ("student-report", small_student.pk, big_student.pk, {}),
        ("api-course-report", small.pk, big.pk, {}),
        ("api-session-report", small_sessions[0].pk, big_sessions[0].pk, {}),
        ("course-list", None, None, {}),
    ]
    for name, small_pk, big_pk, params in pairs:
        args_small = [small_pk] if small_pk else []
        args_big = [big_pk] if big_pk else []
        n_small = _queries(client, reverse(name, args=args_small), params)
        n_big = _queries(client, reverse(name, args=args_big), params)
        assert n_small == n_big, f"{name}: {n_small} queries for a small course, {n_big} for a large one"


@pytest.mark.slow
def test_course_report_of_500_students_and_40_sessions_is_fast(client, admin_user, make_user):
    course, _ = large_course(make_user, students=500, sessions=40, code="HUGE")
    client.force_login(admin_user)
    url = reverse("course-report", args=[course.pk])
    client.get(url)  # warm the template cache
    started = time.perf_counter()
    queries = _queries(client, url, {"sort": "rate"})
    elapsed = time.perf_counter() - started
    csv_started = time.perf_counter()
    _queries(client, reverse("course-report-csv", args=[course.pk]))
    csv_elapsed = time.perf_counter() - csv_started
    print(f"course report 500x40: {elapsed * 1000:.0f} ms, {queries} queries; CSV {csv_elapsed * 1000:.0f} ms")
    # 12 before points; points add the course's status set (read once more to show it), and the open warnings;
    # the timetable asks once whether the course has group series.
    assert queries <= 16
    # Speed itself is not asserted (it depends on the machine): the query count is what keeps it fast.
