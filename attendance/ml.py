"""The one bridge from Django settings to recognition objects, each built once per process.

Nothing here loads weights at import time: `migrate` and every management command stay fast, and
the first recognition call (or the worker's warm-up) pays for the load once.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils.translation import gettext

from recognition import (
    BACKBONE_DEFAULTS,
    BackboneDefaults,
    Embedder,
    FaceDetector,
    ModelUnavailableError,
    Recognizer,
    create_embedder,
    set_threads,
)
from recognition.choice import Choice, choose_backbone, choose_detector
from recognition.detect import Detector
from recognition.detect_dlib import DlibFaceDetector
from recognition.liveness import LivenessPolicy, PassiveLiveness

if TYPE_CHECKING:
    from attendance.models import EmbeddingSpace

logger = logging.getLogger(__name__)

# One lock around construction: two request threads asking for the detector at once must not
# both download or build it. `cache` alone does not prevent that.
_lock = threading.RLock()


@cache
def _backbone_choice() -> Choice:
    return choose_backbone(
        str(settings.ROLLCALL_BACKBONE),
        model_name=settings.ROLLCALL_CLIP_MODEL,
        pretrained=settings.ROLLCALL_CLIP_PRETRAINED,
        checkpoint=settings.ROLLCALL_CLIP_CHECKPOINT,
        tower_dir=settings.ROLLCALL_MODEL_DIR,  # a converted tower answers without importing open_clip
    )


def backbone_choice() -> Choice:
    """The backbone this process runs and why (ROLLCALL_BACKBONE resolved; "auto" looks for CLIP's
    weights on this machine and takes dlib's otherwise). Decided once per process; loads nothing."""
    with _lock:
        return _backbone_choice()


def backbone_name() -> str:
    """The backbone that runs ("clip" or "dlib"), the recorded space's: the key of the vote's
    calibrated defaults."""
    return served_spec().backbone


@cache
def _detector_choice() -> Choice:
    return choose_detector(
        str(settings.ROLLCALL_DETECTOR),
        model_path=settings.ROLLCALL_DETECTOR_MODEL,
        model_dir=settings.ROLLCALL_MODEL_DIR,
    )


def detector_choice() -> Choice:
    """The face detector this process runs and why ("auto": YuNet where its file is here or can be
    downloaded, else dlib's, which ships installed). Raises ModelUnavailableError for "yunet"
    without its file."""
    with _lock:
        return _detector_choice()


def summary() -> str:
    """One line for the operator: what runs and why (./rollcall up prints it at start)."""
    backbone, detector = backbone_choice(), detector_choice()
    names = {"clip": f"CLIP {settings.ROLLCALL_CLIP_MODEL}", "dlib": "dlib's face ResNet"}
    detectors = {"yunet": "the YuNet detector", "dlib": "dlib's HOG detector with 5-point landmarks"}
    return (
        f"Recognition runs {names[backbone.name]} ({backbone.reason}) with {detectors[detector.name]} "
        f"({detector.reason})."
    )


def embedder_name() -> str:
    """The embedding space stored with every embedding and index ("dlib:resnet_v1:mirror",
    "clip:ViT-B-32:openai", ...). Finer than the backbone: two CLIP models are two spaces whose
    vectors must never be searched together. Reading it loads no weights."""
    return embedder().name


@dataclass(frozen=True)
class SpaceSpec:
    """What it takes to build an embedder of one space (the dlib engine is not part of it: both
    engines give the same space)."""

    backbone: str
    clip_model: str = ""
    clip_pretrained: str = ""
    clip_checkpoint: str = ""


def configured_spec() -> SpaceSpec:
    """The space the settings (and, with "auto", this machine) ask for."""
    if backbone_choice().name == "clip":
        return SpaceSpec(
            "clip",
            clip_model=str(settings.ROLLCALL_CLIP_MODEL),
            clip_pretrained="" if settings.ROLLCALL_CLIP_CHECKPOINT else str(settings.ROLLCALL_CLIP_PRETRAINED or ""),
            clip_checkpoint=str(settings.ROLLCALL_CLIP_CHECKPOINT or ""),
        )
    return SpaceSpec("dlib")


def spec_of(space: EmbeddingSpace) -> SpaceSpec:
    checkpoint = space.clip_checkpoint
    configured = str(settings.ROLLCALL_CLIP_CHECKPOINT or "")
    if space.backbone == "clip" and configured and Path(configured).name == Path(checkpoint or "x").name:
        checkpoint = configured  # the same file, moved: the space's name is the file's name
    return SpaceSpec(space.backbone, space.clip_model, space.clip_pretrained, checkpoint)


_SPACE_TTL_S = 5.0
_space_seen: list[tuple[float, SpaceSpec | None]] = []


def served_spec() -> SpaceSpec:
    """The recorded (active) space where there is one, else the configured. Read from the database
    at most every few seconds: another process's switch (manage.py reembed) is seen within that."""
    from attendance.spaces.selectors import active_space

    now = time.monotonic()
    if _space_seen and now - _space_seen[0][0] < _SPACE_TTL_S:
        recorded = _space_seen[0][1]
    else:
        space = active_space()
        recorded = spec_of(space) if space is not None else None
        _space_seen[:] = [(now, recorded)]
    return recorded if recorded is not None else configured_spec()


def forget_space() -> None:
    """Read the recorded space again at the next call (after recording or switching it)."""
    _space_seen.clear()


@cache
def _threads() -> int:
    """Size the recognition libraries' thread pools once per process, before any model runs: left
    alone, each gunicorn worker and Celery child would start one thread per core in each library."""
    count = int(settings.ROLLCALL_INFERENCE_THREADS)
    set_threads(count)
    return count


@cache
def _detector() -> Detector:
    _threads()
    # YuNet's file, fetched from OpenCV Zoo where the machine is online, else dlib's detector.
    choice = _detector_choice()
    if choice.name == "dlib":
        return DlibFaceDetector()
    assert choice.path is not None
    return FaceDetector(choice.path)


def detector() -> Detector:
    with _lock:
        return _detector()


@cache
def _embedder_for(spec: SpaceSpec) -> Embedder:
    _threads()
    if spec.backbone == "clip":
        return create_embedder(
            "clip",
            model_name=spec.clip_model,
            pretrained=spec.clip_pretrained or None,
            checkpoint=spec.clip_checkpoint or None,
            device=settings.ROLLCALL_DEVICE,
            tower_dir=settings.ROLLCALL_MODEL_DIR,  # the image tower converted from open_clip, once
        )
    return create_embedder(
        "dlib",
        engine=settings.ROLLCALL_DLIB_ENGINE,
        device=settings.ROLLCALL_DEVICE,
        cache_dir=settings.ROLLCALL_MODEL_DIR,  # dlib's weights converted to torch, once
    )


def embedder() -> Embedder:
    """The embedder of the space the site serves (the recorded one, see served_spec)."""
    spec = served_spec()
    with _lock:
        return _embedder_for(spec)


def configured_embedder() -> Embedder:
    """The embedder the settings ask for: what `manage.py reembed` switches to."""
    spec = configured_spec()
    with _lock:
        return _embedder_for(spec)


def space_mismatch() -> str | None:
    """None when the settings ask for the recorded space; otherwise what the admin should know."""
    from attendance.spaces.selectors import active_space

    recorded = active_space()
    wanted = configured_embedder().name
    if recorded is None or recorded.name == wanted:
        return None
    return gettext(
        "The settings ask for %(wanted)s, but the site's faces are stored in %(recorded)s, which it keeps "
        "serving. To switch, run `manage.py reembed` (it re-embeds kept enrolment videos and asks the other "
        "students to enrol again); to stay, set the settings back to %(backbone)s."
    ) % {"wanted": wanted, "recorded": recorded.name, "backbone": recorded.backbone}


@cache
def _recognizer_for(spec: SpaceSpec) -> Recognizer:
    return Recognizer(detector(), _embedder_for(spec))


def recognizer() -> Recognizer:
    """Detector and embedder of the served space, as one object: a check-in embeds and searches
    with the space of this one object, even if a switch lands while it runs."""
    spec = served_spec()
    with _lock:
        return _recognizer_for(spec)


@cache
def _liveness() -> PassiveLiveness:
    _threads()
    # Fetches both MiniFASNet files from upstream where the machine is online (sha256 checked);
    # raises a clear error naming the folder otherwise. The weights load on the first score.
    return PassiveLiveness.from_dir(settings.ROLLCALL_LIVENESS_MODEL_DIR, device=settings.ROLLCALL_DEVICE,
                                    cache_dir=settings.ROLLCALL_MODEL_DIR)


def liveness() -> PassiveLiveness:
    """The passive liveness scorer (both MiniFASNet models), built once per process."""
    with _lock:
        return _liveness()


def models_problem() -> str | None:
    """None when the served space's embedder and the detector load here; otherwise why not, in
    the operator's words (setting, path, checksum, URL)."""
    try:
        detector()
        model = embedder()
        load = getattr(model, "load", None)
        if callable(load):
            load()
    except ModelUnavailableError as exc:
        return str(exc)
    return None


_LIVENESS_RETRY_S = 60.0
_liveness_failure: list[tuple[float, str]] = []  # (when, why): the last failed attempt to load


def liveness_problem() -> str | None:
    """None when the passive liveness models are loaded (or load now); otherwise why not, in the
    operator's words. A failure is remembered for a minute: each check-in must not wait for a
    download that just failed, and weights copied into place are found within that minute."""
    try:
        with _lock:
            if _liveness_failure and time.monotonic() - _liveness_failure[0][0] < _LIVENESS_RETRY_S:
                return _liveness_failure[0][1]
            scorer = _liveness()
        # Outside the module's lock: a first load may export the models for OpenCV (seconds), and
        # the recognizer and the health check must not wait for it. The scorer has its own lock.
        scorer.load()
    except ModelUnavailableError as exc:
        with _lock:
            if not _liveness_failure:
                logger.error("liveness checks are off until their models load: %s", exc)
            _liveness_failure[:] = [(time.monotonic(), str(exc))]
        return str(exc)
    with _lock:
        _liveness_failure.clear()
    return None


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
        _backbone_choice.cache_clear()
        _detector_choice.cache_clear()
        _detector.cache_clear()
        _embedder_for.cache_clear()
        _recognizer_for.cache_clear()
        _space_seen.clear()
        _liveness.cache_clear()
        _liveness_failure.clear()
