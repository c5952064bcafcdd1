"""The "Unknown" threshold a gallery can afford, estimated from the gallery alone.

A fixed threshold per backbone cannot suit every gallery: the more people enrolled, the more
chances a stranger has to fall near one of them. ``calibrate_threshold`` picks, for one gallery
(a course's enrolled embeddings), the largest threshold whose estimated chance of accepting a
stranger stays under a target, clamped to a range per backbone that has been measured to be safe.

How a stranger is accepted. In ``classify_face`` the neighbours within the threshold are a prefix
of the distance-sorted list, and any non-empty prefix elects somebody (a tie among the first
``k1`` widens to ``k2``, where ties go to the nearest). So a probe is given a name exactly when
its nearest gallery embedding is within the threshold, whatever k1 and k2 are: the vote decides
*which* name, never *whether*. A stranger is therefore accepted by a gallery when one of their
faces comes within the threshold of one embedding of some enrolled person.

The model. Two different enrolled people are each other's strangers. For every pair (i, j) the
pair minimum ``m_ij``, the least distance between an embedding of i and one of j, is a sample of
"how close a stranger comes to one enrolled person" (over as many faces as an enrolled person
has embeddings). The ``n (n - 1) / 2`` pair minima are fitted with a normal distribution in
L2 distance, ``p(t) = Phi((t - mu) / sigma)`` is the chance that a stranger comes within ``t`` of
one given person, and with the people taken as independent a stranger facing a gallery of ``N``
people is accepted with ``FAR_N(t) = 1 - (1 - p(t)) ** N``. The threshold is the ``t`` where
``FAR_N(t)`` equals the target, in closed form: ``mu + sigma * Phi^-1(1 - (1 - target) ** (1/N))``,
which falls as ``N`` grows. This is a per-person rate (a stranger accepted at least once); the
per-snapshot rate that an evaluation counts is lower, and attendance needs several snapshots to
agree besides.

Why pair minima and a normal. Pairs of people, not pairs of pictures, are the independent units:
one lookalike pair gives many close pictures. Leave-one-person-out (each person as a stranger to
the rest) gives the row minima of the same pair matrix, so it holds no more information, and a
target of 0.1% is far beyond what ``n`` such samples can show empirically: the tail must be
modelled. On ../shared/faces with dlib (17 people, 136 pairs) the lowest five pair minima lie
within 0.02 of a normal's expected order statistics; the same normal fitted to cosine
similarities instead predicts a far heavier tail (a threshold of 0.15, where a third of genuine
probes would be rejected), so the choice of scale matters at the extrapolated tail.

Limits, measured where this data allows:
- Small galleries say little. The pair minima share people, so the effective sample is about
  the number of people. A 17-person dlib gallery's threshold moves between 0.24 and 0.32 (90%
  of bootstrap resamples of its people). Below ``min_people`` people the backbone default is
  used; the clamp bounds the rest.
- A lookalike no enrolled pair resembles cannot be foreseen: on ../shared/faces one stranger
  (unknown/yale_subject14) comes within 0.279 of an enrolled person while no two enrolled people
  come closer than 0.34. The whole people/ gallery calibrates to 0.275 and rejects all 33
  stranger photos; the evaluation's half of it (0.36 its closest pair) to 0.295, which lets one
  of them in. Each of its 17 enrolled people held out in turn is accepted by none of the other
  16's galleries at their calibrated thresholds (0.285-0.310; the evaluation reports this): 1
  stranger of 20, the lookalike: at a true rate of 0.1% one of 20 strangers or more is let in 2
  times in 100, so this data is some evidence that the normal tail is too light for lookalikes.
- The genuine pass rate is estimated from each embedding's nearest other embedding of the same
  person. Those are frames of one enrolment (one video, one session), so it is optimistic: a
  probe from another day is farther from its gallery.
- Pair minima shrink as people have more embeddings; the model assumes a stranger shows about as
  many faces as an enrolled person has embeddings.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any, Literal

import numpy as np

from .embed import BACKBONE_DEFAULTS
from .types import Label

DEFAULT_TARGET_FAR = 0.001
"""Chance that a stranger is accepted (at least once) by the gallery."""

MIN_PEOPLE = 5
"""Fewer enrolled people than this (fewer than 10 pairs) and the backbone default is used."""

SAMPLE_PEOPLE = 200
"""The pair minima of a larger gallery are read from this many of its people (19,900 pairs): their
cost grows with the square of the gallery's embeddings (a 2,000-student course, 48,000 embeddings,
would take seconds at every enrolment), while the fit's precision grows with the number of people.
The gallery's full size still sets how many chances a stranger has. The people are chosen by a hash
of their label, so one more enrolment changes the sample by at most one person."""

SAFE_THRESHOLDS: dict[str, tuple[float, float]] = {
    # dlib: at 0.24 leave-one-out identification on ../shared/faces is still 90% (97.8% at the
    # default 0.27), and 0.34 is the largest threshold a measured set supports (59 held-out people,
    # no stranger accepted; issue 20). dlib's customary 0.6 (0.43 on unit vectors) accepts 64% of
    # unknown/ as somebody enrolled.
    "dlib": (0.24, 0.34),
    # CLIP: not measured here (no pretrained weights on the test machines): a band of +-0.05
    # around the paper's grid point, so that a calibration cannot take CLIP far from where the
    # paper measured it.
    "clip": (0.77, 0.87),
}

Source = Literal["calibrated", "default"]
_NORMAL = NormalDist()
_CHUNK_ROWS = 1024  # rows of the distance matrix at a time: 1024 x 10k float32 is 40 MB


@dataclass(frozen=True)
class ImpostorFit:
    """The normal fitted to a gallery's pair minima (L2 distances), and what it implies."""

    mu: float
    sigma: float
    people: int
    pairs: int

    def person_accept(self, threshold: float) -> float:
        """Chance that a stranger comes within ``threshold`` of one given enrolled person."""
        if self.sigma <= 0:
            return 1.0 if threshold >= self.mu else 0.0
        return _NORMAL.cdf((threshold - self.mu) / self.sigma)

    def far(self, threshold: float, people: int | None = None) -> float:
        """Chance that a stranger is accepted by a gallery of ``people`` (default: this one's)."""
        n = self.people if people is None else people
        return -math.expm1(n * math.log1p(-min(self.person_accept(threshold), 1.0 - 1e-16)))

    def threshold_for(self, target_far: float, people: int | None = None) -> float:
        """The threshold where ``far`` equals ``target_far`` (the largest that meets it)."""
        n = self.people if people is None else people
        per_person = max(-math.expm1(math.log1p(-target_far) / n), 1e-300)
        if self.sigma <= 0:
            return self.mu
        return self.mu + self.sigma * _NORMAL.inv_cdf(per_person)


