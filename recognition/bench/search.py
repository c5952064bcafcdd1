"""FAISS search on face-like galleries: flat against IVF with recall@10, index rebuilds and memory."""

from __future__ import annotations

import gc
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..index import FaceIndex, ivf_parameters
from .report import Report, Timing, timed, timed_each

REPO_ROOT = Path(__file__).resolve().parents[2]

SEARCH_BATCH = 16


COURSE = (500, 20)  # students x embeddings each


PER_IDENTITY = 20  # samples per identity in the search galleries


# Calibrated on dlib's embeddings of ../shared/faces (219 photos of 20 people): distances between
# photos of one person have median 0.235 (5-95%: 0.14-0.33), between people 0.585 (0.46-0.68), and
# the mean embedding has norm 0.915: faces sit in a narrow cone, not all over the sphere.
# The model: x = normalise(m + a * u_person + b_person * n), with m a fixed unit vector, u and n
# standard normal / sqrt(dim), a = 0.416 and b = 0.1825 (x lognormal, sigma 0.25, per person). Its
# medians are 0.235 and 0.585 and its mean has norm 0.91, whatever the dimension.
IDENTITY_SPREAD = 0.416


SAMPLE_SPREAD = 0.1825


SPREAD_JITTER = 0.25


FACE_MODEL_NOTE = (
    "Search galleries: face-like vectors, 20 per identity, x = normalise(m + 0.416 u_id + b_id n) with u, n "
    "Gaussian / sqrt(d) and b_id = 0.1825 x lognormal(0.25): the distance medians (0.235 same person, 0.585 "
    "different people) and the cone (|mean| 0.91) of dlib's embeddings of ../shared/faces. Probes: new "
    "samples of enrolled identities; strangers: new identities."
)


@dataclass
class FaceLikeGallery:
    vectors: np.ndarray  # (n, dim) float32, unit rows; rows i*per .. (i+1)*per-1 are identity i
    centres: np.ndarray  # (identities, dim) float32: a * u
    spreads: np.ndarray  # (identities,) float32: b
    mean: np.ndarray  # (dim,) float32: m


def _mean_direction(dim: int) -> np.ndarray:
    m = np.random.default_rng(12345).standard_normal(dim).astype(np.float32)
    return m / np.linalg.norm(m)


def _samples(mean: np.ndarray, centres: np.ndarray, spreads: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    dim = len(mean)
    noise = rng.standard_normal(centres.shape, dtype=np.float32) * (spreads[:, None] / math.sqrt(dim))
    x = mean + centres + noise
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32, copy=False)


def face_like_gallery(count: int, dim: int, *, per_identity: int = 20, seed: int = 0,
                      cache_dir: Path | None = None) -> FaceLikeGallery:
    """``count`` face-like unit vectors (see FACE_MODEL_NOTE), cached as .npy in ``cache_dir``."""
    identities = math.ceil(count / per_identity)
    cached = None
    if cache_dir is not None:
        cached = cache_dir / f"faces-d{dim}-n{count}-p{per_identity}-s{seed}-v1"
        if cached.with_suffix(".npy").is_file() and cached.with_suffix(".npz").is_file():
            parts = np.load(cached.with_suffix(".npz"))
            vectors = np.load(cached.with_suffix(".npy"))
            return FaceLikeGallery(vectors, parts["centres"], parts["spreads"], parts["mean"])
    rng = np.random.default_rng(seed)
    mean = _mean_direction(dim)
    centres = rng.standard_normal((identities, dim), dtype=np.float32) * (IDENTITY_SPREAD / math.sqrt(dim))
    spreads = (SAMPLE_SPREAD * np.exp(SPREAD_JITTER * rng.standard_normal(identities))).astype(np.float32)
    vectors = np.empty((count, dim), dtype=np.float32)
    step = max(1, 50_000 // per_identity)
    for start in range(0, identities, step):
        stop = min(identities, start + step)
        rows = np.repeat(np.arange(start, stop), per_identity)
        rows = rows[: max(0, min(len(rows), count - start * per_identity))]
        block = _samples(mean, centres[rows], spreads[rows], rng)
        vectors[start * per_identity : start * per_identity + len(block)] = block
    gallery = FaceLikeGallery(vectors, centres, spreads, mean)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cached.with_suffix(".npz"), centres=centres, spreads=spreads, mean=mean)
        np.save(cached.with_suffix(".npy"), vectors)
    return gallery


def enrolled_probes(gallery: FaceLikeGallery, count: int, *, seed: int = 1) -> np.ndarray:
    """New samples of identities in the gallery: faces of enrolled students at a check-in."""
    rng = np.random.default_rng(seed)
    who = rng.choice(len(gallery.centres), size=min(count, len(gallery.centres)), replace=False)
    return _samples(gallery.mean, gallery.centres[who], gallery.spreads[who], rng)


