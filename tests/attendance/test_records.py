from __future__ import annotations

import threading

import pytest
from django.db import connections
from django.utils import timezone

from attendance.models import AttendanceChange, AttendanceRecord, CourseMembership, Session
from attendance.sessions.records import (
    RecordError,
    RecordPermissionError,
    attendance_record_mark_face,
    attendance_record_set,
)


@pytest.fixture
def open_session(course, lecturer):
    return Session.objects.create(course=course, status=Session.Status.OPEN, opened_at=timezone.now(),
                                  opened_by=lecturer)


@pytest.fixture
def member(course, student):
    CourseMembership.objects.create(course=course, student=student)
    return student


def test_a_manual_change_is_audited_with_who_when_old_and_new_status_and_reason(open_session, member, lecturer):
    face = attendance_record_mark_face(session=open_session, student=member, distance=0.31)
    assert face.created and face.record.method == "face" and face.record.confidence == pytest.approx(0.31)
    before = timezone.now()
    record = attendance_record_set(session=open_session, student=member, status="absent", by=lecturer,
                                   reason="  Not in the room: a photo on a phone  ")
    assert (record.status, record.method, record.marked_by) == ("absent", "manual", lecturer)
    # The arrival time and recognition's distance are kept on the record, and the audit row holds
    # the record as it was and as it is now.
    record.refresh_from_db()
    assert record.marked_at == face.record.marked_at and record.confidence == pytest.approx(0.31)
    change = AttendanceChange.objects.get(record=record)
    assert change.changed_by == lecturer and change.changed_at >= before
    assert (change.old_status, change.new_status) == ("present", "absent")
    assert (change.old_method, change.new_method) == ("face", "manual")
    assert change.old_marked_at == face.record.marked_at and change.old_confidence == pytest.approx(0.31)
    assert change.reason == "Not in the room: a photo on a phone"


def test_a_correction_without_a_reason_is_audited_all_the_same(open_session, member, lecturer):
    face = attendance_record_mark_face(session=open_session, student=member, distance=0.4)
    attendance_record_set(session=open_session, student=member, status="late", by=lecturer)
    change = AttendanceChange.objects.get(record=face.record)
    assert (change.old_status, change.new_status, change.reason) == ("present", "late", "")
    assert change.old_confidence == pytest.approx(0.4) and change.old_method == "face"


def test_a_first_manual_mark_creates_the_record_and_an_audit_row_without_an_old_status(open_session, member, lecturer):
    record = attendance_record_set(session=open_session, student=member, status="excused", by=lecturer)
    change = record.changes.get()
    assert (change.old_status, change.new_status, change.reason) == ("", "excused", "")
    assert (change.old_method, change.old_marked_at, change.old_confidence, change.new_method) == ("", None, None,
                                                                                                  "manual")


def test_face_recognition_never_overwrites_a_record_set_by_hand(open_session, member, lecturer):
    attendance_record_set(session=open_session, student=member, status="absent", by=lecturer, reason="left early")
    result = attendance_record_mark_face(session=open_session, student=member, distance=0.2)
    assert not result.created and result.kept_manual
    record = AttendanceRecord.objects.get(session=open_session, student=member)
    assert (record.status, record.method) == ("absent", "manual")
    assert AttendanceChange.objects.filter(record=record).count() == 1


def test_a_second_face_mark_keeps_the_first_arrival(open_session, member):
    first = attendance_record_mark_face(session=open_session, student=member, distance=0.3)
    again = attendance_record_mark_face(session=open_session, student=member, distance=0.1)
    assert first.created and not again.created
    assert again.record.pk == first.record.pk and again.record.confidence == pytest.approx(0.3)


def test_face_marks_are_late_after_the_courses_late_minutes(course, member, lecturer):
    course.late_after_minutes = 5
    course.save()
    started = timezone.now() - timezone.timedelta(minutes=20)
    session = Session.objects.create(course=course, status="open", scheduled_start=started, opened_at=started)
    assert attendance_record_mark_face(session=session, student=member, distance=0.3).record.status == "late"


def test_face_marks_are_refused_once_the_session_is_closed(course, member):
    session = Session.objects.create(course=course, status="closed", opened_at=timezone.now(),
                                     closed_at=timezone.now())
    with pytest.raises(RecordError, match="not open"):
        attendance_record_mark_face(session=session, student=member, distance=0.3)
    assert not AttendanceRecord.objects.exists()


def test_setting_the_same_status_again_without_a_reason_writes_no_audit_row(open_session, member, lecturer):
    attendance_record_set(session=open_session, student=member, status="present", by=lecturer)
    attendance_record_set(session=open_session, student=member, status="present", by=lecturer)
    assert AttendanceChange.objects.count() == 1
    attendance_record_set(session=open_session, student=member, status="present", by=lecturer, reason="checked ID")
    assert AttendanceChange.objects.count() == 2


def test_only_a_lecturer_of_the_course_or_an_admin_may_change_records(open_session, member, make_user, admin_user):
    other_lecturer = make_user("lecturer")
    for outsider in (other_lecturer, member):
        with pytest.raises(RecordPermissionError, match="Only an admin or a lecturer of this course"):
            attendance_record_set(session=open_session, student=member, status="present", by=outsider)
    assert not AttendanceRecord.objects.exists()
    attendance_record_set(session=open_session, student=member, status="present", by=admin_user)
    assert AttendanceRecord.objects.get().marked_by == admin_user


def test_bad_input_is_refused_with_a_message_saying_what_to_do(open_session, member, lecturer, make_user):
    with pytest.raises(RecordError, match="Unknown attendance status 'here': use one of present, late"):
        attendance_record_set(session=open_session, student=member, status="here", by=lecturer)
    with pytest.raises(RecordError, match="keep it under 500"):
        attendance_record_set(session=open_session, student=member, status="late", by=lecturer, reason="x" * 501)
    stranger = make_user("student")
    with pytest.raises(RecordError, match=r"is not on .*add them to the course first"):
        attendance_record_set(session=open_session, student=stranger, status="present", by=lecturer)


@pytest.mark.django_db(transaction=True)
def test_a_manual_mark_racing_a_face_mark_ends_manual_with_one_record(course, lecturer, student):
    """Whatever the order, the person's decision is what stays and there is one row."""
    CourseMembership.objects.create(course=course, student=student)
    session = Session.objects.create(course=course, status="open", opened_at=timezone.now())

    def run(target, barrier: threading.Barrier, errors: list[BaseException]) -> None:
        try:
            barrier.wait(timeout=10)
            target()
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    def manual() -> None:
        attendance_record_set(session=session, student=student, status="absent", by=lecturer)

    def face() -> None:
        attendance_record_mark_face(session=session, student=student, distance=0.2)

    for _ in range(5):
        AttendanceRecord.objects.all().delete()
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []
        threads = [threading.Thread(target=run, args=(t, barrier, errors)) for t in (manual, face)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert not errors, errors
        record = AttendanceRecord.objects.get(session=session, student=student)
        assert (record.status, record.method) == ("absent", "manual")


def test_the_session_report_shows_what_a_correction_replaced(client, open_session, member, lecturer):
    from django.urls import reverse

    attendance_record_mark_face(session=open_session, student=member, distance=0.2345)
    attendance_record_set(session=open_session, student=member, status="absent", by=lecturer, reason="a photo")
    client.force_login(lecturer)
    page = client.get(reverse("session-report", args=[open_session.pk])).content.decode()
    assert "was face at" in page and "distance 0.234" in page and "a photo" in page