@dataclass(frozen=True)
class GalleryDistances:
    """What the calibration reads from a gallery: the people, their pair minima and each
    embedding's nearest other embedding of the same person."""

    people: tuple[Label, ...]
    pair_minima: np.ndarray  # (n (n - 1) / 2,) float64, the upper triangle of the pair matrix
    genuine_nearest: np.ndarray  # (embeddings of people with two or more,) float64
    genuine_people: np.ndarray  # (len(genuine_nearest),) int: whose embedding, an index into people

    @property
    def pairs(self) -> int:
        return len(self.pair_minima)

    def without(self, label: Label) -> GalleryDistances:
        """These distances as if ``label`` had never enrolled: what a gallery without them would
        give, without reading the embeddings again (a leave-one-person-out in O(pairs))."""
        if label not in self.people:
            raise ValueError(f"{label!r} is not one of this gallery's people")
        gone = self.people.index(label)
        rows, columns = np.triu_indices(len(self.people), 1)
        keep = self.genuine_people != gone
        people_after = self.genuine_people[keep]
        return GalleryDistances(
            people=self.people[:gone] + self.people[gone + 1:],
            pair_minima=self.pair_minima[(rows != gone) & (columns != gone)],  # row-major order is kept
            genuine_nearest=self.genuine_nearest[keep],
            genuine_people=people_after - (people_after > gone),
        )

    def fit(self) -> ImpostorFit:
        if self.pairs < 2:
            raise ValueError(f"a fit needs at least two pairs of people, got {self.pairs}")
        return ImpostorFit(
            mu=float(self.pair_minima.mean()),
            sigma=float(self.pair_minima.std(ddof=1)),
            people=len(self.people),
            pairs=self.pairs,
        )

    def genuine_pass_rate(self, threshold: float) -> float | None:
        if not len(self.genuine_nearest):
            return None
        return float((self.genuine_nearest <= threshold).mean())