def stranger_probes(gallery: FaceLikeGallery, count: int, *, seed: int = 2) -> np.ndarray:
    """Samples of identities that are not in the gallery."""
    rng = np.random.default_rng(seed)
    dim = gallery.vectors.shape[1]
    centres = rng.standard_normal((count, dim), dtype=np.float32) * (IDENTITY_SPREAD / math.sqrt(dim))
    spreads = (SAMPLE_SPREAD * np.exp(SPREAD_JITTER * rng.standard_normal(count))).astype(np.float32)
    return _samples(gallery.mean, centres, spreads, rng)


def _ids(results: list[list[Any]]) -> list[set[int]]:
    return [{n.id for n in row} for row in results]


def _build_flat(gallery: FaceLikeGallery, backbone: str) -> tuple[FaceIndex, float]:
    count, dim = gallery.vectors.shape
    index = FaceIndex(dim, backbone=backbone, approximate_above=count + 1)
    started = time.perf_counter()
    index.add(np.arange(count, dtype=np.int64), gallery.vectors)
    return index, time.perf_counter() - started


def _build_approximate(
    gallery: FaceLikeGallery, backbone: str, cache_dir: Path | None
) -> tuple[FaceIndex, float, bool]:
    """The approximate index (built, or loaded from the cache), its build seconds, and whether it was cached."""
    count, dim = gallery.vectors.shape
    nlist, nprobe = ivf_parameters(count, dim)
    path = None
    if cache_dir is not None and count >= 100_000:
        path = cache_dir / f"ivf-d{dim}-n{count}-l{nlist}-p{nprobe}-v1.faiss"
        meta = path.with_suffix(".json")
        if path.is_file() and meta.is_file():
            index = FaceIndex.load(path, backbone=backbone, dim=dim)
            return index, float(json.loads(meta.read_text())["build_s"]), True
    index = FaceIndex(dim, backbone=backbone, approximate_above=0)
    started = time.perf_counter()
    index.add(np.arange(count, dtype=np.int64), gallery.vectors)
    build_s = time.perf_counter() - started
    if path is not None:
        index.save(path)
        path.with_suffix(".json").write_text(json.dumps({"build_s": build_s}))
    return index, build_s, False


