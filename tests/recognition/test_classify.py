"""classify_face against hand-worked neighbour lists, and one person per face in a frame."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recognition import UNKNOWN, Match, assign_unique, candidate_matches, classify_face


def test_the_nearest_neighbour_decides_with_k1_of_one():
    neighbours = [("ann", 0.40), ("bob", 0.45), ("bob", 0.50)]
    assert classify_face(neighbours, k1=1, k2=3, threshold=0.82) == Match("ann", 0.40, 1)


def test_neighbours_beyond_the_threshold_do_not_vote():
    neighbours = [("ann", 0.90), ("bob", 0.95)]
    assert classify_face(neighbours, k1=1, k2=2, threshold=0.82) is UNKNOWN


def test_a_distance_equal_to_the_threshold_passes():
    assert classify_face([("ann", 0.5)], k1=1, k2=2, threshold=0.5).label == "ann"


def test_the_majority_of_the_first_k1_wins():
    # First three: bob 0.30, ann 0.35, bob 0.40 -> bob 2 votes, ann 1; ann's later votes (k2) are
    # not counted because the first k1 already decide.
    neighbours = [("ann", 0.35), ("bob", 0.30), ("bob", 0.40), ("ann", 0.41), ("ann", 0.42)]
    assert classify_face(neighbours, k1=3, k2=5, threshold=0.82) == Match("bob", 0.30, 2)


def test_a_tie_in_the_first_k1_widens_the_vote_to_k2():
    # First two: ann 0.30, bob 0.31 -> tie. Widened to five: ann 0.30, bob 0.31, bob 0.33,
    # ann 0.34, bob 0.36 -> bob 3, ann 2.
    neighbours = [("ann", 0.30), ("bob", 0.31), ("bob", 0.33), ("ann", 0.34), ("bob", 0.36)]
    assert classify_face(neighbours, k1=2, k2=5, threshold=0.82) == Match("bob", 0.31, 3)


def test_widening_counts_only_neighbours_within_the_threshold():
    # First two tie; of the next three only ann 0.50 passes 0.6 -> ann 2, bob 1.
    neighbours = [("bob", 0.20), ("ann", 0.25), ("ann", 0.50), ("bob", 0.70), ("bob", 0.71)]
    assert classify_face(neighbours, k1=2, k2=5, threshold=0.6) == Match("ann", 0.25, 2)


def test_a_tie_that_widening_cannot_break_goes_to_the_nearest_class():
    # ann 0.30, bob 0.31 | ann 0.40, bob 0.41 -> 2 each: ann has the nearest neighbour.
    neighbours = [("bob", 0.31), ("ann", 0.30), ("bob", 0.41), ("ann", 0.40)]
    assert classify_face(neighbours, k1=2, k2=4, threshold=0.82) == Match("ann", 0.30, 2)


def test_an_exact_distance_tie_keeps_the_search_order():
    neighbours = [("carl", 0.30), ("ann", 0.30)]
    assert classify_face(neighbours, k1=2, k2=2, threshold=0.82).label == "carl"


def test_only_the_first_k2_neighbours_are_considered():
    neighbours = [("ann", 0.1), ("bob", 0.2), ("bob", 0.3), ("bob", 0.4)]
    # k2 = 2 keeps ann and bob: a tie, broken by distance; bob's other votes are cut off.
    assert classify_face(neighbours, k1=2, k2=2, threshold=0.82).label == "ann"
    assert classify_face(neighbours, k1=2, k2=4, threshold=0.82).label == "bob"


def test_one_passing_neighbour_in_the_first_k1_is_a_decision():
    neighbours = [("ann", 0.50), ("bob", 0.90), ("bob", 0.91)]
    assert classify_face(neighbours, k1=3, k2=3, threshold=0.82) == Match("ann", 0.50, 1)


def test_integer_labels_work_and_no_neighbours_is_unknown():
    assert classify_face([(7, 0.2), (9, 0.3)], k1=1, k2=2, threshold=0.82).label == 7
    assert classify_face([], k1=1, k2=3, threshold=0.82) is UNKNOWN


def test_unknown_is_none_not_a_string():
    assert UNKNOWN.label is None and UNKNOWN.is_unknown and str(UNKNOWN) == "Unknown"
    named = Match("Unknown", 0.1, 1)  # a person may really be called that
    assert not named.is_unknown


@pytest.mark.parametrize(("k1", "k2"), [(0, 3), (4, 3)])
def test_k1_must_be_between_one_and_k2(k1: int, k2: int):
    with pytest.raises(ValueError):
        classify_face([("ann", 0.1)], k1=k1, k2=k2, threshold=0.8)


neighbour_lists = st.lists(
    st.tuples(st.sampled_from(["ann", "bob", "cy"]), st.floats(0.0, 2.0)),
    max_size=12,
)


@given(neighbour_lists, st.integers(1, 5), st.integers(0, 5), st.floats(0.0, 2.0))
def test_the_answer_is_always_a_passing_neighbour_or_unknown(neighbours, k1, extra, threshold):
    match = classify_face(neighbours, k1=k1, k2=k1 + extra, threshold=threshold)
    if match.is_unknown:
        ranked = sorted(neighbours, key=lambda n: n[1])[: k1 + extra]
        assert all(d > threshold for _, d in ranked)
    else:
        assert match.distance is not None and match.distance <= threshold
        assert (match.label, match.distance) in neighbours
        assert 1 <= match.votes <= k1 + extra


def test_candidates_list_the_vote_winner_then_other_passing_labels():
    neighbours = [("ann", 0.30), ("bob", 0.32), ("cy", 0.9)]
    assert candidate_matches(neighbours, k1=1, k2=3, threshold=0.82) == [
        Match("ann", 0.30, 1),
        Match("bob", 0.32, 1),
    ]
    assert candidate_matches([("ann", 0.9)], k1=1, k2=3, threshold=0.82) == []


def test_two_faces_never_get_the_same_person():
    # Both faces look most like ann; the nearer one keeps her, the other takes its next choice.
    faces = [
        [Match("ann", 0.40, 1), Match("bob", 0.45, 1)],
        [Match("ann", 0.20, 1)],
    ]
    assert assign_unique(faces) == [Match("bob", 0.45, 1), Match("ann", 0.20, 1)]


def test_a_face_with_no_choice_left_is_unknown():
    faces = [[("ann", 0.2)], [("ann", 0.3)], []]
    assert assign_unique(faces) == [Match("ann", 0.2, 1), UNKNOWN, UNKNOWN]


def test_each_face_keeps_its_own_preference_order():
    # Face 0 prefers ann (its vote winner) although bob is nearer; nobody else wants ann.
    faces = [[Match("ann", 0.35, 3), Match("bob", 0.30, 1)], [Match("bob", 0.25, 2)]]
    assert [m.label for m in assign_unique(faces)] == ["ann", "bob"]


@given(
    st.lists(st.lists(st.tuples(st.sampled_from("abcd"), st.floats(0, 1)), max_size=4), max_size=6),
)
def test_assignment_labels_are_unique(faces):
    labels = [m.label for m in assign_unique(faces) if not m.is_unknown]
    assert len(labels) == len(set(labels))
