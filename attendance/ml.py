"""The one bridge from Django settings to recognition objects, each built once per process.

Nothing here loads weights at import time: `migrate` and every management command stay fast, and
the first recognition call (or the worker's warm-up) pays for the load once.
"""

from __future__ import annotations

import threading
from functools import cache

from django.conf import settings

from recognition import (
    BACKBONE_DEFAULTS,
    BackboneDefaults,
    Embedder,
    FaceDetector,
    Recognizer,
    create_embedder,
    resolve_detector_model,
    set_threads,
)
from recognition.liveness import LivenessPolicy, PassiveLiveness

# One lock around construction: two request threads asking for the detector at once must not
# both download or build it. `cache` alone does not prevent that.
_lock = threading.RLock()


def backbone_name() -> str:
    """The configured backbone ("clip" or "dlib"): the key of the vote's calibrated defaults."""
    return str(settings.ROLLCALL_BACKBONE)


def embedder_name() -> str:
    """The embedding space stored with every embedding and index ("dlib:resnet_v1:mirror",
    "clip:ViT-B-32:openai", ...). Finer than the backbone: two CLIP models are two spaces whose
    vectors must never be searched together. Reading it loads no weights."""
    return embedder().name


@cache
def _threads() -> int:
    """Size the recognition libraries' thread pools once per process, before any model runs: left
    alone, each gunicorn worker and Celery child would start one thread per core in each library."""
    count = int(settings.ROLLCALL_INFERENCE_THREADS)
    set_threads(count)
    return count


@cache
def _detector() -> FaceDetector:
    _threads()
    path = settings.ROLLCALL_DETECTOR_MODEL
    if not path.is_file():
        # Fetches from OpenCV Zoo where the machine is online; raises a clear error otherwise.
        path = resolve_detector_model(settings.ROLLCALL_MODEL_DIR)
    return FaceDetector(path)


def detector() -> FaceDetector:
    with _lock:
        return _detector()


@cache
def _embedder() -> Embedder:
    _threads()
    if backbone_name() == "clip":
        return create_embedder(
            "clip",
            model_name=settings.ROLLCALL_CLIP_MODEL,
            pretrained=settings.ROLLCALL_CLIP_PRETRAINED,
            checkpoint=settings.ROLLCALL_CLIP_CHECKPOINT,
            device=settings.ROLLCALL_DEVICE,
        )
    return create_embedder(
        "dlib",
        engine=settings.ROLLCALL_DLIB_ENGINE,
        device=settings.ROLLCALL_DEVICE,
        cache_dir=settings.ROLLCALL_MODEL_DIR,  # dlib's weights converted to torch, once
    )


def embedder() -> Embedder:
    with _lock:
        return _embedder()


@cache
def _recognizer() -> Recognizer:
    return Recognizer(detector(), embedder())


def recognizer() -> Recognizer:
    with _lock:
        return _recognizer()


@cache
def _liveness() -> PassiveLiveness:
    _threads()
    # Fetches both MiniFASNet files from upstream where the machine is online (sha256 checked);
    # raises a clear error naming the folder otherwise. The weights load on the first score.
    return PassiveLiveness.from_dir(settings.ROLLCALL_LIVENESS_MODEL_DIR, device=settings.ROLLCALL_DEVICE)


def liveness() -> PassiveLiveness:
    """The passive liveness scorer (both MiniFASNet models), built once per process."""
    with _lock:
        return _liveness()


_POLICIES = {"off": LivenessPolicy.OFF, "passive": LivenessPolicy.PASSIVE, "challenge": LivenessPolicy.CHALLENGE}


def liveness_policy(*, course_policy: str = "", kiosk: bool) -> LivenessPolicy:
    """The course's own policy, else the site's for the kiosk or for the lecturer's page."""
    name = course_policy or (settings.ROLLCALL_LIVENESS_KIOSK if kiosk else settings.ROLLCALL_LIVENESS_LECTURER)
    return _POLICIES[str(name)]


def recognition_params(
    *, k1: int | None = None, k2: int | None = None, threshold: float | None = None
) -> BackboneDefaults:
    """The vote's parameters: the course's own, else the site's settings, else the backbone's calibration."""
    defaults = BACKBONE_DEFAULTS[backbone_name()]
    k1 = k1 or settings.ROLLCALL_K1 or defaults.k1
    k2 = k2 or settings.ROLLCALL_K2 or defaults.k2
    # A course may set k1 alone; the widening step needs at least one neighbour beyond it.
    k2 = max(k2, k1 + 1)
    if threshold is None:
        threshold = settings.ROLLCALL_THRESHOLD if settings.ROLLCALL_THRESHOLD is not None else defaults.threshold
    return BackboneDefaults(k1=k1, k2=k2, threshold=threshold)


def reset() -> None:
    """Forget every loaded object (tests switch backbones and model paths)."""
    with _lock:
        _threads.cache_clear()
        _detector.cache_clear()
        _embedder.cache_clear()
        _recognizer.cache_clear()
        _liveness.cache_clear()
