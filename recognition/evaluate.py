"""Reproduce the paper's evaluation on a labelled dataset, with backbones side by side.

    python -m recognition.evaluate DATASET --out eval-out --backbones dlib,clip --open-set UNKNOWN_DIR

DATASET is the paper's layout (<class>/train/ and <class>/val/, images or one video each, or
<class>/train.mp4 and <class>/val.mp4) or a flat one (<class>/*.jpg, split into gallery and probes
with --seed). Writes, per backbone, grid_search_results.csv (k1,k2,threshold,precision,recall,f1,
tp,fp,tn,fn), the best point's tables and figures, the open-set sweep, the threshold calibrated
from the gallery beside the default, scalability and (with --augment) the augmentation experiment,
all gathered in report.md and report.json. Embeddings are cached per backbone and file
(--cache-dir), so a rerun takes seconds.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recognition.detect import FaceDetector, resolve_detector_model
from recognition.errors import RecognitionError
from recognition.runtime import set_threads

from .evaluation import (
    BackboneSpec,
    DatasetError,
    EmbeddingCache,
    EvaluationSettings,
    SamplingOptions,
    evaluate,
    load_dataset,
    threshold_range,
)

PROG = "python -m recognition.evaluate"


def _default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rollcall" / "evaluation"


@dataclass(frozen=True)
class Defaults:
    """What the options default to: the environment here, Django's settings in the management command."""

    backbones: str = "clip,dlib"
    clip_model: str = "ViT-B-32"
    clip_pretrained: str = "openai"
    clip_checkpoint: str | None = None
    device: str = "cpu"
    dlib_engine: str = "torch"
    detector_model: str | None = None
    model_dir: str = str(Path("var") / "models")
    cache_dir: str = str(_default_cache())

    @classmethod
    def from_environment(cls) -> Defaults:
        env = os.environ
        return cls(
            clip_model=env.get("ROLLCALL_CLIP_MODEL", cls.clip_model),
            clip_pretrained=env.get("ROLLCALL_CLIP_PRETRAINED", cls.clip_pretrained),
            clip_checkpoint=env.get("ROLLCALL_CLIP_CHECKPOINT") or None,
            device=env.get("ROLLCALL_DEVICE", cls.device),
            dlib_engine=env.get("ROLLCALL_DLIB_ENGINE", cls.dlib_engine),
            detector_model=env.get("ROLLCALL_DETECTOR_MODEL") or None,
            model_dir=env.get("ROLLCALL_MODEL_DIR", cls.model_dir),
        )


def _int_range(text: str) -> tuple[int, ...]:
    """A range "1-9" or a list "1,3,5"."""
    try:
        if "-" in text and "," not in text:
            low, high = (int(part) for part in text.split("-", 1))
            values = tuple(range(low, high + 1))
        else:
            values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a range like 1-9 or a list like 1,3,5") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give positive integers")
    return values


def _float_range(text: str) -> tuple[float, ...]:
    """A range "start:stop:step", both ends included."""
    try:
        start, stop, step = (float(part) for part in text.split(":"))
        return tuple(threshold_range(start, stop, step).tolist())
    except ValueError as exc:
        message = f"{text!r} is not start:stop:step with stop >= start and step > 0 ({exc})"
        raise argparse.ArgumentTypeError(message) from None


