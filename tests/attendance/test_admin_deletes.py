"""Deleting in the Django admin leaves no face data behind: courses take their index files and
snapshot images with them, sessions and snapshots their images, enrolments their video and their
place in the course indexes, and students taken off a course on its page leave its index."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone

from attendance.courses.indexes import clear_cache, course_index_get, course_index_rebuild
from attendance.models import CheckinSnapshot, Course, CourseMembership, FaceEmbedding, FaceEnrolment, Session
from tests.attendance.factories_faces import enrol_with_vectors


def _vectors(seed: int, count: int = 3) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((count, 128)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _index_files(course: Course) -> list[Path]:
    return sorted(Path(settings.ROLLCALL_INDEX_DIR).glob(f"course-{course.pk}-*.faiss"))


def _snapshot(session: Session, *students: Any) -> str:
    snapshot = CheckinSnapshot.objects.create(session=session, taken_at=timezone.now(),
                                              image=ContentFile(b"jpeg bytes", name="frame.jpg"))
    snapshot.students.set(students)
    assert default_storage.exists(snapshot.image.name)
    return snapshot.image.name


@pytest.fixture
def root(make_user: Any, client: Any) -> Any:
    user = make_user("admin", username="root", is_staff=True, is_superuser=True)
    client.force_login(user)
    return client


@pytest.fixture
def enrolled(course: Course, make_user: Any) -> tuple[Any, Any]:
    """Two students on the course with faces, its index file written."""
    sam, olive = make_user("student", username="sam"), make_user("student", username="olive")
    enrol_with_vectors(student=sam, vectors=_vectors(1), courses=[course])
    enrol_with_vectors(student=olive, vectors=_vectors(2), courses=[course])
    return sam, olive


def _students_in_index(course: Course) -> set[int]:
    course.refresh_from_db()
    return set(course_index_get(course=course).student_of.values())


def test_deleting_a_course_deletes_its_index_files_and_snapshot_images(
    course, enrolled, root, django_capture_on_commit_callbacks
):
    sam, _olive = enrolled
    other = Course.objects.create(code="KEEP1", title="Kept", term="2026-autumn")
    CourseMembership.objects.create(course=other, student=sam)
    course_index_rebuild(course=other)
    image = _snapshot(Session.objects.create(course=course), sam)
    kept_image = _snapshot(Session.objects.create(course=other), sam)
    assert _index_files(course) and _index_files(other)

    with django_capture_on_commit_callbacks(execute=True):
        response = root.post(reverse("admin:attendance_course_delete", args=[course.pk]), {"post": "yes"})

    assert response.status_code == 302 and not Course.objects.filter(pk=course.pk).exists()
    assert _index_files(course) == [] and not default_storage.exists(image)
    assert _index_files(other) and default_storage.exists(kept_image)  # another course keeps its own


def test_deleting_courses_from_the_list_deletes_their_files_too(root, make_user, django_capture_on_commit_callbacks):
    courses = [Course.objects.create(code=f"BULK{i}", title="Bulk", term="2026-autumn") for i in range(2)]
    student = make_user("student", username="bulk")
    enrol_with_vectors(student=student, vectors=_vectors(3), courses=courses)
    images = [_snapshot(Session.objects.create(course=c), student) for c in courses]

    with django_capture_on_commit_callbacks(execute=True):
        response = root.post(reverse("admin:attendance_course_changelist"), {
            "action": "delete_selected", "_selected_action": [c.pk for c in courses], "post": "yes",
        })

    assert response.status_code == 302 and not Course.objects.filter(pk__in=[c.pk for c in courses]).exists()
    assert all(_index_files(c) == [] for c in courses)
    assert not any(default_storage.exists(name) for name in images)


def test_deleting_a_session_or_a_snapshot_deletes_the_images(
    course, make_user, root, django_capture_on_commit_callbacks
):
    student = make_user("student", username="pic")
    session, other_session = Session.objects.create(course=course), Session.objects.create(course=course)
    session_images = [_snapshot(session, student), _snapshot(session)]
    single = _snapshot(other_session, student)
    listed = [_snapshot(other_session), _snapshot(other_session, student)]
    kept = _snapshot(other_session)

    with django_capture_on_commit_callbacks(execute=True):
        response = root.post(reverse("admin:attendance_session_delete", args=[session.pk]), {"post": "yes"})
        assert response.status_code == 302
        one = CheckinSnapshot.objects.get(image=single)
        assert root.post(reverse("admin:attendance_checkinsnapshot_delete", args=[one.pk]),
                         {"post": "yes"}).status_code == 302
        chosen = list(CheckinSnapshot.objects.filter(image__in=listed).values_list("pk", flat=True))
        assert root.post(reverse("admin:attendance_checkinsnapshot_changelist"), {
            "action": "delete_selected", "_selected_action": chosen, "post": "yes",
        }).status_code == 302

    assert not Session.objects.filter(pk=session.pk).exists()
    assert not any(default_storage.exists(name) for name in [*session_images, single, *listed])
    assert default_storage.exists(kept) and CheckinSnapshot.objects.filter(image=kept).exists()


def test_deleting_an_enrolment_deletes_its_video_and_takes_its_vectors_out_of_the_course_index(
    course, enrolled, root, django_capture_on_commit_callbacks
):
    sam, olive = enrolled
    assert _students_in_index(course) == {sam.pk, olive.pk}  # cached in this process from here
    enrolment = FaceEnrolment.objects.get(student=sam)
    enrolment.video.save("clip.mp4", ContentFile(b"not really a video"), save=True)
    video = enrolment.video.name

    with django_capture_on_commit_callbacks(execute=True):
        response = root.post(reverse("admin:attendance_faceenrolment_delete", args=[enrolment.pk]), {"post": "yes"})

    assert response.status_code == 302 and not FaceEnrolment.objects.filter(pk=enrolment.pk).exists()
    assert not default_storage.exists(video) and not FaceEmbedding.objects.filter(student=sam).exists()
    assert _students_in_index(course) == {olive.pk}  # the version moved: the cached copy is not used
    clear_cache()
    assert _students_in_index(course) == {olive.pk}  # and the file on disk agrees


def _change_form(response: Any) -> dict[str, Any]:
    """The course change page's form as a browser would post it back unchanged."""
    data: dict[str, Any] = {}

    def add(form: Any) -> None:
        for field in form:
            value = field.value()
            if value is None or value is False:
                continue
            data[field.html_name] = ([str(v) for v in value] if isinstance(value, list | tuple)
                                     else "on" if value is True else str(value))

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        add(inline.formset.management_form)
        for form in inline.formset.forms:
            add(form)
    return data


