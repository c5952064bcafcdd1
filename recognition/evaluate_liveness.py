"""Measure the passive liveness check on live and attack samples (ISO/IEC 30107-3 figures).

    python -m recognition.evaluate_liveness DATASET [--out DIR]

DATASET holds live/ and one folder per attack type (print/, screen/, ...), with photos and video
clips. Prints and writes (report.md, report.json, det.png) APCER per attack type, BPCER and ACER
per image and per clip, at the threshold chosen for BPCER <= --max-bpcer on the live data and at
the shipped default (recognition.liveness.PASSIVE_THRESHOLD). A clip is accepted when the
check-in would mark it: --confirmations passing snapshots, --interval-ms apart, within
--window-s seconds (the app's ROLLCALL_CHECKIN_* defaults).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from recognition.detect import FaceDetector, resolve_detector_model
from recognition.errors import RecognitionError
from recognition.image import load_image
from recognition.liveness.decision import PASSIVE_THRESHOLD
from recognition.liveness.evaluation import (
    DatasetError,
    Rates,
    ScoredSample,
    choose_threshold,
    clip_decisions,
    det_points,
    find_samples,
    image_decisions,
    rates,
)
from recognition.liveness.passive import PassiveLiveness
from recognition.runtime import set_threads
from recognition.video import iter_frames

PROG = "python -m recognition.evaluate_liveness"


def _skip(text: str) -> tuple[str, float]:
    name, _, seconds = text.partition("=")
    try:
        return name, float(seconds)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=SECONDS") from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("dataset", type=Path)
    p.add_argument("--out", type=Path, default=Path("liveness-evaluation"))
    p.add_argument("--model-dir", default=os.environ.get("ROLLCALL_MODEL_DIR", str(Path("var") / "models")),
                   help="where the YuNet and MiniFASNet files are (fetched there when absent)")
    p.add_argument("--detector-model", default=os.environ.get("ROLLCALL_DETECTOR_MODEL") or None)
    p.add_argument("--max-bpcer", type=float, default=0.05, help="live rejections allowed (default 0.05)")
    p.add_argument("--confirmations", type=int, default=3, help="ROLLCALL_CHECKIN_CONFIRMATIONS (default 3)")
    p.add_argument("--interval-ms", type=int, default=400, help="ROLLCALL_CHECKIN_INTERVAL_MS (default 400)")
    p.add_argument("--window-s", type=float, default=10.0, help="ROLLCALL_CHECKIN_WINDOW_SECONDS (default 10)")
    p.add_argument("--max-clip-s", type=float, default=30.0, help="seconds read from each clip at most")
    p.add_argument("--skip", type=_skip, action="append", default=[], metavar="FILE=SECONDS",
                   help="ignore a clip's first seconds (pad/screen/zubair__fake.mp4: the live person is in view)")
    p.add_argument("--threads", type=int, default=None)
    return p


def score_samples(args: argparse.Namespace) -> list[ScoredSample]:
    samples = find_samples(Path(args.dataset))  # a wrong folder fails before any model loads
    model_dir = Path(args.model_dir)
    detector = FaceDetector(Path(args.detector_model) if args.detector_model else resolve_detector_model(model_dir))
    scorer = PassiveLiveness.from_dir(model_dir)
    skips = dict(args.skip)
    fps = 1000.0 / args.interval_ms
    scored = []
    for sample in samples:
        item = ScoredSample(sample)
        if sample.video:
            start = skips.get(sample.path.name, 0.0)
            max_frames = max(1, int(args.max_clip_s * fps))
            for frame in iter_frames(sample.path, target_fps=fps, max_frames=max_frames):
                if frame.time_s < start:
                    continue
                faces = detector.detect(frame.image)
                item.frames.append((frame.time_s, scorer.score(frame.image, faces)))
        else:
            rgb = load_image(sample.path)
            faces = detector.detect(rgb)
            if faces:
                largest = max(faces, key=lambda f: f.box[2] * f.box[3])
                item.score = scorer.score(rgb, [largest])[0]
        scored.append(item)
    return scored


def _rates_dict(r: Rates | None) -> dict[str, Any] | None:
    return None if r is None else asdict(r)


def evaluate(scored: Sequence[ScoredSample], args: argparse.Namespace) -> dict[str, Any]:
    clip_opts = {"confirmations": args.confirmations, "window_s": args.window_s}

    def per_image(t: float) -> Rates | None:
        return rates(image_decisions(scored, t), t)

    def per_clip(t: float) -> Rates | None:
        return rates(clip_decisions(scored, t, **clip_opts), t)

    chosen = choose_threshold([per_image, per_clip], max_bpcer=args.max_bpcer)
    live_frames = [max(s) for item in scored if item.sample.video and item.sample.kind == "live"
                   for _, s in item.frames if s]
    summary: dict[str, Any] = {
        "dataset": str(args.dataset),
        "max_bpcer": args.max_bpcer,
        "clip_rule": {**clip_opts, "interval_ms": args.interval_ms, "skip": dict(args.skip)},
        "chosen_threshold": chosen,
        "default_threshold": PASSIVE_THRESHOLD,
        "at_chosen": {"image": _rates_dict(per_image(chosen)), "clip": _rates_dict(per_clip(chosen))},
        "at_default": {"image": _rates_dict(per_image(PASSIVE_THRESHOLD)),
                       "clip": _rates_dict(per_clip(PASSIVE_THRESHOLD))},
        "live_video_frames": {
            "count": len(live_frames),
            "rejected_at_chosen": sum(1 for s in live_frames if s < chosen),
            "median_score": statistics.median(live_frames) if live_frames else None,
        },
        "samples": [
            {"file": str(item.sample.path.relative_to(args.dataset)), "kind": item.sample.kind,
             "score": item.score, "snapshots": len(item.frames),
             "snapshot_scores": [round(max(s), 4) if s else None for _, s in item.frames]}
            for item in scored
        ],
        "det": {"image": det_points(per_image), "clip": det_points(per_clip)},
    }
    return summary


def _line(unit: str, r: dict[str, Any] | None) -> str:
    if r is None:
        return f"{unit}: no live or no attack samples"
    apcer = ", ".join(f"{k} {v:.1%} ({r['accepted'][k]}/{r['attacks'][k]})" for k, v in r["apcer"].items())
    return (f"{unit}: APCER {apcer}; BPCER {r['bpcer']:.1%} ({r['rejected']}/{r['lives']}); "
            f"ACER {r['acer']:.1%}")


def summary_lines(summary: dict[str, Any]) -> list[str]:
    lines = []
    for key, label in (("at_chosen", "chosen"), ("at_default", "default")):
        threshold = summary["chosen_threshold"] if key == "at_chosen" else summary["default_threshold"]
        lines.append(f"Threshold {threshold:.2f} ({label}):")
        lines.append("  " + _line("per image", summary[key]["image"]))
        lines.append("  " + _line("per clip", summary[key]["clip"]))
    frames = summary["live_video_frames"]
    if frames["count"]:
        lines.append(f"Live video snapshots rejected at the chosen threshold: {frames['rejected_at_chosen']}"
                     f"/{frames['count']} (median score {frames['median_score']:.2f})")
    return lines


def write_report(summary: dict[str, Any], out: Path) -> None:
    from recognition.liveness.plots import det_png

    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(summary, indent=2))
    det_png(summary["det"], out / "det.png", chosen=summary["chosen_threshold"])
    rows = "\n".join(f"| {s['file']} | {s['kind']} | "
                     f"{'-' if s['score'] is None else format(s['score'], '.3f')} | {s['snapshots'] or '-'} |"
                     for s in summary["samples"])
    rule = summary["clip_rule"]
    text = (
        f"# Liveness evaluation: {summary['dataset']}\n\n"
        "ISO/IEC 30107-3 figures of the passive check (MiniFASNetV2 + V1SE). Threshold chosen for "
        f"BPCER <= {summary['max_bpcer']:.0%} per image and per clip. A clip is accepted when "
        f"{rule['confirmations']} snapshots {rule['interval_ms']} ms apart within {rule['window_s']:g} s pass.\n\n"
        + "\n".join(f"- {line.strip()}" for line in summary_lines(summary))
        + "\n\n![DET curve](det.png)\n\n| file | kind | still score | clip snapshots |\n|---|---|---|---|\n"
        + rows + "\n"
    )
    (out / "report.md").write_text(text)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    started = time.perf_counter()
    try:
        if args.threads:
            set_threads(args.threads)
        if args.confirmations < 1 or args.interval_ms < 1 or not 0.0 <= args.max_bpcer <= 1.0:
            raise ValueError("--confirmations and --interval-ms must be positive, --max-bpcer within 0..1")
        scored = score_samples(args)
        summary = evaluate(scored, args)
        summary["seconds"] = round(time.perf_counter() - started, 1)
        write_report(summary, args.out)
    except (DatasetError, RecognitionError, ValueError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(summary_lines(summary)))
    print(f"Report: {args.out / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
