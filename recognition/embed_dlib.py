"""dlib's face descriptor (ResNet, 128-d) as an embedder: run in torch by default, dlib's own code as the reference."""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from . import precision as numeric  # the module: a test's patch of its threshold is seen here
from .align import DLIB_TEMPLATE, align_face
from .errors import ModelUnavailableError
from .runtime import apply_torch_threads, release_freed_memory
from .types import Face

logger = logging.getLogger(__name__)


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
    takes the fastest float type here if it agrees with float32 (numeric.AGREEMENT_MIN_COSINE).
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
        if precision not in numeric.PRECISIONS or precision == "int8":
            choices = ", ".join(p for p in numeric.PRECISIONS if p != "int8")
            raise ValueError(f"precision must be one of {choices}, not {precision!r} (dlib's network is "
                             "convolutions; int8 quantises Linear layers only)")
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
        wanted = self.requested_precision
        if wanted == "auto":
            wanted = numeric.fastest_precision(self.device)
        probe = None
        if wanted != "fp32":
            # The same smooth colour images CLIP is probed with, as 0-255 pixels, then dlib's input layer.
            pixels = numeric.probe_batch(self.crop_size, None, (np.zeros(3, np.float32), np.ones(3, np.float32)))
            probe = self._normalise(pixels.to(self.device))
        choice = numeric.choose_precision(model, lambda m, batch: m(batch), probe, wanted, what="dlib's network")
        self._dtype, self.precision, self.agreement = choice.dtype, choice.precision, choice.agreement
        return choice.model

    def _normalise(self, pixels: Any) -> Any:
        """dlib's input layer on an (N, 3, H, W) tensor of 0-255 values: (pixel - mean) / 256."""
        return ((pixels.float() - self._mean) / 256.0).contiguous(memory_format=numeric.channels_last())

    def encode(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        arrays = numeric.check_crops(crops)
        if not arrays:
            return np.zeros((0, self.dim), dtype=np.float32)
        chunks = []
        for start in range(0, len(arrays), self.batch_size):
            part = arrays[start : start + self.batch_size]
            raw = self.forward(self.prepare(part))
            if self.mirror:
                count = len(part)
                chunks.append(numeric.l2_normalise(raw[:count]) + numeric.l2_normalise(raw[count:]))
            else:
                chunks.append(raw)
        return numeric.l2_normalise(np.concatenate(chunks))

    def prepare(self, crops: Sequence[np.ndarray]) -> Any:
        """The network's input: each crop at 150x150 and, with ``mirror``, their mirror images
        after them. For dlib's engine a list of images (one call to dlib for all); for torch's a
        normalised (2n or n, 3, 150, 150) tensor on the device, in the precision that runs."""
        arrays = [self._fit(a) for a in numeric.check_crops(crops)]
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
            batch = self._to_tensor([self._fit(a) for a in numeric.check_crops(batch)])
        with torch.inference_mode():
            descriptors = self._net(batch)
        return np.asarray(descriptors.float().cpu().numpy(), dtype=np.float32)

    def _fit(self, crop: np.ndarray) -> np.ndarray:
        if crop.shape[:2] != (self.crop_size, self.crop_size):
            crop = cv2.resize(crop, (self.crop_size, self.crop_size), interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(crop)
