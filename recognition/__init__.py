"""Rollcall's face recognition: detection, alignment, embeddings, index, the paper's vote, liveness.

Plain Python (numpy, OpenCV, open_clip, dlib, faiss); no Django, Celery or settings, so it runs
from a script or a notebook. Models load lazily, on first use.
"""

from .align import align_face, face_quality, frontal_score
from .calibrate import Calibration, calibrate_threshold
from .classify import UNKNOWN, assign_unique, candidate_matches, classify_face
from .detect import YUNET_SHA256, YUNET_URL, FaceDetector, resolve_detector_model
from .embed import BACKBONE_DEFAULTS, ClipEmbedder, DlibEmbedder, Embedder, create_embedder
from .errors import (
    EmptyVideoError,
    ImageError,
    IndexFormatError,
    ModelUnavailableError,
    NotAVideoError,
    RecognitionError,
    VideoError,
    VideoTooLargeError,
    VideoTooLongError,
    VideoTruncatedError,
)
from .image import load_image
from .index import FORMAT_VERSION, FaceIndex
from .liveness import (
    PASSIVE_THRESHOLD,
    Challenge,
    ChallengeResult,
    LivenessDecision,
    LivenessPolicy,
    Observation,
    PassiveLiveness,
    decide_liveness,
    head_yaw,
    is_frozen,
    judge_challenge,
    new_challenge,
    passive_passes,
    resolve_antispoof_models,
)
from .pipeline import Gallery, Recognizer
from .runtime import set_threads
from .types import (
    BackboneDefaults,
    Face,
    FaceQuality,
    Frame,
    Label,
    Match,
    Neighbour,
    VideoInfo,
)
from .video import iter_frames, probe_video, read_frames

__all__ = [
    "BACKBONE_DEFAULTS",
    "FORMAT_VERSION",
    "PASSIVE_THRESHOLD",
    "UNKNOWN",
    "YUNET_SHA256",
    "YUNET_URL",
    "BackboneDefaults",
    "Calibration",
    "Challenge",
    "ChallengeResult",
    "ClipEmbedder",
    "DlibEmbedder",
    "Embedder",
    "EmptyVideoError",
    "Face",
    "FaceDetector",
    "FaceIndex",
    "FaceQuality",
    "Frame",
    "Gallery",
    "ImageError",
    "IndexFormatError",
    "Label",
    "LivenessDecision",
    "LivenessPolicy",
    "Match",
    "ModelUnavailableError",
    "Neighbour",
    "NotAVideoError",
    "Observation",
    "PassiveLiveness",
    "RecognitionError",
    "Recognizer",
    "VideoError",
    "VideoInfo",
    "VideoTooLargeError",
    "VideoTooLongError",
    "VideoTruncatedError",
    "align_face",
    "assign_unique",
    "calibrate_threshold",
    "candidate_matches",
    "classify_face",
    "create_embedder",
    "decide_liveness",
    "face_quality",
    "frontal_score",
    "head_yaw",
    "is_frozen",
    "iter_frames",
    "judge_challenge",
    "load_image",
    "new_challenge",
    "passive_passes",
    "probe_video",
    "read_frames",
    "resolve_antispoof_models",
    "resolve_detector_model",
    "set_threads",
]
