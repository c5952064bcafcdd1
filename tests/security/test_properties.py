"""Property tests (hypothesis) of the recognition core: the index against brute force, the vote.

Each property runs a bounded number of generated cases (see the settings on each test); a failure
prints the smallest case hypothesis could shrink it to.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recognition import UNKNOWN, FaceIndex, assign_unique, candidate_matches, classify_face

DIM = 8
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def unit(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return vector / np.linalg.norm(vector)


# An operation: ("add", ids) with fresh vectors, ("remove", ids) or ("search", seed, k).
ids = st.lists(st.integers(min_value=0, max_value=60), min_size=1, max_size=8, unique=True)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), ids),
        st.tuples(st.just("remove"), ids),
        st.tuples(st.just("search"), st.integers(0, 10_000), st.integers(1, 12)),
    ),
    min_size=1,
    max_size=25,
)


def _brute_force(stored: dict[int, np.ndarray], query: np.ndarray, k: int) -> list[tuple[int, float]]:
    distances = sorted((float(np.linalg.norm(vector - query)), id_) for id_, vector in stored.items())
    return [(id_, d) for d, id_ in distances[:k]]


def _agree(found: list, expected: list[tuple[int, float]], stored: dict[int, np.ndarray], query: np.ndarray) -> None:
    assert len(found) == len(expected)
    assert np.allclose([n.distance for n in found], [d for _, d in expected], atol=1e-4)
    # Each id is really at the distance given (ties may come in either order).
    for n in found:
        assert math.isclose(float(np.linalg.norm(stored[n.id] - query)), n.distance, abs_tol=1e-4)
    assert len({n.id for n in found}) == len(found)


@FAST
@given(operations=operations, seed=st.integers(0, 2**16))
def test_the_index_agrees_with_brute_force_through_adds_and_removes(operations, seed, tmp_path_factory):
    index = FaceIndex(DIM, backbone="test")
    stored: dict[int, np.ndarray] = {}
    for op in operations:
        if op[0] == "add":
            new = [i for i in op[1] if i not in stored]
            if new:
                vectors = np.stack([unit(seed * 1000 + i) for i in new])
                index.add(new, vectors)
                stored.update(zip(new, vectors, strict=True))
        elif op[0] == "remove":
            removed = index.remove(op[1])
            assert removed == len([i for i in op[1] if i in stored])
            for i in op[1]:
                stored.pop(i, None)
        else:
            query = unit(op[1] + 7_000_000)
            found = index.search(query, op[2])[0]
            _agree(found, _brute_force(stored, query, op[2]), stored, query)
        assert len(index) == len(stored)
        assert sorted(index.ids().tolist()) == sorted(stored)
    # The saved file answers as the index did.
    path = tmp_path_factory.mktemp("index") / "course.index"
    index.save(path)
    loaded = FaceIndex.load(path, backbone="test", dim=DIM)
    query = unit(seed + 9_000_000)
    assert [n.id for n in loaded.search(query, 5)[0]] == [n.id for n in index.search(query, 5)[0]]


@FAST
@given(st.data())
def test_adding_an_id_twice_or_a_vector_that_is_not_unit_length_is_refused(data):
    index = FaceIndex(DIM, backbone="test")
    index.add([1], unit(1)[None, :])
    bad = data.draw(st.sampled_from(["duplicate", "scaled", "nan", "shape"]))
    vector = {"duplicate": unit(2), "scaled": unit(2) * 1.5, "nan": np.full(DIM, np.nan, np.float32),
              "shape": np.ones(DIM + 1, np.float32)}[bad]
    new_id = 1 if bad == "duplicate" else 2
    try:
        index.add([new_id], vector[None, :])
    except ValueError:
        pass
    else:
        raise AssertionError(f"a {bad} vector was accepted")
    assert index.ids().tolist() == [1]


# --- The paper's vote ----------------------------------------------------------------------------

labels = st.sampled_from(["ann", "bob", "cat", "dan", "eve"])
neighbour_lists = st.lists(
    st.tuples(labels, st.floats(min_value=0.0, max_value=2.0, allow_nan=False)), min_size=0, max_size=30
)


@st.composite
def vote_parameters(draw):
    k1 = draw(st.integers(1, 10))
    k2 = draw(st.integers(k1, 20))
    threshold = draw(st.floats(min_value=0.01, max_value=2.0, allow_nan=False))
    return k1, k2, threshold


@settings(max_examples=500, deadline=None)
@given(neighbours=neighbour_lists, params=vote_parameters())
def test_the_vote_only_ever_answers_a_gallery_label_within_the_threshold(neighbours, params):
    k1, k2, threshold = params
    match = classify_face(neighbours, k1=k1, k2=k2, threshold=threshold)
    nearest = sorted(neighbours, key=lambda pair: pair[1])[:k2]
    eligible = {label for label, distance in nearest if distance <= threshold}
    if match.is_unknown:
        assert match == UNKNOWN
        assert not eligible  # somebody within the threshold among the k2 nearest always gets a vote
    else:
        assert match.label in eligible
        assert match.distance <= threshold
        assert match.distance == min(d for label, d in nearest if label == match.label)
        assert 1 <= match.votes <= k2
    for candidate in candidate_matches(neighbours, k1=k1, k2=k2, threshold=threshold):
        assert candidate.label in eligible and candidate.distance <= threshold


@settings(max_examples=300, deadline=None)
@given(faces=st.lists(neighbour_lists, min_size=0, max_size=6), params=vote_parameters())
def test_no_two_faces_of_a_frame_get_the_same_person(faces, params):
    k1, k2, threshold = params
    candidates = [candidate_matches(face, k1=k1, k2=k2, threshold=threshold) for face in faces]
    result = assign_unique(candidates)
    assert len(result) == len(faces)
    named = [m.label for m in result if not m.is_unknown]
    assert len(named) == len(set(named))
    for match, choices in zip(result, candidates, strict=True):
        assert match.is_unknown or match in choices
