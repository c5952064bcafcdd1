"""The number type a model runs in (the fastest that agrees with float32), and the embedders' shared helpers."""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from .runtime import kernel_cpu_flags

logger = logging.getLogger(__name__)


PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
"""int8: dynamic quantisation of the Linear layers (weights int8, activations quantised per batch),
for transformer models (CLIP) on CPUs; the embedders that are mostly convolutions refuse it."""

INT8_CPU_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})
"""The int8 dot-product instructions that make dynamic int8 pay on a CPU. Measured (BENCHMARKS.md,
issue 15): CLIP ViT-B-32's image tower 2.0-2.3x as fast as float32 with it, cosine 0.99984."""


AGREEMENT_MIN_COSINE = 0.999


def fastest_precision(device: str = "cpu", *, int8: bool = False) -> str:
    """The fastest number type a model runs in here: "fp16" on a CUDA device; "bf16" on a CPU
    with bf16 matrix instructions (AMX or AVX512-BF16), which oneDNN uses for bf16 matmuls; where
    ``int8`` (a model of Linear layers: CLIP) and the CPU has int8 dot products (VNNI) but no bf16,
    "int8"; "fp32" elsewhere (bf16 emulated on older CPUs is slower than fp32, and int8 without
    VNNI has not been measured to pay)."""
    if device.startswith("cuda"):
        return "fp16"
    if device != "cpu":
        return "fp32"
    import torch

    flags = cpu_flags()
    if torch.backends.mkldnn.is_available() and flags & {"amx_bf16", "avx512_bf16"}:
        return "bf16"
    if int8 and flags & INT8_CPU_FLAGS and _quantized_engine() is not None:
        return "int8"
    return "fp32"


def _quantized_engine() -> str | None:
    """The CPU backend torch's dynamic quantisation runs on here (x86 or fbgemm), if any."""
    import torch

    if not hasattr(torch.ao.quantization, "quantize_dynamic"):  # a later torch may drop it (torchao)
        return None
    engines = [e for e in torch.backends.quantized.supported_engines if e in ("x86", "fbgemm")]
    return engines[0] if engines else None


def quantize_linear_int8(model: Any) -> Any:
    """A copy of ``model`` with its Linear layers dynamically quantised to int8."""
    import torch
    from torch import nn

    engine = _quantized_engine()
    if engine is None:
        raise RuntimeError("this torch build has no dynamic quantisation on an x86 engine")
    torch.backends.quantized.engine = engine
    with warnings.catch_warnings():
        # torch 2.14 marks its quantised tensor constructors deprecated (to move to torchao); the
        # pinned torch runs them, and choose_precision checks the result against float32 anyway.
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*", category=UserWarning)
        warnings.filterwarnings("ignore", message="torch.ao.quantization is deprecated", category=DeprecationWarning)
        return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {nn.Linear}, dtype=torch.qint8)


def cast_copy(model: Any, dtype: Any) -> Any:
    """A copy of ``model`` with its floating-point tensors in ``dtype``, made without a float32 copy
    first (``copy.deepcopy(model).to(dtype)`` holds both: for CLIP ViT-B-32, 350 MB more at peak)."""
    import torch

    memo: dict[int, Any] = {}
    for parameter in model.parameters():
        cast = parameter.detach().to(dtype, copy=True) if parameter.is_floating_point() else parameter.detach().clone()
        memo[id(parameter)] = torch.nn.Parameter(cast, requires_grad=parameter.requires_grad)
    for buffer in model.buffers():
        memo[id(buffer)] = buffer.to(dtype, copy=True) if buffer.is_floating_point() else buffer.clone()
    return copy.deepcopy(model, memo).to(dtype)


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


def probe_images(size: int, count: int = 4) -> list[np.ndarray]:
    """``count`` fixed smooth colour images (uint8, size x size x 3) to compare two ways of running
    a model on: the same every time (the first four are probe_batch's)."""
    rng = np.random.default_rng(20240607)
    coarse = rng.integers(0, 256, size=(count, 8, 8, 3), dtype=np.uint8)
    return [cv2.resize(c, (size, size), interpolation=cv2.INTER_CUBIC) for c in coarse]


def probe_batch(size: int, preprocess: Any, normalise: tuple[np.ndarray, np.ndarray] | None) -> Any:
    """A fixed batch of four smooth, face-sized colour images to compare precisions on."""
    import torch

    images = probe_images(size)
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
    # int8 keeps float32 inputs and outputs: only the Linear layers' arithmetic is int8.
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "int8": torch.float32}[wanted]
    with torch.inference_mode():
        reference = run(model, probe).float()
        try:
            if wanted == "int8":
                reduced_model = quantize_linear_int8(model)
            else:
                reduced_model = cast_copy(model, dtype)
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
