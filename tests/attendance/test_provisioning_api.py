"""The provisioning API: admin tokens only, idempotent batches, all or nothing, in the OpenAPI schema."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token

from attendance.models import Course, CourseMembership, User


def post(client, name: str, body: dict, user=None):
    headers = {}
    if user is not None:
        headers["HTTP_AUTHORIZATION"] = f"Token {Token.objects.get_or_create(user=user)[0].key}"
    return client.post(reverse(name), data=json.dumps(body), content_type="application/json", **headers)


COURSES = {"courses": [{"code": "cs101", "term": "2026-autumn", "title": "Programming"},
                       {"code": "MA200", "term": "2026-autumn", "title": "Algebra"}]}


@pytest.mark.parametrize("name", ["api-provision-courses", "api-provision-people", "api-provision-memberships"])
def test_only_an_admin_token_may_provision(client, name, admin_user, lecturer, student):
    assert post(client, name, {}).status_code == 401
    for user in (lecturer, student):
        response = post(client, name, {}, user)
        assert response.status_code == 403 and "admin tokens only" in response.json()["detail"]
    client.force_login(admin_user)  # a browser session is not a script's token
    assert post(client, name, {}).status_code == 401
    client.logout()
    assert post(client, name, {}, admin_user).status_code == 400  # past the permission check: an empty batch


def test_courses_people_and_memberships_are_idempotent_by_their_keys(client, admin_user):
    first = post(client, "api-provision-courses", COURSES, admin_user)
    assert first.status_code == 200 and (first.json()["created"], first.json()["unchanged"]) == (2, 0)
    assert post(client, "api-provision-courses", COURSES, admin_user).json()["unchanged"] == 2
    people = {"people": [
        {"student_number": "s1", "first_name": "Ann", "last_name": "Lee", "email": "Ann@Uni.example"},
        {"student_number": "s2", "first_name": "Bo", "last_name": "Kim", "email": ""},
        {"role": "lecturer", "first_name": "Pat", "last_name": "Prof", "email": "pat@uni.example"},
    ]}
    made = post(client, "api-provision-people", people, admin_user).json()
    assert made["created"] == 3 and User.objects.get(student_number="s1").email == "ann@uni.example"
    again = post(client, "api-provision-people", people, admin_user).json()
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 3)
    people["people"][1]["last_name"] = "Kim-Park"
    assert post(client, "api-provision-people", people, admin_user).json()["updated"] == 1
    courses_with_lecturer = {"courses": [{"code": "CS101", "term": "2026-autumn", "title": "Programming I",
                                          "lecturers": ["pat@uni.example"]}]}
    updated = post(client, "api-provision-courses", courses_with_lecturer, admin_user).json()
    assert updated["updated"] == 1 and "taught by Pat Prof" in updated["results"][0]["detail"]
    course = Course.objects.get(code="CS101")
    assert course.title == "Programming I" and course.lecturers.get().email == "pat@uni.example"
    memberships = {"memberships": [{"student_number": "s1", "course_code": "cs101", "term": "2026-autumn"},
                                   {"student_number": "s2", "course_code": "CS101", "term": "2026-autumn"}]}
    assert post(client, "api-provision-memberships", memberships, admin_user).json()["created"] == 2
    assert post(client, "api-provision-memberships", memberships, admin_user).json()["unchanged"] == 2
    assert course.memberships.count() == 2
    synced = post(client, "api-provision-memberships", {"memberships": memberships["memberships"][:1], "sync": True},
                  admin_user).json()
    assert synced["removed"] == 1
    assert list(course.memberships.values_list("student__student_number", flat=True)) == ["s1"]


def test_a_batch_with_a_refused_item_writes_nothing_and_says_which(client, admin_user, lecturer, db):
    Course.objects.create(code="CS101", title="P", term="2026-autumn")
    lecturer.student_number = "L-1"
    lecturer.save()
    body = {"memberships": [{"student_number": "s-new", "course_code": "CS101", "term": "2026-autumn"},
                            {"student_number": "L-1", "course_code": "CS101", "term": "2026-autumn"},
                            {"student_number": "s1", "course_code": "NOPE", "term": "2026-autumn"}]}
    response = post(client, "api-provision-memberships", body, admin_user)
    assert response.status_code == 400
    results = {r["index"]: r for r in response.json()["results"]}
    assert "No account has student number s-new" in results[0]["detail"]
    assert "a lecturer account" in results[1]["detail"]
    assert "Unknown course NOPE" in results[2]["detail"]
    assert not CourseMembership.objects.exists()
    bad_course = post(client, "api-provision-courses", {"courses": [
        {"code": "NEW1", "term": "t", "title": "New"},
        {"code": "NEW2", "term": "t", "title": "New", "lecturers": ["nobody@uni.example"]}]}, admin_user)
    assert bad_course.status_code == 400 and "create the lecturer first" in bad_course.json()["results"][1]["detail"]
    assert not Course.objects.filter(code__startswith="NEW").exists()
    malformed = post(client, "api-provision-people", {"people": [{"email": "not-an-email"}]}, admin_user)
    assert malformed.status_code == 400 and "email" in json.dumps(malformed.json())


def test_the_provisioning_endpoints_are_in_the_openapi_schema(client, admin_user):
    client.force_login(admin_user)
    schema = client.get(reverse("api-schema"), {"format": "json"}).json()
    for path in ("/api/provisioning/courses/", "/api/provisioning/people/", "/api/provisioning/memberships/"):
        assert "post" in schema["paths"][path]
    assert schema["paths"]["/api/provisioning/memberships/"]["post"]["operationId"] == "provision_memberships"


def test_a_leaver_is_deactivated_and_reactivated_by_the_people_endpoint(client, admin_user, make_user):
    leaver = make_user("student", student_number="s9", first_name="Lea", last_name="Ver")
    body = {"people": [{"student_number": "s9", "active": False}]}
    first = post(client, "api-provision-people", body, admin_user).json()
    assert first["updated"] == 1 and first["results"][0]["detail"] == "account deactivated"
    leaver.refresh_from_db()
    assert not leaver.is_active and (leaver.first_name, leaver.last_name) == ("Lea", "Ver")
    assert post(client, "api-provision-people", body, admin_user).json()["unchanged"] == 1
    post(client, "api-provision-people", {"people": [{"student_number": "s9", "active": True}]}, admin_user)
    leaver.refresh_from_db()
    assert leaver.is_active
    new = post(client, "api-provision-people", {"people": [
        {"student_number": "s10", "first_name": "Not", "last_name": "Yet", "active": False}]}, admin_user).json()
    assert new["created"] == 1 and not User.objects.get(student_number="s10").is_active
