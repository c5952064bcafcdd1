"""The permission matrix: every report, privacy page and API endpoint, for every role and a visitor.

Roles: an admin; the course's lecturer; a lecturer of another course; a student on the course; a
student on another course; an anonymous visitor. Expected codes: 200 (allowed), 302 (a visitor
is sent to sign in, or a page sends its owner to their own view), 401 (the API asks for a token),
403 (the role may never use this page), 404 (a row outside the caller's reach, not revealed).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token

from attendance import permissions
from attendance.models import AttendanceRecord, Course, CourseMembership, Session

ROLES = ["admin", "lecturer", "other_lecturer", "student", "other_student", "anonymous"]


@dataclass
class World:
    users: dict
    course: Course
    other_course: Course
    session: Session
    other_session: Session

    def pk(self, name: str) -> int:
        return {
            "course": self.course.pk, "session": self.session.pk, "student": self.users["student"].pk,
        }[name] if name != "xlsx" else name  # type: ignore[return-value]


@pytest.fixture
def world(make_user, admin_user) -> World:
    users = {
        "admin": admin_user,
        "lecturer": make_user("lecturer"),
        "other_lecturer": make_user("lecturer"),
        "student": make_user("student", username="student_on_course"),
        "other_student": make_user("student", username="student_elsewhere"),
    }
    course = Course.objects.create(code="SEC1", title="Security", term="2026-autumn")
    course.lecturers.add(users["lecturer"])
    other = Course.objects.create(code="OTH1", title="Other", term="2026-autumn")
    other.lecturers.add(users["other_lecturer"])
    CourseMembership.objects.create(course=course, student=users["student"])
    CourseMembership.objects.create(course=other, student=users["other_student"])
    now = timezone.now()
    session = Session.objects.create(course=course, status="closed", opened_at=now, closed_at=now)
    other_session = Session.objects.create(course=other, status="closed", opened_at=now, closed_at=now)
    AttendanceRecord.objects.create(session=session, student=users["student"], status="present", method="face")
    AttendanceRecord.objects.create(session=other_session, student=users["other_student"], status="absent",
                                    method="auto")
    return World(users, course, other, session, other_session)


#              url name                  arg        admin lecturer other_lect student other_st anonymous
PAGES = [
    ("course-list",                      None,      200,  200,     200,       200,    200,     302),
    ("report-index",                     None,      200,  200,     200,       403,    403,     302),
    ("course-report",                    "course",  200,  200,     404,       403,    403,     302),
    ("course-report-csv",                "course",  200,  200,     404,       403,    403,     302),
    ("session-report",                   "session", 200,  200,     404,       403,    403,     302),
    ("session-report-csv",               "session", 200,  200,     404,       403,    403,     302),
    ("student-report",                   "student", 200,  200,     404,       302,    404,     302),
    ("student-report-csv",               "student", 200,  200,     404,       200,    404,     302),
    ("course-report-xlsx",               "course",  200,  200,     404,       403,    403,     302),
    ("session-report-xlsx",              "session", 200,  200,     404,       403,    403,     302),
    ("student-report-xlsx",              "student", 200,  200,     404,       200,    404,     302),
    ("course-grading",                   "course",  200,  200,     404,       403,    403,     302),
    ("course-gradebook-csv",             "course",  200,  200,     404,       403,    403,     302),
    ("course-gradebook-xlsx",            "course",  200,  200,     404,       403,    403,     302),
    ("my-warnings",                      None,      403,  403,     403,       200,    200,     302),
    ("student-data-export",              "student", 200,  403,     403,       200,    403,     302),
    ("student-withdraw-consent",         "student", 200,  403,     403,       302,    403,     302),
    ("my-attendance",                    None,      403,  403,     403,       200,    200,     302),
    ("my-data-export",                   None,      403,  403,     403,       200,    200,     302),
    ("withdraw-consent",                 None,      403,  403,     403,       200,    200,     302),
    ("enrolment",                        None,      403,  403,     403,       200,    200,     302),
    ("student-enrol",                    "student", 200,  403,     403,       302,    403,     302),
    # The management area: admins everything, lecturers their own courses' rosters.
    ("campus-home",                      None,      200,  200,     200,       403,    403,     302),
    ("campus-roster",                    "course",  200,  200,     404,       403,    403,     302),
    ("campus-courses",                   None,      200,  403,     403,       403,    403,     302),
    ("campus-course-create",             None,      200,  403,     403,       403,    403,     302),
    ("campus-course-edit",               "course",  200,  403,     403,       403,    403,     302),
    ("campus-people",                    None,      200,  403,     403,       403,    403,     302),
    ("campus-lecturers",                 None,      200,  403,     403,       403,    403,     302),
    ("campus-person-create",             None,      200,  403,     403,       403,    403,     302),
    ("campus-person-edit",               "student", 200,  403,     403,       403,    403,     302),
    ("campus-memberships",               None,      200,  403,     403,       403,    403,     302),
    ("campus-import",                    None,      200,  403,     403,       403,    403,     302),
    ("campus-import-template",           "xlsx",    200,  403,     403,       403,    403,     302),
]

API = [
    ("api-course-list",                  None,      200,  200,     200,       200,    200,     401),
    ("api-course-detail",                "course",  200,  200,     404,       200,    404,     401),
    ("api-session-list",                 None,      200,  200,     200,       200,    200,     401),
    ("api-session-detail",               "session", 200,  200,     404,       200,    404,     401),
    ("api-record-list",                  None,      200,  200,     200,       200,    200,     401),
    ("api-course-report",                "course",  200,  200,     404,       403,    403,     401),
    ("api-session-report",               "session", 200,  200,     404,       403,    403,     401),
    ("api-student-report",               "student", 200,  200,     404,       200,    404,     401),
]


def _cases(table):
    for name, arg, *codes in table:
        for role, code in zip(ROLES, codes, strict=True):
            yield pytest.param(name, arg, role, code, id=f"{name}-{role}")


def _url(world: World, name: str, arg: str | None) -> str:
    return reverse(name, args=[world.pk(arg)] if arg else [])


@pytest.mark.parametrize(("name", "arg", "role", "expected"), list(_cases(PAGES)))
def test_page_permissions(client, world, name, arg, role, expected):
    if role != "anonymous":
        client.force_login(world.users[role])
    response = client.get(_url(world, name, arg))
    assert response.status_code == expected, f"{role} GET {name}: {response.status_code}"
    if expected == 302 and role == "anonymous":
        assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize(("name", "arg", "role", "expected"), list(_cases(API)))
def test_api_permissions_with_a_token(client, world, name, arg, role, expected):
    headers = {}
    if role != "anonymous":
        token, _ = Token.objects.get_or_create(user=world.users[role])
        headers["HTTP_AUTHORIZATION"] = f"Token {token.key}"
    response = client.get(_url(world, name, arg), **headers)
    assert response.status_code == expected, f"{role} GET {name}: {response.status_code}"
    if expected == 401:
        assert response["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize("role", ["lecturer", "other_lecturer", "student", "other_student", "anonymous"])
def test_posting_a_withdrawal_for_someone_else_is_refused(client, world, role):
    from attendance.models import FaceEnrolment

    FaceEnrolment.objects.create(student=world.users["student"], status="ready", consent_given_at=timezone.now())
    if role != "anonymous":
        client.force_login(world.users[role])
    response = client.post(reverse("student-withdraw-consent", args=[world.users["student"].pk]),
                           {"confirm_username": world.users["student"].username})
    assert response.status_code == {"anonymous": 302, "student": 302}.get(role, 403)
    assert FaceEnrolment.objects.get().status == "ready"  # the student's own goes through their page


# The roster import's preview and progress: an upload token in the path, not a row id. Admins only,
# and only the admin who uploaded it (another admin gets 404, as for a row outside their reach).
@pytest.mark.parametrize("role", [*ROLES, "another_admin"])
@pytest.mark.parametrize("name", ["campus-import-preview", "campus-import-progress"])
def test_a_background_import_is_seen_only_by_the_admin_who_uploaded_it(client, world, make_user, settings,
                                                                         tmp_path, name, role):
    from attendance.campus import import_jobs, uploads

    settings.MEDIA_ROOT = tmp_path
    token = uploads.upload_store(data=b"x" * (import_jobs.BACKGROUND_FROM_BYTES + 1), filename="big.csv",
                                 sync=False, by=world.users["admin"])
    import_jobs.job_start(token=token, kind=import_jobs.PREVIEW, by=world.users["admin"])
    if role == "another_admin":
        client.force_login(make_user("admin", is_superuser=True, is_staff=True))
    elif role != "anonymous":
        client.force_login(world.users[role])
    response = client.get(reverse(name, args=[token]))
    expected = {"admin": 200, "another_admin": 404, "anonymous": 302}.get(role, 403)
    assert response.status_code == expected, f"{role} GET {name}: {response.status_code}"
    if role == "admin" and name == "campus-import-progress":
        assert response.json()["stage"] in ("queued", "failed")  # no worker here: it waits (or the queue is down)


# --- What each list contains, not only whether it answers -------------------------------------

def _ids(response) -> set[int]:
    return {row["id"] for row in response.json()["results"]}


@pytest.mark.parametrize(
    ("role", "courses", "sessions", "records_of"),
    [
        ("admin", {"course", "other"}, {"session", "other"}, {"student", "other_student"}),
        ("lecturer", {"course"}, {"session"}, {"student"}),
        ("other_lecturer", {"other"}, {"other"}, {"other_student"}),
        ("student", {"course"}, {"session"}, {"student"}),
        ("other_student", {"other"}, {"other"}, {"other_student"}),
    ],
)
def test_api_lists_hold_exactly_the_rows_a_role_may_see(client, world, role, courses, sessions, records_of):
    client.force_login(world.users[role])
    course_ids = {"course": world.course.pk, "other": world.other_course.pk}
    session_ids = {"session": world.session.pk, "other": world.other_session.pk}
    assert _ids(client.get(reverse("api-course-list"))) == {course_ids[c] for c in courses}
    assert _ids(client.get(reverse("api-session-list"))) == {session_ids[s] for s in sessions}
    records = client.get(reverse("api-record-list")).json()["results"]
    assert {r["student"] for r in records} == {world.users[who].pk for who in records_of}


def test_no_api_response_reveals_a_kiosk_token(client, world):
    world.session.kiosk_token = "secret-kiosk-token"
    world.session.kiosk_device_hash = "secret-device-hash"
    world.session.save()
    client.force_login(world.users["admin"])
    for name, arg in [("api-session-list", None), ("api-session-detail", "session"), ("api-session-report", "session")]:
        content = client.get(_url(world, name, arg)).content.decode()
        assert "secret-kiosk-token" not in content and "secret-device-hash" not in content


@pytest.mark.parametrize(
    ("role", "visible"),
    [("admin", {"SEC1", "OTH1"}), ("lecturer", {"SEC1"}), ("student", {"SEC1"}), ("other_student", {"OTH1"})],
)
def test_course_list_page_shows_only_visible_courses(client, world, role, visible):
    client.force_login(world.users[role])
    html = client.get(reverse("course-list")).content.decode()
    assert {code for code in ("SEC1", "OTH1") if code in html} == visible


def test_a_lecturer_sees_only_their_own_courses_in_a_shared_students_report(client, world):
    """A student on two courses: each lecturer sees that student's attendance in their own course only."""
    CourseMembership.objects.create(course=world.other_course, student=world.users["student"])
    client.force_login(world.users["other_lecturer"])
    html = client.get(reverse("student-report", args=[world.users["student"].pk])).content.decode()
    assert "OTH1" in html and "SEC1" not in html


