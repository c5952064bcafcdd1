"""The number type a model runs in (the fastest that agrees with float32), and the embedders' shared helpers."""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from .runtime import kernel_cpu_flags

logger = logging.getLogger(__name__)


PRECISIONS = ("auto", "fp32", "bf16", "fp16")


AGREEMENT_MIN_COSINE = 0.999


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
    flags = cpu_flags()
    return "bf16" if flags & {"amx_bf16", "avx512_bf16"} else "fp32"


def cpu_flags() -> set[str]:
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


def check_crops(crops: Sequence[np.ndarray]) -> list[np.ndarray]:
    arrays = []
    for crop in crops:
        array = np.asarray(crop)
        if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
            raise ValueError(f"crops must be H x W x 3 uint8 RGB arrays, got {array.shape}")
        arrays.append(array)
    return arrays


def probe_batch(size: int, preprocess: Any, normalise: tuple[np.ndarray, np.ndarray] | None) -> Any:
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


def channels_last() -> Any:
    import torch

    return torch.channels_last


@dataclass(frozen=True)
class PrecisionChoice:
    """The model to run, in which type, and how well that type agreed with float32 on the probe."""

    model: Any
    dtype: Any  # a torch dtype
    precision: str  # "fp32", "bf16" or "fp16"
    agreement: float | None  # lowest cosine to float32 on the probe; None where float32 runs


def choose_precision(
    model: Any, run: Callable[[Any, Any], Any], probe: Any, wanted: str, *, what: str
) -> PrecisionChoice:
    """``model`` in ``wanted`` if its outputs on ``probe`` agree with float32 (cosine of every row
    >= AGREEMENT_MIN_COSINE), else float32. ``run(model, batch)`` is one forward pass. The float32
    model is left intact for the fallback; a type the device or build cannot run falls back too."""
    import torch

    if wanted == "fp32":
        return PrecisionChoice(model, torch.float32, "fp32", None)
    dtype = torch.bfloat16 if wanted == "bf16" else torch.float16
    with torch.inference_mode():
        reference = run(model, probe).float()
        try:
            reduced_model = copy.deepcopy(model).to(dtype)
            reduced = run(reduced_model, probe.to(dtype)).float()
        except RuntimeError as exc:
            logger.warning("%s in %s failed (%s): running float32", what, wanted, exc)
            return PrecisionChoice(model, torch.float32, "fp32", None)
        cosine = torch.nn.functional.cosine_similarity(reduced, reference, dim=1)
    agreement = float(cosine.min())
    if not agreement >= AGREEMENT_MIN_COSINE:  # also catches NaN
        logger.warning("%s in %s agrees with float32 only to cosine %.5f (< %s): running float32",
                       what, wanted, agreement, AGREEMENT_MIN_COSINE)
        return PrecisionChoice(model, torch.float32, "fp32", agreement)
    return PrecisionChoice(reduced_model, dtype, wanted, agreement)
