"""Judging an enrolment video: which sampled frames give a usable face of one person, and why not.

Pure functions with the thresholds as arguments (`EnrolmentRules`), so the web app's worker, the
`enrol_folder` command, the evaluation and a notebook judge a video alike:

    from recognition import FaceDetector, create_embedder
    from recognition.enrol import EnrolmentRules, select_enrolment_faces

    detector, embedder = FaceDetector("face_detection_yunet_2023mar.onnx"), create_embedder("dlib")
    selection = select_enrolment_faces("me.mp4", detector=detector, embedder=embedder, threshold=0.27)
    selection.vectors          # the embeddings to store, one per kept view
    selection.tally.rejected   # (time, reason) of every sampled frame that was not used

A video that cannot be used raises `EnrolmentRejection` with a `code` (`no_face`, `several_people`,
`too_dark`, `too_blurred`, `face_too_small`, `face_turned`, `too_still`); the app turns the code into
a sentence for the student.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass, field

import cv2
import numpy as np

from .align import face_quality
from .detect import Detector
from .embed import Embedder
from .errors import RecognitionError
from .types import Face, VideoInfo
from .video import iter_frames, probe_video


@dataclass(frozen=True)
class EnrolmentRules:
    """The thresholds of the judgement, each measured on ../shared/faces/videos with YuNet + dlib.

    The talking-head clip passes every one of them in every sampled frame but a few, and each
    rejection was produced on purpose (blurred, darkened, shrunk copies of that clip, the stage
    clip, a still photo) to see where recognition starts to suffer.
    """

    # 4 frames a second sees a slow head turn (left, right) in several poses without embedding
    # near-identical neighbours; 48 frames caps the work for a 30 s upload at 2 s between samples.
    sample_fps: float = 4.0
    max_sampled_frames: int = 48
    # Frames are shrunk to this longer side before detection: a webcam face stays well above the
    # minimum size, and a 4K phone video costs no more than 720p.
    max_frame_side: int = 1280
    # A face whose box's longer side is below 60 px carries too little detail: dlib's embedding of
    # the talking head shrunk to 50 px moved 0.16 from the full-size one (the match threshold is 0.27).
    min_face_size: int = 60
    # Variance of the Laplacian of the face aligned to 112x112 grey. The sharp clip scores 1100-2600;
    # Gaussian blur of sigma 4 brings it to ~75 and moves the embedding by 0.17, sigma 6 to ~30 and
    # 0.25 (about the match threshold). Below 60 a face is too blurred to teach anything.
    min_sharpness: float = 60.0
    # recognition's frontal score: 1 facing the camera, ~0.35 at the "turn slightly" poses the page
    # asks for, 0 in profile. Below 0.3 the head is turned further than we ask and the landmarks
    # behind alignment become unreliable.
    min_frontal: float = 0.3
    # Mean grey level (0-255) of the aligned face crop. The clip darkened to a mean of ~18 was still
    # detected but its faces were the ones that also failed sharpness; below 40 a face is too dark to
    # trust, and a video whose frames average below this is reported as "too dark".
    min_brightness: float = 40.0
    # A second face counts when it is at least a third of the main face's size: a photo on the wall
    # behind the student, or someone across the room, is much smaller and does not.
    second_face_min_ratio: float = 1 / 3
    # A second face in more than 20% of sampled frames (over 1.5 s of an 8 s clip) is someone beside
    # or behind the student, not a passer-by, who crosses the frame in well under a second. The stage
    # clip has a second face in 29% of its frames; the talking head in none.
    max_second_face_fraction: float = 0.2
    # At least 40% of the sampled frames must give a usable face, and at least 5 distinct views
    # survive: fewer, and the gallery is one pose that a later check-in photo may not match.
    min_usable_fraction: float = 0.4
    min_embeddings: int = 5
    # Near duplicates: two aligned crops, shrunk to 32x32 grey and normalised, with a correlation
    # above 0.98 are the same picture again. Successive samples of the talking head correlate at most
    # 0.96; a still photo filmed for a few seconds at >= 0.99 (camera noise only).
    duplicate_correlation: float = 0.98
    # More than this many views add little to a k-NN gallery and slow every search; the kept views
    # are spread evenly over the clip so that every pose is represented.
    max_embeddings: int = 24
    embed_batch_size: int = 8
    # One person: every kept embedding should lie near their medoid. The same person's faces in the
    # talking head lie within 0.25 of it (dlib), the stage clip's different people at 0.45-0.59; 1.5x
    # the match threshold (0.40 for dlib) separates them. Over 20% of views that far away means
    # another person was the main face in a good part of the video.
    same_person_factor: float = 1.5
    max_other_person_fraction: float = 0.2


DEFAULT_RULES = EnrolmentRules()

# Why a sampled frame was not used, and the video-level code each reason leads to when it dominates.
FRAME_REASONS = {
    "small": "face_too_small",
    "dark": "too_dark",
    "blurred": "too_blurred",
    "turned": "face_turned",
    "second_face": "several_people",
}


class EnrolmentRejection(RecognitionError):
    """The video cannot be used for enrolment; `code` says why (see the module docstring)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class View:
    """One usable face from one sampled frame, ready to embed."""

    time_s: float
    crop: np.ndarray
    quality: float
    signature: np.ndarray