@dataclass(frozen=True)
class Calibration:
    """A gallery's threshold and where it came from.

    ``estimated_far``: the model's chance that a stranger is accepted at ``threshold`` (None for
    the default, where the gallery is too small to say). ``genuine_pass_rate``: share of enrolled
    embeddings within ``threshold`` of another of the same person (optimistic, see the module).
    ``fitted_threshold``: the model's threshold before the clamp (None for the default).
    """

    threshold: float
    source: Source
    n_people: int
    n_impostor_pairs: int
    estimated_far: float | None
    genuine_pass_rate: float | None
    target_far: float
    fitted_threshold: float | None = None
    min_people: int = MIN_PEOPLE

    def describe(self) -> str:
        """For a page: "calibrated from 17 people" or "backbone default (3 people, fewer than 5)"."""
        if self.source == "calibrated":
            clamped = "" if self.fitted_threshold == self.threshold else f", clamped from {self.fitted_threshold:.3f}"
            return f"calibrated from {self.n_people} people{clamped}"
        return f"backbone default ({self.n_people} people, fewer than the {self.min_people} needed)"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def gallery_distances(vectors: np.ndarray, labels: Sequence[Label] | np.ndarray) -> GalleryDistances:
    """Pair minima and genuine nearest distances of a gallery of unit vectors, one label each.

    Memory grows with the rows of one chunk times the gallery, not with the gallery squared."""
    matrix = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    label_array = np.asarray(labels)
    if matrix.ndim != 2 or len(matrix) != len(label_array):
        raise ValueError(f"need (n, dim) vectors and n labels, got {matrix.shape} and {len(label_array)}")
    if not np.isfinite(matrix).all():
        raise ValueError("vectors must be finite: leave out samples without a face")
    if not len(matrix):  # a course nobody has enrolled in yet
        empty = np.zeros(0, dtype=np.float64)
        return GalleryDistances(people=(), pair_minima=empty, genuine_nearest=empty,
                                genuine_people=np.zeros(0, dtype=np.int64))
    people, person_of = np.unique(label_array, return_inverse=True)
    order = np.argsort(person_of, kind="stable")
    matrix, person_of = matrix[order], person_of[order]
    starts = np.flatnonzero(np.r_[True, person_of[1:] != person_of[:-1]])
    # Cosine similarities, largest first (for unit vectors d^2 = 2 - 2 s): one matrix product and
    # one reduction per chunk, no elementwise pass. The pair matrix is symmetric, so a chunk of rows
    # is compared only with the people from its first row's person on (about half the work); its
    # own person's block gives the genuine nearest.
    nearest = np.full((len(matrix), len(people)), -np.inf, dtype=np.float32)  # row's best s to each person
    for begin in range(0, len(matrix), _CHUNK_ROWS):
        rows = slice(begin, min(begin + _CHUNK_ROWS, len(matrix)))
        first = int(person_of[begin])
        column0 = int(starts[first])
        similar = matrix[rows] @ matrix[column0:].T
        similar[np.arange(similar.shape[0]), np.arange(rows.start, rows.stop) - column0] = -np.inf  # not itself
        nearest[rows, first:] = np.maximum.reduceat(similar, starts[first:] - column0, axis=1)
    pair_matrix = np.maximum.reduceat(nearest, starts, axis=0)  # (people, people), valid above the diagonal
    upper = np.triu_indices(len(people), 1)
    genuine = nearest[np.arange(len(matrix)), person_of]
    has_pair = np.isfinite(genuine)
    return GalleryDistances(
        people=tuple(people.tolist()),
        pair_minima=distance_from_similarity(pair_matrix[upper].astype(np.float64)),
        genuine_nearest=distance_from_similarity(genuine[has_pair].astype(np.float64)),
        genuine_people=person_of[has_pair].astype(np.int64),
    )


