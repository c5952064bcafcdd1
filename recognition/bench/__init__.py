"""How fast the recognition library runs, against the model's own limit.

    python -m recognition.bench                 # the full run (about 5 minutes on 2 cores)
    python -m recognition.bench --quick         # a minute: small galleries, fewer repeats
    python -m recognition.bench --json out.json

Measures, each as the median and 95th percentile of repeated runs after a warm-up:

- the physical limit: the core's float32 (and, where the CPU has bf16 instructions, bfloat16)
  matrix-multiply rate (recognition.bench.limit);
- the bare model forward (``Embedder.forward`` on a prepared batch) per backbone, per image at
  batch 1 and at the best batch size, in the precision the embedder chose (and float32 beside it),
  with its FLOPs counted from the network, the GFLOP/s achieved and their share of that peak;
- CLIP's image tower in other forms (section clip-variants: channels-last, oneDNN fusion, int8
  dynamic quantisation, bf16; torch.compile with --clip-compile), faster or not, agreeing or not;
- the YuNet detector per 640x480 frame with one face and with four;
- the library's whole check-in path (detect, align, embed, search) on the same frames, and its ratio
  to detector + bare forward;
- FAISS search, exact (flat) against approximate (IVF), per query and per batch of 16, for galleries
  of 1k to 1M face-like vectors, with recall@10 of the approximate index;
- rebuilding the index of a course of 500 students x 20 embeddings;
- the memory of a 1M-vector index, loaded the way a web worker loads it.

CLIP is measured with random weights (pretrained=None: none can be downloaded here); a forward
pass costs the same with any weights. Galleries of 100k vectors and more, and their approximate
indexes, are cached in --cache-dir (default /tmp/rollcall-bench) after the first run.
``--device-check`` measures both backbones on a CUDA device (recognition.bench.device) and fails
with "no CUDA device" where there is none. The Django-level figures (check-in through the API,
enrolment, workers, concurrency) are measured by
``python manage.py bench``, which reuses this module.
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..detect import FaceDetector
from ..embed import ClipEmbedder, DlibEmbedder, Embedder
from ..errors import ModelUnavailableError
from ..runtime import set_threads, thread_settings
from .clip_variants import measure_clip_variants
from .device import device_check
from .limit import add_limit_rows, measure_peaks
from .models import (
    benchmark_frames,
    crowd_frame,
    default_detector_model,
    default_faces_dir,
    default_liveness_model_dir,
    describe_embedder,
    frame_limit,
    jpeg,
    make_embedder,
    measure_forward,
    measure_frames,
    passes_per_face,
    sample_crop,
)
from .report import Report, Timing, cuda_library_rss_mb, load_average, machine_info, rss_mb, timed, timed_each
from .search import (
    COURSE,
    FACE_MODEL_NOTE,
    enrolled_probes,
    face_like_gallery,
    measure_rebuild,
    measure_search,
    size_label,
    stranger_probes,
)

# The pieces other benchmarks (manage.py bench) and the tests use, under the names they always had.
__all__ = [
    "COURSE",
    "DEFAULT_CACHE",
    "FACE_MODEL_NOTE",
    "FULL_BATCHES",
    "FULL_SIZES",
    "QUICK_BATCHES",
    "QUICK_SIZES",
    "Report",
    "Timing",
    "add_limit_rows",
    "benchmark_frames",
    "cuda_library_rss_mb",
    "default_detector_model",
    "default_faces_dir",
    "default_liveness_model_dir",
    "describe_embedder",
    "enrolled_probes",
    "face_like_gallery",
    "frame_limit",
    "jpeg",
    "load_average",
    "machine_info",
    "main",
    "measure_forward",
    "measure_peaks",
    "measure_search",
    "parse_args",
    "parse_ints",
    "passes_per_face",
    "rss_mb",
    "run",
    "sample_crop",
    "size_label",
    "stranger_probes",
    "thread_settings",
    "timed",
    "timed_each",
]

DEFAULT_CACHE = Path(tempfile.gettempdir()) / "rollcall-bench"


FULL_SIZES = (1_000, 10_000, 100_000, 1_000_000)


QUICK_SIZES = (1_000, 10_000)


FULL_BATCHES = (1, 2, 4, 8, 16, 32)


QUICK_BATCHES = (1, 8)


SECTIONS = ("forward", "frames", "search", "rebuild", "memory", "clip-variants")


def parse_ints(text: str) -> tuple[int, ...]:
    return tuple(int(float(part)) for part in text.split(",") if part.strip())


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m recognition.bench", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small galleries and fewer repeats (about a minute)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    configured = os.environ.get("ROLLCALL_BACKBONE", "clip")
    parser.add_argument("--backbone", default=configured if configured in ("clip", "dlib") else "clip",
                        choices=["clip", "dlib"],
                        help="the configured backbone: its dimension for search, its model for the check-in path")
    parser.add_argument("--forward-backbones", default="clip,dlib", help="backbones whose forward pass is timed")
    parser.add_argument("--clip-model", default=os.environ.get("ROLLCALL_CLIP_MODEL", "ViT-B-32"))
    parser.add_argument("--no-fp32", action="store_true", help="skip the float32 reference for CLIP")
    parser.add_argument("--batches", type=parse_ints, help="forward batch sizes (default 1,2,4,8,16,32; quick 1,8)")
    parser.add_argument("--sizes", type=parse_ints, help="search gallery sizes (default 1k,10k,100k,1M; quick 1k,10k)")
    parser.add_argument("--probes", type=int, help="search queries per size (default 200; quick 64)")
    parser.add_argument("--repeats", type=int, help="timed runs per measurement (default 20; quick 8)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first (default 2)")
    parser.add_argument("--budget", type=float, help="seconds at most per measurement (default 8; quick 3)")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads per library (OpenCV, torch, FAISS); 1 is what each app process uses")
    parser.add_argument("--sections", default="forward,frames,search,rebuild,memory",
                        help="any of forward,frames,search,rebuild,memory,clip-variants (not in the default)")
    parser.add_argument("--no-crowd", action="store_true",
                        help="frames: skip the 30-face class photo (six group photos tiled into 1920x960)")
    parser.add_argument("--clip-compile", action="store_true",
                        help="clip-variants: also torch.compile (inductor; minutes of compiling on a small CPU)")
    parser.add_argument("--device-check", action="store_true",
                        help="measure both backbones on the CUDA device (batch 64, check-in latency) and stop")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--faces-dir", type=Path, default=default_faces_dir())
    parser.add_argument("--detector-model", type=Path, default=default_detector_model())
    args = parser.parse_args(argv)
    quick = args.quick
    args.batches = args.batches or (QUICK_BATCHES if quick else FULL_BATCHES)
    args.sizes = args.sizes or (QUICK_SIZES if quick else FULL_SIZES)
    args.probes = args.probes or (64 if quick else 200)
    args.repeats = args.repeats or (8 if quick else 20)
    args.budget = args.budget or (3.0 if quick else 8.0)
    args.sections = {s.strip() for s in args.sections.split(",") if s.strip()}
    unknown = args.sections - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}: choose from {', '.join(SECTIONS)}")
    backbones = {b.strip() for b in args.forward_backbones.split(",") if b.strip()}
    if backbones - {"clip", "dlib"}:
        parser.error(f"--forward-backbones takes clip and/or dlib, not {args.forward_backbones!r}")
    if args.threads < 1 or args.repeats < 1 or args.probes < 1 or min(args.batches or (0,)) < 1:
        parser.error("--threads, --repeats, --probes and --batches must be at least 1")
    if min(args.sizes or (0,)) < 100:
        parser.error("--sizes must be at least 100 vectors each")
    return args


def run(args: argparse.Namespace, report: Report | None = None) -> Report:
    report = report or Report()
    report.machine.update(machine_info())  # imports torch: before its threads are set
    set_threads(args.threads)
    dims = {"clip": None, "dlib": DlibEmbedder.dim}
    report.config.update({"threads": args.threads, "backbone": args.backbone, "quick": bool(args.quick)})

    detector = None
    if args.detector_model and Path(args.detector_model).is_file():
        detector = FaceDetector(args.detector_model)
    else:
        report.notes.append("No YuNet model found (--detector-model): detector and check-in path not measured.")
    frames = benchmark_frames(args.faces_dir) if detector is not None else {}
    if detector is not None and not frames:
        report.notes.append(f"No test faces at {args.faces_dir} (--faces-dir): frames not measured.")
    crowd = crowd_frame(args.faces_dir) if detector is not None and not args.no_crowd else None

    embedders: dict[str, Embedder] = {}
    timed_backbones = [b.strip() for b in args.forward_backbones.split(",") if b.strip()]
    wanted = list(timed_backbones)
    if "frames" in args.sections and args.backbone not in wanted:
        wanted.append(args.backbone)
    for backbone in wanted:
        try:
            embedders[backbone] = make_embedder(backbone, clip_model=args.clip_model)
        except ModelUnavailableError as exc:
            report.notes.append(f"{backbone} not measured: {exc}")
    if "clip" in embedders:
        dims["clip"] = embedders["clip"].dim

    peaks: dict[str, float] = {}
    if "forward" in args.sections:
        peaks = measure_peaks(report, threads=args.threads, budget_s=0.5 if args.quick else 1.5)
        for backbone, embedder in embedders.items():
            if backbone not in timed_backbones:
                continue
            crop = sample_crop(embedder, frames, detector)
            report.notes.append(f"forward {backbone}: {describe_embedder(embedder)}")
            label = backbone
            if isinstance(embedder, ClipEmbedder):
                label = f"clip {args.clip_model} {embedder.precision}"
            per_image = measure_forward(report, embedder, crop, label=label, batches=args.batches,
                                        repeats=args.repeats, warmup=args.warmup, budget_s=args.budget)
            add_limit_rows(report, embedder, crop, label=label, per_image_ms=per_image, peaks=peaks)
            if isinstance(embedder, ClipEmbedder) and embedder.precision != "fp32" and not args.no_fp32:
                reference = make_embedder("clip", clip_model=args.clip_model, precision="fp32")
                fp32 = measure_forward(report, reference, crop, label=f"clip {args.clip_model} fp32",
                                       batches=[b for b in args.batches if b in (1, max(args.batches))],
                                       repeats=max(3, args.repeats // 4), warmup=1, budget_s=args.budget)
                fast = report.find("forward", f"clip {args.clip_model} {embedder.precision} batch 1")
                if fast and fast.value and 1 in fp32:
                    speedup = fp32[1] / fast.value
                    report.notes.append(f"CLIP {embedder.precision} is {speedup:.2f}x as fast as fp32 at batch 1")
                del reference
                gc.collect()

    if "clip-variants" in args.sections and "clip" in embedders:
        clip = embedders["clip"]
        reference = make_embedder("clip", clip_model=args.clip_model, precision="fp32")
        measure_clip_variants(report, reference, sample_crop(clip, frames, detector),  # type: ignore[arg-type]
                              current=clip.precision, batches=args.batches,  # type: ignore[attr-defined]
                              repeats=args.repeats, warmup=args.warmup, budget_s=args.budget,
                              compile=args.clip_compile)
        del reference
        gc.collect()

    if "frames" in args.sections and detector is not None and frames and args.backbone in embedders:
        measured = dict(frames)
        if crowd is not None:
            measured["class photo (30 faces)"] = crowd
            report.notes.append("class photo (30 faces): six group photos of ../shared/faces/group tiled 3 x 2 "
                                "into one 1920x960 frame (30 faces in them; the detector row says how many "
                                "YuNet found)")
        measure_frames(report, detector, embedders[args.backbone], measured, repeats=args.repeats,
                       warmup=args.warmup, budget_s=args.budget)

    dim = dims.get(args.backbone) or 512
    if "search" in args.sections:
        report.notes.append(FACE_MODEL_NOTE)
        measure_search(report, args.sizes, dim, backbone=f"bench-{args.backbone}", cache_dir=args.cache_dir,
                       probes=args.probes, budget_s=args.budget, memory="memory" in args.sections)
    if "rebuild" in args.sections:
        measure_rebuild(report, dim, backbone=f"bench-{args.backbone}", repeats=max(3, args.repeats // 4),
                        budget_s=args.budget)
    report.config["thread_pools"] = thread_settings()
    report.machine["load_end"] = load_average()
    return report


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device_check:
        return device_check(args)
    report = run(args)
    print(report.table())
    if args.json:
        report.write_json(args.json)
        print(f"\nJSON written to {args.json}")
    return 0
