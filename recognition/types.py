"""Small value types passed between the recognition modules and to callers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

import numpy as np

Label: TypeAlias = str | int
"""A person's identity as the caller knows it: a name in scripts, a primary key in the app."""


@dataclass(frozen=True)
class Face:
    """One detected face.

    ``box`` is (x, y, w, h) in pixels of the image given to the detector; it may reach past the
    image's edges for a face cut off by the frame. ``landmarks`` is (5, 2) float32 in the same
    pixels, in YuNet's order: right eye, left eye, nose tip, right mouth corner, left mouth
    corner (the subject's right, so the right eye has the smaller x in an unmirrored photo).
    """

    box: tuple[float, float, float, float]
    landmarks: np.ndarray = field(compare=False, repr=False)
    score: float

    @property
    def size(self) -> float:
        """The longer side of the box: the measure ``min_face_size`` and quality use."""
        return max(self.box[2], self.box[3])


@dataclass(frozen=True)
class Neighbour:
    """A gallery entry found by a search: its id and its L2 distance to the probe.

    Embeddings are unit vectors, so the distance is in [0, 2] and d**2 == 2 - 2 * cosine.
    """

    id: int
    distance: float

    @property
    def similarity(self) -> float:
        """Cosine similarity, from the identity above."""
        return 1.0 - self.distance * self.distance / 2.0


@dataclass(frozen=True)
class Match:
    """The answer for one face.

    An unknown face has ``label`` None (not the string "Unknown", which could be somebody's
    label); ``str(match)`` and ``display`` show "Unknown". ``distance`` is the L2 distance to the
    nearest gallery embedding of ``label`` and ``votes`` the neighbours that voted for it.
    """

    label: Label | None
    distance: float | None = None
    votes: int = 0

    @property
    def is_unknown(self) -> bool:
        return self.label is None

    @property
    def display(self) -> str:
        return "Unknown" if self.label is None else str(self.label)

    def __str__(self) -> str:
        return self.display


UNKNOWN = Match(label=None, distance=None, votes=0)


@dataclass(frozen=True)
class FaceQuality:
    """Measures a caller can threshold before trusting a face.

    ``size``: longer side of the box in pixels. ``sharpness``: variance of the Laplacian of the
    face aligned to 112x112 grey (so it compares faces of different sizes; an upscaled small
    face scores low, which is wanted). ``frontal``: 1.0 for a face looking at the camera, falling
    towards 0 as it turns or tilts away (from the landmarks; roll is ignored, alignment undoes it).
    """

    size: float
    sharpness: float
    frontal: float


@dataclass(frozen=True)
class Frame:
    """A video frame: its index in the file, its time and the picture (RGB uint8, H x W x 3)."""

    index: int
    time_s: float
    image: np.ndarray = field(compare=False, repr=False)


@dataclass(frozen=True)
class VideoInfo:
    """What a video file says about itself. Width and height are after rotation metadata."""

    width: int
    height: int
    fps: float
    frame_count: int
    duration_s: float
    rotation: int


@dataclass(frozen=True)
class BackboneDefaults:
    """The classify_face parameters a backbone works well with (see embed.BACKBONE_DEFAULTS)."""

    k1: int
    k2: int
    threshold: float
