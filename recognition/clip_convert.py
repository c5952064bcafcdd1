"""CLIP's image tower converted once, by open_clip in a child process, and cached with a checksum.

A worker that embeds with CLIP runs ``recognition.clip_tower`` and never imports open_clip (see that
module for why). open_clip is still what knows a pretrained tag: where its weights are, which
activation and normalisation it implies, which of its many checkpoint formats a file is in. So the
first load of a (model, pretrained) pair runs ``python -m recognition.clip_convert`` in a child
process: it loads the model the usual way (``ClipEmbedder`` with ``standalone=False``, the same
cache, offline and download rules), checks that the standalone tower built from what it read gives
the same embeddings (cosine >= ``MIN_COSINE`` on a probe batch, float32) and the same preprocessing,
and writes the tower's state dict and its ``TowerConfig``. The parent moves them into the model
directory:

- ``clip-tower.<model>.<source>.pt``: ``torch.save`` of the ``visual.*`` state dict (float32);
- ``clip-tower.<model>.<source>.json``: ``{"format", "model_name", "source", "config", "sha256"}``,
  the sha256 being the .pt file's, written last, so a meta file always names a complete tower.

A later load reads only these (``torch.load(mmap=True)``: the file's pages, not a private copy). A
tower whose sha256 or keys do not match is deleted and converted once more (a torn or tampered
file); one that fails again is refused. The child answers on its last stdout line with JSON:
``{"ok": true}``, ``{"error": message}`` (ModelUnavailableError: offline, no weights, a bad file) or
``{"unsupported": reason}`` (not a plain ViT, or it disagrees: the caller runs open_clip itself).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .clip_tower import TowerConfig, load_tower, preprocess, visual_keys
from .errors import ModelUnavailableError
from .weights import sha256_of

logger = logging.getLogger(__name__)

CACHE_FORMAT = 1
"""Bump when the cached layout changes: older caches are then converted again."""

MIN_COSINE = 0.9999
"""How closely the standalone tower must reproduce open_clip's float32 embeddings to be used."""

CONVERT_TIMEOUT_S = 3600.0  # a first download of ViT-L-14's weights can take long
_WEIGHTS_NAME, _META_NAME, _RESULT_NAME = "tower.pt", "tower.json", "result.json"


@dataclass(frozen=True)
class ConvertedTower:
    config: TowerConfig
    state_dict: dict[str, Any]


class UnsupportedTower(Exception):
    """The model is not one the standalone tower reproduces: run open_clip in this process."""


def cache_paths(tower_dir: str | os.PathLike[str], model_name: str, source: str) -> tuple[Path, Path]:
    """(weights, meta) paths of the cached tower of ``model_name`` from ``source`` (a tag)."""
    stem = "clip-tower." + ".".join(re.sub(r"[^A-Za-z0-9_.+-]", "_", part) for part in (model_name, source))
    base = Path(tower_dir)
    return base / f"{stem}.pt", base / f"{stem}.json"


def read_tower(weights: Path, meta_path: Path, *, model_name: str, source: str) -> ConvertedTower | None:
    """The cached tower, or None where there is none, or it is stale or damaged (then deleted)."""
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if (meta.get("format"), meta.get("model_name"), meta.get("source")) != (CACHE_FORMAT, model_name, source):
            logger.info("The cached CLIP tower %s is of another model or format: converting again", weights)
            return None
        config = TowerConfig.from_json(meta["config"])
        digest = sha256_of(weights)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("The cached CLIP tower %s is unreadable (%s): converting again", weights, exc)
        _discard(weights, meta_path)
        return None
    if digest != meta.get("sha256"):
        logger.warning("The cached CLIP tower %s does not match its checksum (sha256 %s, recorded %s): "
                       "deleted, converting again", weights, digest[:12], str(meta.get("sha256"))[:12])
        _discard(weights, meta_path)
        return None
    try:
        state_dict = _load_state_dict(weights)
        load_tower(config, state_dict)  # the keys and shapes, on the meta device: nothing is copied
    except Exception as exc:  # a file that hashes right but is not a tower: written by something else
        logger.warning("The cached CLIP tower %s does not load (%s): deleted, converting again", weights, exc)
        _discard(weights, meta_path)
        return None
    return ConvertedTower(config, state_dict)