@dataclass
class FrameTally:
    """What the sampled frames showed, to explain a rejection."""

    sampled: int = 0
    no_face: int = 0
    second_face: int = 0
    brightness: list[float] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)
    # (time in the video, reason) for every sampled frame that gave no usable face.
    rejected: list[tuple[float, str]] = field(default_factory=list)


@dataclass(frozen=True)
class EnrolmentSelection:
    """The kept views of one person, their embeddings, and what the sampled frames showed."""

    views: list[View]
    vectors: np.ndarray
    tally: FrameTally


# progress(done, total, **counters): frames judged so far, of the expected number of samples.
FrameProgress = Callable[..., None]


def expected_samples(duration_s: float, rules: EnrolmentRules = DEFAULT_RULES) -> int:
    """How many frames `iter_frames` samples from a video this long (for "frame 12 of 32")."""
    return max(1, min(rules.max_sampled_frames, int(duration_s * rules.sample_fps + 1e-6)))


def quality_score(sharpness: float, frontal: float, rules: EnrolmentRules = DEFAULT_RULES) -> float:
    """One number for the admin and for choosing between views: pose matters most; sharpness counts
    up to 10x the blur floor, beyond which a sharper face is no better."""
    return round(frontal * min(1.0, sharpness / (10 * rules.min_sharpness)), 3)


def signature(grey: np.ndarray) -> np.ndarray:
    """A 32x32 normalised thumbnail: the dot product of two is their correlation."""
    small = cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    small -= small.mean()
    return small / (float(np.linalg.norm(small)) + 1e-6)


def frame_view(
    rgb: np.ndarray,
    time_s: float,
    faces: Sequence[Face],
    crop: Callable[[np.ndarray, Face], np.ndarray],
    tally: FrameTally,
    rules: EnrolmentRules = DEFAULT_RULES,
) -> View | None:
    """The frame's usable face, or None (the reason counted in `tally`)."""
    tally.sampled += 1
    view, reason = _judge_frame(rgb, time_s, faces, crop, tally, rules)
    if view is None:
        if reason:
            tally.dropped[reason] += 1
        tally.rejected.append((time_s, reason or "no_face"))
    return view


def _judge_frame(
    rgb: np.ndarray,
    time_s: float,
    faces: Sequence[Face],
    crop: Callable[[np.ndarray, Face], np.ndarray],
    tally: FrameTally,
    rules: EnrolmentRules,
) -> tuple[View | None, str]:
    if not faces:
        tally.no_face += 1
        return None, ""
    ordered = sorted(faces, key=lambda f: f.size, reverse=True)
    main = ordered[0]
    if len(ordered) > 1 and ordered[1].size >= rules.second_face_min_ratio * main.size:
        # Which of two similar faces is the student's cannot be told: the frame is not used.
        tally.second_face += 1
        return None, "second_face"
    if main.size < rules.min_face_size:
        return None, "small"
    face_crop = crop(rgb, main)
    grey = cv2.cvtColor(face_crop, cv2.COLOR_RGB2GRAY)
    if float(grey.mean()) < rules.min_brightness:
        return None, "dark"
    quality = face_quality(rgb, main)
    if quality.sharpness < rules.min_sharpness:
        return None, "blurred"
    if quality.frontal < rules.min_frontal:
        return None, "turned"
    return View(time_s=time_s, crop=face_crop, quality=quality_score(quality.sharpness, quality.frontal, rules),
                signature=signature(grey)), ""


def judge(tally: FrameTally, views: Sequence[View], rules: EnrolmentRules = DEFAULT_RULES) -> None:
    """Reject a video that shows more than one person or too few usable faces, saying why."""
    sampled = max(1, tally.sampled)
    if tally.second_face / sampled > rules.max_second_face_fraction:
        raise EnrolmentRejection("several_people")
    if len(views) >= max(rules.min_embeddings, rules.min_usable_fraction * sampled):
        return
    too_dark = bool(tally.brightness) and float(np.median(tally.brightness)) < rules.min_brightness
    if tally.no_face / sampled >= 0.5:
        raise EnrolmentRejection("too_dark" if too_dark else "no_face")
    if not tally.dropped:
        raise EnrolmentRejection("no_face")
    worst = tally.dropped.most_common(1)[0][0]
    raise EnrolmentRejection(FRAME_REASONS[worst])


