"""How fast the recognition library runs, against the model's own limit.

    python -m recognition.bench                 # the full run (about 5 minutes on 2 cores)
    python -m recognition.bench --quick         # a minute: small galleries, fewer repeats
    python -m recognition.bench --json out.json

Measures, each as the median and 95th percentile of repeated runs after a warm-up:

- the bare model forward (``Embedder.forward`` on a prepared batch) per backbone, per image at
  batch 1 and at the best batch size, in the precision the embedder chose (and float32 beside it);
- the YuNet detector per 640x480 frame with one face and with four;
- the library's whole check-in path (detect, align, embed, search) on the same frames, and its ratio
  to detector + bare forward;
- FAISS search, exact (flat) against approximate (IVF), per query and per batch of 16, for galleries
  of 1k to 1M face-like vectors, with recall@10 of the approximate index;
- rebuilding the index of a course of 500 students x 20 embeddings;
- the memory of a 1M-vector index, loaded the way a web worker loads it.

CLIP is measured with random weights (pretrained=None: none can be downloaded here); a forward
pass costs the same with any weights. Galleries of 100k vectors and more, and their approximate
indexes, are cached in --cache-dir (default /tmp/rollcall-bench) after the first run.
The Django-level figures (check-in through the API, enrolment, workers, concurrency) are measured by
``python manage.py bench``, which reuses this module.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .detect import FaceDetector
from .embed import ClipEmbedder, DlibEmbedder, Embedder, create_embedder
from .errors import ModelUnavailableError
from .image import load_image
from .index import FaceIndex, ivf_parameters
from .pipeline import Recognizer
from .runtime import kernel_cpu_flags, set_threads, thread_settings
from .video import iter_frames

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "rollcall-bench"
FULL_SIZES = (1_000, 10_000, 100_000, 1_000_000)
QUICK_SIZES = (1_000, 10_000)
FULL_BATCHES = (1, 2, 4, 8, 16, 32)
QUICK_BATCHES = (1, 8)
SEARCH_BATCH = 16
FRAME_SIZE = (640, 480)
COURSE = (500, 20)  # students x embeddings each
SECTIONS = ("forward", "frames", "search", "rebuild", "memory")
PER_IDENTITY = 20  # samples per identity in the search galleries


# --- Results -----------------------------------------------------------------------------------

@dataclass
class Row:
    """One figure. Times are milliseconds: ``value`` the median, ``p95`` the 95th percentile."""

    section: str
    name: str
    value: float | None
    unit: str
    p95: float | None = None
    runs: int | None = None
    ratio: float | None = None
    note: str = ""


@dataclass
class Report:
    machine: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, section: str, name: str, value: float | None, unit: str, **extra: Any) -> Row:
        row = Row(section, name, value, unit, **extra)
        self.rows.append(row)
        return row

    def add_timing(self, section: str, name: str, timing: Timing, unit: str = "ms", *, per: int = 1,
                   ratio: float | None = None, note: str = "") -> Row:
        return self.add(section, name, timing.median / per, unit, p95=timing.p95 / per, runs=timing.runs,
                        ratio=ratio, note=note)

    def find(self, section: str, name: str) -> Row | None:
        return next((r for r in self.rows if r.section == section and r.name == name), None)

    def as_dict(self) -> dict[str, Any]:
        return {"machine": self.machine, "config": self.config, "rows": [asdict(r) for r in self.rows],
                "notes": self.notes}

    def write_json(self, path: str | os.PathLike[str]) -> None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(self.as_dict(), indent=2) + "\n")

    def table(self) -> str:
        lines = [f"Machine: {self.machine.get('cpu', '?')}, {self.machine.get('cores', '?')} cores, "
                 f"{self.machine.get('memory_gb', '?')} GB; load average {self.machine.get('load_start', '?')} "
                 f"at start, {self.machine.get('load_end', '?')} at end"]
        if self.config:
            lines.append("Config: " + ", ".join(f"{k}={v}" for k, v in self.config.items()))
        header = ("section", "measurement", "median", "p95", "unit", "runs", "ratio", "note")
        body = [header] + [
            (r.section, r.name, _fmt(r.value), _fmt(r.p95), r.unit, "" if r.runs is None else str(r.runs),
             "" if r.ratio is None else f"{r.ratio:.2f}x", r.note)
            for r in self.rows
        ]
        widths = [max(len(row[i]) for row in body) for i in range(len(header) - 1)]
        for n, row in enumerate(body):
            cells = [row[i].ljust(widths[i]) if i < 2 or i == 4 else row[i].rjust(widths[i])
                     for i in range(len(header) - 1)]
            lines.append("  ".join(cells) + ("  " + row[-1] if row[-1] else ""))
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
        lines += [f"* {note}" for note in self.notes]
        return "\n".join(lines)


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    if value == 0 or abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 0.1:
        return f"{value:.2f}"
    return f"{value:.3f}"


@dataclass(frozen=True)
class Timing:
    median: float  # ms
    p95: float  # ms
    runs: int

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Timing:
        ms = np.asarray(seconds, dtype=np.float64) * 1000.0
        return cls(float(np.median(ms)), float(np.percentile(ms, 95)), len(ms))


def timed(fn: Callable[[], Any], *, warmup: int = 2, repeats: int = 20, budget_s: float = 10.0,
          min_runs: int = 3) -> Timing:
    """Run ``fn`` ``warmup`` times untimed, then up to ``repeats`` timed runs, stopping early once
    ``budget_s`` is spent (after at least ``min_runs``)."""
    for _ in range(warmup):
        fn()
    seconds: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(seconds) < repeats:
        started = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - started)
        if len(seconds) >= min_runs and time.perf_counter() > deadline:
            break
    return Timing.of(seconds)


def timed_each(calls: Sequence[Callable[[], Any]], *, warmup: int = 3, budget_s: float = 10.0,
               min_runs: int = 3) -> Timing:
    """Time each call once (different inputs: queries), after ``warmup`` untimed calls."""
    for call in calls[:warmup]:
        call()
    seconds: list[float] = []
    deadline = time.perf_counter() + budget_s
    for call in calls:
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
        if len(seconds) >= min_runs and time.perf_counter() > deadline:
            break
    return Timing.of(seconds)


# --- The machine -------------------------------------------------------------------------------

def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": _memory_gb(),
        "python": platform.python_version(),
        "load_start": _load(),
        "cpu_flags": sorted(kernel_cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16",
                                             "amx_int8", "amx_tile"}),
        "versions": _versions(),
    }
    return info


def _cpu_model() -> str:
    try:
        lscpu = shutil.which("lscpu")
        if lscpu is None:
            raise OSError("no lscpu")
        out = subprocess.run([lscpu], capture_output=True, text=True, timeout=10, check=False).stdout  # noqa: S603
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _load() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "?"


def _versions() -> dict[str, str]:
    import faiss

    versions = {"numpy": np.__version__, "opencv": cv2.__version__, "faiss": faiss.__version__}
    for name in ("torch", "open_clip", "dlib"):
        try:
            module = __import__(name)
            versions[name] = str(getattr(module, "__version__", "?"))
        except ImportError:
            continue
    return versions


def rss_mb(pid: int | str = "self") -> tuple[float, float]:
    """(resident, peak resident) memory of a process in MB, from /proc (Linux)."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            values[line.split(":")[0]] = int(line.split()[1]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


