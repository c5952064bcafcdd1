"""The threshold calibrated from a gallery alone: the model's mechanics on synthetic galleries, and
its rates on the real faces of ../shared/faces with dlib (people/ enrolled, unknown/ as strangers).

A word on what the real-face checks can show: unknown/ holds 33 photos of 3 people. No stranger
accepted out of 33 still allows a true rate of up to 8.7% (one-sided 95% bound), and 0 of 3 people
up to 63%. So they catch a calibration that is grossly too loose, not one that misses 0.1% by a
little; the model's tail is argued in recognition/calibrate.py.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from recognition import BACKBONE_DEFAULTS, FaceIndex, Label, calibrate_threshold, classify_face
from recognition import calibrate as calibration
from recognition.calibrate import SAFE_THRESHOLDS, ImpostorFit, gallery_distances

from .conftest import EmbeddedSet

DLIB = BACKBONE_DEFAULTS["dlib"]
LOW, HIGH = SAFE_THRESHOLDS["dlib"]


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def clustered_gallery(people: int, per_person: int, spread: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``people`` random centres in 128-d, each with ``per_person`` unit vectors ``spread`` around it."""
    rng = np.random.default_rng(seed)
    centres = unit(rng.normal(size=(people, 128)))
    vectors = np.repeat(centres, per_person, axis=0) + spread * rng.normal(size=(people * per_person, 128)) / 11.3
    return unit(vectors), np.repeat(np.arange(people), per_person)


def test_the_vote_names_somebody_exactly_when_the_nearest_neighbour_is_within_the_threshold():
    # The calibration bounds the chance that a stranger's nearest neighbour is within the
    # threshold; that is the chance of a false accept only because the vote never says Unknown
    # to a probe with a neighbour inside, for any k1 and k2 (ties included).
    rng = np.random.default_rng(1)
    for _ in range(3000):
        k2 = int(rng.integers(1, 7))
        k1 = int(rng.integers(1, k2 + 1))
        neighbours: list[tuple[Label, float]] = [
            (int(rng.integers(0, 3)), float(d)) for d in rng.uniform(0.1, 0.6, size=int(rng.integers(1, 9)))
        ]
        threshold = float(rng.uniform(0.05, 0.65))
        match = classify_face(neighbours, k1=k1, k2=k2, threshold=threshold)
        assert match.is_unknown == (min(d for _, d in neighbours) > threshold), (neighbours, k1, k2, threshold)


