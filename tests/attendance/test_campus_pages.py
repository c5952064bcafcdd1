"""The management area's pages as an admin and a lecturer use them: search, filters, pagination,
bulk actions, a course's roster; and the role rule holding on every form."""

from __future__ import annotations

import pytest
from django.urls import reverse

from attendance.models import Course, CourseMembership, User


@pytest.fixture
def people(make_user):
    return [make_user("student", first_name="Ana", last_name=f"Zed{i:02d}", student_number=f"n{i:03d}",
                      email=f"ana{i}@uni.example") for i in range(60)]


def test_people_are_searched_filtered_and_paginated(client, admin_user, people, lecturer, course):
    client.force_login(admin_user)
    url = reverse("campus-people")
    first = client.get(url, {"role": "student"})
    assert first.status_code == 200
    assert first.context["page"].paginator.count == 60 and len(first.context["page"].object_list) == 50
    assert "Page 1 of 2" in first.content.decode()
    assert len(client.get(url, {"role": "student", "page": 2}).context["page"].object_list) == 10
    found = client.get(url, {"q": "ana7@uni"}).context["page"].object_list
    assert [p.student_number for p in found] == ["n007"]
    assert [p.pk for p in client.get(url, {"role": "lecturer"}).context["page"].object_list] == [lecturer.pk]
    CourseMembership.objects.create(course=course, student=people[3])
    on_course = client.get(url, {"course": course.pk, "role": "student"}).context["page"].object_list
    assert [p.pk for p in on_course] == [people[3].pk]


def test_bulk_add_to_a_course_takes_students_and_names_the_others(client, admin_user, people, lecturer, course):
    client.force_login(admin_user)
    picked = [people[0].pk, people[1].pk, lecturer.pk]
    response = client.post(reverse("campus-people"), {"selected": picked, "action": "add_to_course",
                                                      "course": course.pk, "query_string": "role=student"},
                           follow=True)
    assert response.redirect_chain[-1][0] == reverse("campus-people") + "?role=student"
    page = response.content.decode()
    assert "2 students added to" in page and f"{lecturer.display_name} (not a student)" in page
    assert set(course.memberships.values_list("student_id", flat=True)) == {people[0].pk, people[1].pk}
    again = client.post(reverse("campus-people"), {"selected": picked[:1], "action": "add_to_course",
                                                   "course": course.pk}, follow=True)
    assert "0 students added" in again.content.decode() and "already on" in again.content.decode()


def test_bulk_deactivate_switches_accounts_off_but_never_the_admins_own(client, admin_user, people):
    client.force_login(admin_user)
    client.post(reverse("campus-people"), {"selected": [people[0].pk, people[1].pk, admin_user.pk],
                                           "action": "deactivate"})
    assert set(User.objects.filter(is_active=False).values_list("pk", flat=True)) == {people[0].pk, people[1].pk}
    inactive = client.get(reverse("campus-people"), {"active": "no"}).context["page"].object_list
    assert {p.pk for p in inactive} == {people[0].pk, people[1].pk}
    client.post(reverse("campus-people"), {"selected": [people[0].pk], "action": "activate"})
    assert User.objects.get(pk=people[0].pk).is_active


def test_memberships_are_filtered_and_removed_in_bulk(client, admin_user, people, course, db):
    other = Course.objects.create(code="MA1", title="Maths", term="2025-spring")
    keep = CourseMembership.objects.create(course=other, student=people[0])
    gone = [CourseMembership.objects.create(course=course, student=p) for p in people[:3]]
    client.force_login(admin_user)
    url = reverse("campus-memberships")
    assert client.get(url, {"term": "2025-spring"}).context["page"].paginator.count == 1
    assert client.get(url, {"course": course.pk}).context["page"].paginator.count == 3
    client.post(url, {"selected": [m.pk for m in gone], "action": "remove"})
    assert list(CourseMembership.objects.values_list("pk", flat=True)) == [keep.pk]


