"""FaceIndex: our ids, exact and approximate search, atomic save, and refusal of a stale file."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import recognition.index as index_module
from recognition import FaceIndex, IndexFormatError


def unit(rows: int, dim: int, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def clustered(people: int, per_person: int, dim: int, seed: int = 0) -> np.ndarray:
    """Unit vectors in tight per-person clusters, the shape real face embeddings have."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((people, dim))
    points = np.repeat(centres, per_person, axis=0) + 0.35 * rng.standard_normal(
        (people * per_person, dim),
    )
    points = points.astype(np.float32)
    return points / np.linalg.norm(points, axis=1, keepdims=True)


def test_search_returns_our_ids_nearest_first_with_l2_distances():
    vectors = unit(50, 16)
    index = FaceIndex(16, backbone="test")
    ids = np.arange(1000, 1050, dtype=np.int64)
    index.add(ids, vectors)
    results = index.search(vectors[:3], k=4)
    for row, hits in enumerate(results):
        assert hits[0].id == 1000 + row and hits[0].distance == pytest.approx(0.0, abs=1e-3)
        assert [h.distance for h in hits] == sorted(h.distance for h in hits)
        for hit in hits:
            expected = np.linalg.norm(vectors[row] - vectors[hit.id - 1000])
            assert hit.distance == pytest.approx(expected, abs=1e-5)


def test_l2_ranking_and_cosine_ranking_agree_on_unit_vectors():
    gallery, probes = unit(200, 32, seed=1), unit(20, 32, seed=2)
    index = FaceIndex(32, backbone="test")
    index.add(np.arange(200), gallery)
    cosine = probes @ gallery.T
    for row, hits in enumerate(index.search(probes, k=10)):
        assert [h.id for h in hits] == list(np.argsort(-cosine[row], kind="stable")[:10])
        for hit in hits:  # d^2 = 2 - 2 cos
            assert hit.similarity == pytest.approx(cosine[row, hit.id], abs=1e-5)


def test_fewer_stored_than_k_returns_only_real_neighbours():
    index = FaceIndex(8, backbone="test")
    assert index.search(unit(2, 8), k=5) == [[], []]
    index.add([7], unit(1, 8))
    assert [h.id for h in index.search(unit(1, 8, seed=3), k=5)[0]] == [7]


def test_remove_takes_entries_out_of_search_and_ids():
    vectors = unit(10, 8)
    index = FaceIndex(8, backbone="test")
    index.add(np.arange(10), vectors)
    assert index.remove([3, 4, 99]) == 2
    assert len(index) == 8 and 3 not in index and 5 in index
    assert list(index.ids()) == [0, 1, 2, 5, 6, 7, 8, 9]
    assert index.search(vectors[3:4], k=1)[0][0].id != 3


def test_bad_additions_are_refused():
    index = FaceIndex(4, backbone="test")
    index.add([1], unit(1, 4))
    with pytest.raises(ValueError, match="already in the index"):
        index.add([1], unit(1, 4))
    with pytest.raises(ValueError, match="duplicate"):
        index.add([2, 2], unit(2, 4))
    with pytest.raises(ValueError, match="shape"):
        index.add([3], unit(1, 5))
    with pytest.raises(ValueError, match="unit length"):
        index.add([3], np.ones((1, 4), np.float32))
    with pytest.raises(ValueError, match="ids for"):
        index.add([3, 4], unit(1, 4))
    assert len(index) == 1


def test_save_and_load_round_trip(tmp_path: Path):
    vectors = unit(30, 16)
    index = FaceIndex(16, backbone="dlib:resnet_v1:mirror")
    index.add(np.arange(100, 130), vectors)
    index.remove([105])
    path = tmp_path / "course-1.faiss"
    index.save(path)
    loaded = FaceIndex.load(path, backbone="dlib:resnet_v1:mirror", dim=16)
    assert list(loaded.ids()) == list(index.ids())
    assert loaded.search(vectors[:5], k=3) == index.search(vectors[:5], k=3)
    assert [p.name for p in tmp_path.iterdir()] == ["course-1.faiss"]  # no temporary left


def test_save_and_load_through_the_callers_encryption(tmp_path: Path):
    vectors = unit(10, 16)
    index = FaceIndex(16, backbone="b")
    index.add(np.arange(10), vectors)
    path = tmp_path / "sealed.faiss"
    # A stand-in cipher (XOR), enough to prove the whole file goes through it both ways.
    index.save(path, encrypt=lambda data: bytes(b ^ 0x5A for b in data))
    raw = path.read_bytes()
    assert b"ROLLCALL-INDEX" not in raw and vectors[0].tobytes() not in raw
    with pytest.raises(IndexFormatError):
        FaceIndex.load(path, backbone="b", dim=16)  # without the decryption: not an index
    loaded = FaceIndex.load(path, backbone="b", dim=16, decrypt=lambda data: bytes(b ^ 0x5A for b in data))
    assert loaded.search(vectors[:3], k=2) == index.search(vectors[:3], k=2)