def _errors(response: Any) -> object:
    if not response.context:
        return response
    inlines = response.context["inline_admin_formsets"]
    return [response.context["adminform"].form.errors] + [
        (inline.formset.errors, inline.formset.non_form_errors()) for inline in inlines
    ]


def test_students_taken_off_or_put_on_a_course_on_its_admin_page_leave_or_join_its_index(
    course, enrolled, root, make_user, lecturer
):
    sam, olive = enrolled
    newcomer = make_user("student", username="newcomer")
    enrol_with_vectors(student=newcomer, vectors=_vectors(4))
    assert _students_in_index(course) == {sam.pk, olive.pk}
    url = reverse("admin:attendance_course_change", args=[course.pk])
    data = _change_form(root.get(url))
    rows = {data[f"memberships-{i}-student"]: i for i in range(int(data["memberships-TOTAL_FORMS"]))}
    data[f"memberships-{rows[str(sam.pk)]}-DELETE"] = "on"
    added = int(data["memberships-TOTAL_FORMS"])
    data["memberships-TOTAL_FORMS"] = str(added + 1)
    data[f"memberships-{added}-student"] = str(newcomer.pk)
    data[f"memberships-{added}-course"] = str(course.pk)

    response = root.post(url, data)

    assert response.status_code == 302, _errors(response)
    assert set(CourseMembership.objects.filter(course=course).values_list("student_id", flat=True)) == {
        olive.pk, newcomer.pk}
    assert _students_in_index(course) == {olive.pk, newcomer.pk}

    # A lecturer is refused on the form (the field offers students only), and nothing changes.
    data = _change_form(root.get(url))
    added = int(data["memberships-TOTAL_FORMS"])
    data["memberships-TOTAL_FORMS"] = str(added + 1)
    data[f"memberships-{added}-student"] = str(lecturer.pk)
    data[f"memberships-{added}-course"] = str(course.pk)
    response = root.post(url, data)
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode(), _errors(response)
    assert not CourseMembership.objects.filter(course=course, student=lecturer).exists()