def test_a_lecturer_manages_their_own_roster_by_student_number(client, lecturer, course, people, make_user):
    client.force_login(lecturer)
    url = reverse("campus-roster", args=[course.pk])
    another_lecturer = make_user("lecturer", student_number="L-9")
    response = client.post(url, {"action": "add", "numbers": "n001, n002\nn999 L-9"}, follow=True)
    page = response.content.decode()
    assert "2 students added" in page and "n999 (no such student number)" in page and "(not a student)" in page
    assert set(course.memberships.values_list("student__student_number", flat=True)) == {"n001", "n002"}
    assert not CourseMembership.objects.filter(student=another_lecturer).exists()
    roster = client.get(url, {"q": "n002"})
    assert [m.student.student_number for m in roster.context["page"].object_list] == ["n002"]
    one = course.memberships.get(student__student_number="n001")
    client.post(url, {"action": "remove", "selected": [one.pk]})
    assert list(course.memberships.values_list("student__student_number", flat=True)) == ["n002"]


def test_a_lecturer_cannot_remove_a_membership_of_another_course_through_their_roster(client, lecturer, course,
                                                                                     people, db):
    other = Course.objects.create(code="OT1", title="Other", term="2026-autumn")
    foreign = CourseMembership.objects.create(course=other, student=people[5])
    client.force_login(lecturer)
    client.post(reverse("campus-roster", args=[course.pk]), {"action": "remove", "selected": [foreign.pk]})
    assert CourseMembership.objects.filter(pk=foreign.pk).exists()


def test_the_course_form_offers_only_lecturers_and_the_person_form_keeps_rosters_right(
        client, admin_user, lecturer, student, course):
    client.force_login(admin_user)
    form = client.get(reverse("campus-course-create")).context["form"]
    assert set(form.fields["lecturers"].queryset) == {lecturer}
    refused = client.post(reverse("campus-course-create"), {"code": "x1", "title": "X", "term": "t",
                                                            "lecturers": [student.pk]})
    assert refused.status_code == 200 and not Course.objects.filter(code="X1").exists()
    made = client.post(reverse("campus-course-create"), {"code": "x1", "title": "X", "term": "t",
                                                         "lecturers": [lecturer.pk], "liveness": ""})
    assert made.status_code == 302
    assert Course.objects.get(code="X1").lecturers.get() == lecturer
    CourseMembership.objects.create(course=course, student=student)
    response = client.post(reverse("campus-person-edit", args=[student.pk]), {
        "username": student.username, "first_name": "A", "last_name": "B", "email": "", "role": "lecturer",
        "student_number": "", "is_active": "on"})
    assert "take them off those courses first" in response.content.decode()
    assert User.objects.get(pk=student.pk).role == "student"
    new = client.post(reverse("campus-person-create"), {"username": "newbie", "first_name": "New", "last_name": "Bie",
                                                        "email": "n@uni.example", "role": "student",
                                                        "student_number": "", "is_active": "on"})
    assert "A student needs a student number" in new.content.decode()


def test_the_overview_and_the_lecturers_home_link_to_the_management_area_not_the_django_admin(
        client, admin_user, lecturer, course):
    client.force_login(admin_user)
    page = client.get(reverse("home")).content.decode()
    assert reverse("campus-import") in page and reverse("campus-people") in page
    assert "/admin/attendance/" not in page
    client.force_login(lecturer)
    page = client.get(reverse("home")).content.decode()
    assert reverse("campus-roster", args=[course.pk]) in page and "/admin/" not in page
    assert reverse("campus-roster", args=[course.pk]) in client.get(reverse("course-detail", args=[course.pk])
                                                                     ).content.decode()


def test_an_admin_gives_an_imported_student_a_local_password(client, admin_user, db):
    from attendance.campus.importing import import_apply
    from attendance.campus.roster import RosterRow

    Course.objects.create(code="CS1", title="C", term="t")
    import_apply([RosterRow(2, "s55", "Ann", "Lee", "ann@uni.example", "CS1", "t", "student", "")])
    ann = User.objects.get(student_number="s55")
    assert not ann.has_usable_password()
    client.force_login(admin_user)
    fields = {"username": "s55", "first_name": "Ann", "last_name": "Lee", "email": "ann@uni.example",
              "role": "student", "student_number": "s55", "is_active": "on"}
    weak = client.post(reverse("campus-person-edit", args=[ann.pk]), {**fields, "new_password": "123"})
    assert weak.status_code == 200 and "too short" in weak.content.decode()
    client.post(reverse("campus-person-edit", args=[ann.pk]), {**fields, "new_password": "a-Long-pass-9931"})
    client.logout()
    assert client.login(username="s55", password="a-Long-pass-9931")