def test_inactive_accounts_see_nothing():
    from attendance.models import User

    ghost = User(username="ghost", role="admin", is_superuser=True, is_active=False)
    assert not permissions.courses_visible_to(ghost).exists()
    assert not permissions.is_staff_role(ghost)


# --- Tokens -----------------------------------------------------------------------------------

def test_a_person_gets_a_token_with_their_password_and_an_admin_revokes_it(client, world, make_user):
    lecturer = world.users["lecturer"]
    response = client.post(reverse("api-token"), {"username": lecturer.username, "password": "pw-for-tests-only"})
    assert response.status_code == 200
    key = response.json()["token"]
    auth = {"HTTP_AUTHORIZATION": f"Token {key}"}
    assert client.get(reverse("api-course-list"), **auth).status_code == 200

    # Only an admin may revoke someone else's token.
    other = Token.objects.get_or_create(user=world.users["other_lecturer"])[0]
    refused = client.delete(reverse("api-user-token", args=[lecturer.pk]),
                            HTTP_AUTHORIZATION=f"Token {other.key}")
    assert refused.status_code == 403
    admin_token = Token.objects.get_or_create(user=world.users["admin"])[0]
    revoked = client.delete(reverse("api-user-token", args=[lecturer.pk]),
                            HTTP_AUTHORIZATION=f"Token {admin_token.key}")
    assert revoked.status_code == 204
    assert client.get(reverse("api-course-list"), **auth).status_code == 401
    again = client.delete(reverse("api-user-token", args=[lecturer.pk]),
                          HTTP_AUTHORIZATION=f"Token {admin_token.key}")
    assert again.status_code == 404 and "has no API token" in again.json()["detail"]


