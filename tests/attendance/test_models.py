from __future__ import annotations

import threading

import pytest
from django.db import IntegrityError, connection, connections, transaction
from django.utils import timezone

from attendance.models import AttendanceRecord, Course, CourseMembership, FaceEnrolment, Session


@pytest.fixture
def open_session(course, lecturer):
    return Session.objects.create(
        course=course, status=Session.Status.OPEN, opened_at=timezone.now(), opened_by=lecturer
    )


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_writers_create_one_attendance_record(open_session, student):
    """Both writers pass any check a view could make; only the database constraint can decide."""
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def mark() -> None:
        try:
            with transaction.atomic():
                record = AttendanceRecord(
                    session_id=open_session.pk, student_id=student.pk,
                    status=AttendanceRecord.Status.PRESENT, method=AttendanceRecord.Method.FACE,
                )
                barrier.wait(timeout=10)  # both inserts are in flight at the same moment
                record.save()
            outcomes.append("created")
        except IntegrityError:
            outcomes.append("refused")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=mark) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == ["created", "refused"]
    assert AttendanceRecord.objects.filter(session=open_session, student=student).count() == 1


def test_tests_run_against_postgresql(db):
    assert connection.vendor == "postgresql"


def test_a_student_has_one_enrolment_in_flight_at_most(student):
    FaceEnrolment.objects.create(student=student, consent_given_at=timezone.now())
    with pytest.raises(IntegrityError), transaction.atomic():
        FaceEnrolment.objects.create(student=student, consent_given_at=timezone.now())
    # A failed one does not count against the limit.
    FaceEnrolment.objects.filter(student=student).update(status=FaceEnrolment.Status.FAILED)
    FaceEnrolment.objects.create(student=student, consent_given_at=timezone.now())


def test_an_enrolment_needs_consent(student):
    with pytest.raises(IntegrityError), transaction.atomic():
        FaceEnrolment.objects.create(student=student, consent_given_at=None)


def test_a_student_joins_a_course_once(course, student):
    CourseMembership.objects.create(course=course, student=student)
    with pytest.raises(IntegrityError), transaction.atomic():
        CourseMembership.objects.create(course=course, student=student)


def test_a_course_needs_k1_below_k2(db):
    with pytest.raises(IntegrityError), transaction.atomic():
        Course.objects.create(code="X1", title="x", term="t", k1=3, k2=3)
    Course.objects.create(code="X1", title="x", term="t", k1=1, k2=3)


def test_an_open_session_records_when_it_opened(course):
    with pytest.raises(IntegrityError), transaction.atomic():
        Session.objects.create(course=course, status=Session.Status.OPEN)