# --- Test frames -------------------------------------------------------------------------------

def default_faces_dir() -> Path:
    return Path(os.environ.get("ROLLCALL_FACES_DIR", REPO_ROOT.parent / "shared" / "faces"))


def default_detector_model() -> Path | None:
    candidates = [
        os.environ.get("ROLLCALL_TEST_DETECTOR_MODEL"),
        os.environ.get("ROLLCALL_DETECTOR_MODEL"),
        REPO_ROOT.parent / "shared" / "models" / "face_detection_yunet_2023mar.onnx",
        REPO_ROOT / "var" / "models" / "face_detection_yunet_2023mar.onnx",
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def _fit_frame(rgb: np.ndarray) -> np.ndarray:
    """Scale to fit 640x480 and pad with repeated edges: a webcam-sized frame."""
    width, height = FRAME_SIZE
    scale = min(width / rgb.shape[1], height / rgb.shape[0])
    size = (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    top, left = (height - size[1]) // 2, (width - size[0]) // 2
    return cv2.copyMakeBorder(small, top, height - size[1] - top, left, width - size[0] - left,
                              cv2.BORDER_REPLICATE)


def benchmark_frames(faces_dir: Path) -> dict[str, np.ndarray]:
    """640x480 RGB frames: "1 face" (the talking-head video at 2 s) and "4 faces" (a group photo)."""
    frames: dict[str, np.ndarray] = {}
    video = faces_dir / "videos" / "katie_hill_talking.mp4"
    if video.is_file():
        sampled = list(iter_frames(video, target_fps=1.0, max_frames=8))
        frames["1 face"] = _fit_frame(sampled[min(2, len(sampled) - 1)].image)
    group = faces_dir / "group" / "013_4.jpg"
    if group.is_file():
        frames["4 faces"] = _fit_frame(load_image(group))
    return frames


def jpeg(rgb: np.ndarray, quality: int = 85) -> bytes:
    """The frame as the check-in page sends it."""
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return data.tobytes()


# --- The model's limit -------------------------------------------------------------------------

def make_embedder(backbone: str, *, clip_model: str = "ViT-B-32", precision: str = "auto") -> Embedder:
    if backbone == "clip":
        embedder: Embedder = ClipEmbedder(clip_model, pretrained=None, precision=precision)
    else:
        embedder = create_embedder(backbone)
    embedder.load()  # type: ignore[attr-defined]
    return embedder


def describe_embedder(embedder: Embedder) -> str:
    if isinstance(embedder, ClipEmbedder):
        agreement = "" if embedder.agreement is None else f", cosine to fp32 {embedder.agreement:.5f}"
        return f"{embedder.name} ({embedder.precision}{agreement}; random weights, same speed)"
    if isinstance(embedder, DlibEmbedder):
        return f"{embedder.name} (dlib {'with' if embedder.mirror else 'without'} mirror: "\
            f"{2 if embedder.mirror else 1} passes per face)"
    return embedder.name


def passes_per_face(embedder: Embedder) -> int:
    return 2 if isinstance(embedder, DlibEmbedder) and embedder.mirror else 1


def sample_crop(embedder: Embedder, frames: dict[str, np.ndarray], detector: FaceDetector | None) -> np.ndarray:
    if detector is not None and "1 face" in frames:
        faces = detector.detect(frames["1 face"])
        if faces:
            return embedder.crop(frames["1 face"], faces[0])
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    return cv2.resize(coarse, (embedder.crop_size, embedder.crop_size), interpolation=cv2.INTER_CUBIC)


def forward_timing(embedder: Embedder, crop: np.ndarray, batch: int, *, repeats: int, warmup: int,
                   budget_s: float) -> Timing:
    """The bare model on a prepared batch of ``batch`` images (one pass each: dlib's mirror pass
    is counted by ``passes_per_face``). Per batch, not per image."""
    if isinstance(embedder, DlibEmbedder):
        prepared: Any = [embedder._fit(crop)] * batch  # one pass per image
    else:
        prepared = embedder.prepare([crop] * batch)  # type: ignore[attr-defined]
    forward = embedder.forward  # type: ignore[attr-defined]
    return timed(lambda: forward(prepared), warmup=warmup, repeats=repeats, budget_s=budget_s)


def measure_forward(report: Report, embedder: Embedder, crop: np.ndarray, *, label: str, batches: Sequence[int],
                    repeats: int, warmup: int, budget_s: float) -> dict[int, float]:
    """Per-image forward time at each batch size; adds rows, returns {batch: ms per image}."""
    per_image: dict[int, float] = {}
    for batch in batches:
        timing = forward_timing(embedder, crop, batch, repeats=max(3, repeats // max(1, batch // 4)),
                                warmup=warmup, budget_s=budget_s)
        per_image[batch] = timing.median / batch
        report.add_timing("forward", f"{label} batch {batch}", timing, "ms/image", per=batch)
    best = min(per_image, key=lambda b: per_image[b])
    single = per_image.get(1)
    report.add("forward", f"{label} best", per_image[best], "ms/image",
               ratio=(single / per_image[best]) if single else None,
               note=f"at batch {best}" + ("; ratio: batch 1 / best" if single else ""))
    return per_image


def frame_limit(detector: FaceDetector, embedder: Embedder, frame: np.ndarray, *, repeats: int, warmup: int,
                budget_s: float) -> tuple[Timing, Timing, int]:
    """(detector, bare forward of the frame's faces in one batch, faces) for one frame: the floor
    under any check-in of it."""
    faces = detector.detect(frame)
    detect = timed(lambda: detector.detect(frame), warmup=warmup, repeats=repeats, budget_s=budget_s)
    crops = [embedder.crop(frame, face) for face in faces]
    if not crops:
        return detect, Timing(0.0, 0.0, 0), 0
    prepared = embedder.prepare(crops)  # type: ignore[attr-defined]
    forward = embedder.forward  # type: ignore[attr-defined]
    model = timed(lambda: forward(prepared), warmup=warmup, repeats=repeats, budget_s=budget_s)
    return detect, model, len(faces)


# --- Face-like vectors -------------------------------------------------------------------------

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


# --- Search ------------------------------------------------------------------------------------

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
        label = _size_label(size)
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


def _size_label(size: int) -> str:
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


# --- Index rebuild -----------------------------------------------------------------------------

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


# --- The library's check-in path ---------------------------------------------------------------

def measure_frames(report: Report, detector: FaceDetector, embedder: Embedder, frames: dict[str, np.ndarray], *,
                   repeats: int, warmup: int, budget_s: float) -> dict[str, float]:
    """Detector per frame, the frame's limit, and the library path on it; returns {frame: limit ms}."""
    limits: dict[str, float] = {}
    gallery = face_like_gallery(COURSE[0] * COURSE[1], embedder.dim, seed=11)
    index = FaceIndex(embedder.dim, backbone=embedder.name)
    index.add(np.arange(len(gallery.vectors), dtype=np.int64), gallery.vectors)
    recognizer = Recognizer(detector, embedder)
    for name, frame in frames.items():
        detect, model, faces = frame_limit(detector, embedder, frame, repeats=repeats, warmup=warmup,
                                           budget_s=budget_s)
        limit = detect.median + model.median
        limits[name] = limit
        report.add_timing("detector", f"YuNet, 640x480, {name}", detect, note=f"{faces} found")
        report.add_timing("limit", f"{name}: bare forward of its faces", model,
                          note=f"{faces} faces x {passes_per_face(embedder)} pass(es), one batch")
        report.add("limit", f"{name}: detector + bare forward", limit, "ms")

        def check_in(frame: np.ndarray = frame) -> None:
            found = recognizer.embed_faces(frame)
            if found:
                index.search(np.stack([vector for _, vector in found]), 3)

        path = timed(check_in, warmup=warmup, repeats=repeats, budget_s=budget_s)
        report.add_timing("pipeline", f"{name}: detect + align + embed + search", path, ratio=path.median / limit,
                          note=f"library only, {len(gallery.vectors)}-vector flat index; ratio to the limit")
    return limits


# --- Entry point -------------------------------------------------------------------------------

def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(float(part)) for part in text.split(",") if part.strip())


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m recognition.bench", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small galleries and fewer repeats (about a minute)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--backbone", default=os.environ.get("ROLLCALL_BACKBONE", "clip"), choices=["clip", "dlib"],
                        help="the configured backbone: its dimension for search, its model for the check-in path")
    parser.add_argument("--forward-backbones", default="clip,dlib", help="backbones whose forward pass is timed")
    parser.add_argument("--clip-model", default=os.environ.get("ROLLCALL_CLIP_MODEL", "ViT-B-32"))
    parser.add_argument("--no-fp32", action="store_true", help="skip the float32 reference for CLIP")
    parser.add_argument("--batches", type=_ints, help="forward batch sizes (default 1,2,4,8,16,32; quick 1,8)")
    parser.add_argument("--sizes", type=_ints, help="search gallery sizes (default 1k,10k,100k,1M; quick 1k,10k)")
    parser.add_argument("--probes", type=int, help="search queries per size (default 200; quick 64)")
    parser.add_argument("--repeats", type=int, help="timed runs per measurement (default 20; quick 8)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first (default 2)")
    parser.add_argument("--budget", type=float, help="seconds at most per measurement (default 8; quick 3)")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads per library (OpenCV, torch, FAISS); 1 is what each app process uses")
    parser.add_argument("--sections", default="forward,frames,search,rebuild,memory",
                        help="any of forward,frames,search,rebuild,memory")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--faces-dir", type=Path, default=default_faces_dir())
    parser.add_argument("--detector-model", type=Path, default=default_detector_model())
    args = parser.parse_args(argv)
    quick = args.quick
    args.batches = args.batches or (QUICK_BATCHES if quick else FULL_BATCHES)
    args.sizes = args.sizes or (QUICK_SIZES if quick else FULL_SIZES)
    args.probes = args.probes or (64 if quick else 200)
    args.repeats = args.repeats or (8 if quick else 20)
    args.budget = args.budget or (3.0 if quick else 8.0)
    args.sections = {s.strip() for s in args.sections.split(",") if s.strip()}
    unknown = args.sections - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}: choose from {', '.join(SECTIONS)}")
    backbones = {b.strip() for b in args.forward_backbones.split(",") if b.strip()}
    if backbones - {"clip", "dlib"}:
        parser.error(f"--forward-backbones takes clip and/or dlib, not {args.forward_backbones!r}")
    if args.threads < 1 or args.repeats < 1 or args.probes < 1 or min(args.batches or (0,)) < 1:
        parser.error("--threads, --repeats, --probes and --batches must be at least 1")
    if min(args.sizes or (0,)) < 100:
        parser.error("--sizes must be at least 100 vectors each")
    return args


