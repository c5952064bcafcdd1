"""The one-command GPU check: ``python -m recognition.bench --device-check``.

Where a CUDA device is lent, it reports for both backbones (models on the GPU, as with
``ROLLCALL_DEVICE=cuda``): batched faces per second at batch 64 (dlib: face + mirror per face), the
GPU's matmul peak in the precision the embedder picked, the forward's share of it, and the library's
one-face check-in latency (JPEG decode, YuNet on the CPU, alignment, the model on the GPU, search).
Anchor: InsightFace-REST serves about 2,000 faces/s at batch 64 on two RTX 2080s.
Without a CUDA device it says so and exits with status 2: nothing is measured on a CPU by mistake.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np

from ..detect import FaceDetector
from ..embed import Embedder
from ..flops import matmul_peak
from ..image import load_image
from ..index import FaceIndex
from ..pipeline import Recognizer
from .limit import flops_per_image
from .models import benchmark_frames, describe_embedder, jpeg, make_embedder, passes_per_face, sample_crop
from .report import Report, machine_info, timed
from .search import COURSE, face_like_gallery

NO_CUDA = "no CUDA device: the device check needs a GPU (torch.cuda.is_available() is False here)"

BATCH = 64


def cuda_device() -> str | None:
    """"cuda" where torch sees a CUDA device, else None."""
    try:
        import torch
    except ImportError:
        return None
    return "cuda" if torch.cuda.is_available() else None


def device_check(args: argparse.Namespace, *, out: Any = None, err: Any = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    device = cuda_device()
    if device is None:
        print(NO_CUDA, file=err)
        return 2
    import torch

    report = Report()
    report.machine.update(machine_info())
    report.machine["gpu"] = torch.cuda.get_device_name(0)
    detector = FaceDetector(args.detector_model) if args.detector_model else None
    frames = benchmark_frames(args.faces_dir) if detector is not None else {}
    for backbone in ("dlib", "clip"):
        embedder = make_embedder(backbone, clip_model=args.clip_model, device=device)
        report.notes.append(f"{backbone}: {describe_embedder(embedder)}")
        _measure(report, backbone, embedder, detector, frames, device=device, repeats=args.repeats)
        del embedder
        torch.cuda.empty_cache()
    print(report.table(), file=out)
    if args.json:
        report.write_json(args.json)
    return 0


def _measure(report: Report, backbone: str, embedder: Embedder, detector: FaceDetector | None,
             frames: dict[str, np.ndarray], *, device: str, repeats: int) -> None:
    crop = sample_crop(embedder, frames, detector)
    prepared = embedder.prepare([crop] * BATCH)  # type: ignore[attr-defined]
    forward = embedder.forward  # type: ignore[attr-defined]

    def batch() -> None:
        forward(prepared)  # returns numpy: the copy back synchronises
    timing = timed(batch, warmup=3, repeats=repeats, budget_s=20.0)
    faces_per_s = BATCH / (timing.median / 1000.0)
    report.add_timing("gpu", f"{backbone}: forward, batch of {BATCH} faces", timing, "ms",
                      note=f"{passes_per_face(embedder)} pass(es) per face, {getattr(embedder, 'precision', '?')}")
    report.add("gpu", f"{backbone}: faces per second at batch {BATCH}", faces_per_s, "1/s",
               ratio=faces_per_s / 2000.0, note="ratio to 2,000 faces/s (the target; InsightFace-REST's anchor)")
    precision = getattr(embedder, "precision", "fp32")
    peak = matmul_peak(precision if precision in ("fp32", "bf16", "fp16") else "fp32", size=4096,
                       device=device, budget_s=2.0)
    flops = flops_per_image(embedder, crop) * passes_per_face(embedder)
    achieved = flops * faces_per_s / 1e9
    report.add("gpu", f"matmul {peak.dtype} peak", peak.gflops, "GFLOP/s", note="torch.matmul 4096x4096")
    report.add("gpu", f"{backbone}: achieved at batch {BATCH}", achieved, "GFLOP/s", ratio=achieved / peak.gflops,
               note=f"ratio: share of the {peak.dtype} peak")
    if detector is not None and "1 face" in frames:
        gallery = face_like_gallery(COURSE[0] * COURSE[1], embedder.dim, seed=11)
        index = FaceIndex(embedder.dim, backbone=embedder.name)
        index.add(np.arange(len(gallery.vectors), dtype=np.int64), gallery.vectors)
        recognizer = Recognizer(detector, embedder)
        data = jpeg(frames["1 face"])

        def check_in() -> None:
            rgb = load_image(data)
            found = recognizer.embed_faces(rgb)
            if found:
                index.search(np.stack([vector for _, vector in found]), 3)
        path = timed(check_in, warmup=3, repeats=repeats, budget_s=20.0)
        report.add_timing("gpu", f"{backbone}: check-in, 1 face (decode, detect, align, embed, search)", path,
                          note=f"models on {device}, YuNet on the CPU")
