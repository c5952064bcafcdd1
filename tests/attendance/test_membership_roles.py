"""Only students take a course and only lecturers teach one: refused by the service, by the database
(whatever code writes the row) and never offered by the Django admin's pickers."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse

from attendance.courses.services import (
    MembershipError,
    course_lecturer_add,
    course_membership_add,
    user_role_problem,
)
from attendance.models import CourseMembership, User


def test_the_service_refuses_a_lecturer_or_an_admin_as_a_student(course, lecturer, admin_user):
    for person in (lecturer, admin_user):
        with pytest.raises(MembershipError) as caught:
            course_membership_add(course=course, student=person)
        assert caught.value.code == "not_a_student"
        assert "is not a student" in caught.value.message
    assert not CourseMembership.objects.filter(course=course).exists()


def test_the_database_refuses_a_lecturer_membership_written_directly(course, lecturer, make_user):
    superuser_student = make_user("student", is_superuser=True)
    for person in (lecturer, superuser_student):
        with pytest.raises(IntegrityError, match="only a student"), transaction.atomic():
            CourseMembership.objects.create(course=course, student=person)
    student = make_user("student")
    membership = CourseMembership.objects.create(course=course, student=student)
    membership.student = lecturer
    with pytest.raises(IntegrityError, match="only a student"), transaction.atomic():
        membership.save()


def test_only_a_lecturer_can_teach_a_course(course, student, admin_user, make_user):
    with pytest.raises(MembershipError) as caught:
        course_lecturer_add(course=course, lecturer=student)
    assert caught.value.code == "not_a_lecturer"
    for person in (student, admin_user):
        with pytest.raises(IntegrityError, match="only a lecturer"), transaction.atomic():
            course.lecturers.add(person)
    another = make_user("lecturer")
    course_lecturer_add(course=course, lecturer=another)
    assert course.lecturers.filter(pk=another.pk).exists()


def test_a_role_change_that_would_break_a_roster_is_refused(course, lecturer, student):
    course_membership_add(course=course, student=student)
    assert "take them off those courses first" in user_role_problem(user=student, role="lecturer")
    assert "teaches courses" in user_role_problem(user=lecturer, role="student")
    student.role = User.Role.LECTURER
    with pytest.raises(IntegrityError, match="on courses as a student"), transaction.atomic():
        student.save()
    lecturer.role = User.Role.ADMIN
    with pytest.raises(IntegrityError, match="teaches courses"), transaction.atomic():
        lecturer.save()
    # Saving without a role change (what every sign-in and profile edit does) still works.
    student.refresh_from_db()
    student.first_name = "Renamed"
    student.save()


def test_the_admin_membership_picker_offers_only_students(client, admin_user, course, lecturer, student):
    client.force_login(admin_user)
    response = client.get(reverse("admin:autocomplete"), {
        "app_label": "attendance", "model_name": "coursemembership", "field_name": "student", "term": "",
    })
    assert response.status_code == 200
    offered = {int(r["id"]) for r in response.json()["results"]}
    assert student.pk in offered
    assert lecturer.pk not in offered and admin_user.pk not in offered


def test_the_admin_refuses_a_role_change_in_words(client, admin_user, course, student):
    course_membership_add(course=course, student=student)
    client.force_login(admin_user)
    url = reverse("admin:attendance_user_change", args=[student.pk])
    form = client.get(url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k not in ("groups", "user_permissions",
                                                                                 "password")}
    data.update({"role": "lecturer", "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00",
                 "is_active": "on"})
    data.pop("date_joined", None)
    data.pop("last_login", None)
    response = client.post(url, data)
    assert response.status_code == 200
    assert "take them off those courses first" in response.content.decode()
    student.refresh_from_db()
    assert student.role == "student"


@pytest.mark.django_db(transaction=True)
def test_the_migration_removes_wrong_rows_made_before_it_and_then_refuses_new_ones():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    before = [("attendance", "0006_liveness_policy_and_record_checks")]
    executor.migrate(before)
    apps = executor.loader.project_state(before).apps
    old_user, old_course = apps.get_model("attendance", "User"), apps.get_model("attendance", "Course")
    course = old_course.objects.create(code="OLD1", title="Old", term="2025")
    lecturer = old_user.objects.create(username="old-lecturer", role="lecturer")
    student = old_user.objects.create(username="old-student", role="student")
    # What the issue found: a lecturer accepted as a "student" of a course, and a student as its lecturer.
    apps.get_model("attendance", "CourseMembership").objects.create(course=course, student=lecturer)
    apps.get_model("attendance", "CourseMembership").objects.create(course=course, student=student)
    course.lecturers.add(student, lecturer)
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert list(CourseMembership.objects.filter(course_id=course.pk).values_list("student_id", flat=True)) == [
        student.pk]
    assert list(User.objects.filter(taught_courses__pk=course.pk).values_list("pk", flat=True)) == [lecturer.pk]
    with pytest.raises(IntegrityError, match="only a student"), transaction.atomic():
        CourseMembership.objects.create(course_id=course.pk, student_id=lecturer.pk)