def run(args: argparse.Namespace, report: Report | None = None) -> Report:
    report = report or Report()
    report.machine.update(machine_info())  # imports torch: before its threads are set
    set_threads(args.threads)
    dims = {"clip": None, "dlib": DlibEmbedder.dim}
    report.config.update({"threads": args.threads, "backbone": args.backbone, "quick": bool(args.quick)})

    detector = None
    if args.detector_model and Path(args.detector_model).is_file():
        detector = FaceDetector(args.detector_model)
    else:
        report.notes.append("No YuNet model found (--detector-model): detector and check-in path not measured.")
    frames = benchmark_frames(args.faces_dir) if detector is not None else {}
    if detector is not None and not frames:
        report.notes.append(f"No test faces at {args.faces_dir} (--faces-dir): frames not measured.")

    embedders: dict[str, Embedder] = {}
    timed_backbones = [b.strip() for b in args.forward_backbones.split(",") if b.strip()]
    wanted = list(timed_backbones)
    if "frames" in args.sections and args.backbone not in wanted:
        wanted.append(args.backbone)
    for backbone in wanted:
        try:
            embedders[backbone] = make_embedder(backbone, clip_model=args.clip_model)
        except ModelUnavailableError as exc:
            report.notes.append(f"{backbone} not measured: {exc}")
    if "clip" in embedders:
        dims["clip"] = embedders["clip"].dim

    if "forward" in args.sections:
        for backbone, embedder in embedders.items():
            if backbone not in timed_backbones:
                continue
            crop = sample_crop(embedder, frames, detector)
            report.notes.append(f"forward {backbone}: {describe_embedder(embedder)}")
            label = backbone
            if isinstance(embedder, ClipEmbedder):
                label = f"clip {args.clip_model} {embedder.precision}"
            measure_forward(report, embedder, crop, label=label, batches=args.batches, repeats=args.repeats,
                            warmup=args.warmup, budget_s=args.budget)
            if isinstance(embedder, ClipEmbedder) and embedder.precision != "fp32" and not args.no_fp32:
                reference = make_embedder("clip", clip_model=args.clip_model, precision="fp32")
                fp32 = measure_forward(report, reference, crop, label=f"clip {args.clip_model} fp32",
                                       batches=[b for b in args.batches if b in (1, max(args.batches))],
                                       repeats=max(3, args.repeats // 4), warmup=1, budget_s=args.budget)
                fast = report.find("forward", f"clip {args.clip_model} {embedder.precision} batch 1")
                if fast and fast.value and 1 in fp32:
                    speedup = fp32[1] / fast.value
                    report.notes.append(f"CLIP {embedder.precision} is {speedup:.2f}x as fast as fp32 at batch 1")
                del reference
                gc.collect()

    if "frames" in args.sections and detector is not None and frames and args.backbone in embedders:
        measure_frames(report, detector, embedders[args.backbone], frames, repeats=args.repeats,
                       warmup=args.warmup, budget_s=args.budget)

    dim = dims.get(args.backbone) or 512
    if "search" in args.sections:
        report.notes.append(FACE_MODEL_NOTE)
        measure_search(report, args.sizes, dim, backbone=f"bench-{args.backbone}", cache_dir=args.cache_dir,
                       probes=args.probes, budget_s=args.budget, memory="memory" in args.sections)
    if "rebuild" in args.sections:
        measure_rebuild(report, dim, backbone=f"bench-{args.backbone}", repeats=max(3, args.repeats // 4),
                        budget_s=args.budget)
    report.config["thread_pools"] = thread_settings()
    report.machine["load_end"] = _load()
    return report


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    report = run(args)
    print(report.table())
    if args.json:
        report.write_json(args.json)
        print(f"\nJSON written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
