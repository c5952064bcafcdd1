"""Embedding a dataset's files once per backbone, with an on-disk cache so that a rerun is fast.

Every image (or sampled video frame) is one sample. The largest face of a sample is embedded,
as ``Gallery.add`` enrols it. A sample without a face stays in the set with no vector: as a probe
it counts as an "Unknown" answer (wrong, the paper's rule); in the gallery it enrols nothing.

The cache holds one small ``.npz`` per (embedding space, file, sampling settings, augmentation),
keyed by the file's path, size and modification time, so an edited file is embedded again. The
seconds spent detecting and embedding are stored with the vectors: the scalability test and the
speed column report the time measured when the file was first embedded.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from recognition.detect import FaceDetector
from recognition.embed import Embedder
from recognition.enrol import EnrolmentRejection, EnrolmentRules, video_views
from recognition.errors import RecognitionError
from recognition.image import load_image
from recognition.video import iter_frames

from .dataset import Source

CACHE_VERSION = 1
AUGMENTATIONS = ("mirror", "rotation", "crop", "blur", "contrast")
"""The paper's augmentations of gallery images, each applied on its own to a copy of the image."""


@dataclass(frozen=True)
class SamplingOptions:
    """How files become face samples. Part of the cache key: other options, other vectors."""

    pad: float = 0.0
    retry_pad: float = 0.25  # tight face chips (passport style) are found once padded
    video_fps: float = 5.0
    video_max_frames: int = 60
    max_side: int = 1280

    def key(self) -> str:
        return (
            f"pad={self.pad};retry={self.retry_pad};fps={self.video_fps};"
            f"frames={self.video_max_frames};side={self.max_side}"
        )


@dataclass(frozen=True)
class EmbeddedFile:
    """One file's samples: a (samples, dim) array with NaN rows for samples without a face."""

    vectors: np.ndarray
    detect_s: float
    embed_s: float

    @property
    def found(self) -> np.ndarray:
        return ~np.isnan(self.vectors[:, 0]) if len(self.vectors) else np.zeros(0, dtype=bool)


@dataclass(frozen=True)
class EmbeddedSet:
    """The samples of a list of files, flattened: one row per image or sampled frame."""

    vectors: np.ndarray  # (n, dim) float32; NaN rows where no face was found
    labels: np.ndarray  # (n,) str: each sample's person
    file_index: np.ndarray  # (n,) int: the sample's position in the source list
    files: tuple[Source, ...]
    detect_s: np.ndarray  # (files,) seconds, as first measured
    embed_s: np.ndarray  # (files,)

    @property
    def found(self) -> np.ndarray:
        return ~np.isnan(self.vectors[:, 0]) if len(self.vectors) else np.zeros(0, dtype=bool)

    @property
    def faces(self) -> int:
        return int(self.found.sum())

    def __len__(self) -> int:
        return len(self.labels)

    def only(self, mask: np.ndarray) -> EmbeddedSet:
        """The samples where ``mask`` is True (the file list and timings stay whole)."""
        return EmbeddedSet(
            vectors=self.vectors[mask],
            labels=self.labels[mask],
            file_index=self.file_index[mask],
            files=self.files,
            detect_s=self.detect_s,
            embed_s=self.embed_s,
        )

    @staticmethod
    def join(parts: Sequence[EmbeddedSet], dim: int) -> EmbeddedSet:
        if not parts:
            return _empty(dim)
        offsets = np.cumsum([0] + [len(p.files) for p in parts[:-1]])
        return EmbeddedSet(
            vectors=np.concatenate([p.vectors for p in parts]).astype(np.float32),
            labels=np.concatenate([p.labels for p in parts]),
            file_index=np.concatenate([p.file_index + o for p, o in zip(parts, offsets, strict=True)]),
            files=tuple(f for p in parts for f in p.files),
            detect_s=np.concatenate([p.detect_s for p in parts]),
            embed_s=np.concatenate([p.embed_s for p in parts]),
        )


def _empty(dim: int) -> EmbeddedSet:
    return EmbeddedSet(
        vectors=np.zeros((0, dim), dtype=np.float32),
        labels=np.array([], dtype=str),
        file_index=np.zeros(0, dtype=np.int64),
        files=(),
        detect_s=np.zeros(0),
        embed_s=np.zeros(0),
    )


