"""The physical limit under the models: the core's matrix-multiply rate, each forward's FLOPs, the share.

``measure_peaks`` adds a "peak" row per float type this CPU has matrix instructions for (float32
always; bfloat16 only where the CPU has AVX512-BF16 or AMX, detected as recognition.precision does,
never assumed: emulated bf16 is no limit worth measuring against). ``add_limit_rows`` adds, for a
backbone's forward, the FLOPs of one image counted from the network (recognition.flops.count_flops),
the GFLOP/s it achieved at batch 1 and at its best batch, and that rate's share of its precision's
peak (share = achieved / peak, to the rounding of the table).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import precision as numeric
from ..embed import ClipEmbedder, DlibEmbedder, Embedder
from ..flops import count_flops, matmul_peak
from .report import Report

BF16_FLAGS = {"amx_bf16", "avx512_bf16"}


def bf16_matmul_available() -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware (oneDNN's AVX512-BF16 or AMX kernels)."""
    import torch

    return bool(torch.backends.mkldnn.is_available() and numeric.cpu_flags() & BF16_FLAGS)


def measure_peaks(report: Report, *, threads: int, budget_s: float = 1.0, size: int = 1024) -> dict[str, float]:
    """Rows "peak": matmul GFLOP/s per float type this CPU has, on ``threads`` threads; returns
    {precision: GFLOP/s}."""
    peaks: dict[str, float] = {}
    dtypes = ["fp32"] + (["bf16"] if bf16_matmul_available() else [])
    for dtype in dtypes:
        peak = matmul_peak(dtype, size=size, threads=threads, budget_s=budget_s)
        peaks[dtype] = peak.gflops
        report.add("peak", f"matmul {dtype}, {peak.threads} thread(s)", peak.gflops, "GFLOP/s",
                   note=f"torch.matmul {size}x{size}, best of {budget_s:g} s: the core's limit in {dtype}")
    if "bf16" not in peaks:
        report.notes.append("No bf16 matrix instructions on this CPU (no AVX512-BF16 or AMX): bf16 peak not "
                            "measured, and the models run float32.")
    return peaks


def flops_per_image(embedder: Embedder, crop: np.ndarray) -> float:
    """FLOPs of one image's forward (one pass: dlib's mirror is a second image), counted from the
    network on a prepared batch. dlib's own engine runs the same network: counted on the torch copy."""
    module, batch = _module_and_batch(embedder, crop)
    return count_flops(module, batch).per_sample


def _module_and_batch(embedder: Embedder, crop: np.ndarray) -> tuple[Any, Any]:
    if isinstance(embedder, ClipEmbedder):
        return embedder.model, embedder.prepare([crop])
    if isinstance(embedder, DlibEmbedder):
        if embedder.engine != "torch":
            embedder = DlibEmbedder(engine="torch", precision="fp32", mirror=False)
        embedder.load()
        return embedder._net, embedder.prepare([crop])
    raise TypeError(f"no network to count in {embedder.name}")


def add_limit_rows(report: Report, embedder: Embedder, crop: np.ndarray, *, label: str,
                   per_image_ms: dict[int, float], peaks: dict[str, float]) -> dict[str, float]:
    """Rows "forward": FLOPs per image, achieved GFLOP/s at batch 1 and the best batch, and the
    share of the embedder's precision's peak. Returns {"gflop", "achieved", "share"} of the best."""
    flops = flops_per_image(embedder, crop)
    precision = getattr(embedder, "precision", "fp32")
    engine = getattr(embedder, "engine", "torch")
    report.add("forward", f"{label} FLOPs per image", flops / 1e9, "GFLOP",
               note="counted from the network (recognition.flops.count_flops: convolutions, linear maps, "
                    "attention)" + ("; dlib's mirror is a second image" if isinstance(embedder, DlibEmbedder)
                                    else ""))
    peak = peaks.get(precision)
    if engine == "dlib":
        peak = peaks.get("fp32")  # dlib's own code computes in float32
    best = min(per_image_ms, key=lambda b: per_image_ms[b])
    result: dict[str, float] = {"gflop": flops / 1e9}
    for name, batch in (("batch 1", 1), ("best batch", best)):
        if batch not in per_image_ms:
            continue
        achieved = flops / (per_image_ms[batch] / 1000.0) / 1e9
        share = achieved / peak if peak else None
        note = f"at batch {batch}, {precision}" + (f"; share of the {precision} peak ({peak:.0f} GFLOP/s)"
                                                    if peak else "; no peak measured for this precision")
        report.add("forward", f"{label} achieved, {name}", achieved, "GFLOP/s", ratio=share, note=note)
        if share is not None:
            report.add("forward", f"{label} share of peak, {name}", share, "fraction", note=note)
        if name == "best batch":
            result.update({"achieved": achieved, "share": share or 0.0})
    return result

