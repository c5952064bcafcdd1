"""The models' own limit: the bare forward per batch size, the detector per frame, the library's check-in path."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..detect import Detector
from ..embed import ClipEmbedder, DlibEmbedder, Embedder, create_embedder
from ..image import load_image
from ..index import FaceIndex
from ..pipeline import Recognizer
from ..video import iter_frames
from .report import Report, Timing, timed
from .search import COURSE, face_like_gallery

REPO_ROOT = Path(__file__).resolve().parents[2]


FRAME_SIZE = (640, 480)


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


def default_liveness_model_dir(preferred: str | os.PathLike[str] | None = None) -> Path | None:
    """The first folder holding both MiniFASNet files: ``preferred`` (the configured one), then
    ROLLCALL_LIVENESS_MODEL_DIR, ../shared/models beside the repository, var/models."""
    from ..liveness.passive import ANTISPOOF_MODELS

    candidates = [
        preferred,
        os.environ.get("ROLLCALL_LIVENESS_MODEL_DIR"),
        REPO_ROOT.parent / "shared" / "models",
        REPO_ROOT / "var" / "models",
    ]
    for candidate in candidates:
        if candidate and all((Path(candidate) / model.filename).is_file() for model in ANTISPOOF_MODELS):
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


CROWD_PHOTOS = ("011_3.jpg", "012_4.jpg", "013_4.jpg", "014_5.jpg", "015_6.jpg", "016_8.jpg")


def crowd_frame(faces_dir: Path) -> np.ndarray | None:
    """A class photo: six group photos of ../shared/faces/group (3 + 4 + 4 + 5 + 6 + 8 = 30 faces),
    each fitted to 640x480, tiled 3 x 2 into one 1920x960 RGB frame. None without the photos."""
    paths = [faces_dir / "group" / name for name in CROWD_PHOTOS]
    if not all(path.is_file() for path in paths):
        return None
    tiles = [_fit_frame(load_image(path)) for path in paths]
    return np.ascontiguousarray(np.vstack([np.hstack(tiles[:3]), np.hstack(tiles[3:])]))


def jpeg(rgb: np.ndarray, quality: int = 85) -> bytes:
    """The frame as the check-in page sends it."""
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return data.tobytes()


def make_embedder(backbone: str, *, clip_model: str = "ViT-B-32", precision: str = "auto",
                  device: str = "cpu") -> Embedder:
    if backbone == "clip":
        embedder: Embedder = ClipEmbedder(clip_model, pretrained=None, precision=precision, device=device)
    else:
        embedder = create_embedder(backbone, device=device, precision=precision)
    embedder.load()  # type: ignore[attr-defined]
    return embedder


def describe_embedder(embedder: Embedder) -> str:
    if isinstance(embedder, ClipEmbedder):
        agreement = "" if embedder.agreement is None else f", cosine to fp32 {embedder.agreement:.5f}"
        tower = f", {embedder.engine} tower" if embedder.engine else ""
        return f"{embedder.name} (engine torch on {embedder.device}{tower}, {embedder.precision}{agreement}; "\
            "random weights (pretrained=None), same speed)"
    if isinstance(embedder, DlibEmbedder):
        agreement = "" if embedder.agreement is None else f", cosine to fp32 {embedder.agreement:.5f}"
        return f"{embedder.name} (engine {embedder.engine} on {embedder.device}, {embedder.precision}{agreement}; "\
            f"{'with' if embedder.mirror else 'without'} mirror: {2 if embedder.mirror else 1} passes per face)"
    return embedder.name


def passes_per_face(embedder: Embedder) -> int:
    return 2 if isinstance(embedder, DlibEmbedder) and embedder.mirror else 1


def sample_crop(embedder: Embedder, frames: dict[str, np.ndarray], detector: Detector | None) -> np.ndarray:
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


def frame_limit(detector: Detector, embedder: Embedder, frame: np.ndarray, *, repeats: int, warmup: int,
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


def measure_frames(report: Report, detector: Detector, embedder: Embedder, frames: dict[str, np.ndarray], *,
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
        measure_passive_liveness(report, detector, frame, name=name, repeats=repeats, warmup=warmup,
                                 budget_s=budget_s, pipeline_ms=path.median)
    return limits


def _liveness_dir() -> Path | None:
    """The folder holding both MiniFASNet files (next to the detector model), if any."""
    from ..liveness import ANTISPOOF_MODELS

    detector = default_detector_model()
    folder = detector.parent if detector else None
    if folder and all((folder / spec.filename).is_file() for spec in ANTISPOOF_MODELS):
        return folder
    return None


def measure_passive_liveness(report: Report, detector: Detector, frame: np.ndarray, *, name: str, repeats: int,
                             warmup: int, budget_s: float, pipeline_ms: float) -> None:
    """Both MiniFASNet models on the frame's faces in one batch each, beside the recognition path."""
    from ..liveness import PassiveLiveness

    folder = _liveness_dir()
    faces = detector.detect(frame)
    if folder is None or not faces:
        return
    scorer = PassiveLiveness.from_dir(folder, download=False)
    timing = timed(lambda: scorer.score(frame, faces), warmup=warmup, repeats=repeats, budget_s=budget_s)
    report.add_timing("liveness", f"{name}: passive liveness (2 MiniFASNet, one batch each)", timing,
                      ratio=timing.median / pipeline_ms if pipeline_ms else None,
                      note=f"{len(faces)} faces; ratio to detect + align + embed + search")
