"""The head-turn challenge, the frozen-face check and the decision, on landmarks of real frames.

Observations are YuNet's landmarks on frames of the live clips in ../shared/faces/pad, with the
clip's own time as the clock. pad/live/tranvanluyt__real.mp4: frontal until ~1.9 s, then a turn
to his left (yaw +0.5 at ~2.1 s, +1.0 by 2.7 s) held until ~5.5 s, frontal again ~5.8-7.2 s,
then only a slight turn to his right (-0.33 at most), frontal from ~10.8 s to the end.
pad/live/zubair__real.mov: frontal ~6.0-6.6 s, then a turn to his right (yaw -0.55 at ~6.9 s).
Those times were read off the clips; each test picks the moment a server would issue a prompt.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recognition import Face, FaceDetector
from recognition.liveness import (
    TURN_YAW,
    Challenge,
    Check,
    LivenessPolicy,
    Observation,
    decide_liveness,
    frozen_pairs,
    head_yaw,
    is_frozen,
    judge_challenge,
    new_challenge,
)
from recognition.video import iter_frames


def observe(path: Path, detector: FaceDetector, *, start_s: float, end_s: float) -> list[Observation]:
    found = []
    for frame in iter_frames(path, target_fps=5.0, max_frames=200):
        if start_s <= frame.time_s <= end_s:
            faces = detector.detect(frame.image)
            if faces:
                face = max(faces, key=lambda f: f.box[2] * f.box[3])
                found.append(Observation.from_face(face, frame.time_s))
    return found


@pytest.fixture(scope="module")
def turning_left(pad_dir: Path, detector: FaceDetector) -> list[Observation]:
    return observe(pad_dir / "live" / "tranvanluyt__real.mp4", detector, start_s=0.0, end_s=19.0)


@pytest.fixture(scope="module")
def turning_right(pad_dir: Path, detector: FaceDetector) -> list[Observation]:
    return observe(pad_dir / "live" / "zubair__real.mov", detector, start_s=5.5, end_s=9.0)


def between(observations: list[Observation], start: float, end: float) -> list[Observation]:
    return [o for o in observations if start <= o.time_s <= end]


def test_the_clips_show_what_the_docstring_says(turning_left: list[Observation], turning_right: list[Observation]):
    left_yaws = {round(o.time_s, 1): o.yaw for o in turning_left}
    assert max(abs(y) for t, y in left_yaws.items() if t <= 1.8) < 0.2
    assert max(left_yaws.values()) > 1.0  # his left: the nose towards the image's right
    assert min(o.yaw for o in between(turning_right, 6.7, 9.0)) < -1.0


def test_a_turn_the_asked_way_in_time_passes(turning_left: list[Observation], turning_right: list[Observation]):
    left = judge_challenge(Challenge("left", issued_at=1.0, deadline=7.0), turning_left)
    assert left.passed and left.reason == "passed"
    assert left.answered_at is not None and 1.9 <= left.answered_at <= 3.0
    right = judge_challenge(Challenge("right", issued_at=6.0, deadline=12.0), turning_right)
    assert right.passed, right


def test_a_turn_the_wrong_way_fails(turning_left: list[Observation], turning_right: list[Observation]):
    assert judge_challenge(Challenge("right", issued_at=1.0, deadline=7.0), turning_left).reason == "wrong-way"
    assert judge_challenge(Challenge("left", issued_at=6.0, deadline=12.0), turning_right).reason == "wrong-way"


def test_a_turn_after_the_deadline_fails_as_late(turning_left: list[Observation]):
    # Prompted at 0.0 s with 1.5 s to answer; he turns at ~2.1 s.
    result = judge_challenge(Challenge("left", issued_at=0.0, deadline=1.5), between(turning_left, 0.0, 6.0))
    assert not result.passed and result.reason == "late"


def test_a_still_face_fails(turning_left: list[Observation]):
    still = between(turning_left, 11.0, 19.0)
    assert len(still) >= 30
    for direction in ("left", "right"):
        result = judge_challenge(Challenge(direction, issued_at=12.0, deadline=18.0), still)  # type: ignore[arg-type]
        assert not result.passed and result.reason == "still"
        assert result.peak_yaw < TURN_YAW


def test_a_head_already_turned_when_the_prompt_appears_has_not_answered_it(turning_left: list[Observation]):
    # A recording that happens to be turned left at the issue (3.0 s) must not pass "left".
    result = judge_challenge(Challenge("left", issued_at=3.0, deadline=5.0), between(turning_left, 0.0, 6.0))
    assert not result.passed


def test_no_observations_after_the_issue_fail(turning_left: list[Observation]):
    assert judge_challenge(Challenge("left", issued_at=30.0, deadline=36.0), turning_left).reason == "no-observation"


def test_the_direction_is_drawn_at_random_both_ways():
    drawn = {new_challenge(100.0).direction for _ in range(200)}
    assert drawn == {"left", "right"}
    challenge = new_challenge(100.0, seconds=5.0)
    assert challenge.deadline == 105.0 and challenge.prompt.startswith("Turn your head to your ")
    assert Challenge.from_dict(challenge.as_dict()) == challenge
    with pytest.raises(ValueError):
        Challenge("up", 0.0, 1.0)  # type: ignore[arg-type]


def test_yaw_is_zero_for_a_frontal_face_and_signed_by_the_students_side():
    frontal = np.array([[40, 50], [80, 50], [60, 70], [45, 90], [75, 90]], dtype=float)
    assert head_yaw(frontal) == pytest.approx(0.0)
    turned_left = frontal.copy()
    turned_left[2, 0] = 70  # nose towards the image's right = the student's left eye
    assert head_yaw(turned_left) == pytest.approx(0.5)


def test_real_consecutive_frames_are_never_frozen_and_a_resent_frame_is(
    turning_left: list[Observation], pad_dir: Path, detector: FaceDetector
):
    assert frozen_pairs(turning_left) == 0
    frame = next(iter_frames(pad_dir / "live" / "tranvanluyt__real.mp4", target_fps=1.0, max_frames=1))
    again = [Observation.from_face(detector.detect(frame.image)[0], t) for t in (0.0, 0.4, 0.8)]
    assert frozen_pairs(again) == 2 and is_frozen(again)
    assert Observation.from_dict(again[0].as_dict()) == again[0]


def test_the_decision_marks_a_live_face_that_answered(turning_left: list[Observation]):
    observations = between(turning_left, 0.0, 4.0)
    challenge = Challenge("left", issued_at=1.0, deadline=7.0)
    decision = decide_liveness(
        LivenessPolicy.CHALLENGE, scores=[0.99, 0.97, 0.98], observations=observations, challenge=challenge
    )
    assert decision.live and decision.reason == "live"
    assert decision.score == pytest.approx(0.98)
    assert set(decision.checks) == {Check.PASSIVE, Check.MOTION, Check.CHALLENGE}


def test_the_decision_refuses_a_photo_a_frozen_face_or_an_unanswered_prompt(turning_left: list[Observation]):
    observations = between(turning_left, 0.0, 4.0)
    photo = decide_liveness("passive", scores=[0.9, 0.1, 0.8], observations=observations)
    assert not photo.live and "possible photo or screen" in photo.reason and Check.PASSIVE not in photo.checks
    frozen = [observations[0], Observation(observations[0].time_s + 0.4, observations[0].landmarks)]
    assert "frozen" in decide_liveness("passive", scores=[0.9, 0.9], observations=frozen).reason
    wrong = decide_liveness("passive+challenge", scores=[0.9] * 3, observations=observations,
                            challenge=Challenge("right", issued_at=1.0, deadline=7.0))
    assert not wrong.live and "wrong-way" in wrong.reason and Check.PASSIVE in wrong.checks
    assert not decide_liveness("passive+challenge", scores=[0.9], observations=observations).live
    off = decide_liveness(LivenessPolicy.OFF, scores=[])
    assert off.live and off.score is None and off.checks == ()


def test_an_observations_embedding_survives_its_json_to_the_bit_and_the_older_form_is_read():
    import json

    rng = np.random.default_rng(3)
    embedding = rng.standard_normal(128).astype(np.float32)
    face = Face(box=(10.0, 20.0, 30.0, 40.0), landmarks=rng.random((5, 2)).astype(np.float32), score=0.9)
    observation = Observation.from_face(face, 1.5, embedding=embedding)
    data = json.loads(json.dumps(observation.as_dict()))
    again = Observation.from_dict(data)
    assert again == observation and np.array_equal(np.asarray(again.embedding, dtype=np.float32), embedding)
    assert "embedding" not in data and len(json.dumps(data)) < 1000  # base64 float32, not 128 decimals
    older = {**data, "embedding": [float(v) for v in embedding]}
    del older["emb32"]  # a sighting written before the base64 form
    assert Observation.from_dict(older).embedding == again.embedding