def test_a_wrong_password_gets_no_token_and_a_clear_message(client, world):
    response = client.post(reverse("api-token"), {"username": world.users["lecturer"].username, "password": "nope"})
    assert response.status_code == 400
    assert "Unable to log in with provided credentials." in response.content.decode()


def test_a_person_can_revoke_their_own_token(client, world):
    token = Token.objects.create(user=world.users["student"])
    response = client.delete(reverse("api-token"), HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 204 and not Token.objects.filter(pk=token.pk).exists()


def test_api_explains_bad_query_parameters(client, world):
    client.force_login(world.users["admin"])
    response = client.get(reverse("api-session-list"), {"course": "abc"})
    assert response.status_code == 400 and "course must be a whole number" in response.json()["course"]
    report = client.get(reverse("api-course-report", args=[world.course.pk]), {"from": "next tuesday"})
    assert report.status_code == 400 and "YYYY-MM-DD" in report.content.decode()


# --- Face enrolment: the status API reads, the upload API writes --------------------------------

@pytest.mark.parametrize(
    ("role", "read", "upload"),
    [
        ("admin", 200, 400),  # allowed; the empty upload is then refused for having no video
        ("lecturer", 200, 403),
        ("other_lecturer", 404, 403),
        ("student", 200, 400),
        ("other_student", 404, 403),
        ("anonymous", 401, 401),
    ],
)
def test_enrolment_api_permissions(client, world, role, read, upload):
    from attendance.models import FaceEnrolment

    enrolment = FaceEnrolment.objects.create(student=world.users["student"], status="failed",
                                             consent_given_at=timezone.now())
    headers = {}
    if role != "anonymous":
        token, _ = Token.objects.get_or_create(user=world.users[role])
        headers["HTTP_AUTHORIZATION"] = f"Token {token.key}"
    response = client.get(reverse("api-enrolment-detail", args=[enrolment.pk]), **headers)
    assert response.status_code == read, f"{role} GET api-enrolment-detail: {response.status_code}"
    response = client.post(reverse("api-enrolment-create"), {"student": world.users["student"].pk, "consent": "true"},
                           **headers)
    assert response.status_code == upload, f"{role} POST api-enrolment-create: {response.status_code}"
    assert set(response.json()) == {"code", "message"}
    assert FaceEnrolment.objects.count() == 1
