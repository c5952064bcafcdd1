"""CLIP as a face embedder: the image tower only, in the fastest precision that agrees with float32.

The tower runs as ``recognition.clip_tower`` (plain torch) where the model is a plain ViT, so that a
worker never imports open_clip and its dependencies (~260 MB resident); open_clip converts a
pretrained tag's weights once, in a child process (``recognition.clip_convert``). Other models run
in open_clip itself, as before.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import precision as numeric  # the module: a test's patch of its threshold is seen here
from .align import ARCFACE_TEMPLATE, align_face
from .errors import ModelUnavailableError
from .runtime import apply_torch_threads, release_freed_memory
from .types import Face
from .weights import (
    CLIP_SETTINGS_HINT,
    cached_clip_weights,
    clip_download_url,
    host_reachable,
    hub_offline,
)

logger = logging.getLogger(__name__)


class ClipEmbedder:
    """CLIP image embeddings with open_clip.

    Weights: ``checkpoint`` (a local file: a state_dict, or open_clip's own formats) if given,
    else the ``pretrained`` tag from open_clip's registry, taken from the local cache, or
    downloaded when allowed and reachable; ``pretrained=None`` gives random weights (tests only).
    ``margin`` frames the face with some hair and background, closer to the whole-box crops
    the paper embedded than a tight face-recognition crop.

    ``precision``: "auto" runs the fastest number type this machine supports (see
    ``fastest_precision``; "int8" quantises the Linear layers); at load its embeddings of a fixed
    probe batch are compared with float32's and it falls back to float32 below
    numeric.AGREEMENT_MIN_COSINE. ``precision`` (after ``load``) says which path runs,
    ``agreement`` the cosine measured.

    ``standalone`` (default): run the tower without open_clip where ``clip_tower`` builds it (then
    ``engine`` is "standalone", else "open_clip"). A pretrained tag's tower is converted by open_clip
    in a child process on first use and cached in ``tower_dir`` with a sha256 (without a
    ``tower_dir``, converted on every load); a checkpoint holding exactly the tower's ``visual.*``
    tensors is read directly, others are converted the same way (not cached).
    """

    backbone = "clip"

    def __init__(
        self,
        model_name: str = "ViT-B-32",
        pretrained: str | None = "openai",
        checkpoint: str | os.PathLike[str] | None = None,
        *,
        device: str = "cpu",
        batch_size: int = 32,
        cache_dir: str | os.PathLike[str] | None = None,
        allow_download: bool = True,
        margin: float = 0.2,
        precision: str = "auto",
        tower_dir: str | os.PathLike[str] | None = None,
        standalone: bool = True,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if precision not in numeric.PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(numeric.PRECISIONS)}, not {precision!r}")
        self.model_name = model_name
        self.pretrained = pretrained
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.device = device
        self.batch_size = batch_size
        self.cache_dir = str(cache_dir) if cache_dir is not None else None
        self.allow_download = allow_download
        self.margin = margin
        self.requested_precision = precision
        self.precision = "fp32" if precision == "auto" else precision
        self.agreement: float | None = None
        self.tower_dir = Path(tower_dir) if tower_dir is not None else None
        self.standalone = standalone
        self.engine: str | None = None  # after load: "standalone" or "open_clip"
        self._model: Any = None
        self._preprocess: Any = None
        self._dtype: Any = None
        self._normalise: tuple[np.ndarray, np.ndarray] | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        if self.checkpoint is not None:
            source = f"file:{self.checkpoint.name}"
        else:
            source = self.pretrained or "random"
        return f"clip:{self.model_name}:{source}"

    @property
    def dim(self) -> int:
        return int(self._config()["embed_dim"])

    @property
    def crop_size(self) -> int:
        size = self._config()["vision_cfg"]["image_size"]
        return int(size if isinstance(size, int) else max(size))

    @property
    def model(self) -> Any:
        """The loaded image tower (loads it): a torch module with ``visual`` and ``encode_image``;
        CLIP's text tower is dropped at load. Its state_dict loads back as a checkpoint."""
        self.load()
        return self._model

    def crop(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        size = self.crop_size
        return align_face(rgb, face, size=size, margin=self.margin, template=ARCFACE_TEMPLATE)

    def encode(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        arrays = numeric.check_crops(crops)
        if not arrays:
            return np.zeros((0, self.dim), dtype=np.float32)
        self.load()
        chunks = []
        for start in range(0, len(arrays), self.batch_size):
            chunks.append(self.forward(self.prepare(arrays[start : start + self.batch_size])))
        return numeric.l2_normalise(np.concatenate(chunks))

    def prepare(self, crops: Sequence[np.ndarray]) -> Any:
        """The model's input batch (a tensor on the device, in the precision that runs).

        Crops already at the model's size (what ``crop`` makes) are normalised in one numpy
        pass: open_clip's resize and centre crop leave such an image unchanged, so this equals
        its PIL preprocessing to float rounding, without a PIL image and a tensor per crop.
        Other sizes go through the full preprocessing (clip_tower's copy of open_clip's, or open_clip's).
        """
        import torch

        arrays = numeric.check_crops(crops)
        self.load()
        size = self.crop_size
        if self._normalise is not None and all(a.shape[:2] == (size, size) for a in arrays):
            mean, scale = self._normalise
            stacked = np.stack(arrays).astype(np.float32)
            stacked = (stacked - mean) * scale  # (x / 255 - m) / s, folded into one multiply
            batch = torch.from_numpy(np.ascontiguousarray(stacked.transpose(0, 3, 1, 2)))
        else:
            from PIL import Image

            batch = torch.stack([self._preprocess(Image.fromarray(a)) for a in arrays])
        return batch.to(device=self.device, dtype=self._dtype)

    def forward(self, batch: Any) -> np.ndarray:
        """The bare image tower on a prepared batch: (n, dim) float32, not normalised."""
        import torch

        with torch.inference_mode():
            features = self._model.encode_image(batch)
        return np.asarray(features.float().cpu().numpy(), dtype=np.float32)

    def load(self) -> None:
        """Load the weights now (normally the first encode does); raises ModelUnavailableError."""
        with self._lock:
            if self._model is None:
                apply_torch_threads()
                model = self._create_standalone() if self.standalone else None
                if model is None:
                    model, self._preprocess = self._create()
                    self._normalise = _normalisation(self._preprocess)
                    self.engine = "open_clip"
                else:
                    self.engine = "standalone"
                apply_torch_threads()
                self._model = self._choose_precision(model)
                del model
                release_freed_memory()

    def _choose_precision(self, model: Any) -> Any:
        """Put the model in the requested (or fastest) precision if it agrees with float32."""
        wanted = self.requested_precision
        if wanted == "auto":
            wanted = numeric.fastest_precision(self.device, int8=True)
        probe = None
        if wanted != "fp32":
            probe = numeric.probe_batch(self.crop_size, self._preprocess, self._normalise).to(self.device)
        choice = numeric.choose_precision(model, lambda m, batch: m.encode_image(batch), probe, wanted, what="CLIP")
        self._dtype, self.precision, self.agreement = choice.dtype, choice.precision, choice.agreement
        return choice.model

    def _config(self) -> dict[str, Any]:
        from .clip_tower import model_config

        found = model_config(self.model_name)  # open_clip's JSON, read without importing it
        if found is not None:
            return found
        import open_clip

        config = open_clip.get_model_config(self.model_name)
        if config is None:
            raise ModelUnavailableError(
                f"Unknown CLIP model {self.model_name!r}: set ROLLCALL_CLIP_MODEL to one of "
                "open_clip.list_models(), e.g. ViT-B-32."
            )
        return dict(config)

    def _create_standalone(self) -> Any | None:
        """The tower as clip_tower's module (its preprocessing set up), or None: run open_clip."""
        import torch

        from . import clip_tower
        from .clip_convert import UnsupportedTower

        config = clip_tower.vit_config(clip_tower.model_config(self.model_name))
        if config is None:
            logger.info("CLIP %s is not a plain ViT clip_tower builds: running open_clip", self.model_name)
            return None
        try:
            if self.checkpoint is not None:
                converted = self._checkpoint_tower(config)
            elif self.pretrained:
                converted = self._pretrained_tower()
            else:
                converted = None  # random weights (tests)
        except UnsupportedTower as exc:
            logger.info("CLIP %s/%s runs in open_clip: %s", self.model_name, self.pretrained, exc)
            return None
        if converted is None:
            tower = clip_tower.build_tower(config)
        else:
            config = converted.config
            tower = clip_tower.load_tower(config, converted.state_dict)
        if self.device != "cpu":
            tower = tower.to(self.device)
        self._preprocess = lambda image: torch.from_numpy(clip_tower.preprocess(image, config))
        self._normalise = clip_tower.normalisation(config)
        return tower

    def _checkpoint_tower(self, config: Any) -> Any:
        from .clip_convert import checkpoint_tower

        assert self.checkpoint is not None
        self._check_checkpoint_exists()
        try:
            converted = checkpoint_tower(self.checkpoint, config)
        except Exception as exc:  # torch.load fails in many types on a file that is no checkpoint
            raise ModelUnavailableError(
                f"Could not load CLIP {self.model_name} weights from {self.checkpoint} ({exc}). "
                f"The file must be a checkpoint of that model. {CLIP_SETTINGS_HINT}"
            ) from exc
        return converted if converted is not None else self._convert(None)

    def _pretrained_tower(self) -> Any:
        """The converted tower of the pretrained tag: from the cache, else converted now (once)."""
        from .clip_convert import cache_paths, conversion_lock, read_tower, write_tower

        assert self.pretrained
        if self.tower_dir is None:
            return self._convert(None)
        weights, meta = cache_paths(self.tower_dir, self.model_name, self.pretrained)
        cached = read_tower(weights, meta, model_name=self.model_name, source=self.pretrained)
        if cached is not None:
            return cached
        try:
            self.tower_dir.mkdir(parents=True, exist_ok=True)
            with conversion_lock(meta):
                pass
        except OSError as exc:  # a read-only model folder: convert on every load
            logger.warning("Cannot cache CLIP's converted tower in %s (%s)", self.tower_dir, exc)
            return self._convert(None)
        with conversion_lock(meta):
            cached = read_tower(weights, meta, model_name=self.model_name, source=self.pretrained)
            if cached is not None:  # another process converted it while this one waited
                return cached
            with tempfile.TemporaryDirectory(dir=self.tower_dir, prefix=".clip-convert-") as out:
                self._convert(Path(out), read=False)
                write_tower(Path(out), weights, meta, model_name=self.model_name, source=self.pretrained)
            cached = read_tower(weights, meta, model_name=self.model_name, source=self.pretrained)
        if cached is None:
            raise ModelUnavailableError(
                f"CLIP's converted tower at {weights} does not read back intact right after converting "
                f"it (checksum or keys): is something else writing {self.tower_dir}? {CLIP_SETTINGS_HINT}"
            )
        return cached

    def _convert(self, out: Path | None, *, read: bool = True) -> Any:
        """open_clip converts the tower in a child process, into ``out`` (a temporary folder if None)."""
        from .clip_convert import convert_in_child, read_converted

        if out is None:
            with tempfile.TemporaryDirectory(prefix="rollcall-clip-") as tmp:
                return self._convert(Path(tmp))
        convert_in_child(model_name=self.model_name, pretrained=None if self.checkpoint else self.pretrained,
                         checkpoint=self.checkpoint, hub_cache_dir=self.cache_dir,
                         allow_download=self.allow_download, out_dir=out)
        return read_converted(out) if read else None

    def _check_checkpoint_exists(self) -> None:
        if self.checkpoint is not None and not self.checkpoint.is_file():
            raise ModelUnavailableError(
                f"The CLIP checkpoint {self.checkpoint} does not exist: fix "
                "ROLLCALL_CLIP_CHECKPOINT, or unset it to use ROLLCALL_CLIP_PRETRAINED."
            )

    def _create(self) -> tuple[Any, Any]:
        """The tower through open_clip, in this process: its ``ImageTower`` and preprocessing."""
        import open_clip

        self._config()
        options: dict[str, Any] = {}
        weights: str | None = None
        if self.checkpoint is not None:
            self._check_checkpoint_exists()
            weights = str(self.checkpoint)
        elif self.pretrained:
            tag = open_clip.get_pretrained_cfg(self.model_name, self.pretrained)
            if not tag:
                known = ", ".join(open_clip.list_pretrained_tags_by_model(self.model_name))
                raise ModelUnavailableError(
                    f"{self.pretrained!r} is not a pretrained tag of {self.model_name}: set "
                    f"ROLLCALL_CLIP_PRETRAINED to one of: {known}."
                )
            weights = str(self._pretrained_file(tag))
            # Passing a file instead of the tag keeps open_clip off the network; these are the
            # settings it would have taken from the tag.
            options = {
                "force_quick_gelu": bool(tag.get("quick_gelu", False)),
                "image_mean": tag.get("mean"),
                "image_std": tag.get("std"),
                "image_interpolation": tag.get("interpolation"),
                "image_resize_mode": tag.get("resize_mode"),
            }
        try:
            with _without_random_init_warning():  # the weights are loaded just below
                model, _, preprocess = open_clip.create_model_and_transforms(
                    self.model_name, pretrained=None, device=self.device, **options
                )
            if weights is not None:
                _load_image_tower(model, weights)
        except Exception as exc:  # torch.load and load_state_dict fail in many types; all mean this
            raise ModelUnavailableError(
                f"Could not load CLIP {self.model_name} weights from {weights} ({exc}). "
                f"The file must be a checkpoint of that model. {CLIP_SETTINGS_HINT}"
            ) from exc
        # Only the image tower stays: the text tower (~40% of ViT-B-32's weights) is never used
        # to embed a face, and a worker would keep it resident for nothing.
        tower = _image_tower(model)
        del model
        return tower.eval(), preprocess

    def _pretrained_file(self, tag: dict[str, Any]) -> Path:
        found = cached_clip_weights(tag, self.cache_dir)
        if found is not None:
            return found
        what = f"CLIP weights {self.model_name}/{self.pretrained}"
        where = f" ({self.cache_dir})" if self.cache_dir else ""
        missing = f"{what} are not in the local cache{where}"
        if not self.allow_download or hub_offline():
            reason = "HF_HUB_OFFLINE is set" if hub_offline() else "downloading is off"
            raise ModelUnavailableError(f"{missing} and {reason}. {CLIP_SETTINGS_HINT}")
        url = clip_download_url(tag)
        if not host_reachable(url):
            raise ModelUnavailableError(f"{missing} and {url} is unreachable. {CLIP_SETTINGS_HINT}")
        import open_clip

        try:
            return Path(open_clip.download_pretrained(tag, cache_dir=self.cache_dir))
        except Exception as exc:
            message = f"Downloading {what} failed ({exc}). {CLIP_SETTINGS_HINT}"
            raise ModelUnavailableError(message) from exc


def _load_image_tower(model: Any, weights: str) -> None:
    """Load a CLIP checkpoint's image tower into ``model`` with open_clip's own conversions.

    A checkpoint of the whole model or of the image tower alone (what ``ClipEmbedder.model``
    saves) both load; every image-tower weight must be there, and nothing foreign."""
    import open_clip

    incompatible = open_clip.load_checkpoint(model, weights, strict=False)
    missing = [key for key in incompatible.missing_keys if key.startswith("visual.")]
    if missing or incompatible.unexpected_keys:
        shown = (missing or list(incompatible.unexpected_keys))[:3]
        what = "missing" if missing else "unexpected"
        raise RuntimeError(f"{what} keys {', '.join(shown)}")


def _image_tower(model: Any) -> Any:
    """A module holding only ``model.visual``, with CLIP's ``encode_image`` (not normalised)."""
    from torch import nn

    class ImageTower(nn.Module):
        def __init__(self, visual: nn.Module) -> None:
            super().__init__()
            self.visual = visual

        def encode_image(self, image: Any) -> Any:
            return self.visual(image)

        def forward(self, image: Any) -> Any:
            return self.visual(image)

    return ImageTower(model.visual)


class _RandomInitFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "initialized randomly" not in record.getMessage()


@contextlib.contextmanager
def _without_random_init_warning() -> Iterator[None]:
    """open_clip warns "initialized randomly" when it creates a model without weights; here the
    weights follow at once (or pretrained=None asked for random ones), so the warning misleads."""
    quiet = _RandomInitFilter()
    logging.getLogger().addFilter(quiet)
    try:
        yield
    finally:
        logging.getLogger().removeFilter(quiet)


def _normalisation(preprocess: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """(255 * mean, 1 / (255 * std)) of open_clip's Normalize step, for the numpy fast path;
    None when the transform is not the usual resize, crop, to-tensor, normalise chain."""
    steps = getattr(preprocess, "transforms", None)
    if not steps:
        return None
    names = [type(step).__name__ for step in steps]
    allowed = {"Resize", "CenterCrop", "MaybeConvertMode", "MaybeToTensor", "ToTensor", "Normalize"}
    if names[-1] != "Normalize" or not set(names) <= allowed:
        return None
    mean = np.asarray(steps[-1].mean, dtype=np.float32) * 255.0
    std = np.asarray(steps[-1].std, dtype=np.float32) * 255.0
    return mean, (1.0 / std).astype(np.float32)
