"""Which backbone and which detector can run here, decided without loading a model.

"auto" takes the paper's CLIP where its weights are on this machine (a checkpoint file, or the
pretrained tag's weights in open_clip's cache) and otherwise dlib's face ResNet, whose weights ship
in the face-recognition-models package. The detector likewise: YuNet where its file is in place or
can be downloaded (sha256 checked), else dlib's HOG detector with its 5-point shape predictor.

"Can be downloaded" counts for the detector (227 KiB, fetched now) but not for CLIP: every process
decides for itself, and one that reached the hub while another did not would embed into another
space. CLIP weights are fetched once, before the processes start (``manage.py fetch_models``), and
from then on every process finds them in the cache.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .detect import YUNET_FILENAME, resolve_detector_model
from .errors import ModelUnavailableError
from .weights import cached_clip_weights

BACKBONE_CHOICES = ("auto", "clip", "dlib")
DETECTOR_CHOICES = ("auto", "yunet", "dlib")


@dataclass(frozen=True)
class Choice:
    """``name``: what runs ("clip", "dlib", "yunet"). ``reason``: why, in one clause for the
    operator's log. ``path``: the model file it runs from, where there is one to name."""

    name: str
    reason: str
    path: Path | None = None


def clip_weights_here(
    *, model_name: str, pretrained: str | None, checkpoint: str | os.PathLike[str] | None, cache_dir: str | None = None,
    tower_dir: str | os.PathLike[str] | None = None,
) -> Choice | None:
    """Where CLIP's weights would load from on this machine, without touching the network; None
    when they are not here. A pretrained tag's image tower already converted into ``tower_dir``
    (see clip_convert) answers without importing open_clip, which a worker otherwise never does."""
    if checkpoint:
        path = Path(checkpoint)
        return Choice("clip", f"checkpoint {path}", path) if path.is_file() else None
    if not pretrained:
        return None
    if tower_dir is not None:
        from .clip_convert import cache_paths

        weights, meta = cache_paths(tower_dir, model_name, pretrained)
        if weights.is_file() and meta.is_file():  # its checksum is checked when it loads
            return Choice("clip", f"{model_name}/{pretrained} image tower converted in {Path(tower_dir)}", weights)
    import open_clip

    tag = open_clip.get_pretrained_cfg(model_name, pretrained)
    found = cached_clip_weights(tag, cache_dir) if tag else None
    return Choice("clip", f"{model_name}/{pretrained} weights in the cache", found) if found else None


def choose_backbone(
    requested: str,
    *,
    model_name: str,
    pretrained: str | None,
    checkpoint: str | os.PathLike[str] | None,
    cache_dir: str | None = None,
    tower_dir: str | os.PathLike[str] | None = None,
) -> Choice:
    """The backbone to run for a setting of "auto", "clip" or "dlib"."""
    if requested not in BACKBONE_CHOICES:
        raise ValueError(f"backbone must be one of {', '.join(BACKBONE_CHOICES)}, not {requested!r}")
    if requested == "dlib":
        return Choice("dlib", "ROLLCALL_BACKBONE=dlib")
    if requested == "clip":
        return Choice("clip", "ROLLCALL_BACKBONE=clip")
    here = clip_weights_here(model_name=model_name, pretrained=pretrained, checkpoint=checkpoint, cache_dir=cache_dir,
                             tower_dir=tower_dir)
    if here is not None:
        return Choice("clip", f"auto: {here.reason}", here.path)
    missing = f"checkpoint {checkpoint} missing" if checkpoint else f"no {model_name}/{pretrained} CLIP weights cached"
    return Choice("dlib", f"auto: {missing}; dlib's weights ship in face-recognition-models")


def choose_detector(
    requested: str, *, model_path: str | os.PathLike[str], model_dir: str | os.PathLike[str], download: bool = True
) -> Choice:
    """The detector to run for a setting of "auto", "yunet" or "dlib". "yunet" raises
    ModelUnavailableError when its file cannot be had; "auto" then falls back to dlib's."""
    from . import detect_dlib

    if requested not in DETECTOR_CHOICES:
        raise ValueError(f"detector must be one of {', '.join(DETECTOR_CHOICES)}, not {requested!r}")
    if requested == "dlib":
        return Choice("dlib", "ROLLCALL_DETECTOR=dlib", detect_dlib.shape_predictor_path())
    configured = Path(model_path)
    if configured.is_file():
        return Choice("yunet", f"model file {configured}", configured)
    try:
        path = resolve_detector_model(model_dir, download=download)
    except ModelUnavailableError as exc:
        if requested == "yunet" or not detect_dlib.available():
            raise
        return Choice(
            "dlib",
            f"auto: no {YUNET_FILENAME} here and it could not be downloaded ({_first_clause(exc)})",
            detect_dlib.shape_predictor_path(),
        )
    return Choice("yunet", f"model file {path} (sha256 checked)", path)


def _first_clause(exc: Exception) -> str:
    text = str(exc)
    return text.split(". ")[0].rstrip(".")