@contextlib.contextmanager
def conversion_lock(meta_path: Path) -> Iterator[None]:
    """One conversion at a time per tower: web workers and a Celery worker starting together on a
    fresh model folder would otherwise each write the tower, and one's meta could land beside
    another's weights (torch.save's bytes differ run to run). The lock file stays (removing it would
    race with a waiter)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock; a clash then shows as a checksum mismatch, converted again
        yield
        return
    with open(meta_path.with_suffix(".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_tower(converted_dir: Path, weights: Path, meta_path: Path, *, model_name: str, source: str) -> None:
    """Move a child's output into the cache: the weights first, the meta (with their sha256) last."""
    weights.parent.mkdir(parents=True, exist_ok=True)
    config = json.loads((converted_dir / _META_NAME).read_text(encoding="utf-8"))["config"]
    digest = sha256_of(converted_dir / _WEIGHTS_NAME)
    meta = {"format": CACHE_FORMAT, "model_name": model_name, "source": source, "config": config, "sha256": digest}
    meta_path.unlink(missing_ok=True)  # never a meta beside weights it does not describe
    _replace(converted_dir / _WEIGHTS_NAME, weights)
    fd, tmp = tempfile.mkstemp(dir=meta_path.parent, prefix=f".{meta_path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(meta, fh, indent=1, sort_keys=True)
    os.replace(tmp, meta_path)


def _replace(source: Path, target: Path) -> None:
    """Move ``source`` to ``target`` atomically, also across file systems (a copy beside the target)."""
    try:
        os.replace(source, target)
    except OSError:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        os.close(fd)
        try:
            shutil.copyfile(source, tmp)
            os.replace(tmp, target)
        finally:
            Path(tmp).unlink(missing_ok=True)


def _discard(*paths: Path) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)


def read_converted(out_dir: Path) -> ConvertedTower:
    """A child's output read straight from its folder (no cache: the folder is temporary)."""
    config = TowerConfig.from_json(json.loads((out_dir / _META_NAME).read_text(encoding="utf-8"))["config"])
    return ConvertedTower(config, _load_state_dict(out_dir / _WEIGHTS_NAME))


def _load_state_dict(path: Path) -> dict[str, Any]:
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    if not isinstance(state, dict):
        raise ValueError("not a state dict")
    return state


