"""CLIP's image tower in other forms: what would be faster than the path the embedder runs, and agree.

Each variant is timed per image at the given batch sizes and compared with float32 on the fixed
probe batch of recognition.precision (cosine, the same rule as the embedder's precision choice:
>= AGREEMENT_MIN_COSINE). A variant is worth keeping only if it is faster than the embedder's own
path (by MIN_SPEEDUP at every batch size measured: smaller gains are within this machine's noise)
AND agrees; every measurement is reported either way. The variants run round robin, one run of
each per round, so that a drifting load falls on all of them alike. Variants:

- bf16: the embedder's own choice where the CPU has bf16 matrix instructions (measured only there);
- channels-last: the patch convolution's input and weights in NHWC (the only convolution in a ViT);
- oneDNN fusion: ``torch.jit.trace`` + ``torch.jit.freeze`` + ``optimize_for_inference`` (folds
  and fuses for oneDNN; no extra package: ipex is not installed);
- int8 dynamic: ``torch.ao.quantization.quantize_dynamic`` of the Linear layers (weights int8,
  activations quantised per batch), the candidate for CPUs without bf16; measured on any CPU;
- torch.compile (inductor, needs a C++ compiler; only with ``compile=True``: minutes of compiling).

CLIP runs with random weights here (pretrained=None): timings hold for any weights, and so does
the arithmetic of agreement, though trained weights may agree a little differently.
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import precision as numeric
from ..embed import ClipEmbedder
from .limit import bf16_matmul_available
from .report import Report, Timing

# Faster means at least this much faster at every batch measured: on a shared machine two runs of
# the same code differ by several per cent, and a smaller gain would not be told from the noise.
MIN_SPEEDUP = 1.10


def _variants(model: Any, example: Any, *, bf16: bool, compile: bool) -> list[tuple[str, Callable[[], Any], Any]]:
    """(name, build -> callable(batch) -> features, input dtype) for each variant to try."""
    import torch
    from torch import nn

    def plain(dtype: Any) -> Callable[[], Any]:
        return lambda: copy.deepcopy(model).to(dtype)

    def channels_last(dtype: Any) -> Callable[[], Any]:
        def build() -> Any:
            converted = copy.deepcopy(model).to(dtype).to(memory_format=torch.channels_last)
            return lambda x: converted(x.contiguous(memory_format=torch.channels_last))
        return build

    def fused(dtype: Any) -> Callable[[], Any]:
        def build() -> Any:
            converted = copy.deepcopy(model).to(dtype).eval()
            with torch.inference_mode(False), torch.no_grad():
                traced = torch.jit.trace(converted, example.to(dtype), check_trace=False)
                frozen = torch.jit.optimize_for_inference(torch.jit.freeze(traced))
            return frozen
        return build

    def int8() -> Any:
        return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {nn.Linear}, dtype=torch.qint8)

    def compiled(dtype: Any) -> Callable[[], Any]:
        return lambda: torch.compile(copy.deepcopy(model).to(dtype), dynamic=False)

    dtypes = [("fp32", torch.float32)] + ([("bf16", torch.bfloat16)] if bf16 else [])
    found: list[tuple[str, Callable[[], Any], Any]] = []
    for name, dtype in dtypes:
        found.append((name, plain(dtype), dtype))
        found.append((f"{name} channels-last", channels_last(dtype), dtype))
        found.append((f"{name} oneDNN fusion (jit freeze)", fused(dtype), dtype))
    found.append(("int8 dynamic (Linear layers)", int8, torch.float32))
    if compile:
        for name, dtype in dtypes:
            found.append((f"{name} torch.compile", compiled(dtype), dtype))
    return found


def measure_clip_variants(report: Report, embedder: ClipEmbedder, crop: np.ndarray, *, current: str,
                          batches: Sequence[int], repeats: int, warmup: int, budget_s: float,
                          compile: bool = False) -> dict[str, Any]:
    """Rows "clip-variants" for a float32 ``embedder``, against ``current`` (the precision the
    embedder picks with precision="auto"); returns {"kept": [faster than current and agreeing], ...}."""
    import torch

    embedder.load()
    if embedder.precision != "fp32":
        raise ValueError("measure_clip_variants needs a float32 embedder (precision='fp32') as the reference")
    reference_model = embedder.model.eval()
    probe = numeric.probe_batch(embedder.crop_size, embedder._preprocess, embedder._normalise)
    with torch.inference_mode():
        reference = reference_model(probe).float()
    crops = embedder.prepare([crop]).float()
    results: dict[str, dict[int, float]] = {}
    agreement: dict[str, float] = {}
    notes: dict[str, str] = {}
    built: dict[str, tuple[Any, Any]] = {}
    for name, build, dtype in _variants(reference_model, probe[:1], bf16=bf16_matmul_available(), compile=compile):
        start = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch.jit's and quantisation's deprecation notices
                forward = build()
                with torch.inference_mode():
                    got = forward(probe.to(dtype)).float()
        except Exception as exc:  # a variant this build cannot run is reported, not fatal
            report.notes.append(f"CLIP variant {name}: failed ({type(exc).__name__}: {str(exc)[:120]})")
            continue
        made = time.perf_counter() - start
        agreement[name] = float(torch.nn.functional.cosine_similarity(got, reference, dim=1).min())
        notes[name] = f"made in {made:.1f} s" if made >= 0.5 else ""
        built[name] = (forward, dtype)
        results[name] = {}
    for batch in batches:
        # Round robin: one run of each variant per round, so that the machine's load, which drifts
        # over seconds here, falls on all of them alike.
        inputs = {name: crops.expand(batch, -1, -1, -1).contiguous().to(dtype) for name, (_, dtype) in built.items()}
        rounds = max(3, repeats // max(1, batch // 4))
        seconds: dict[str, list[float]] = {name: [] for name in built}
        deadline = time.perf_counter() + budget_s * len(built)
        with torch.inference_mode():
            for round_ in range(warmup + rounds):
                for name, (forward, _) in built.items():
                    start = time.perf_counter()
                    forward(inputs[name])
                    if round_ >= warmup:
                        seconds[name].append(time.perf_counter() - start)
                if round_ >= warmup + 2 and time.perf_counter() > deadline:
                    break
        for name in built:
            timing = Timing.of(seconds[name])
            results[name][batch] = timing.median / batch
            report.add_timing("clip-variants", f"{name} batch {batch}", timing, "ms/image", per=batch,
                              note="round robin with the other variants")
    del built
    baseline = results.get(current, {})
    kept: list[str] = []
    for name, per_batch in results.items():
        agrees = agreement[name] >= numeric.AGREEMENT_MIN_COSINE
        speedups = {b: baseline[b] / ms for b, ms in per_batch.items() if b in baseline and ms > 0}
        faster = bool(speedups) and min(speedups.values()) >= MIN_SPEEDUP and name != current
        if faster and agrees:
            kept.append(name)
        shown = ", ".join(f"{speedups[b]:.2f}x at batch {b}" for b in sorted(speedups))
        verdict = ("the embedder's own path" if name == current else
                   "worth keeping" if faster and agrees else
                   "not kept: " + ("disagrees" if not agrees else f"not {MIN_SPEEDUP:.2f}x as fast at every batch"))
        detail = "; ".join(part for part in (f"cosine to fp32 {agreement[name]:.5f}",
                                             f"speed vs {current}: {shown}" if shown else "", verdict,
                                             notes[name]) if part)
        report.add("clip-variants", f"{name}: verdict", min(speedups.values()) if speedups else None, "x",
                   note=detail)
    report.notes.append(f"CLIP variants (random weights, pretrained=None) against the embedder's {current} path: "
                        + (f"faster and agreeing: {', '.join(kept)}" if kept else "none faster that agrees"))
    return {"kept": kept, "agreement": agreement, "per_image": results}

