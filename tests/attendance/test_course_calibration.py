"""Each course is recognised at a threshold calibrated from its own gallery at every index rebuild.

Real faces (../shared/faces people, embedded by the app's own models); recognition.calibrate's own
tests judge the method on held-out strangers, these check that the app stores and uses it.
"""

from __future__ import annotations

import pytest

from attendance import ml
from attendance.checkin.views import _page_config
from attendance.courses.indexes import course_index_rebuild
from attendance.courses.selectors import course_threshold
from attendance.sessions.services import session_open
from recognition.calibrate import MIN_PEOPLE, SAFE_THRESHOLDS
from tests.attendance.factories_faces import enrol_with_vectors, person_vectors

pytestmark = pytest.mark.slow

PEOPLE = ["john_salley", "john_savage", "john_schneider", "john_shimkus", "yale_subject01", "yale_subject02",
          "yale_subject03", "yale_subject04"]


def _enrol(make_user, course, people: list[str]) -> None:
    for person in people:
        student = make_user("student", first_name=person)
        enrol_with_vectors(student=student, vectors=person_vectors(person), courses=[course])


@pytest.fixture
def people(faces_dir) -> list[str]:
    present = {p.name for p in (faces_dir / "people").iterdir()}
    chosen = [p for p in PEOPLE if p in present]
    assert len(chosen) >= MIN_PEOPLE + 2, f"expected at least {MIN_PEOPLE + 2} of {PEOPLE} in {faces_dir}"
    return chosen


def test_a_course_with_enough_students_is_recognised_at_its_calibrated_threshold(make_user, course, lecturer,
                                                                                 people, client):
    _enrol(make_user, course, people)
    course.refresh_from_db()
    low, high = SAFE_THRESHOLDS[ml.backbone_name()]
    assert course.calibration_source == "calibrated" and course.calibration_people == len(people)
    assert low <= course.calibrated_threshold <= high and course.calibration_space == ml.embedder_name()
    in_use = course_threshold(course=course)
    assert (in_use.value, in_use.source) == (course.calibrated_threshold, "calibrated")

    session = session_open(course=course, by=lecturer)
    assert _page_config(session, kiosk=False)["threshold"] == pytest.approx(course.calibrated_threshold)
    client.force_login(lecturer)
    page = client.get(f"/courses/{course.pk}/").content.decode()
    assert f"{course.calibrated_threshold:.3f}" in page
    assert f"calibrated from the {len(people)} enrolled students of this course" in page


def test_a_course_with_few_students_keeps_the_backbone_default(make_user, course, people, client, lecturer):
    _enrol(make_user, course, people[: MIN_PEOPLE - 1])
    course.refresh_from_db()
    default = ml.recognition_params().threshold
    assert course.calibration_source == "default" and course.calibrated_threshold == pytest.approx(default)
    in_use = course_threshold(course=course)
    assert in_use.source == "default" and in_use.value == pytest.approx(default)
    client.force_login(lecturer)
    page = client.get(f"/courses/{course.pk}/").content.decode()
    assert f"{MIN_PEOPLE - 1} enrolled students are too few to calibrate from" in page


def test_a_hand_set_threshold_is_never_overwritten_and_wins(make_user, course, people, lecturer):
    course.threshold = 0.31
    course.save(update_fields=["threshold"])
    _enrol(make_user, course, people)
    course.refresh_from_db()
    assert course.threshold == 0.31  # the rebuild stored its calibration beside it, not over it
    assert course.calibration_source == "calibrated" and course.calibrated_threshold != 0.31
    assert course_threshold(course=course).source == "hand"
    session = session_open(course=course, by=lecturer)
    assert _page_config(session, kiosk=False)["threshold"] == 0.31


def test_the_site_threshold_beats_the_calibration_and_another_space_is_ignored(make_user, course, people,
                                                                               settings):
    _enrol(make_user, course, people)
    course.refresh_from_db()
    settings.ROLLCALL_THRESHOLD = 0.29
    assert (course_threshold(course=course).value, course_threshold(course=course).source) == (0.29, "site")
    settings.ROLLCALL_THRESHOLD = None
    course.calibration_space = "clip:ViT-B-32:openai"  # computed before the site switched models
    assert course_threshold(course=course).source == "default"
    course_index_rebuild(course=course)  # the next rebuild calibrates again, in the space in use
    assert course_threshold(course=course).source == "calibrated"