def measure_search(report: Report, sizes: Sequence[int], dim: int, *, backbone: str, cache_dir: Path | None,
                   probes: int, budget_s: float, memory: bool) -> None:
    k = 10
    for size in sizes:
        label = size_label(size)
        started = time.perf_counter()
        gallery = face_like_gallery(size, dim, per_identity=PER_IDENTITY,
                                    cache_dir=cache_dir if size >= 100_000 else None)
        made_s = time.perf_counter() - started
        queries = enrolled_probes(gallery, probes)
        strangers = stranger_probes(gallery, max(20, probes // 4))
        batches = [queries[i : i + SEARCH_BATCH] for i in range(0, len(queries) - SEARCH_BATCH + 1, SEARCH_BATCH)]

        flat, flat_build = _build_flat(gallery, backbone)
        truth = flat.search(queries, k)
        truth_strangers = flat.search(strangers, 1)
        one, many = _latencies(flat, queries, batches, k=k, budget_s=budget_s)
        report.add_timing("search", f"{label} flat, 1 query", one, "ms/query",
                          note=f"gallery made in {made_s:.1f} s, flat built in {flat_build:.2f} s")
        report.add_timing("search", f"{label} flat, batch of {SEARCH_BATCH}", many, "ms/batch",
                          note=f"{many.median / SEARCH_BATCH:.3f} ms/query")
        del flat
        gc.collect()

        approx, build_s, cached = _build_approximate(gallery, backbone, cache_dir)
        vectors_bytes = gallery.vectors.nbytes
        del gallery
        gc.collect()
        found = approx.search(queries, k)
        recall = float(np.mean([len(a & t) / k for a, t in zip(_ids(found), _ids(truth), strict=True)]))
        top1 = float(np.mean([a[0].id == t[0].id for a, t in zip(found, truth, strict=True)]))
        # Gallery row r is identity r // 20 (ids are row numbers): the vote needs the right person.
        same_person = float(np.mean([a[0].id // PER_IDENTITY == t[0].id // PER_IDENTITY
                                     for a, t in zip(found, truth, strict=True)]))
        near = [hits[0].distance for hits in approx.search(strangers, 1)]
        exact = [hits[0].distance for hits in truth_strangers]
        stranger_ratio = float(np.median(np.divide(near, exact)))
        one_a, many_a = _latencies(approx, queries, batches, k=k, budget_s=budget_s)
        nlist, nprobe = ivf_parameters(size, dim)
        flat_row = report.find("search", f"{label} flat, 1 query")
        speedup = flat_row.value / one_a.median if flat_row and flat_row.value and one_a.median else None
        report.add_timing("search", f"{label} IVF, 1 query", one_a, "ms/query", ratio=speedup,
                          note=f"{nlist} lists, {nprobe} probed; {'cached, ' if cached else ''}built in "
                               f"{build_s:.1f} s; ratio: flat / IVF")
        report.add_timing("search", f"{label} IVF, batch of {SEARCH_BATCH}", many_a, "ms/batch",
                          note=f"{many_a.median / SEARCH_BATCH:.3f} ms/query")
        report.add("search", f"{label} IVF recall@{k}", recall, "fraction",
                   note=f"top-1 same as flat {top1:.3f}, same person {same_person:.3f}; {len(queries)} enrolled "
                        f"probes; strangers' nearest found / true nearest distance: median {stranger_ratio:.3f}")
        if memory and size >= 1_000_000:
            measure_index_memory(report, approx, label=label, vectors_bytes=vectors_bytes, cache_dir=cache_dir)
        del approx
        gc.collect()


def _latencies(index: FaceIndex, queries: np.ndarray, batches: list[np.ndarray], *, k: int,
               budget_s: float) -> tuple[Timing, Timing]:
    """(one query per call, one batch per call), each call with different queries."""
    def call(vectors: np.ndarray) -> Callable[[], Any]:
        return lambda: index.search(vectors, k)

    one = timed_each([call(q) for q in queries], budget_s=budget_s)
    many = timed_each([call(b) for b in batches], warmup=1, budget_s=budget_s)
    return one, many


def size_label(size: int) -> str:
    if size >= 1_000_000 and size % 1_000_000 == 0:
        return f"{size // 1_000_000}M"
    if size >= 1000 and size % 1000 == 0:
        return f"{size // 1000}k"
    return str(size)


_MEMORY_PROBE = """
import json, sys
from recognition.bench import rss_mb
from recognition.index import FaceIndex
before = rss_mb()[0]
index = FaceIndex.load(sys.argv[1], backbone=sys.argv[2], dim=int(sys.argv[3]))
after, peak = rss_mb()
print(json.dumps({"before": before, "after": after, "peak": peak, "count": len(index)}))
"""


def measure_index_memory(report: Report, index: FaceIndex, *, label: str, vectors_bytes: int,
                         cache_dir: Path | None) -> None:
    """Resident memory of the index loaded from its file in a fresh process, as a web worker loads it."""
    folder = cache_dir or Path(tempfile.mkdtemp(prefix="rollcall-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"memory-probe-{os.getpid()}.faiss"
    try:
        index.save(path)
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        result = subprocess.run(  # noqa: S603  (this interpreter, fixed arguments)
            [sys.executable, "-c", _MEMORY_PROBE, str(path), index.backbone, str(index.dim)],
            capture_output=True, text=True, timeout=600, env=env, check=False,
        )
        if result.returncode != 0:
            report.notes.append(f"Index memory probe failed: {result.stderr.strip()[-300:]}")
            return
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        size_mb = path.stat().st_size / 2**20
        report.add("memory", f"{label}-vector index ({'IVF' if index.approximate else 'flat'}), resident",
                   figures["after"] - figures["before"], "MB",
                   note=f"vectors alone {vectors_bytes / 2**20:.0f} MB; file {size_mb:.0f} MB; peak while loading "
                        f"{figures['peak'] - figures['before']:.0f} MB above the process's start")
    finally:
        path.unlink(missing_ok=True)


def measure_rebuild(report: Report, dim: int, *, backbone: str, repeats: int, budget_s: float) -> None:
    students, each = COURSE
    gallery = face_like_gallery(students * each, dim, per_identity=each, seed=7)
    ids = np.arange(1, len(gallery.vectors) + 1, dtype=np.int64) * 3
    folder = Path(tempfile.mkdtemp(prefix="rollcall-bench-"))
    path = folder / "course.faiss"

    def rebuild() -> None:
        index = FaceIndex(dim, backbone=backbone)
        index.add(ids, gallery.vectors)
        index.save(path)

    try:
        timing = timed(rebuild, warmup=1, repeats=repeats, budget_s=budget_s)
        report.add_timing("rebuild", f"{students} x {each} ({dim}-d): build + save", timing,
                          note="FaceIndex.add + atomic save (fsync)")
        load = timed(lambda: FaceIndex.load(path, backbone=backbone, dim=dim), warmup=1, repeats=repeats,
                     budget_s=budget_s)
        report.add_timing("rebuild", f"{students} x {each} ({dim}-d): load", load,
                          note="what a web worker does after a version bump")
    finally:
        path.unlink(missing_ok=True)
        folder.rmdir()