def add_arguments(parser: argparse.ArgumentParser, defaults: Defaults) -> None:
    """The options, shared by this CLI and ``manage.py evaluate`` (which passes settings' defaults)."""
    parser.add_argument("dataset", type=Path, help="dataset folder: <class>/train + <class>/val, or <class>/*")
    parser.add_argument("--out", type=Path, default=Path("evaluation"), help="report folder (default ./evaluation)")
    parser.add_argument("--open-set", type=Path, action="append", default=[], metavar="DIR",
                        help="never-enrolled people, DIR/<person>/* (repeatable)")
    parser.add_argument("--layout", choices=["auto", "paper", "flat"], default="auto")
    parser.add_argument("--gallery-fraction", type=float, default=0.5, help="flat layout: share enrolled")
    parser.add_argument("--seed", type=int, default=0, help="flat layout split")
    parser.add_argument("--backbones", default=defaults.backbones,
                        help=f"comma-separated, from clip and dlib (default {defaults.backbones})")
    parser.add_argument("--clip-model", default=defaults.clip_model)
    parser.add_argument("--clip-pretrained", default=defaults.clip_pretrained,
                        help="open_clip tag, or 'none' for random weights (mechanics only)")
    parser.add_argument("--clip-checkpoint", default=defaults.clip_checkpoint, help="a local CLIP weights file")
    parser.add_argument("--device", default=defaults.device)
    parser.add_argument("--dlib-engine", choices=["torch", "dlib"], default=defaults.dlib_engine,
                        help="dlib's network in torch (faster, same descriptors) or dlib's own code")
    parser.add_argument("--detector-model", default=defaults.detector_model,
                        help="YuNet .onnx (default: fetched into --model-dir)")
    parser.add_argument("--model-dir", default=defaults.model_dir)
    parser.add_argument("--k1", type=_int_range, default=tuple(range(1, 10)), help="default 1-9")
    parser.add_argument("--k2", type=_int_range, default=tuple(range(2, 11)), help="default 2-10")
    parser.add_argument("--thresholds", type=_float_range, default=EvaluationSettings.thresholds,
                        help="grid thresholds start:stop:step (default 0.50:1.00:0.01)")
    parser.add_argument("--open-thresholds", type=_float_range, default=EvaluationSettings.open_thresholds,
                        help="open-set and PR sweep (default 0:2:0.01)")
    parser.add_argument("--target-far", type=float, default=0.01, help="false-accept rate to meet (default 0.01)")
    parser.add_argument("--calibration-target-far", type=float, default=EvaluationSettings.calibration_target_far,
                        help="chance of accepting a stranger that the threshold calibrated from the gallery "
                             f"allows (default {EvaluationSettings.calibration_target_far:g})")
    parser.add_argument("--augment", action="store_true", help="run the paper's augmentation experiment")
    parser.add_argument("--enrolment-rules", action="store_true",
                        help="gallery videos give the faces the web app's enrolment keeps (sharp, frontal, one "
                        "person, no near-duplicates) instead of every sampled frame")
    parser.add_argument("--scalability-seeds", type=int, default=3)
    parser.add_argument("--scalability-steps", type=int, default=6, help="class counts from 2 to all")
    parser.add_argument("--pad", type=float, default=0.0, help="detector padding (fraction of the image side)")
    parser.add_argument("--video-fps", type=float, default=5.0, help="frames sampled per second of video")
    parser.add_argument("--video-max-frames", type=int, default=60, help="frames at most per video")
    parser.add_argument("--cache-dir", default=defaults.cache_dir)
    parser.add_argument("--no-cache", action="store_true", help="embed everything again, store nothing")
    parser.add_argument("--threads", type=int, default=None, help="OpenCV/torch/FAISS threads")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def backbone_specs(args: argparse.Namespace) -> list[BackboneSpec]:
    names = [name.strip() for name in str(args.backbones).split(",") if name.strip()]
    specs = []
    for name in names:
        if name == "clip":
            pretrained = None if str(args.clip_pretrained).lower() in ("", "none", "random") else args.clip_pretrained
            options: dict[str, Any] = {"model_name": args.clip_model, "pretrained": pretrained, "device": args.device}
            if args.clip_checkpoint:
                options["checkpoint"] = args.clip_checkpoint
            specs.append(BackboneSpec("clip", options))
        elif name == "dlib":
            dlib_options = {"engine": args.dlib_engine, "device": args.device, "cache_dir": args.model_dir}
            specs.append(BackboneSpec("dlib", dlib_options))
        else:
            raise ValueError(f"unknown backbone {name!r} in --backbones: choose clip and/or dlib")
    if not specs:
        raise ValueError("--backbones is empty: give clip, dlib or clip,dlib")
    return specs


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Everything the options ask for; raises DatasetError, RecognitionError or ValueError."""
    if args.threads:
        set_threads(args.threads)
    if not 0.0 <= args.target_far <= 1.0:
        raise ValueError(f"--target-far must be between 0 and 1, got {args.target_far}")
    if not 0.0 < args.calibration_target_far < 1.0:
        raise ValueError(
            f"--calibration-target-far must be between 0 and 1 (exclusive), got {args.calibration_target_far}"
        )
    specs = backbone_specs(args)
    dataset = load_dataset(Path(args.dataset), layout=args.layout, gallery_fraction=args.gallery_fraction,
                           seed=args.seed, open_set_dirs=args.open_set)
    model = Path(args.detector_model) if args.detector_model else resolve_detector_model(args.model_dir)
    settings = EvaluationSettings(
        k1_values=tuple(args.k1),
        k2_values=tuple(args.k2),
        thresholds=tuple(args.thresholds),
        open_thresholds=tuple(args.open_thresholds),
        target_far=args.target_far,
        calibration_target_far=args.calibration_target_far,
        augment=args.augment,
        enrolment_rules=args.enrolment_rules,
        scalability_seeds=args.scalability_seeds,
        scalability_steps=args.scalability_steps,
        sampling=SamplingOptions(pad=args.pad, video_fps=args.video_fps, video_max_frames=args.video_max_frames),
    )
    cache = EmbeddingCache(None if args.no_cache else args.cache_dir)
    return evaluate(dataset, Path(args.out), backbones=specs, detector=FaceDetector(model), settings=settings,
                    cache=cache, progress=not args.no_progress)


def summary_lines(summary: dict[str, Any]) -> list[str]:
    lines = [f"Report: {Path(summary['out']) / 'report.md'}"]
    for r in summary["backbones"]:
        best = r["best"]
        note = " (random weights)" if r["random_weights"] else ""
        lines.append(
            f"{r['embedder']}{note}: accuracy {r['accuracy']:.4f}, F1 {best['f1']:.4f} at k1={best['k1']}, "
            f"k2={best['k2']}, threshold={best['threshold']:.2f}; calibrated threshold "
            f"{r['calibration']['calibration']['threshold']:.3f} ({r['calibration']['description']})"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0] if __doc__ else None)
    add_arguments(parser, Defaults.from_environment())
    args = parser.parse_args(argv)
    try:
        summary = run(args)
    except (DatasetError, RecognitionError, ValueError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(summary_lines(summary)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