def checkpoint_tower(path: Path, config: TowerConfig) -> ConvertedTower | None:
    """A checkpoint that holds exactly this tower's ``visual.*`` tensors (the embedder's own saved
    state dict, or a whole open_clip model's) read as is; None for any other layout, which open_clip's
    converters must read. Raises what torch.load raises for a file that is no checkpoint."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # an old (non-zip) torch file cannot be memory-mapped
        state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        return None
    visual = {key: value for key, value in state.items() if isinstance(key, str) and key.startswith("visual.")}
    expected = visual_keys(config)
    if set(visual) != set(expected) or any(tuple(visual[k].shape) != shape for k, shape in expected.items()):
        return None
    if not all(isinstance(value, torch.Tensor) and value.is_floating_point() for value in visual.values()):
        return None
    return ConvertedTower(config, {key: value.float() for key, value in visual.items()})


# --- the parent's side --------------------------------------------------------------------------

def convert_in_child(*, model_name: str, pretrained: str | None, checkpoint: Path | None,
                     hub_cache_dir: str | None, allow_download: bool, out_dir: Path) -> None:
    """Run the conversion in a child process writing to ``out_dir``; raises ModelUnavailableError
    (the child's message) or UnsupportedTower."""
    request = {"model_name": model_name, "pretrained": pretrained,
               "checkpoint": str(checkpoint) if checkpoint is not None else None,
               "cache_dir": hub_cache_dir, "allow_download": allow_download, "out": str(out_dir)}
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    command = [sys.executable, "-m", "recognition.clip_convert", json.dumps(request)]
    logger.info("Converting CLIP %s/%s to a standalone image tower (once, in a child process)",
                model_name, pretrained or checkpoint)
    try:
        done = subprocess.run(  # noqa: S603  (this interpreter, this module, a JSON argument)
            command, env=env, capture_output=True, text=True, timeout=CONVERT_TIMEOUT_S, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ModelUnavailableError(f"Converting CLIP {model_name} to a standalone tower failed ({exc}).") from exc
    answer = _answer(out_dir / _RESULT_NAME)
    if answer.get("ok"):
        return
    if "error" in answer:
        raise ModelUnavailableError(str(answer["error"]))
    if "unsupported" in answer:
        raise UnsupportedTower(str(answer["unsupported"]))
    tail = (done.stderr or done.stdout or "").strip()[-1500:]
    raise ModelUnavailableError(f"Converting CLIP {model_name} to a standalone tower failed (exit "
                                f"{done.returncode}): {tail}")


def _answer(path: Path) -> dict[str, Any]:
    try:
        answer = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return answer if isinstance(answer, dict) else {}


# --- the child's side ---------------------------------------------------------------------------

def tower_config_of(visual: Any, transform: Any) -> TowerConfig:
    """The TowerConfig of an open_clip image tower and its evaluation transform; raises
    UnsupportedTower for anything clip_tower does not build."""
    from torch import nn

    if type(visual).__name__ != "VisionTransformer":
        raise UnsupportedTower(f"the image tower is a {type(visual).__name__}, not a plain VisionTransformer")
    if (getattr(visual, "attn_pool", None) is not None or getattr(visual, "pool_type", "tok") != "tok"
            or getattr(visual, "final_ln_after_pool", False) or getattr(visual, "output_tokens", False)
            or not isinstance(visual.ln_pre, nn.LayerNorm)):
        raise UnsupportedTower("the tower pools or normalises other than CLIP's ViT")
    blocks = list(visual.transformer.resblocks)
    first = blocks[0]
    if any(type(b).__name__ != "ResidualAttentionBlock" or not isinstance(b.ls_1, nn.Identity)
           or not isinstance(b.ls_2, nn.Identity) or hasattr(b, "ln_1_kv") for b in blocks):
        raise UnsupportedTower("the tower's blocks are not the plain residual attention blocks")
    activation = type(first.mlp.gelu).__name__
    if activation not in ("QuickGELU", "GELU") or (activation == "GELU" and first.mlp.gelu.approximate != "none"):
        raise UnsupportedTower(f"activation {activation}")
    eps = {m.eps for m in visual.modules() if isinstance(m, nn.LayerNorm)}
    if eps != {1e-5}:
        raise UnsupportedTower(f"LayerNorm eps {eps}")
    image_size, patch_size = visual.image_size, visual.patch_size
    if image_size[0] != image_size[1] or patch_size[0] != patch_size[1]:
        raise UnsupportedTower("a non-square image or patch")
    steps = {type(step).__name__: step for step in getattr(transform, "transforms", [])}
    names = [type(step).__name__ for step in getattr(transform, "transforms", [])]
    if not set(names) <= {"Resize", "CenterCrop", "MaybeConvertMode", "MaybeToTensor", "ToTensor", "Normalize"} \
            or "Resize" not in steps or "Normalize" not in steps:
        raise UnsupportedTower(f"preprocessing {names}")
    resize = steps["Resize"]
    size = resize.size
    resize_mode = "shortest" if isinstance(size, int) or len(size) == 1 else "squash"
    interpolation = str(getattr(resize.interpolation, "value", resize.interpolation))
    normalize = steps["Normalize"]
    config = TowerConfig(
        image_size=int(image_size[0]), patch_size=int(patch_size[0]), width=int(visual.conv1.out_channels),
        layers=len(blocks), heads=int(first.attn.num_heads), mlp_width=int(first.mlp.c_fc.out_features),
        output_dim=int(visual.proj.shape[1]), quick_gelu=activation == "QuickGELU",
        mean=tuple(float(v) for v in normalize.mean), std=tuple(float(v) for v in normalize.std),  # type: ignore[arg-type]
        interpolation=interpolation, resize_mode=resize_mode,
    )
    try:
        config.check()
    except ValueError as exc:
        raise UnsupportedTower(str(exc)) from exc
    return config


def verify(reference: Any, transform: Any, tower: Any, config: TowerConfig) -> None:
    """The standalone tower and preprocessing against open_clip's, on a fixed probe; raises
    UnsupportedTower below MIN_COSINE or for preprocessing that differs beyond float rounding."""
    import numpy as np
    import torch
    from PIL import Image

    rng = np.random.default_rng(20240607)
    size = config.image_size
    images = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).resize((w * 4, h * 4))
              for h, w in ((size // 4, size // 4), (size // 3, size // 5), (size // 5, size // 3))]
    theirs = torch.stack([transform(image) for image in images])
    ours = torch.from_numpy(np.stack([preprocess(image, config) for image in images]))
    difference = float((theirs - ours).abs().max())
    if difference > 1e-4:
        raise UnsupportedTower(f"preprocessing differs from open_clip's by {difference:.2g}")
    with torch.inference_mode():
        expected = reference.encode_image(theirs).float()
        got = tower.encode_image(theirs).float()
    cosine = float(torch.nn.functional.cosine_similarity(expected, got, dim=1).min())
    if not cosine >= MIN_COSINE:
        raise UnsupportedTower(f"the standalone tower agrees with open_clip only to cosine {cosine:.6f}")


def _convert(request: dict[str, Any]) -> None:
    import torch

    from .embed_clip import ClipEmbedder

    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    out = Path(request["out"])
    embedder = ClipEmbedder(request["model_name"], pretrained=request["pretrained"],
                            checkpoint=request["checkpoint"], cache_dir=request["cache_dir"],
                            allow_download=bool(request["allow_download"]), standalone=False)
    reference, transform = embedder._create()
    config = tower_config_of(reference.visual, transform)
    visual = reference.visual.state_dict()
    state = {f"visual.{key}": value.detach().float().contiguous() for key, value in visual.items()}
    tower = load_tower(config, state)
    verify(reference, transform, tower, config)
    torch.save(state, out / _WEIGHTS_NAME)
    (out / _META_NAME).write_text(json.dumps({"config": config.to_json()}), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("request", help="JSON: model_name, pretrained, checkpoint, cache_dir, allow_download, out")
    request = json.loads(parser.parse_args(argv).request)
    logging.basicConfig(level=logging.WARNING)
    result_path = Path(request["out"]) / _RESULT_NAME
    try:
        _convert(request)
        answer: dict[str, Any] = {"ok": True}
    except ModelUnavailableError as exc:
        answer = {"error": str(exc)}
    except UnsupportedTower as exc:
        answer = {"unsupported": str(exc)}
    result_path.write_text(json.dumps(answer), encoding="utf-8")
    return 0 if answer.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
