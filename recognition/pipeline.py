"""Detector + embedder + index + vote, for scripts and notebooks."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .classify import assign_unique, candidate_matches
from .detect import Detector
from .embed import BACKBONE_DEFAULTS, Embedder
from .errors import ImageError
from .image import load_image
from .index import FaceIndex
from .types import Face, Label, Match

ImageInput = np.ndarray | str | os.PathLike[str]
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})


class Recognizer:
    """Finds the faces in an image and embeds them."""

    def __init__(self, detector: Detector, embedder: Embedder) -> None:
        self.detector = detector
        self.embedder = embedder

    def embed_faces(self, rgb: np.ndarray, *, pad: float = 0.0) -> list[tuple[Face, np.ndarray]]:
        """Each detected face (best score first) with its embedding; all faces of the image go
        through the model in one batch."""
        faces = self.detector.detect(rgb, pad=pad)
        if not faces:
            return []
        vectors = self.embedder.encode([self.embedder.crop(rgb, face) for face in faces])
        return list(zip(faces, vectors, strict=True))


class Gallery:
    """An in-memory gallery: enrol labelled photos, then identify the faces in new ones.

    k1, k2 and threshold default to the embedder's BACKBONE_DEFAULTS. ``pad`` is passed to the
    detector (use ~0.25 for photos cropped tight to the face).
    """

    def __init__(
        self,
        recognizer: Recognizer,
        *,
        k1: int | None = None,
        k2: int | None = None,
        threshold: float | None = None,
        pad: float = 0.0,
    ) -> None:
        defaults = BACKBONE_DEFAULTS[recognizer.embedder.backbone]
        self.recognizer = recognizer
        self.k1 = k1 if k1 is not None else defaults.k1
        self.k2 = k2 if k2 is not None else defaults.k2
        self.threshold = threshold if threshold is not None else defaults.threshold
        self.pad = pad
        self.labels: list[Label] = []
        self._vectors: list[np.ndarray] = []
        self._index: FaceIndex | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def add(self, label: Label, image: ImageInput) -> Face:
        """Enrol the most prominent face (the largest) of a photo under ``label``."""
        rgb = _rgb(image)
        found = self.recognizer.embed_faces(rgb, pad=self.pad)
        if not found:
            raise ImageError(f"No face found in {_describe(image)}: use a photo with a clear face.")
        face, vector = max(found, key=lambda pair: pair[0].box[2] * pair[0].box[3])
        self.labels.append(label)
        self._vectors.append(vector)
        self._index = None
        return face

    def add_folder(self, folder: str | os.PathLike[str]) -> int:
        """Enrol ``folder/<label>/<photo>`` for every label folder; returns the photos enrolled.
        Photos without a face are skipped."""
        added = 0
        for person in sorted(p for p in Path(folder).iterdir() if p.is_dir()):
            for photo in sorted(person.iterdir()):
                if photo.suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                try:
                    self.add(person.name, photo)
                except ImageError:
                    continue
                added += 1
        return added

    def build(self) -> FaceIndex:
        """The index of everything enrolled (built once per change, on demand)."""
        if self._index is None:
            embedder = self.recognizer.embedder
            index = FaceIndex(embedder.dim, backbone=embedder.name)
            if self._vectors:
                index.add(np.arange(len(self._vectors), dtype=np.int64), np.stack(self._vectors))
            self._index = index
        return self._index

    def identify(self, image: ImageInput) -> list[tuple[Face, Match]]:
        """Every face in the image with who it is (Match.label None: unknown); no person is
        given to two faces."""
        found = self.recognizer.embed_faces(_rgb(image), pad=self.pad)
        if not found:
            return []
        index = self.build()
        results = index.search(np.stack([vector for _, vector in found]), self.k2)
        candidates = [
            candidate_matches(
                [(self.labels[n.id], n.distance) for n in neighbours],
                k1=self.k1,
                k2=self.k2,
                threshold=self.threshold,
            )
            for neighbours in results
        ]
        matches = assign_unique(candidates)
        return [(face, match) for (face, _), match in zip(found, matches, strict=True)]


def _rgb(image: ImageInput) -> np.ndarray:
    if isinstance(image, np.ndarray):
        return image
    return load_image(image)


def _describe(image: ImageInput) -> str:
    return "the image" if isinstance(image, np.ndarray) else str(image)
