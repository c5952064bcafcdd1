"""Face embedders: CLIP (the paper's choice) and dlib's face ResNet, behind one interface.

An embedder turns aligned face crops into L2-normalised float32 vectors. Construction is cheap;
weights load on the first ``encode`` (or an explicit ``load``), once, under a lock.

``encode`` is ``forward(prepare(crops))`` per batch: ``prepare`` is the preprocessing and
``forward`` the bare model, which the benchmark (recognition.bench) times on its own.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np

from .align import ARCFACE_TEMPLATE, DLIB_TEMPLATE, align_face
from .errors import ModelUnavailableError
from .runtime import apply_torch_threads, kernel_cpu_flags, release_freed_memory
from .types import BackboneDefaults, Face
from .weights import (
    CLIP_SETTINGS_HINT,
    cached_clip_weights,
    clip_download_url,
    host_reachable,
    hub_offline,
)

logger = logging.getLogger(__name__)

BACKBONE_DEFAULTS: dict[str, BackboneDefaults] = {
    # The paper's best grid point on YouTube Faces (precision = recall = 0.7305).
    "clip": BackboneDefaults(k1=1, k2=3, threshold=0.82),
    # Calibrated on ../shared/faces (mirror averaging on, our DLIB_TEMPLATE alignment): the
    # leave-one-out nearest distances of the 186 people/ photos against the 33 unknown/ photos.
    # Both floors (>= 95% of known probes identified, >= 90% of unknown probes rejected) hold for
    # thresholds 0.255..0.285; 0.27 is the middle (97.7% identified, 100% rejected there).
    # dlib's customary 0.6 is for its raw descriptors (norm ~1.4); it is ~0.43 here and accepts
    # 64% of unknown/ as someone enrolled. See tests/recognition/test_dlib_accuracy.py.
    "dlib": BackboneDefaults(k1=1, k2=3, threshold=0.27),
}


@runtime_checkable
class Embedder(Protocol):
    """What the pipeline needs from a face embedding model."""

    @property
    def name(self) -> str:
        """Identifies the embedding space; stored with an index, which is useless to another."""

    @property
    def backbone(self) -> str:
        """The key of BACKBONE_DEFAULTS: "clip" or "dlib"."""

    @property
    def dim(self) -> int: ...

    @property
    def crop_size(self) -> int: ...

    def crop(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        """The aligned crop of ``face`` this model expects."""

    def encode(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """(n, dim) float32, each row of unit length."""


def create_embedder(backbone: str, **options: Any) -> Embedder:
    """An embedder by backbone name ("clip" or "dlib"), with that class's keyword options."""
    if backbone == "clip":
        return ClipEmbedder(**options)
    if backbone == "dlib":
        return DlibEmbedder(**options)
    raise ValueError(f"Unknown backbone {backbone!r}: choose 'clip' or 'dlib'.")


PRECISIONS = ("auto", "fp32", "bf16", "fp16")
AGREEMENT_MIN_COSINE = 0.999
"""A reduced-precision model is used only if each of its embeddings of a fixed probe batch has at
least this cosine similarity to the float32 model's (checked at load; otherwise float32 runs).
Measured with random ViT-B-32 weights on this project's CPU: bf16 gave 0.9999 or more."""


def fastest_precision(device: str = "cpu") -> str:
    """The fastest float type a CLIP model runs in here: "fp16" on a CUDA device; "bf16" on a CPU
    with bf16 matrix instructions (AMX or AVX512-BF16), which oneDNN uses for bf16 matmuls;
    "fp32" elsewhere (bf16 emulated on older CPUs is slower than fp32)."""
    if device.startswith("cuda"):
        return "fp16"
    if device != "cpu":
        return "fp32"
    import torch

    if not torch.backends.mkldnn.is_available():
        return "fp32"
    flags = _cpu_flags()
    return "bf16" if flags & {"amx_bf16", "avx512_bf16"} else "fp32"


def _cpu_flags() -> set[str]:
    try:
        import torch

        capabilities = torch.cpu.get_capabilities()  # type: ignore[attr-defined]
        return {name for name, value in capabilities.items() if value is True}
    except Exception:  # older torch: read the kernel's list
        return kernel_cpu_flags()


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    array = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return np.ascontiguousarray(array / np.maximum(norms, 1e-12), dtype=np.float32)


def _check_crops(crops: Sequence[np.ndarray]) -> list[np.ndarray]:
    arrays = []
    for crop in crops:
        array = np.asarray(crop)
        if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
            raise ValueError(f"crops must be H x W x 3 uint8 RGB arrays, got {array.shape}")
        arrays.append(array)
    return arrays


