"""A model's arithmetic and the machine's: FLOPs of a torch forward, and the matmul peak.

For the benchmark's "physical limit" rows: ``count_flops`` counts a forward's floating-point
operations from the layers it runs (convolutions and linear maps, 2 per multiply-add: what
dominates a CNN or a ViT; pooling, activations and additions are left out and are < 1% here),
``matmul_peak`` measures what one torch matrix multiply achieves on this machine, in a given
float type and thread count. Achieved GFLOP/s over the peak is the share of the limit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class FlopCount:
    """The FLOPs of one forward of a batch, in total and per layer (name, kind, FLOPs)."""

    total: int
    batch: int
    layers: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def per_sample(self) -> float:
        return self.total / self.batch if self.batch else 0.0


def count_flops(module: Any, batch: Any) -> FlopCount:
    """Run ``module(batch)`` once under forward hooks and count each Conv*d, Linear and
    MultiheadAttention projection it ran: 2 x output elements x multiply-adds per element.

    Exact for the shapes it ran (a convolution's padding and stride are in its output's size).
    Attention's score and weighting products (``softmax(QK^T)V``) are counted too when the
    module is torch's MultiheadAttention."""
    import torch
    from torch import nn

    layers: list[tuple[str, str, int]] = []
    handles = []

    def conv_hook(name: str) -> Any:
        def hook(layer: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
            assert isinstance(layer, nn.modules.conv._ConvNd)
            per_output = (layer.in_channels // layer.groups) * _prod(layer.kernel_size)
            layers.append((name, type(layer).__name__, 2 * output.numel() * per_output))
        return hook

    def linear_hook(name: str) -> Any:
        def hook(layer: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
            assert isinstance(layer, nn.Linear)
            layers.append((name, "Linear", 2 * output.numel() * layer.in_features))
        return hook

    def attention_hook(name: str) -> Any:
        def hook(layer: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
            assert isinstance(layer, nn.MultiheadAttention)
            query, key = inputs[0], inputs[1]
            batch_first = layer.batch_first
            length_q = query.shape[1] if batch_first else query.shape[0]
            length_k = key.shape[1] if batch_first else key.shape[0]
            samples = query.shape[0] if batch_first else query.shape[1]
            dim = layer.embed_dim
            projections = 2 * samples * (length_q + 2 * length_k) * dim * dim  # q, k, v
            scores = 2 * 2 * samples * length_q * length_k * dim  # QK^T and the weighted sum of V
            out = 2 * samples * length_q * dim * dim  # out_proj (a Linear inside, not hooked twice)
            layers.append((name, "MultiheadAttention", projections + scores + out))
        return hook

    attention_children: set[str] = set()
    for name, layer in module.named_modules():
        if isinstance(layer, nn.MultiheadAttention):
            handles.append(layer.register_forward_hook(attention_hook(name)))
            attention_children.update(f"{name}.{child}" for child, _ in layer.named_modules() if child)
    for name, layer in module.named_modules():
        if name in attention_children:
            continue
        if isinstance(layer, nn.modules.conv._ConvNd):
            handles.append(layer.register_forward_hook(conv_hook(name)))
        elif isinstance(layer, nn.Linear):
            handles.append(layer.register_forward_hook(linear_hook(name)))
    try:
        with torch.inference_mode():
            module(batch)
    finally:
        for handle in handles:
            handle.remove()
    return FlopCount(total=sum(f for _, _, f in layers), batch=int(batch.shape[0]), layers=layers)


def _prod(values: Any) -> int:
    result = 1
    for value in values:
        result *= int(value)
    return result


@dataclass(frozen=True)
class MatmulPeak:
    dtype: str
    threads: int
    size: int
    gflops: float  # the best of the timed repeats
    seconds: float  # the best repeat's time


def matmul_peak(dtype: str = "fp32", *, size: int = 1024, threads: int | None = None,
                budget_s: float = 1.0, device: str = "cpu") -> MatmulPeak:
    """The best rate of a square ``size`` matrix multiply (2 * size**3 FLOPs) in ``dtype``
    ("fp32", "bf16" or "fp16") over about ``budget_s`` seconds, on ``threads`` torch threads
    (default: as now). A bf16 result on a CPU without bf16 instructions measures emulation."""
    import torch

    types = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    if dtype not in types:
        raise ValueError(f"dtype must be one of {', '.join(types)}, not {dtype!r}")
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        generator = torch.Generator().manual_seed(0)
        a = torch.randn(size, size, generator=generator).to(device=device, dtype=types[dtype])
        b = torch.randn(size, size, generator=generator).to(device=device, dtype=types[dtype])

        def run() -> float:
            start = time.perf_counter()
            torch.matmul(a, b)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            return time.perf_counter() - start

        run()  # warm-up: oneDNN/cuBLAS pick their kernels on the first call
        best = run()
        deadline = time.perf_counter() + budget_s
        while time.perf_counter() < deadline:
            best = min(best, run())
        return MatmulPeak(dtype=dtype, threads=torch.get_num_threads(), size=size,
                          gflops=2 * size**3 / best / 1e9, seconds=best)
    finally:
        torch.set_num_threads(previous)