def test_a_failed_save_leaves_the_previous_file_and_no_temporary(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    path = tmp_path / "index.faiss"
    old = FaceIndex(8, backbone="test")
    old.add([1], unit(1, 8))
    old.save(path)
    before = path.read_bytes()

    def crash(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    new = FaceIndex(8, backbone="test")
    new.add([1, 2], unit(2, 8))
    with pytest.raises(OSError, match="disk full"):
        new.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["index.faiss"]


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    index = FaceIndex(8, backbone="clip:ViT-B-32:openai")
    index.add(np.arange(5), unit(5, 8))
    path = tmp_path / "index.faiss"
    index.save(path)
    return path


def test_an_index_of_another_model_or_dimension_must_be_rebuilt(saved: Path):
    with pytest.raises(IndexFormatError, match="rebuild"):
        FaceIndex.load(saved, backbone="dlib:resnet_v1:mirror", dim=8)
    with pytest.raises(IndexFormatError, match="rebuild"):
        FaceIndex.load(saved, backbone="clip:ViT-B-32:openai", dim=16)


def test_an_index_of_another_format_version_must_be_rebuilt(
    saved: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setattr(index_module, "FORMAT_VERSION", index_module.FORMAT_VERSION + 1)
    with pytest.raises(IndexFormatError, match="format"):
        FaceIndex.load(saved, backbone="clip:ViT-B-32:openai", dim=8)


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # cut off
        lambda data: data[:-20] + bytes(20),  # zeroed tail
        lambda data: b"garbage" + data[7:],  # wrong magic
        lambda data: data[:30] + b"{" + data[31:],  # broken header
        lambda data: b"",
    ],
)
def test_a_corrupt_file_is_an_index_format_error(saved: Path, damage):
    saved.write_bytes(damage(saved.read_bytes()))
    with pytest.raises(IndexFormatError):
        FaceIndex.load(saved, backbone="clip:ViT-B-32:openai", dim=8)


def test_a_missing_file_is_an_index_format_error(tmp_path: Path):
    with pytest.raises(IndexFormatError, match="No index"):
        FaceIndex.load(tmp_path / "absent.faiss", backbone="x", dim=8)


@pytest.mark.slow
def test_the_approximate_index_keeps_recall_against_flat(tmp_path: Path):
    dim, people, per_person = 64, 400, 10
    gallery = clustered(people, per_person, dim, seed=4)
    probes = clustered(people, 1, dim, seed=4)[:200]  # the same people's centres, re-noised
    probes = probes + 0.05 * np.random.default_rng(5).standard_normal(probes.shape).astype(
        np.float32,
    )
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)
    ids = np.arange(len(gallery), dtype=np.int64) * 3  # ids need not be dense

    flat = FaceIndex(dim, backbone="test")
    flat.add(ids, gallery)
    approximate = FaceIndex(dim, backbone="test", approximate_above=2000)
    approximate.add(ids[:1500], gallery[:1500])
    assert not approximate.approximate
    approximate.add(ids[1500:], gallery[1500:])
    assert approximate.approximate and len(approximate) == len(flat)

    k = 10
    truth = flat.search(probes, k)
    found = approximate.search(probes, k)
    recall = np.mean(
        [len({h.id for h in a} & {h.id for h in t}) / k for a, t in zip(found, truth, strict=True)],
    )
    assert recall >= 0.95
    top1 = np.mean([a[0].id == t[0].id for a, t in zip(found, truth, strict=True)])
    assert top1 >= 0.98

    # A stranger's nearest neighbour may be missed, but the one found is about as far: the
    # threshold decides the same.
    strangers = clustered(50, 1, dim, seed=9)
    exact = [hits[0].distance for hits in flat.search(strangers, 1)]
    near = [hits[0].distance for hits in approximate.search(strangers, 1)]
    assert np.median(np.divide(near, exact)) < 1.05 and max(np.divide(near, exact)) < 1.2

    # Removal and the saved form work the same way for the approximate index.
    assert approximate.remove(ids[:10]) == 10
    assert set(approximate.ids().tolist()) == set(ids[10:].tolist())
    path = tmp_path / "big.faiss"
    approximate.save(path)
    loaded = FaceIndex.load(path, backbone="test", dim=dim)
    assert loaded.approximate and loaded.search(probes[:20], k) == approximate.search(
        probes[:20],
        k,
    )