def test_gallery_distances_match_a_brute_force_search(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(calibration, "_CHUNK_ROWS", 7)  # several chunks, some cutting a person in two
    vectors, labels = clustered_gallery(6, 5, spread=0.4, seed=2)
    labels = np.array([f"p{label}" for label in labels])
    vectors[-1:], labels[-1:] = unit(np.ones((1, 128))), "alone"  # a person with one embedding
    order = np.random.default_rng(3).permutation(len(labels))  # people need not come in blocks
    vectors, labels = vectors[order], labels[order]
    found = gallery_distances(vectors, labels)

    distance = np.sqrt(np.maximum(2 - 2 * vectors.astype(np.float64) @ vectors.T.astype(np.float64), 0))
    people = sorted(set(labels.tolist()))
    expected_pairs = [distance[np.ix_(labels == a, labels == b)].min() for i, a in enumerate(people)
                      for b in people[i + 1:]]
    assert found.people == tuple(people) and found.pairs == 7 * 6 // 2
    assert np.allclose(found.pair_minima, expected_pairs, atol=1e-5)
    same = labels[:, None] == labels[None, :]
    np.fill_diagonal(same, False)
    genuine = np.where(same, distance, np.inf).min(axis=1)
    assert np.allclose(np.sort(found.genuine_nearest), np.sort(genuine[np.isfinite(genuine)]), atol=1e-5)
    assert len(found.genuine_nearest) == len(labels) - 1  # "alone" has no genuine pair


def test_distances_without_a_person_are_those_of_the_gallery_they_never_joined():
    vectors, labels = clustered_gallery(7, 4, spread=0.4, seed=6)
    labels = np.array([f"p{label}" for label in labels])
    labels[-1] = "alone"  # one embedding: no genuine distance of their own
    order = np.random.default_rng(7).permutation(len(labels))
    vectors, labels = vectors[order], labels[order]
    found = gallery_distances(vectors, labels)
    assert [found.people[i] for i in found.genuine_people].count("alone") == 0
    for person in found.people:
        left = found.without(person)
        rest = labels != person
        again = gallery_distances(vectors[rest], labels[rest])
        assert left.people == again.people and person not in left.people
        assert np.allclose(left.pair_minima, again.pair_minima, atol=1e-6)
        assert left.genuine_people.tolist() == again.genuine_people.tolist()
        assert np.allclose(left.genuine_nearest, again.genuine_nearest, atol=1e-6)
        assert calibrate_threshold(vectors[rest], labels[rest], backbone="dlib") == calibration.calibrate_distances(
            left, backbone="dlib")
    with pytest.raises(ValueError, match="not one of this gallery's people"):
        found.without("nobody")


def test_the_threshold_falls_as_the_gallery_grows_and_meets_the_target_where_it_is():
    fit = ImpostorFit(mu=0.52, sigma=0.063, people=17, pairs=136)  # ../shared/faces's pair minima
    sizes = [5, 12, 17, 50, 100, 400, 2000]
    thresholds = [fit.threshold_for(0.001, n) for n in sizes]
    assert all(a > b for a, b in itertools.pairwise(thresholds)), thresholds
    for n, threshold in zip(sizes, thresholds, strict=True):
        assert fit.far(threshold, n) == pytest.approx(0.001, rel=1e-6)
        assert fit.far(threshold + 0.01, n) > 0.001 > fit.far(threshold - 0.01, n)
    assert fit.threshold_for(0.01) > fit.threshold_for(0.001)  # a looser target, a looser threshold


def test_a_large_gallery_is_calibrated_from_a_stable_sample_of_its_people_at_its_full_size():
    vectors, labels = clustered_gallery(30, 4, spread=0.4, seed=5)
    sampled = calibrate_threshold(vectors, labels, backbone="dlib", sample_people=12)
    assert (sampled.n_people, sampled.n_impostor_pairs) == (30, 12 * 11 // 2)  # 30 chances, 12 people's pairs
    # The same as calibrating the sampled people's distances for a gallery of 30 ...
    def by_hash(label: object) -> bytes:
        return calibration.hashlib.blake2b(str(label).encode()).digest()

    chosen = sorted(set(labels.tolist()), key=by_hash)
    keep = np.isin(labels, chosen[:12])
    by_hand = calibration.calibrate_distances(gallery_distances(vectors[keep], labels[keep]), backbone="dlib",
                                              gallery_people=30)
    assert sampled.fitted_threshold == by_hand.fitted_threshold and sampled.estimated_far == by_hand.estimated_far
    # ... which is stricter than those 12 people's own gallery would be (more people, more chances).
    alone = calibrate_threshold(vectors[keep], labels[keep], backbone="dlib")
    assert sampled.fitted_threshold < alone.fitted_threshold
    # One more enrolled person changes the sample by at most that person.
    _, more_labels = clustered_gallery(31, 4, spread=0.4, seed=5)
    after = sorted(set(more_labels.tolist()), key=by_hash)
    assert len(set(after[:12]) - set(chosen[:12])) <= 1
    # Below the sample size nothing is left out.
    whole = calibrate_threshold(vectors, labels, backbone="dlib")
    assert (whole.n_people, whole.n_impostor_pairs) == (30, 30 * 29 // 2)


def test_a_gallery_below_the_minimum_uses_the_backbone_default():
    vectors, labels = clustered_gallery(4, 6, spread=0.4)
    result = calibrate_threshold(vectors, labels, backbone="dlib")
    assert result.source == "default" and result.threshold == DLIB.threshold
    assert (result.n_people, result.n_impostor_pairs, result.estimated_far) == (4, 6, None)
    assert "default" in result.describe() and "4 people" in result.describe()
    assert calibrate_threshold(*clustered_gallery(5, 6, spread=0.4), backbone="dlib").source == "calibrated"
    nobody = calibrate_threshold(np.zeros((0, 128), dtype=np.float32), [], backbone="clip")
    assert (nobody.source, nobody.threshold, nobody.n_people, nobody.genuine_pass_rate) == (
        "default", BACKBONE_DEFAULTS["clip"].threshold, 0, None
    )
    strict = calibrate_threshold(*clustered_gallery(5, 6, spread=0.4), backbone="dlib", min_people=6)
    assert strict.source == "default" and "fewer than the 6 needed" in strict.describe()


def test_the_threshold_is_clamped_to_the_backbones_safe_range():
    far_apart = calibrate_threshold(*clustered_gallery(20, 4, spread=0.2), backbone="dlib")
    assert far_apart.fitted_threshold is not None and far_apart.fitted_threshold > HIGH
    assert far_apart.threshold == HIGH and "clamped" in far_apart.describe()
    # Twenty people around nearly one face: their pair minima sit near 0.23, too close to afford 0.24.
    rng = np.random.default_rng(4)
    base = unit(rng.normal(size=(1, 128)))
    centres = unit(base + 0.015 * rng.normal(size=(20, 128)))
    vectors = unit(np.repeat(centres, 4, axis=0) + 0.003 * rng.normal(size=(80, 128)))
    crowded = calibrate_threshold(vectors, np.repeat(np.arange(20), 4), backbone="dlib")
    assert crowded.fitted_threshold is not None and crowded.fitted_threshold < LOW
    assert crowded.threshold == LOW and crowded.source == "calibrated"
    assert crowded.estimated_far is not None and crowded.estimated_far > crowded.target_far  # and says so


def test_bad_inputs_are_refused_with_a_reason():
    vectors, labels = clustered_gallery(6, 2, spread=0.4)
    with pytest.raises(ValueError, match="unknown backbone"):
        calibrate_threshold(vectors, labels, backbone="arcface")
    for target in (0.0, 1.0):
        with pytest.raises(ValueError, match="between 0 and 1"):
            calibrate_threshold(vectors, labels, backbone="dlib", target_far=target)
    with pytest.raises(ValueError, match="n labels"):
        calibrate_threshold(vectors, labels[:-1], backbone="dlib")
    vectors[0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        calibrate_threshold(vectors, labels, backbone="dlib")


# --- real faces ---------------------------------------------------------------------------------


def nearest_distances(gallery: np.ndarray, probes: np.ndarray) -> np.ndarray:
    index = FaceIndex(gallery.shape[1], backbone="test")
    index.add(np.arange(len(gallery)), gallery)
    return np.array([hits[0].distance for hits in index.search(probes, 1)])


def leave_one_out_identified(faces: EmbeddedSet, threshold: float) -> int:
    """people/ photos given their own name against all the other photos, with dlib's vote."""
    vectors, labels = faces.vectors[faces.known], faces.labels[faces.known]
    index = FaceIndex(vectors.shape[1], backbone="test")
    index.add(np.arange(len(vectors)), vectors)
    right = 0
    for row, hits in enumerate(index.search(vectors, DLIB.k2 + 1)):
        neighbours = [(labels[h.id], h.distance) for h in hits if h.id != row][: DLIB.k2]
        right += classify_face(neighbours, k1=DLIB.k1, k2=DLIB.k2, threshold=threshold).label == labels[row]
    return right


@pytest.mark.slow  # the session's dlib embeddings of ../shared/faces
def test_on_the_shared_faces_the_calibrated_threshold_rejects_the_strangers_and_names_as_many_people(
    dlib_faces: EmbeddedSet,
):
    known = dlib_faces.known
    result = calibrate_threshold(dlib_faces.vectors[known], dlib_faces.labels[known], backbone="dlib")
    assert result.source == "calibrated" and (result.n_people, result.n_impostor_pairs) == (17, 136)
    assert result.fitted_threshold == result.threshold  # inside the safe range, not clamped
    strangers = nearest_distances(dlib_faces.vectors[known], dlib_faces.vectors[~known])
    assert len(strangers) == 33
    # 0 of 33: within the data's resolution (a 95% bound of 8.7%) of a 0.1% target.
    assert (strangers <= result.threshold).sum() == 0, np.sort(strangers)[:3]
    assert leave_one_out_identified(dlib_faces, result.threshold) >= leave_one_out_identified(
        dlib_faces, DLIB.threshold
    )


@pytest.mark.slow
def test_the_threshold_tightens_as_the_same_gallery_enrols_more_people(dlib_faces: EmbeddedSet):
    known = dlib_faces.known
    alone = calibrate_threshold(dlib_faces.vectors[known], dlib_faces.labels[known], backbone="dlib")
    with_strangers = calibrate_threshold(dlib_faces.vectors, dlib_faces.labels, backbone="dlib")
    assert with_strangers.n_people == alone.n_people + 3
    assert with_strangers.threshold < alone.threshold


@pytest.mark.slow
def test_a_gallery_of_four_real_people_uses_the_backbone_default(dlib_faces: EmbeddedSet):
    four = np.isin(dlib_faces.labels, ["john_salley", "john_savage", "yale_subject01", "yale_subject02"])
    result = calibrate_threshold(dlib_faces.vectors[four], dlib_faces.labels[four], backbone="dlib")
    assert (result.source, result.threshold, result.n_people) == ("default", DLIB.threshold, 4)


@pytest.mark.slow
def test_no_enrolled_person_held_out_is_accepted_by_a_threshold_calibrated_without_them(dlib_faces: EmbeddedSet):
    # Leave-one-person-out: each of the 17 people a stranger to a gallery of the other 16,
    # calibrated without them. 0 of 17 people has a one-sided 95% bound of 16%.
    vectors, labels = dlib_faces.vectors[dlib_faces.known], dlib_faces.labels[dlib_faces.known]
    accepted = []
    for person in sorted(set(labels.tolist())):
        rest = labels != person
        threshold = calibrate_threshold(vectors[rest], labels[rest], backbone="dlib").threshold
        if (nearest_distances(vectors[rest], vectors[~rest]) <= threshold).any():
            accepted.append(person)
    assert accepted == []