class ClipEmbedder:
    """CLIP image embeddings with open_clip.

    Weights: ``checkpoint`` (a local file: a state_dict, or open_clip's own formats) if given,
    else the ``pretrained`` tag from open_clip's registry, taken from the local cache, or
    downloaded when allowed and reachable; ``pretrained=None`` gives random weights (tests only).
    ``margin`` frames the face with some hair and background, closer to the whole-box crops
    the paper embedded than a tight face-recognition crop.

    ``precision``: "auto" runs the fastest float type this machine supports (see
    ``fastest_precision``); at load its embeddings of a fixed probe batch are compared with
    float32's and it falls back to float32 below AGREEMENT_MIN_COSINE. ``precision`` (after
    ``load``) says which path runs, ``agreement`` the cosine measured.
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
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
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
        arrays = _check_crops(crops)
        if not arrays:
            return np.zeros((0, self.dim), dtype=np.float32)
        self.load()
        chunks = []
        for start in range(0, len(arrays), self.batch_size):
            chunks.append(self.forward(self.prepare(arrays[start : start + self.batch_size])))
        return l2_normalise(np.concatenate(chunks))

    def prepare(self, crops: Sequence[np.ndarray]) -> Any:
        """The model's input batch (a tensor on the device, in the precision that runs).

        Crops already at the model's size (what ``crop`` makes) are normalised in one numpy
        pass: open_clip's resize and centre crop leave such an image unchanged, so this equals
        its PIL preprocessing to float rounding, without a PIL image and a tensor per crop.
        Other sizes go through open_clip's own preprocessing.
        """
        import torch

        arrays = _check_crops(crops)
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
                model, self._preprocess = self._create()
                apply_torch_threads()
                self._normalise = _normalisation(self._preprocess)
                self._model = self._choose_precision(model)
                del model
                release_freed_memory()

    def _choose_precision(self, model: Any) -> Any:
        """Put the model in the requested (or fastest) precision if it agrees with float32."""
        import torch

        wanted = fastest_precision(self.device) if self.requested_precision == "auto" else self.requested_precision
        self._dtype = torch.float32
        self.precision, self.agreement = "fp32", None
        if wanted == "fp32":
            return model
        dtype = torch.bfloat16 if wanted == "bf16" else torch.float16
        probe = _probe_batch(self.crop_size, self._preprocess, self._normalise).to(self.device)
        with torch.inference_mode():
            reference = model.encode_image(probe).float()
            try:
                # A converted copy: the float32 weights stay intact for a fallback.
                reduced_model = copy.deepcopy(model).to(dtype)
                reduced = reduced_model.encode_image(probe.to(dtype)).float()
            except RuntimeError as exc:  # the device or build cannot run this type
                logger.warning("CLIP in %s failed (%s): running float32", wanted, exc)
                return model
            cosine = torch.nn.functional.cosine_similarity(reduced, reference, dim=1)
        agreement = float(cosine.min())
        self.agreement = agreement
        if not agreement >= AGREEMENT_MIN_COSINE:  # also catches NaN
            logger.warning(
                "CLIP in %s agrees with float32 only to cosine %.5f (< %s): running float32",
                wanted, agreement, AGREEMENT_MIN_COSINE,
            )
            return model
        self._dtype, self.precision = dtype, wanted
        return reduced_model

    def _config(self) -> dict[str, Any]:
        import open_clip

        config = open_clip.get_model_config(self.model_name)
        if config is None:
            raise ModelUnavailableError(
                f"Unknown CLIP model {self.model_name!r}: set ROLLCALL_CLIP_MODEL to one of "
                "open_clip.list_models(), e.g. ViT-B-32."
            )
        return dict(config)

    def _create(self) -> tuple[Any, Any]:
        import open_clip

        self._config()
        options: dict[str, Any] = {}
        weights: str | None = None
        if self.checkpoint is not None:
            if not self.checkpoint.is_file():
                raise ModelUnavailableError(
                    f"The CLIP checkpoint {self.checkpoint} does not exist: fix "
                    "ROLLCALL_CLIP_CHECKPOINT, or unset it to use ROLLCALL_CLIP_PRETRAINED."
                )
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


def _probe_batch(size: int, preprocess: Any, normalise: tuple[np.ndarray, np.ndarray] | None) -> Any:
    """A fixed batch of four smooth, face-sized colour images to compare precisions on."""
    import torch

    rng = np.random.default_rng(20240607)
    coarse = rng.integers(0, 256, size=(4, 8, 8, 3), dtype=np.uint8)
    images = [cv2.resize(c, (size, size), interpolation=cv2.INTER_CUBIC) for c in coarse]
    if normalise is not None:
        mean, scale = normalise
        stacked = (np.stack(images).astype(np.float32) - mean) * scale
        return torch.from_numpy(np.ascontiguousarray(stacked.transpose(0, 3, 1, 2)))
    from PIL import Image

    return torch.stack([preprocess(Image.fromarray(image)) for image in images])


_DLIB_RESNET = "dlib_face_recognition_resnet_model_v1.dat"


def _face_recognition_models_dir() -> Path:
    # Importing face_recognition_models needs pkg_resources (setuptools); finding its folder
    # does not.
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(
            "dlib's face model is not installed: pip install face-recognition-models, or pass "
            "model_path to DlibEmbedder."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models"


DLIB_ENGINES = ("torch", "dlib")


class DlibEmbedder:
    """dlib's 128-d face ResNet (the model behind face_recognition). Works offline.

    Crops come from our own 5-landmark alignment to DLIB_TEMPLATE (dlib's chip framing) rather
    than dlib's 5-point shape predictor + get_face_chip: on the test faces both give 100%
    leave-one-out accuracy and the same usable threshold range within one image, and ours needs
    no second landmark model and keeps ``encode`` a function of crops alone.
    ``mirror`` averages each face with its mirror image: twice the cost, and it moved the
    unknown/ rejection at the calibrated threshold from 94% to 100% (see BACKBONE_DEFAULTS,
    which assume it on).

    ``engine``: "torch" (the default) runs the same network in torch (recognition.dlib_resnet),
    its weights converted from dlib's file once and cached in ``cache_dir`` (if given), on
    ``device``, faces and mirrors in one batch of up to ``batch_size`` faces. Its descriptors
    agree with dlib's own to cosine >= 0.9999 in float32 (tests/recognition/test_dlib_torch.py),
    so both engines share one embedding space and its name. ``precision`` as for CLIP: "auto"
    takes the fastest float type here if it agrees with float32 (AGREEMENT_MIN_COSINE).
    "dlib" runs dlib's own implementation (one core, float32): the reference.
    """

    backbone = "dlib"
    dim = 128
    crop_size = 150

    def __init__(
        self,
        *,
        model_path: str | os.PathLike[str] | None = None,
        mirror: bool = True,
        engine: str = "torch",
        device: str = "cpu",
        precision: str = "auto",
        cache_dir: str | os.PathLike[str] | None = None,
        batch_size: int = 32,
    ) -> None:
        if engine not in DLIB_ENGINES:
            raise ValueError(f"engine must be one of {', '.join(DLIB_ENGINES)}, not {engine!r}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.model_path = Path(model_path) if model_path is not None else None
        self.mirror = mirror
        self.engine = engine
        self.device = device if engine == "torch" else "cpu"
        self.requested_precision = precision if engine == "torch" else "fp32"
        self.precision = "fp32"
        self.agreement: float | None = None
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.batch_size = batch_size
        self._net: Any = None
        self._dtype: Any = None
        self._mean: Any = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        # The same for both engines: they compute the same descriptors (see the class docstring).
        return "dlib:resnet_v1" + (":mirror" if self.mirror else "")

    @property
    def model(self) -> Any:
        """The loaded network (loads it): a torch module, or dlib's face_recognition_model_v1."""
        self.load()
        return self._net

    def crop(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        return align_face(rgb, face, size=self.crop_size, template=DLIB_TEMPLATE)

    def load(self) -> None:
        with self._lock:
            if self._net is None:
                self._net = self._create_torch() if self.engine == "torch" else self._create_dlib()
                release_freed_memory()

    def _weights_path(self) -> Path:
        path = self.model_path or _face_recognition_models_dir() / _DLIB_RESNET
        if not path.is_file():
            raise ModelUnavailableError(f"dlib's face model is missing at {path}.")
        return path

    def _create_dlib(self) -> Any:
        import dlib

        path = self._weights_path()
        try:
            return dlib.face_recognition_model_v1(str(path))
        except RuntimeError as exc:
            raise ModelUnavailableError(f"dlib could not load {path} ({exc}).") from exc

    def _create_torch(self) -> Any:
        import torch

        from .dlib_format import DlibFormatError
        from .dlib_resnet import build_model, load_weights

        path = self._weights_path()
        try:
            weights = load_weights(path, self.cache_dir)
        except (DlibFormatError, OSError) as exc:
            raise ModelUnavailableError(f"Could not read dlib's face model {path} ({exc}).") from exc
        apply_torch_threads()
        self._mean = torch.as_tensor(weights["mean_rgb"], device=self.device).view(1, 3, 1, 1)
        model = build_model(weights).to(self.device).to(memory_format=torch.channels_last)
        return self._choose_precision(model)

    def _choose_precision(self, model: Any) -> Any:
        """The model in the requested (or fastest) precision if it agrees with float32."""
        import torch

        wanted = fastest_precision(self.device) if self.requested_precision == "auto" else self.requested_precision
        self._dtype, self.precision, self.agreement = torch.float32, "fp32", None
        if wanted == "fp32":
            return model
        dtype = torch.bfloat16 if wanted == "bf16" else torch.float16
        # The same smooth colour images CLIP is probed with, as 0-255 pixels, then dlib's input layer.
        pixels = _probe_batch(self.crop_size, None, (np.zeros(3, np.float32), np.ones(3, np.float32)))
        probe = self._normalise(pixels.to(self.device))
        with torch.inference_mode():
            reference = model(probe).float()
            try:
                reduced_model = copy.deepcopy(model).to(dtype)
                reduced = reduced_model(probe.to(dtype)).float()
            except RuntimeError as exc:  # the device or build cannot run this type
                logger.warning("dlib's network in %s failed (%s): running float32", wanted, exc)
                return model
            cosine = torch.nn.functional.cosine_similarity(reduced, reference, dim=1)
        agreement = float(cosine.min())
        self.agreement = agreement
        if not agreement >= AGREEMENT_MIN_COSINE:  # also catches NaN
            logger.warning(
                "dlib's network in %s agrees with float32 only to cosine %.5f (< %s): running float32",
                wanted, agreement, AGREEMENT_MIN_COSINE,
            )
            return model
        self._dtype, self.precision = dtype, wanted
        return reduced_model

    def _normalise(self, pixels: Any) -> Any:
        """dlib's input layer on an (N, 3, H, W) tensor of 0-255 values: (pixel - mean) / 256."""
        return ((pixels.float() - self._mean) / 256.0).contiguous(memory_format=_channels_last())

    def encode(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        arrays = _check_crops(crops)
        if not arrays:
            return np.zeros((0, self.dim), dtype=np.float32)
        chunks = []
        for start in range(0, len(arrays), self.batch_size):
            part = arrays[start : start + self.batch_size]
            raw = self.forward(self.prepare(part))
            if self.mirror:
                count = len(part)
                chunks.append(l2_normalise(raw[:count]) + l2_normalise(raw[count:]))
            else:
                chunks.append(raw)
        return l2_normalise(np.concatenate(chunks))

    def prepare(self, crops: Sequence[np.ndarray]) -> Any:
        """The network's input: each crop at 150x150 and, with ``mirror``, their mirror images
        after them. For dlib's engine a list of images (one call to dlib for all); for torch's a
        normalised (2n or n, 3, 150, 150) tensor on the device, in the precision that runs."""
        arrays = [self._fit(a) for a in _check_crops(crops)]
        if self.engine == "dlib":
            if self.mirror:
                arrays += [np.ascontiguousarray(a[:, ::-1]) for a in arrays]
            return arrays
        import torch

        self.load()
        if not arrays:
            return torch.zeros((0, 3, self.crop_size, self.crop_size), device=self.device, dtype=self._dtype)
        batch = self._to_tensor(arrays)
        if self.mirror:
            batch = torch.cat([batch, batch.flip(3)])
        return batch

    def _to_tensor(self, arrays: Sequence[np.ndarray]) -> Any:
        import torch

        pixels = torch.from_numpy(np.stack(arrays)).to(self.device).permute(0, 3, 1, 2)
        return self._normalise(pixels).to(self._dtype)

    def forward(self, batch: Any) -> np.ndarray:
        """The bare network: one raw 128-d descriptor per prepared image, (n, 128) float32.

        Takes what ``prepare`` returns, or a list of 150x150 images (each one pass, no mirror).
        dlib's engine runs on one core, holding the GIL: batching does not make it faster."""
        if len(batch) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        self.load()
        if self.engine == "dlib":
            with self._lock:
                return np.asarray(self._net.compute_face_descriptor(list(batch)), dtype=np.float32)
        import torch

        if not isinstance(batch, torch.Tensor):
            batch = self._to_tensor([self._fit(a) for a in _check_crops(batch)])
        with torch.inference_mode():
            descriptors = self._net(batch)
        return np.asarray(descriptors.float().cpu().numpy(), dtype=np.float32)

    def _fit(self, crop: np.ndarray) -> np.ndarray:
        if crop.shape[:2] != (self.crop_size, self.crop_size):
            crop = cv2.resize(crop, (self.crop_size, self.crop_size), interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(crop)


def _channels_last() -> Any:
    import torch

    return torch.channels_last