def distance_from_similarity(similarity: np.ndarray) -> np.ndarray:
    """L2 distances of unit vectors from their cosine similarities (d^2 = 2 - 2 s)."""
    return np.sqrt(np.maximum(2.0 - 2.0 * similarity, 0.0))


def calibrate_threshold(
    vectors: np.ndarray,
    labels: Sequence[Label] | np.ndarray,
    *,
    backbone: str,
    target_far: float = DEFAULT_TARGET_FAR,
    min_people: int = MIN_PEOPLE,
    sample_people: int = SAMPLE_PEOPLE,
) -> Calibration:
    """The largest threshold whose estimated chance that a stranger is accepted by this gallery
    stays under ``target_far``, clamped to ``SAFE_THRESHOLDS[backbone]``; the backbone default
    when the gallery has fewer than ``min_people`` people. ``vectors`` are the gallery's unit
    embeddings (rows) and ``labels`` each one's person; the pair minima are read from at most
    ``sample_people`` of them (SAMPLE_PEOPLE says why)."""
    _check(backbone, target_far, min_people)
    label_array = np.asarray(labels)
    people = np.unique(label_array)
    if len(people) > sample_people:
        chosen = sorted(people.tolist(), key=lambda label: hashlib.blake2b(str(label).encode()).digest())
        keep = np.isin(label_array, np.asarray(chosen[:sample_people], dtype=label_array.dtype))
        distances = gallery_distances(np.asarray(vectors)[keep], label_array[keep])
    else:
        distances = gallery_distances(vectors, label_array)
    return calibrate_distances(distances, backbone=backbone, target_far=target_far, min_people=min_people,
                               gallery_people=len(people))


def calibrate_distances(
    distances: GalleryDistances,
    *,
    backbone: str,
    target_far: float = DEFAULT_TARGET_FAR,
    min_people: int = MIN_PEOPLE,
    gallery_people: int | None = None,
) -> Calibration:
    """calibrate_threshold from a gallery's distances already read (gallery_distances);
    ``gallery_people``: the gallery's size when the distances are of a sample of its people."""
    _check(backbone, target_far, min_people)
    n_people = len(distances.people) if gallery_people is None else gallery_people
    if n_people < min_people:
        default = BACKBONE_DEFAULTS[backbone].threshold
        return Calibration(
            threshold=default,
            source="default",
            n_people=n_people,
            n_impostor_pairs=distances.pairs,
            estimated_far=None,
            genuine_pass_rate=distances.genuine_pass_rate(default),
            target_far=target_far,
            min_people=min_people,
        )
    fit = distances.fit()
    fitted = _floor4(fit.threshold_for(target_far, people=n_people))
    low, high = SAFE_THRESHOLDS[backbone]
    threshold = min(max(fitted, low), high)
    return Calibration(
        threshold=threshold,
        source="calibrated",
        n_people=n_people,
        n_impostor_pairs=distances.pairs,
        estimated_far=fit.far(threshold, people=n_people),
        genuine_pass_rate=distances.genuine_pass_rate(threshold),
        target_far=target_far,
        fitted_threshold=fitted,
        min_people=min_people,
    )


def _check(backbone: str, target_far: float, min_people: int) -> None:
    if backbone not in BACKBONE_DEFAULTS or backbone not in SAFE_THRESHOLDS:
        raise ValueError(f"unknown backbone {backbone!r}: choose from {', '.join(SAFE_THRESHOLDS)}")
    if not 0.0 < target_far < 1.0:
        raise ValueError(f"the target false-accept rate must be between 0 and 1 (exclusive), got {target_far}")
    if min_people < 3:
        raise ValueError(f"min_people must be at least 3 (two pairs of people to fit), got {min_people}")


def _floor4(value: float) -> float:
    # Down, not to the nearest: rounding up could cross the target.
    return math.floor(value * 10_000) / 10_000
