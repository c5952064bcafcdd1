"""No one reaches another person's rows by changing an id.

Every URL of the app that takes an id is listed in PROBES, and a test walks the URLconf so that a
new URL with an id and no probe fails the suite. Each probe asks for side B's row as every role
that must be refused (side A's lecturer and student, B's own student where the page is for staff,
a visitor) with every method the view takes, and checks: the answer is a refusal (a visitor sent
to sign in, 401, 403 or 404), it names nothing of B's, and B's rows are exactly as before. The same
request from B's lecturer or an admin then succeeds, so a URL that refuses everyone cannot pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.contrib import admin
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.authtoken.models import Token

from attendance.checkin.api import KIOSK_COOKIE
from attendance.models import AttendanceRecord, CourseGrading, CourseMembership, FaceEnrolment, Session, User
from tests.conftest import kiosk_pair
from tests.security.conftest import World

Kwargs = Callable[[World], dict[str, Any]]

STAFF_ATTACKERS = ("lecturer_a", "student_a", "student_b", "anonymous")
PERSON_ATTACKERS = ("lecturer_a", "student_a", "anonymous")
# Face data and the privacy pages are the student's own (or an admin's, on request): B's lecturer
# is refused too.
FACE_ATTACKERS = ("lecturer_a", "lecturer_b", "student_a", "anonymous")
# The management area's course and person pages: admins only, B's own lecturer included.
ADMIN_ONLY_ATTACKERS = ("lecturer_a", "lecturer_b", "student_a", "student_b", "anonymous")


@dataclass(frozen=True)
class Probe:
    kwargs: Kwargs
    methods: tuple[str, ...]
    attackers: tuple[str, ...]
    owner: str  # who gets `allowed` for the same request (after the attackers)
    allowed: tuple[int, ...] = (200,)
    owner_method: str | None = None  # when the owner's check uses another method (GET for a form)
    body: Callable[[World], dict[str, Any]] = field(default=lambda w: {})


def _course(w: World) -> dict[str, Any]:
    return {"pk": w.b.course.pk}  # type: ignore[attr-defined]


def _session(w: World) -> dict[str, Any]:
    return {"pk": w.b.session.pk}  # type: ignore[attr-defined]


def _scheduled(w: World) -> dict[str, Any]:
    return {"pk": w.b.scheduled.pk}  # type: ignore[attr-defined]


def _student(w: World) -> dict[str, Any]:
    return {"pk": w.b.student.pk}  # type: ignore[attr-defined]


def _series(w: World) -> dict[str, Any]:
    from datetime import date, time

    from attendance.timetable.services import SeriesSpec, series_save

    spec = SeriesSpec(title="Probe", weekdays=[2], start_time=time(9), end_time=time(10), every_weeks=1,
                      starts_on=date(2030, 1, 1), ends_on=date(2030, 1, 31))
    series, _ = series_save(course=w.b.course, by=w.b.lecturer, spec=spec)  # type: ignore[attr-defined]
    return {"pk": w.b.course.pk, "series_pk": series.pk}  # type: ignore[attr-defined]


def _late_record(w: World) -> dict[str, Any]:
    return {"pk": AttendanceRecord.objects.get(session=w.b.closed, student=w.b.student).pk}  # type: ignore[attr-defined]


def _excuse(w: World) -> dict[str, Any]:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from attendance.excuses.services import excuse_request

    record = AttendanceRecord.objects.get(session=w.b.closed, student=w.b.student)  # type: ignore[attr-defined]
    if (pending := record.excuses.filter(status="pending").first()) is not None:  # one excuse for every probe
        return {"pk": pending.pk}
    document = SimpleUploadedFile("note.pdf", b"%PDF-1.4\ntrailer<<>>\n%%EOF\n")
    excuse = excuse_request(record=record, by=w.b.student, reason="probe", document=document)  # type: ignore[arg-type]
    return {"pk": excuse.pk}


def _mark(w: World) -> dict[str, Any]:
    return {"student": w.b.student.pk, "status": "absent", "reason": "probe"}  # type: ignore[attr-defined]


PROBES: dict[str, Probe] = {
    # Pages for managing a course's sessions.
    "course-detail": Probe(_course, ("GET",), STAFF_ATTACKERS, "lecturer_b"),
    "course-session-start": Probe(_course, ("POST",), STAFF_ATTACKERS, "lecturer_b", (302,),
                                  body=lambda w: {"title": "probe"}),
    "session-open": Probe(_scheduled, ("POST",), STAFF_ATTACKERS, "lecturer_b", (302,)),
    "session-close": Probe(_session, ("POST",), STAFF_ATTACKERS, "lecturer_b", (302,)),
    "session-checkin": Probe(_session, ("GET",), STAFF_ATTACKERS, "lecturer_b"),
    "session-kiosk": Probe(_session, ("POST",), STAFF_ATTACKERS, "lecturer_b", (302,)),
    "session-kiosk-revoke": Probe(_session, ("POST",), STAFF_ATTACKERS, "lecturer_b", (302,)),
    # Check-in API. The owner's snapshot is not an image: 400 shows it got past the permission check.
    "api-course-session-start": Probe(_course, ("POST",), STAFF_ATTACKERS, "lecturer_b", (201,)),
    "api-session-open": Probe(_scheduled, ("POST",), STAFF_ATTACKERS, "lecturer_b"),
    "api-session-close": Probe(_session, ("POST",), STAFF_ATTACKERS, "lecturer_b"),
    "api-session-checkin": Probe(_session, ("POST",), (*STAFF_ATTACKERS, "kiosk_a"), "kiosk_b", (400,)),
    "api-session-state": Probe(_session, ("GET",), STAFF_ATTACKERS, "lecturer_b"),
    "api-session-marks": Probe(_session, ("POST",), STAFF_ATTACKERS, "lecturer_b", body=_mark),
    "api-session-doubtful-dismiss": Probe(
        lambda w: {"pk": w.b.session.pk, "student_id": w.b.student.pk},  # type: ignore[attr-defined]
        ("DELETE",), STAFF_ATTACKERS, "lecturer_b", (204,),
    ),
    # Reports.
    "course-report": Probe(_course, ("GET",), STAFF_ATTACKERS, "lecturer_b"),
    "course-report-csv": Probe(_course, ("GET",), STAFF_ATTACKERS, "lecturer_b"),
    "session-report": Probe(_session, ("GET",), STAFF_ATTACKERS, "lecturer_b"),
    "session-report-csv": Probe(_session, ("GET",), STAFF_ATTACKERS, "lecturer_b"),
    "student-report": Probe(_student, ("GET",), PERSON_ATTACKERS, "lecturer_b"),
    "student-report-csv": Probe(_student, ("GET",), PERSON_ATTACKERS, "lecturer_b"),
    "course-report-xlsx": Probe(_course, ("GET",), STAFF_ATTACKERS, "lecturer_b"),
    "session-report-xlsx": Probe(_session, ("GET",), STAFF_ATTACKERS, "lecturer_b"),
    "student-report-xlsx": Probe(_student, ("GET",), PERSON_ATTACKERS, "lecturer_b"),
    # Points, warnings and the gradebook.
    "course-grading": Probe(_course, ("GET", "POST"), STAFF_ATTACKERS, "lecturer_b", (302,), owner_method="POST",
                            body=lambda w: {"points_present": "3", "points_late": "1", "points_excused": "1",
                                            "points_absent": "0", "warning_min_sessions": "3"}),
    "course-gradebook-csv": Probe(_course, ("GET",), STAFF_ATTACKERS, "lecturer_b"),
    "course-gradebook-xlsx": Probe(_course, ("GET",), STAFF_ATTACKERS, "lecturer_b"),
    "api-course-detail": Probe(_course, ("GET",), ("lecturer_a", "student_a", "anonymous"), "student_b"),
    "api-session-detail": Probe(_session, ("GET",), ("lecturer_a", "student_a", "anonymous"), "student_b"),
    "api-course-report": Probe(_course, ("GET",), STAFF_ATTACKERS, "lecturer_b"),
    "api-session-report": Probe(_session, ("GET",), STAFF_ATTACKERS, "lecturer_b"),
    "api-student-report": Probe(_student, ("GET",), PERSON_ATTACKERS, "lecturer_b"),
    # Timetable. The owner's import has no file: 400 shows it got past the permission check.
    "course-timetable": Probe(_course, ("GET", "POST"), STAFF_ATTACKERS, "lecturer_b", owner_method="GET"),
    "series-edit": Probe(_series, ("GET", "POST"), STAFF_ATTACKERS, "lecturer_b", owner_method="GET"),
    "series-delete": Probe(_series, ("POST",), STAFF_ATTACKERS, "lecturer_b", (302,)),
    "sessions-import": Probe(_course, ("POST",), STAFF_ATTACKERS, "lecturer_b", (400,)),
    "api-course-timetable": Probe(_course, ("GET", "POST"), STAFF_ATTACKERS, "lecturer_b", owner_method="GET"),
    # Excuses: asked by the record's student, decided by the course's lecturers.
    "excuse-request": Probe(_late_record, ("GET", "POST"), FACE_ATTACKERS, "student_b", owner_method="GET",
                            body=lambda w: {"reason": "probe"}),
    "excuse-decide": Probe(_excuse, ("POST",), STAFF_ATTACKERS, "lecturer_b", (302,),
                           body=lambda w: {"decision": "approve", "note": "probe"}),
    "excuse-document": Probe(_excuse, ("GET",), PERSON_ATTACKERS, "lecturer_b"),
    "api-record-excuse": Probe(_late_record, ("POST",), FACE_ATTACKERS, "student_b", (201,),
                               body=lambda w: {"reason": "probe"}),
    "api-excuse-decide": Probe(_excuse, ("POST",), STAFF_ATTACKERS, "lecturer_b",
                               body=lambda w: {"decision": "decline", "note": "probe"}),
    # Privacy and face data.
    "student-data-export": Probe(_student, ("GET",), FACE_ATTACKERS, "admin"),
    "student-withdraw-consent": Probe(_student, ("GET", "POST"), FACE_ATTACKERS, "admin", owner_method="GET",
                                      body=lambda w: {"confirm": "on", "reason": "probe"}),
    "student-enrol": Probe(_student, ("GET", "POST"), FACE_ATTACKERS, "admin", owner_method="GET",
                           body=lambda w: {"consent": "on"}),
    "api-enrolment-detail": Probe(lambda w: {"pk": w.b.enrolment.pk},  # type: ignore[attr-defined]
                                  ("GET",), PERSON_ATTACKERS, "student_b"),
    "api-user-token": Probe(lambda w: {"pk": w.b.lecturer.pk},  # type: ignore[attr-defined]
                            ("DELETE",), ("lecturer_a", "lecturer_b", "student_a", "student_b", "anonymous"),
                            "admin", (204,)),
    # The management area: a course's roster for its lecturers, everything else for admins only.
    "campus-roster": Probe(_course, ("GET", "POST"), STAFF_ATTACKERS, "lecturer_b", owner_method="GET",
                           body=lambda w: {"action": "remove", "selected": [
                               m.pk for m in CourseMembership.objects.filter(course=w.b.course)]}),  # type: ignore[attr-defined]
    "campus-course-edit": Probe(_course, ("GET", "POST"), ADMIN_ONLY_ATTACKERS, "admin", owner_method="GET",
                                body=lambda w: {"code": "PWNED", "title": "x", "term": "x"}),
    "campus-person-edit": Probe(_student, ("GET", "POST"), ADMIN_ONLY_ATTACKERS, "admin", owner_method="GET",
                                body=lambda w: {"username": "pwned", "first_name": "x", "last_name": "x",
                                                "role": "student", "student_number": "x"}),
}

# URLs with a path parameter that is not a row id, and where they are tested instead.
NOT_IDS = {
    "kiosk": "a kiosk link's token, not an id: the kiosk tests below and tests/attendance/test_kiosk_pairing.py",
    "campus-import-preview": "an upload token, not an id: tests/attendance/test_campus_import.py "
                             "(another admin's token, a changed file: 404)",
    "campus-import-progress": "an upload token, not an id: tests/attendance/test_permissions.py "
                              "(test_a_background_import_is_seen_only_by_the_admin_who_uploaded_it)",
    "campus-import-template": "a file format (csv, xlsx), the same template for every admin",
    "feed-ics": "a calendar feed token, not an id: tests/attendance/test_feeds.py",
}


def _walk(patterns: list[Any], prefix: str = "", namespace: str = "") -> Iterator[tuple[str, str, set[str]]]:
    """(qualified URL name, route, parameter names) of every pattern, nested includes too."""
    for pattern in patterns:
        params = set(getattr(pattern.pattern, "converters", {})) | set(pattern.pattern.regex.groupindex)
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            for name, route, inner_params in _walk(pattern.url_patterns, prefix + str(pattern.pattern), inner):
                yield name, route, params | inner_params
        elif isinstance(pattern, URLPattern):
            yield f"{namespace}{pattern.name or ''}", prefix + str(pattern.pattern), params


def all_urls() -> list[tuple[str, str, set[str]]]:
    return list(_walk(get_resolver().url_patterns))


def app_urls_with_params() -> set[str]:
    return {name for name, _, params in all_urls() if params and not name.startswith("admin:")}


def client_for(world: World, role: str, **client_kwargs: Any) -> Client:
    client = Client(**client_kwargs)
    if role.startswith("kiosk_"):
        side = world.a if role == "kiosk_a" else world.b
        client.cookies[KIOSK_COOKIE] = side.kiosk_secret  # the paired kiosk's browser
        return client
    user = world.user(role)
    if user is not None:
        client.force_login(user)  # type: ignore[arg-type]
    return client


def fingerprint(world: World) -> dict[str, Any]:
    """Everything of side B that an attacker might change."""
    b = world.b
    return {
        "sessions": sorted(Session.objects.filter(course=b.course).values_list("pk", "status", "kiosk_token",
                                                                               "kiosk_device_hash")),
        "records": sorted(AttendanceRecord.objects.filter(student=b.student).values_list("pk", "status", "method")),
        "enrolments": sorted(FaceEnrolment.objects.filter(student=b.student).values_list("pk", "status", "video")),
        "memberships": sorted(CourseMembership.objects.filter(course=b.course).values_list("student_id", flat=True)),
        "tokens": sorted(Token.objects.filter(user__in=[b.lecturer, b.student]).values_list("key", flat=True)),
        "grading": sorted(CourseGrading.objects.filter(course=b.course).values_list("points_present", "warning_rate")),
    }


def send(client: Client, method: str, url: str, body: dict[str, Any]) -> Any:
    if method == "GET":
        return client.get(url)
    if method == "DELETE":
        return client.delete(url)
    if url.startswith("/api/") and "check-in" in url:
        return client.post(url, data=b"not an image", content_type="image/jpeg")
    if url.startswith("/api/"):
        return client.post(url, data=body, content_type="application/json")
    return client.post(url, data=body)


def assert_refused(response: Any, *, role: str, world: World, what: str) -> None:
    status = response.status_code
    if status == 302:
        assert role == "anonymous", f"{what}: {role} was redirected to {response['Location']}"
        assert "/login/" in response["Location"], f"{what}: a visitor was sent to {response['Location']}"
        return
    assert status in (401, 403, 404), f"{what}: {role} got {status}"
    if role == "student_b":  # B's own student sees their own name on every page
        return
    body = b"".join(response.streaming_content) if response.streaming else response.content
    for secret in (world.b.student.student_number, world.b.student.last_name):  # type: ignore[attr-defined]
        assert secret.encode() not in body, f"{what}: the refusal to {role} names {secret!r}"


def test_every_url_with_an_id_has_an_access_probe():
    missing = app_urls_with_params() - set(PROBES) - set(NOT_IDS)
    stale = set(PROBES) - app_urls_with_params()
    assert not missing, f"URLs with ids and no access probe in {__name__}.PROBES: {sorted(missing)}"
    assert not stale, f"probes for URLs that no longer exist: {sorted(stale)}"


@pytest.mark.parametrize("name", sorted(PROBES))
def test_an_id_from_another_course_or_person_is_refused(world: World, name: str):
    probe = PROBES[name]
    url = reverse(name, kwargs=probe.kwargs(world))
    before = fingerprint(world)
    for role in probe.attackers:
        for method in probe.methods:
            response = send(client_for(world, role), method, url, probe.body(world))
            assert_refused(response, role=role, world=world, what=f"{method} {url}")
    assert fingerprint(world) == before, f"{name}: a refused request changed side B's rows"
    # The control: the owner's same request works, so the refusals above were about who asked.
    method = probe.owner_method or probe.methods[0]
    response = send(client_for(world, probe.owner), method, url, probe.body(world))
    assert response.status_code in probe.allowed, (
        f"{name}: {probe.owner} got {response.status_code} for {method} {url}; expected {probe.allowed}"
    )


def test_admin_pages_of_every_row_refuse_everyone_but_staff(world: World):
    admin_urls = [(name, params) for name, _, params in all_urls() if name.startswith("admin:") and params]
    assert len(admin_urls) > 20  # the walk really found the admin's per-object pages
    values = {"object_id": str(world.b.student.pk), "id": str(world.b.student.pk),  # type: ignore[attr-defined]
              "app_label": "attendance"}
    checked = 0
    for name, params in admin_urls:
        if name == "admin:" or not set(params) <= set(values):
            continue
        url = reverse(name, kwargs={p: values[p] for p in params})
        for role in ("lecturer_a", "student_a", "student_b", "lecturer_b"):
            for method in ("GET", "POST"):
                response = send(client_for(world, role), method, url, {})
                assert response.status_code == 302 and "/admin/login/" in response["Location"], (
                    f"{role} {method} {url}: {response.status_code}"
                )
        checked += 1
    assert checked >= 3 * len(admin.site._registry)  # change, delete and history of every model
    response = client_for(world, "admin").get(reverse("admin:attendance_user_change", args=[world.b.student.pk]))  # type: ignore[attr-defined]
    assert response.status_code == 200


# --- Ids in the body or the query --------------------------------------------------------------

def test_marking_a_student_of_another_course_is_refused_without_naming_them(world: World):
    client = client_for(world, "lecturer_a")
    url = reverse("api-session-marks", args=[world.a.session.pk])  # type: ignore[attr-defined]
    for student in (world.b.student, world.b.lecturer, world.admin):
        response = client.post(url, {"student": student.pk, "status": "present"},  # type: ignore[attr-defined]
                               content_type="application/json")
        assert response.status_code == 404, response.content
        assert student.last_name.encode() not in response.content  # type: ignore[attr-defined]
        assert not AttendanceRecord.objects.filter(session=world.a.session, student=student).exists()
    # An unknown id gets the very same answer: probing ids tells nothing.
    unknown = client.post(url, {"student": 10**9, "status": "present"}, content_type="application/json")
    assert unknown.status_code == 404 and unknown.json() == response.json()


def test_enrolling_someone_else_through_the_body_is_refused(world: World):
    client = client_for(world, "student_a")
    before = FaceEnrolment.objects.count()
    for target in (world.b.student.pk, 10**9):  # type: ignore[attr-defined]
        video = SimpleUploadedFile("face.mp4", b"\x00\x00\x00\x18ftypmp42", content_type="video/mp4")
        response = client.post(reverse("api-enrolment-create"), {"student": target, "consent": "true",
                                                                  "video": video})
        assert response.status_code == 403, response.content
    assert FaceEnrolment.objects.count() == before


@pytest.mark.parametrize(
    ("role", "url_name", "param", "value"),
    [
        ("student_a", "api-record-list", "student", lambda w: w.b.student.pk),
        ("student_a", "api-record-list", "session", lambda w: w.b.session.pk),
        ("lecturer_a", "api-record-list", "course", lambda w: w.b.course.pk),
        ("lecturer_a", "api-session-list", "course", lambda w: w.b.course.pk),
        ("student_a", "api-session-list", "course", lambda w: w.b.course.pk),
    ],
)
def test_filtering_lists_by_another_course_or_person_finds_nothing(world: World, role, url_name, param, value):
    response = client_for(world, role).get(reverse(url_name), {param: value(world)})
    assert response.status_code == 200
    assert response.json()["count"] == 0
    # The control: the same filter on the caller's own side finds rows.
    own = {"student": world.a.student.pk, "session": world.a.session.pk, "course": world.a.course.pk}[param]  # type: ignore[attr-defined]
    assert client_for(world, role).get(reverse(url_name), {param: own}).json()["count"] > 0


# --- Kiosks ---------------------------------------------------------------------------------------

def _kiosk_checkin(world: World, session: object, secret: str) -> Any:
    return Client().post(reverse("api-session-checkin", args=[session.pk]), data=b"not an image",  # type: ignore[attr-defined]
                         content_type="image/jpeg", HTTP_X_KIOSK_TOKEN=secret)


def test_a_paired_kiosk_works_only_for_its_own_open_session(world: World):
    assert _kiosk_checkin(world, world.b.session, world.b.kiosk_secret).status_code == 400  # let in, not an image
    assert _kiosk_checkin(world, world.b.session, world.a.kiosk_secret).status_code == 403
    assert _kiosk_checkin(world, world.b.session, world.b.kiosk_secret + "x").status_code == 403
    # The link's token paired the kiosk (the fixture): it posts nothing and pairs no other device.
    assert _kiosk_checkin(world, world.b.session, world.b.kiosk_token).status_code == 403
    assert Client().get(reverse("kiosk", args=[world.b.kiosk_token])).status_code == 409
    assert Client().get(reverse("kiosk", args=["x" * 43])).status_code == 404
    # The kiosk posts snapshots, nothing else.
    state = Client().get(reverse("api-session-state", args=[world.b.session.pk]),  # type: ignore[attr-defined]
                         HTTP_X_KIOSK_TOKEN=world.b.kiosk_secret)
    assert state.status_code in (401, 403)


def test_a_kiosk_stops_working_the_moment_its_session_closes(world: World):
    token, secret = world.b.kiosk_token, world.b.kiosk_secret
    lecturer = client_for(world, "lecturer_b")
    assert _kiosk_checkin(world, world.b.session, secret).status_code == 400
    assert lecturer.post(reverse("api-session-close", args=[world.b.session.pk])).status_code == 200  # type: ignore[attr-defined]
    response = _kiosk_checkin(world, world.b.session, secret)
    assert response.status_code == 403
    assert "no longer valid" in response.json()["detail"]
    assert Client().get(reverse("kiosk", args=[token])).status_code == 404
    assert client_for(world, "kiosk_b").get(reverse("kiosk-page")).status_code == 404
    # Reopening a session would not revive them either: the token and the hash were wiped, not just hidden.
    assert Session.objects.filter(kiosk_token=token).count() == 0
    assert Session.objects.get(pk=world.b.session.pk).kiosk_device_hash is None  # type: ignore[attr-defined]


def test_a_revoked_or_replaced_kiosk_link_stops_its_kiosk(world: World):
    lecturer = client_for(world, "lecturer_b")
    first = world.b.kiosk_secret
    lecturer.post(reverse("session-kiosk", args=[world.b.session.pk]))  # type: ignore[attr-defined]
    assert _kiosk_checkin(world, world.b.session, first).status_code == 403
    token = Session.objects.get(pk=world.b.session.pk).kiosk_token  # type: ignore[attr-defined]
    assert token and token != world.b.kiosk_token
    second = kiosk_pair(token).secret
    assert second != first
    assert _kiosk_checkin(world, world.b.session, second).status_code == 400
    lecturer.post(reverse("session-kiosk-revoke", args=[world.b.session.pk]))  # type: ignore[attr-defined]
    assert _kiosk_checkin(world, world.b.session, second).status_code == 403


def test_neither_the_kiosk_token_nor_the_device_hash_is_in_the_read_api(world: World):
    device_hash = Session.objects.get(pk=world.b.session.pk).kiosk_device_hash  # type: ignore[attr-defined]
    assert device_hash
    for role in ("admin", "lecturer_b", "student_b"):
        client = client_for(world, role)
        for url in (reverse("api-session-list"), reverse("api-session-detail", args=[world.b.session.pk])):  # type: ignore[attr-defined]
            content = client.get(url).content
            assert world.b.kiosk_token.encode() not in content and device_hash.encode() not in content


# --- Media ---------------------------------------------------------------------------------------

def test_enrolment_videos_and_snapshots_are_not_served_from_a_media_url(world: World, settings):
    from django.urls import Resolver404, resolve

    from tests.security.conftest import media_path

    for name in world.media_files():
        assert media_path(name).is_file(), name
        content = media_path(name).read_bytes()
        url = settings.MEDIA_URL + name
        with pytest.raises(Resolver404):
            resolve(url)
        for role in ("admin", "lecturer_b", "student_b", "anonymous"):
            response = client_for(world, role).get(url)
            assert response.status_code == 404, f"{role} GET {url}: {response.status_code}"
            body = b"".join(response.streaming_content) if response.streaming else response.content
            assert content not in body


def test_no_url_serves_files_from_the_media_folder(settings):
    from django.views.static import serve

    for pattern in _patterns(get_resolver().url_patterns):
        assert getattr(pattern, "callback", None) is not serve, f"{pattern} serves files"
    media = settings.MEDIA_ROOT.resolve()
    for folder in [settings.STATIC_ROOT, *settings.STATICFILES_DIRS]:
        folder = folder.resolve()
        assert not media.is_relative_to(folder) and not folder.is_relative_to(media), (media, folder)


def _patterns(patterns: list[Any]) -> Iterator[Any]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _patterns(pattern.url_patterns)
        else:
            yield pattern


def test_enrolment_status_and_data_export_do_not_point_at_the_video(world: World):
    video = world.b.enrolment.video.name  # type: ignore[attr-defined]
    status = client_for(world, "student_b").get(reverse("api-enrolment-detail", args=[world.b.enrolment.pk]))  # type: ignore[attr-defined]
    assert status.status_code == 200
    export = client_for(world, "student_b").get(reverse("my-data-export"))
    assert export.status_code == 200
    for response in (status, export):
        assert video.encode() not in response.content
        assert b"/media/" not in response.content


def test_users_of_the_api_are_who_their_token_says(world: World):
    # A token of one person never acts as another: the same URL, B's token allowed, A's refused.
    url = reverse("api-student-report", args=[world.b.student.pk])  # type: ignore[attr-defined]
    assert Client().get(url, HTTP_AUTHORIZATION=f"Token {world.tokens['lecturer_b']}").status_code == 200
    assert Client().get(url, HTTP_AUTHORIZATION=f"Token {world.tokens['lecturer_a']}").status_code == 404
    assert Client().get(url, HTTP_AUTHORIZATION="Token " + "0" * 40).status_code == 401
    assert User.objects.filter(pk=world.b.student.pk).exists()  # type: ignore[attr-defined]