def select_views(views: Sequence[View], rules: EnrolmentRules = DEFAULT_RULES) -> list[View]:
    """Drop near-duplicate views, then keep at most `max_embeddings` spread evenly over the clip."""
    kept: list[View] = []
    for view in sorted(views, key=lambda v: -v.quality):
        if all(float(view.signature @ other.signature) <= rules.duplicate_correlation for other in kept):
            kept.append(view)
    kept.sort(key=lambda v: v.time_s)
    if len(kept) > rules.max_embeddings:
        picks = np.linspace(0, len(kept) - 1, rules.max_embeddings).round().astype(int)
        kept = [kept[i] for i in sorted(set(picks.tolist()))]
    return kept


def video_views(
    path: str | os.PathLike[str],
    *,
    detector: Detector,
    crop: Callable[[np.ndarray, Face], np.ndarray],
    info: VideoInfo | None = None,
    rules: EnrolmentRules = DEFAULT_RULES,
    progress: FrameProgress | None = None,
) -> tuple[list[View], FrameTally]:
    """Sample the video, judge every frame and return the distinct usable views (at least
    `min_embeddings`), or raise EnrolmentRejection. `info`: the file's probe_video, when the caller
    has it (a WebM's frames are then not counted again)."""
    if info is None:
        info = probe_video(path)
    total = expected_samples(info.duration_s, rules)
    tally = FrameTally()
    views: list[View] = []
    # Two frames decoded ahead: FFmpeg decodes the next frames on the other core while this one is
    # searched for faces (the detector and decoder both release the GIL).
    frames = iter_frames(path, target_fps=rules.sample_fps, max_frames=rules.max_sampled_frames,
                         max_side=rules.max_frame_side, prefetch=2, info=info)
    with closing(frames):  # an exception from `progress` (a lost claim) stops the decoding thread at once
        for frame in frames:
            tally.brightness.append(float(cv2.cvtColor(frame.image, cv2.COLOR_RGB2GRAY).mean()))
            view = frame_view(frame.image, frame.time_s, detector.detect(frame.image), crop, tally, rules)
            if view is not None:
                views.append(view)
            if progress is not None:
                progress(min(tally.sampled, total), total, frames_read=tally.sampled,
                         faces_found=tally.sampled - tally.no_face, usable_faces=len(views))
    judge(tally, views, rules)
    kept = select_views(views, rules)
    if len(kept) < rules.min_embeddings:
        raise EnrolmentRejection("too_still")
    return kept, tally


def embed_views(
    views: Sequence[View],
    embedder: Embedder,
    *,
    rules: EnrolmentRules = DEFAULT_RULES,
    progress: FrameProgress | None = None,
) -> np.ndarray:
    """Embed the views' crops in batches; progress(done, total) after each batch."""
    total = len(views)
    chunks = []
    for start in range(0, total, rules.embed_batch_size):
        chunks.append(embedder.encode([v.crop for v in views[start : start + rules.embed_batch_size]]))
        if progress is not None:
            progress(min(start + rules.embed_batch_size, total), total)
    if not chunks:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32)


def one_person(
    views: Sequence[View], vectors: np.ndarray, *, threshold: float, rules: EnrolmentRules = DEFAULT_RULES
) -> tuple[list[View], np.ndarray]:
    """Check that the kept faces are one person's: far-away views are dropped, too many rejected.
    `threshold` is the backbone's match distance."""
    if len(vectors) < 2:
        return list(views), vectors
    distances = np.linalg.norm(vectors[:, None, :] - vectors[None, :, :], axis=2)
    medoid = int(distances.sum(axis=1).argmin())
    near = distances[medoid] <= rules.same_person_factor * threshold
    if 1.0 - near.mean() > rules.max_other_person_fraction:
        raise EnrolmentRejection("several_people")
    keep = [i for i in range(len(views)) if near[i]]
    if len(keep) < rules.min_embeddings:
        raise EnrolmentRejection("several_people")
    return [views[i] for i in keep], vectors[keep]


def select_enrolment_faces(
    path: str | os.PathLike[str],
    *,
    detector: Detector,
    embedder: Embedder,
    threshold: float,
    rules: EnrolmentRules = DEFAULT_RULES,
) -> EnrolmentSelection:
    """The whole judgement of one video, for scripts and notebooks: sample, judge, embed, one person."""
    views, tally = video_views(path, detector=detector, crop=embedder.crop, rules=rules)
    vectors = embed_views(views, embedder, rules=rules)
    views, vectors = one_person(views, vectors, threshold=threshold, rules=rules)
    return EnrolmentSelection(views=views, vectors=vectors, tally=tally)
