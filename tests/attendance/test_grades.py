"""Points per status (a course's status set), the course report's points and the gradebook export."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse
from openpyxl import load_workbook

from attendance.models import CourseGrading, CourseMembership
from attendance.reports import selectors as reports
from tests.attendance.report_factories import at, known_course


@pytest.fixture(autouse=True)
def _utc(settings):
    settings.TIME_ZONE = "UTC"


@pytest.fixture
def known(make_user):
    return known_course(make_user)


def _points(course) -> dict[str, tuple[int, int, float | None]]:
    report = reports.course_report(course=course)
    return {r.student.username: (r.points.earned, r.points.possible, r.points.share) for r in report.rows}


def test_points_use_moodles_default_status_set_over_closed_sessions_since_joining(known):
    # present 2, late 1, excused 1, absent 0; two closed sessions (the open third is in progress).
    assert _points(known.course) == {
        "alice": (3, 4, 0.75),  # present + late
        "bob": (1, 4, 0.25),  # absent + excused
        "cleo": (2, 2, 1.0),  # joined after the first session; her late mark at the open one waits
        "zoe": (2, 4, 0.5),  # present + absent
    }


def test_a_held_session_without_a_record_earns_what_an_absence_earns(known, make_user):
    dan = make_user("student", username="dan", last_name="Dee", student_number="S005")
    CourseMembership.objects.create(course=known.course, student=dan, joined_at=at(1, 0, month=9))
    assert _points(known.course)["dan"] == (0, 4, 0.0)
    CourseGrading.objects.create(course=known.course, points_absent=1)
    assert _points(known.course)["dan"] == (2, 4, 0.5)


def test_the_lecturer_edits_the_status_set_and_the_report_follows(client, known):
    client.force_login(known.lecturer)
    url = reverse("course-grading", args=[known.course.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert page.context["form"].initial["points_present"] == 2
    response = client.post(url, {
        "points_present": "3", "points_late": "2", "points_excused": "3", "points_absent": "0",
        "warnings_enabled": "on", "warning_percent": "80", "warning_min_sessions": "2",
    })
    assert response.status_code == 302
    grading = CourseGrading.objects.get(course=known.course)
    assert (grading.warning_rate, grading.warning_min_sessions, grading.updated_by) == (0.8, 2, known.lecturer)
    # Best status 3: possible = sessions held x 3.
    assert _points(known.course) == {
        "alice": (5, 6, 5 / 6), "bob": (3, 6, 0.5), "cleo": (3, 3, 1.0), "zoe": (3, 6, 0.5),
    }
    report = client.get(reverse("course-report", args=[known.course.pk]))
    assert "present 3, late 2, excused 3, absent 0" in report.content.decode()


def test_bad_points_are_explained_and_nothing_is_saved(client, known):
    client.force_login(known.lecturer)
    url = reverse("course-grading", args=[known.course.pk])
    response = client.post(url, {
        "points_present": "two", "points_late": "-1", "points_excused": "1", "points_absent": "0",
        "warning_min_sessions": "3",
    })
    assert response.status_code == 400
    body = response.content.decode()
    assert "Points are a whole number from 0 to 100, for example 2." in body
    assert "Points are a whole number from 0 to 100." in body
    zero = {"points_present": "0", "points_late": "0", "points_excused": "0", "points_absent": "0",
            "warning_min_sessions": "3"}
    response = client.post(url, zero)
    assert response.status_code == 400
    assert "At least one status must earn points" in response.content.decode()
    assert not CourseGrading.objects.exists()


def test_only_the_courses_lecturers_and_admins_change_points(client, known, make_user):
    url = reverse("course-grading", args=[known.course.pk])
    client.force_login(known.alice)
    assert client.get(url).status_code == 403
    assert client.get(reverse("course-gradebook-csv", args=[known.course.pk])).status_code == 403
    client.force_login(make_user("lecturer", username="other"))
    assert client.post(url, {"points_present": "9"}).status_code == 404
    client.force_login(make_user("admin", username="root"))
    assert client.get(url).status_code == 200


def test_gradebook_csv_has_student_numbers_points_and_the_grade(client, known):
    known.alice.email = "alice@example.edu"
    known.alice.save()
    client.force_login(known.lecturer)
    response = client.get(reverse("course-gradebook-csv", args=[known.course.pk]))
    assert response["Content-Disposition"] == 'attachment; filename="CV101-2026-autumn-gradebook.csv"'
    body = b"".join(response.streaming_content).decode("utf-8")
    rows = list(csv.reader(io.StringIO(body.removeprefix("\ufeff"))))
    assert rows == [
        ["Student number", "Username", "Email address", "Last name", "First name", "Attendance points",
         "Possible points", "Attendance grade (%)"],
        ["S003", "cleo", "", 'Dupont "CD"', "'=Cleo", "2", "2", "100.0"],
        ["S002", "bob", "", "O'Neil, Jr.", "Bob", "1", "4", "25.0"],
        ["S004", "zoe", "", "Young", "Zoë", "2", "4", "50.0"],
        ["S001", "alice", "alice@example.edu", "Zephyr", "Alice", "3", "4", "75.0"],
    ]


def test_gradebook_xlsx_opens_with_numbers_and_percentages(client, known):
    client.force_login(known.lecturer)
    response = client.get(reverse("course-gradebook-xlsx", args=[known.course.pk]))
    sheet = load_workbook(io.BytesIO(response.content)).active
    assert sheet.title == "Gradebook" and sheet.freeze_panes == "A2"
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert rows[4] == ["S001", "alice", None, "Zephyr", "Alice", 3, 4, 0.75]
    assert sheet["H5"].number_format == "0.0%" and sheet["F5"].data_type == "n"


def test_course_report_api_gives_points(client, known):
    client.force_login(known.lecturer)
    data = client.get(reverse("api-course-report", args=[known.course.pk])).json()
    alice = next(s for s in data["students"] if s["username"] == "alice")
    assert (alice["points"], alice["possible_points"], alice["points_share"]) == (3, 4, 0.75)


def test_a_student_sees_their_own_points_per_course(client, known):
    client.force_login(known.alice)
    page = client.get(reverse("my-attendance")).content.decode()
    assert '<td class="num points">3/4' in page
    report = reports.student_report(student=known.alice, courses=known.course.__class__.objects.all())
    assert [(c.points.earned, c.points.possible) for c in report.courses] == [(3, 4)]


def test_the_course_report_marks_students_with_an_open_warning(client, known):
    from attendance.models import AttendanceWarning

    AttendanceWarning.objects.create(course=known.course, student=known.bob, rate=0.0, threshold=0.75, attended=0,
                                     counted=1)
    client.force_login(known.lecturer)
    page = client.get(reverse("course-report", args=[known.course.pk])).content.decode()
    assert page.count('class="badge badge-warned"') == 1
