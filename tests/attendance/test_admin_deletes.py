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


def test_deleting_embeddings_in_the_admin_takes_them_out_of_the_course_index(
    course, enrolled, root, django_capture_on_commit_callbacks
):
    sam, olive = enrolled
    assert _students_in_index(course) == {sam.pk, olive.pk}  # cached in this process from here
    chosen = list(FaceEmbedding.objects.filter(student=sam).values_list("pk", flat=True))
    with django_capture_on_commit_callbacks(execute=True):
        response = root.post(reverse("admin:attendance_faceembedding_changelist"), {
            "action": "delete_selected", "_selected_action": chosen, "post": "yes",
        })
    assert response.status_code == 302 and not FaceEmbedding.objects.filter(student=sam).exists()
    assert _students_in_index(course) == {olive.pk}
    clear_cache()
    assert _students_in_index(course) == {olive.pk}


def test_a_membership_in_its_own_admin_is_added_through_the_index_and_never_moved(course, enrolled, root, make_user):
    sam, olive = enrolled
    newcomer = make_user("student", username="newcomer")
    enrol_with_vectors(student=newcomer, vectors=_vectors(5))
    membership = CourseMembership.objects.get(course=course, student=sam)
    url = reverse("admin:attendance_coursemembership_change", args=[membership.pk])
    # The student and the course are shown, not offered for editing: a post cannot move the row.
    root.post(url, {"student": str(newcomer.pk), "course": str(course.pk)})
    membership.refresh_from_db()
    assert membership.student_id == sam.pk
    clear_cache()
    assert _students_in_index(course) == {sam.pk, olive.pk}

    response = root.post(reverse("admin:attendance_coursemembership_add"),
                         {"student": str(newcomer.pk), "course": str(course.pk)})
    assert response.status_code == 302 and CourseMembership.objects.filter(course=course, student=newcomer).exists()
    assert _students_in_index(course) == {sam.pk, olive.pk, newcomer.pk}


def test_enrolments_embeddings_and_snapshots_are_read_or_deleted_in_the_admin_never_edited(course, enrolled, root):
    sam, _olive = enrolled
    enrolment = FaceEnrolment.objects.get(student=sam)
    enrolment.video.save("clip.mp4", ContentFile(b"not really a video"), save=True)
    snapshot = CheckinSnapshot.objects.get(image=_snapshot(Session.objects.create(course=course), sam))
    embedding = FaceEmbedding.objects.filter(student=sam).first()
    for name, obj in (("faceenrolment", enrolment), ("checkinsnapshot", snapshot), ("faceembedding", embedding)):
        url = reverse(f"admin:attendance_{name}_change", args=[obj.pk])
        assert root.get(url).status_code == 200  # the view page
        assert root.post(url, {"student": "", "video-clear": "on", "image": ""}).status_code == 403, name
        assert root.get(reverse(f"admin:attendance_{name}_add")).status_code == 403, name
    enrolment.refresh_from_db()
    assert enrolment.student_id == sam.pk and default_storage.exists(enrolment.video.name)


def test_a_deleted_sessions_live_state_goes_with_it(course, root, django_capture_on_commit_callbacks):
    from attendance.platform.redis import redis_client, session_key

    session = Session.objects.create(course=course)
    name = session_key(session.pk, "checkin", "doubtful")
    redis_client().hset(name, "7", "{}")
    with django_capture_on_commit_callbacks(execute=True):
        root.post(reverse("admin:attendance_session_delete", args=[session.pk]), {"post": "yes"})
    assert not redis_client().exists(name)


def test_an_index_file_that_cannot_be_deleted_is_logged_and_the_others_still_go(
    course, enrolled, monkeypatch, caplog
):
    from attendance.courses import indexes

    files = _index_files(course)
    extra = files[0].with_name(files[0].name.replace(".faiss", "-old.faiss"))
    extra.write_bytes(b"stale")
    stuck = sorted(_index_files(course))[0]
    real_unlink = Path.unlink

    def unlink(self: Path, missing_ok: bool = False) -> None:
        if self == stuck:
            raise PermissionError("read-only")
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink)
    indexes.course_index_files_delete(course_id=course.pk)
    assert _index_files(course) == [stuck]
    assert "could not delete the index file" in caplog.text


def test_a_course_deleted_elsewhere_leaves_this_processs_cache_at_its_next_load(course, enrolled, make_user):
    from attendance.courses import indexes

    _students_in_index(course)
    assert course.pk in indexes._cache
    other = Course.objects.create(code="NEXT1", title="Next", term="2026-autumn")
    Course.objects.filter(pk=course.pk).delete()  # as another web process's admin would
    course_index_get(course=other)
    assert course.pk not in indexes._cache
