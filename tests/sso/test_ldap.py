"""Signing in with a directory account, against a real slapd (tests/sso/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.contrib.auth import get_user
from django.urls import reverse

from attendance.models import User
from tests.conftest import REPO_ROOT
from tests.sso.conftest import PASSWORD

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_redis")]


def _sign_in(client, username: str, password: str = PASSWORD):
    return client.post(reverse("login"), {"username": username, "password": password})


def test_a_lecturer_signs_in_with_the_directory_account_and_gets_the_role_of_the_group(client, ldap_settings):
    response = _sign_in(client, "lena")

    assert response.status_code == 302 and response["Location"] == reverse("home")
    user = get_user(client)
    assert user.is_authenticated
    assert (user.username, user.role, user.first_name, user.email) == ("lena", "lecturer", "Lena", "lena@uni.test")
    assert not user.has_usable_password()  # the directory holds the password, Rollcall none


def test_the_admin_group_gives_admin_and_other_directory_people_are_students(client, ldap_settings):
    _sign_in(client, "ada")
    assert User.objects.get(username="ada").role == "admin"
    client.logout()
    _sign_in(client, "nobody")  # no student group named: everyone else is a student
    assert User.objects.get(username="nobody").role == "student"


def test_with_a_student_group_named_an_account_in_no_role_group_is_refused(client, ldap_settings, settings):
    settings.ROLLCALL_LDAP_STUDENT_GROUP = ldap_settings.group("students")

    response = _sign_in(client, "nobody")

    assert response.status_code == 200 and "cannot sign in to Rollcall" in response.content.decode()
    assert not User.objects.filter(username="nobody").exists()
    _sign_in(client, "sofia")
    assert get_user(client).role == "student"


def test_a_wrong_directory_password_is_refused(client, ldap_settings):
    response = _sign_in(client, "lena", "not-the-password")

    assert response.status_code == 200
    assert "did not match" in response.content.decode()
    assert not get_user(client).is_authenticated
    assert not User.objects.filter(username="lena").exists()


def test_an_imported_student_is_matched_by_email_not_duplicated(client, ldap_settings, make_user):
    imported = make_user("student", username="s9000", email="Bob@Uni.test", student_number="S9000")

    _sign_in(client, "bob")

    assert get_user(client).pk == imported.pk
    assert User.objects.filter(email__iexact="bob@uni.test").count() == 1
    imported.refresh_from_db()
    assert (imported.username, imported.student_number, imported.first_name) == ("s9000", "S9000", "Bob")
    client.logout()
    _sign_in(client, "bob")  # and again on the next sign-in
    assert get_user(client).pk == imported.pk
    assert User.objects.count() == 1


def test_an_imported_student_is_matched_by_student_number(client, ldap_settings, make_user):
    imported = make_user("student", username="s2002", email="", student_number="S2002")

    _sign_in(client, "carl")

    assert get_user(client).pk == imported.pk
    imported.refresh_from_db()
    assert imported.email == "carl.other@uni.test"
    assert not User.objects.filter(username="carl").exists()


def test_email_and_student_number_of_two_different_accounts_refuse_the_sign_in(client, ldap_settings, make_user):
    make_user("student", username="one", email="carl.other@uni.test")
    make_user("student", username="two", student_number="S2002")

    response = _sign_in(client, "carl")

    assert response.status_code == 200 and not get_user(client).is_authenticated
    assert "cannot sign in to Rollcall" in response.content.decode()
    assert User.objects.count() == 2


def test_a_directory_account_never_takes_over_a_local_superuser(client, ldap_settings, make_user):
    make_user("admin", username="root", email="ada@uni.test", is_superuser=True, is_staff=True)

    response = _sign_in(client, "ada")

    assert not get_user(client).is_authenticated
    assert "cannot sign in to Rollcall" in response.content.decode()


def test_local_passwords_off_refuse_everyone_but_the_first_admin(client, ldap_settings, settings, make_user):
    settings.ROLLCALL_LOCAL_PASSWORD_SIGNIN = False
    local_lecturer = make_user("lecturer", username="local-lecturer")
    make_user("admin", username="first-admin", is_superuser=True, is_staff=True)

    response = _sign_in(client, local_lecturer.username, "pw-for-tests-only")
    assert response.status_code == 200 and not get_user(client).is_authenticated
    assert "did not match" in response.content.decode()
    assert "for its administrator only" in response.content.decode()

    _sign_in(client, "first-admin", "pw-for-tests-only")
    assert get_user(client).username == "first-admin"
    client.logout()
    _sign_in(client, "lena")  # the directory is unaffected
    assert get_user(client).username == "lena"


def test_with_the_directory_down_the_first_admin_still_signs_in_and_nobody_sees_an_error(
    client, ldap_settings, settings, make_user
):
    from tests.sso.conftest import free_port

    settings.AUTH_LDAP_SERVER_URI = f"ldap://127.0.0.1:{free_port()}"  # nothing listens there
    settings.ROLLCALL_LOCAL_PASSWORD_SIGNIN = False
    make_user("admin", username="first-admin", is_superuser=True, is_staff=True)

    response = _sign_in(client, "lena")
    assert response.status_code == 200 and "did not match" in response.content.decode()
    _sign_in(client, "first-admin", "pw-for-tests-only")
    assert get_user(client).username == "first-admin"


def test_local_passwords_on_still_work_beside_the_directory(client, ldap_settings, make_user):
    local = make_user("lecturer", username="local-lecturer")

    _sign_in(client, local.username, "pw-for-tests-only")

    assert get_user(client).pk == local.pk


def test_the_api_token_takes_a_directory_password_through_the_same_rules(client, ldap_settings, settings, make_user):
    url = reverse("api-token")
    response = client.post(url, {"username": "lena", "password": PASSWORD})
    assert response.status_code == 200 and response.json()["token"]

    assert client.post(url, {"username": "lena", "password": "wrong"}).status_code == 400

    settings.ROLLCALL_LOCAL_PASSWORD_SIGNIN = False
    local = make_user("lecturer", username="local-lecturer")
    assert client.post(url, {"username": local.username, "password": "pw-for-tests-only"}).status_code == 400


def test_config_builds_the_directory_settings_from_the_environment(ldap_settings):
    """config/sso.py as a deployment reads it: the variables in .env.example, in a fresh process."""
    env = {
        **os.environ,
        "AUTH_LDAP_SERVER_URI": ldap_settings.uri,
        "AUTH_LDAP_USER_SEARCH_BASE": f"ou=people,{ldap_settings.base}",
        "AUTH_LDAP_GROUP_SEARCH_BASE": f"ou=groups,{ldap_settings.base}",
        "ROLLCALL_LDAP_GROUP_TYPE": "activeDirectory",
        "ROLLCALL_LDAP_LECTURER_GROUP": ldap_settings.group("lecturers"),
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
    }
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.AUTHENTICATION_BACKENDS[0], type(s.AUTH_LDAP_GROUP_TYPE).__name__, s.AUTH_LDAP_USER_SEARCH.base_dn)"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO_ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-3:] == [
        "attendance.sso.backends.DirectoryBackend",
        "NestedActiveDirectoryGroupType",
        f"ou=people,{ldap_settings.base}",
    ]

    env.pop("AUTH_LDAP_GROUP_SEARCH_BASE")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO_ROOT, capture_output=True, text=True)
    assert out.returncode != 0 and "AUTH_LDAP_GROUP_SEARCH_BASE must be set" in out.stderr


def test_a_directory_role_that_would_break_a_roster_refuses_the_sign_in_in_words(client, ldap_settings, make_user):
    """lena is in the lecturers' group, but her local account is a student on a course: PostgreSQL
    refuses a lecturer on a roster (migration 0008_campus), so the sign-in says why, not a 500."""
    from attendance.models import Course, CourseMembership

    local = make_user("student", username="lena", email="lena@uni.test")
    course = Course.objects.create(code="RC101", title="Roster", term="2026")
    CourseMembership.objects.create(course=course, student=local)

    response = _sign_in(client, "lena")

    assert response.status_code == 200 and "cannot sign in to Rollcall" in response.content.decode()
    assert not get_user(client).is_authenticated
    local.refresh_from_db()
    assert local.role == "student" and CourseMembership.objects.filter(student=local).exists()