def augment(rgb: np.ndarray, name: str) -> np.ndarray:
    """One of AUGMENTATIONS applied to a whole picture (the face is detected afterwards)."""
    height, width = rgb.shape[:2]
    if name == "mirror":
        return np.ascontiguousarray(rgb[:, ::-1])
    if name == "rotation":
        matrix = cv2.getRotationMatrix2D((width / 2.0, height / 2.0), 10.0, 1.0)
        return cv2.warpAffine(rgb, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)
    if name == "crop":
        dy, dx = round(height * 0.075), round(width * 0.075)
        return np.ascontiguousarray(rgb[dy : height - dy, dx : width - dx])
    if name == "blur":
        sigma = max(1.0, max(height, width) / 200.0)
        return cv2.GaussianBlur(rgb, (0, 0), sigma)
    if name == "contrast":
        mean = rgb.reshape(-1, rgb.shape[-1]).mean(axis=0)
        return np.clip((rgb.astype(np.float32) - mean) * 1.5 + mean, 0, 255).astype(np.uint8)
    raise ValueError(f"unknown augmentation {name!r}: choose from {', '.join(AUGMENTATIONS)}")


class EmbeddingCache:
    """``<root>/<embedding space>/<key>.npz``; None as root turns caching off."""

    def __init__(self, root: str | os.PathLike[str] | None) -> None:
        self.root = Path(root) if root is not None else None
        self.hits = 0
        self.misses = 0

    def _path(self, space: str, key: str) -> Path | None:
        if self.root is None:
            return None
        folder = "".join(c if c.isalnum() or c in "-_." else "_" for c in space)
        return self.root / folder / f"{key}.npz"

    def load(self, space: str, key: str) -> EmbeddedFile | None:
        path = self._path(space, key)
        if path is None or not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                entry = EmbeddedFile(
                    vectors=np.asarray(data["vectors"], dtype=np.float32),
                    detect_s=float(data["detect_s"]),
                    embed_s=float(data["embed_s"]),
                )
        except (OSError, ValueError, KeyError):
            # A truncated or foreign file: drop it and embed again.
            path.unlink(missing_ok=True)
            return None
        self.hits += 1
        return entry

    def store(self, space: str, key: str, entry: EmbeddedFile) -> None:
        path = self._path(space, key)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, vectors=entry.vectors, detect_s=entry.detect_s, embed_s=entry.embed_s)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def cache_key(source: Source, embedder: Embedder, options: SamplingOptions, augmentation: str | None) -> str:
    stat = source.path.stat()
    parts = {
        "version": CACHE_VERSION,
        "space": embedder.name,
        "path": str(source.path.resolve()),
        "size": stat.st_size,
        "mtime": stat.st_mtime_ns,
        "kind": source.kind,
        "sampling": options.key(),
        "augmentation": augmentation or "",
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class _Detected:
    """A file's aligned face crops (None for a sample without a face), before embedding."""

    crops: list[np.ndarray | None]
    seconds: float

    @property
    def found(self) -> list[np.ndarray]:
        return [c for c in self.crops if c is not None]


class SetEmbedder:
    """Detects and embeds files with one detector and one embedder, through a cache."""

    def __init__(
        self,
        detector: FaceDetector,
        embedder: Embedder,
        *,
        cache: EmbeddingCache,
        options: SamplingOptions | None = None,
        progress: bool = True,
        batch_faces: int = 32,
    ) -> None:
        if batch_faces < 1:
            raise ValueError("batch_faces must be at least 1")
        self.detector = detector
        self.embedder = embedder
        self.cache = cache
        self.options = options or SamplingOptions()
        self.progress = progress
        self.batch_faces = batch_faces

    def embed(
        self, sources: Sequence[Source], *, augmentation: str | None = None, what: str = "", enrolment: bool = False
    ) -> EmbeddedSet:
        """Every sample of ``sources`` (cached per file). Unreadable files raise, naming the file.

        ``enrolment``: a video gives the faces the web app's enrolment would keep of it
        (recognition.enrol: sharp, frontal, one person, no near-duplicates), none for a video the
        app would refuse, instead of the largest face of every sampled frame.

        Faces of files not in the cache go through the model together, ``batch_faces`` at a
        time, as a deployment would embed an enrolment video's frames; each file is charged its
        share of a batch's time."""
        parts: list[EmbeddedFile | None] = [None] * len(sources)
        pending: list[tuple[int, str, _Detected]] = []
        desc = f"{self.embedder.backbone}: {what}" + (f" ({augmentation})" if augmentation else "")
        for i, source in enumerate(tqdm(sources, desc=desc, unit="file", disable=not self.progress, leave=False)):
            judged = enrolment and source.kind == "video" and augmentation is None
            key = cache_key(source, self.embedder, self.options, "enrolment" if judged else augmentation)
            cached = self.cache.load(self.embedder.name, key)
            if cached is not None:
                parts[i] = cached
                continue
            self.cache.misses += 1
            pending.append((i, key, self._enrolment_views(source) if judged else self._detect(source, augmentation)))
            if sum(len(d.found) for _, _, d in pending) >= self.batch_faces:
                self._flush(pending, parts)
        self._flush(pending, parts)
        done = [p for p in parts if p is not None]
        if not done:
            return _empty(self.embedder.dim)
        counts = [len(p.vectors) for p in done]
        return EmbeddedSet(
            vectors=np.concatenate([p.vectors for p in done]).astype(np.float32),
            labels=np.array([s.label for s, n in zip(sources, counts, strict=True) for _ in range(n)], dtype=str),
            file_index=np.repeat(np.arange(len(done)), counts),
            files=tuple(sources),
            detect_s=np.array([p.detect_s for p in done]),
            embed_s=np.array([p.embed_s for p in done]),
        )

    def embed_file(self, source: Source, *, augmentation: str | None = None) -> EmbeddedFile:
        """One file's samples (from the cache when there)."""
        key = cache_key(source, self.embedder, self.options, augmentation)
        cached = self.cache.load(self.embedder.name, key)
        if cached is not None:
            return cached
        self.cache.misses += 1
        parts: list[EmbeddedFile | None] = [None]
        self._flush([(0, key, self._detect(source, augmentation))], parts)
        assert parts[0] is not None
        return parts[0]

    def _flush(self, pending: list[tuple[int, str, _Detected]], parts: list[EmbeddedFile | None]) -> None:
        if not pending:
            return
        crops = [crop for _, _, detected in pending for crop in detected.found]
        started = time.perf_counter()
        encoded = self.embedder.encode(crops) if crops else np.zeros((0, self.embedder.dim), dtype=np.float32)
        seconds = time.perf_counter() - started
        offset = 0
        for i, key, detected in pending:
            n = len(detected.found)
            vectors = np.full((len(detected.crops), self.embedder.dim), np.nan, dtype=np.float32)
            vectors[[j for j, c in enumerate(detected.crops) if c is not None]] = encoded[offset : offset + n]
            offset += n
            entry = EmbeddedFile(vectors=vectors, detect_s=detected.seconds,
                                 embed_s=seconds * n / len(crops) if crops else 0.0)
            self.cache.store(self.embedder.name, key, entry)
            parts[i] = entry
        pending.clear()

    def _detect(self, source: Source, augmentation: str | None) -> _Detected:
        transform: Callable[[np.ndarray], np.ndarray] = (
            (lambda rgb: augment(rgb, augmentation)) if augmentation else (lambda rgb: rgb)
        )
        crops: list[np.ndarray | None] = []
        seconds = 0.0
        try:
            for rgb in self._samples(source):
                image = transform(rgb)
                started = time.perf_counter()
                crops.append(self._largest_face_crop(image))
                seconds += time.perf_counter() - started
        except RecognitionError as exc:
            # The library's message says what is wrong with the file; say which file of the dataset.
            raise RecognitionError(f"{source.path} ({source.label}): {exc}") from exc
        return _Detected(crops, seconds)

    def _enrolment_views(self, source: Source) -> _Detected:
        rules = EnrolmentRules(sample_fps=self.options.video_fps, max_sampled_frames=self.options.video_max_frames,
                               max_frame_side=self.options.max_side)
        started = time.perf_counter()
        try:
            views, _ = video_views(source.path, detector=self.detector, crop=self.embedder.crop, rules=rules)
        except EnrolmentRejection:
            views = []  # the app would refuse this video: nothing of it is enrolled
        except RecognitionError as exc:
            raise RecognitionError(f"{source.path} ({source.label}): {exc}") from exc
        return _Detected([view.crop for view in views], time.perf_counter() - started)

    def _samples(self, source: Source) -> list[np.ndarray]:
        if source.kind == "image":
            return [load_image(source.path, max_side=self.options.max_side)]
        frames = iter_frames(
            source.path,
            target_fps=self.options.video_fps,
            max_frames=self.options.video_max_frames,
            max_side=self.options.max_side,
        )
        return [frame.image for frame in frames]

    def _largest_face_crop(self, rgb: np.ndarray) -> np.ndarray | None:
        faces = self.detector.detect(rgb, pad=self.options.pad)
        if not faces and self.options.retry_pad > self.options.pad:
            faces = self.detector.detect(rgb, pad=self.options.retry_pad)
        if not faces:
            return None
        face = max(faces, key=lambda f: f.box[2] * f.box[3])
        return self.embedder.crop(rgb, face)
