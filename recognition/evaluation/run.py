"""One evaluation: a dataset through one or more backbones, every experiment, one report.

``evaluate`` embeds the dataset once per backbone (cached on disk), then runs the grid search,
the best point's tables and figures, the open-set sweep, the threshold calibrated from the
gallery beside the fixed default, the optional augmentation experiment and the scalability tests
on those embeddings, and writes ``report.md`` and ``report.json``.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recognition.calibrate import DEFAULT_TARGET_FAR
from recognition.detect import FaceDetector
from recognition.embed import BACKBONE_DEFAULTS, Embedder, create_embedder

from . import plots
from .calibration import calibration_summary
from .dataset import Dataset, DatasetError
from .embeddings import AUGMENTATIONS, EmbeddedSet, EmbeddingCache, SamplingOptions, SetEmbedder
from .grid import GridResult, Neighbours, grid_search, predict, search_neighbours, threshold_range, vote_tables
from .metrics import UNKNOWN, class_report, confusion_matrix, f1_groups, most_confused
from .openset import open_set_sweep
from .report import write_report
from .scalability import class_counts, scalability


@dataclass(frozen=True)
class BackboneSpec:
    """A backbone to evaluate: "clip" or "dlib", with create_embedder's keyword options."""

    backbone: str
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONE_DEFAULTS:
            raise ValueError(f"unknown backbone {self.backbone!r}: choose from {', '.join(BACKBONE_DEFAULTS)}")

    @property
    def random_weights(self) -> bool:
        return self.backbone == "clip" and not self.options.get("pretrained") and not self.options.get("checkpoint")

    def create(self) -> Embedder:
        return create_embedder(self.backbone, **self.options)


@dataclass(frozen=True)
class EvaluationSettings:
    k1_values: tuple[int, ...] = tuple(range(1, 10))
    k2_values: tuple[int, ...] = tuple(range(2, 11))
    thresholds: tuple[float, ...] = tuple(threshold_range(0.50, 1.00, 0.01).tolist())
    open_thresholds: tuple[float, ...] = tuple(threshold_range(0.0, 2.0, 0.01).tolist())
    target_far: float = 0.01
    calibration_target_far: float = DEFAULT_TARGET_FAR  # recognition.calibrate's, from the gallery alone
    augment: bool = False
    # Gallery videos as the web app enrols them (recognition.enrol), not every sampled frame.
    enrolment_rules: bool = False
    scalability_seeds: int = 3
    scalability_steps: int = 6
    confused_pairs: int = 10
    sampling: SamplingOptions = field(default_factory=SamplingOptions)

    def as_dict(self) -> dict[str, Any]:
        def span(values: Sequence[float]) -> str:
            step = round(values[1] - values[0], 6) if len(values) > 1 else 0
            return f"{values[0]:g}-{values[-1]:g} step {step:g} ({len(values)} values)"

        return {
            "k1": f"{min(self.k1_values)}-{max(self.k1_values)}",
            "k2": f"{min(self.k2_values)}-{max(self.k2_values)}",
            "thresholds": span(self.thresholds),
            "open_set_thresholds": span(self.open_thresholds),
            "target_far": self.target_far,
            "calibration_target_far": self.calibration_target_far,
            "augmentation": self.augment,
            "enrolment_rules": self.enrolment_rules,
            "scalability_seeds": self.scalability_seeds,
            "scalability_steps": self.scalability_steps,
            "sampling": self.sampling.key(),
        }


def evaluate(
    dataset: Dataset,
    out_dir: str | Path,
    *,
    backbones: Sequence[BackboneSpec],
    detector: FaceDetector,
    settings: EvaluationSettings | None = None,
    cache: EmbeddingCache | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run every experiment for every backbone; write the report; return what it says (JSON-able)."""
    if not backbones:
        raise ValueError("give at least one backbone")
    labels = [spec.backbone for spec in backbones]
    if len(set(labels)) != len(labels):
        raise ValueError(f"each backbone once, please: got {', '.join(labels)}")
    settings = settings or EvaluationSettings()
    cache = cache or EmbeddingCache(None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for spec in backbones:
        folder = out / spec.backbone
        folder.mkdir(exist_ok=True)
        embedder = spec.create()
        # Random weights differ in every process under one name: cached vectors would mix two models.
        backbone_cache = EmbeddingCache(None) if spec.random_weights else cache
        worker = SetEmbedder(detector, embedder, cache=backbone_cache, options=settings.sampling, progress=progress)
        results.append(_evaluate_backbone(dataset, folder, spec, embedder, worker, settings, progress))
    summary = {
        "out": str(out),
        "dataset": {
            "root": str(dataset.root),
            "layout": dataset.layout,
            "description": dataset.describe(),
            "classes": list(dataset.classes),
            "never_enrolled_people": list(dataset.open_set_people),
            "ignored_files": [str(p) for p in dataset.ignored],
        },
        "settings": settings.as_dict(),
        "detector": str(detector.model_path),
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
        "cache": {"root": str(cache.root) if cache.root else None, "hits": cache.hits, "misses": cache.misses},
        "backbones": results,
    }
    (out / "report.json").write_text(json.dumps(summary, indent=2, default=_json_default))
    write_report(summary, out / "report.md")
    return summary


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _classes_of(labels: np.ndarray, index_of: dict[str, int]) -> np.ndarray:
    return np.array([index_of[str(label)] for label in labels], dtype=np.int64)


def _neighbours(gallery: EmbeddedSet, probes: EmbeddedSet, index_of: dict[str, int], k: int, space: str) -> Neighbours:
    usable = gallery.only(gallery.found)
    return search_neighbours(usable.vectors, _classes_of(usable.labels, index_of), probes.vectors, k, space=space)


def _evaluate_backbone(
    dataset: Dataset,
    folder: Path,
    spec: BackboneSpec,
    embedder: Embedder,
    worker: SetEmbedder,
    settings: EvaluationSettings,
    progress: bool,
) -> dict[str, Any]:
    started = time.perf_counter()
    load = getattr(embedder, "load", None)
    if callable(load):
        load()  # not part of the per-face embedding time
    model_load_s = time.perf_counter() - started
    classes = list(dataset.classes)
    index_of = {name: i for i, name in enumerate(classes)}
    gallery = worker.embed(dataset.gallery, what="gallery", enrolment=settings.enrolment_rules)
    probes = worker.embed(dataset.probes, what="probes")
    strangers = worker.embed(dataset.open_set, what="never enrolled") if dataset.open_set else None
    if gallery.faces == 0:
        raise DatasetError(f"no face was found in any gallery file of {dataset.root} with {embedder.name}")
    embedded_s = time.perf_counter() - started
    space = embedder.name
    k = max(settings.k2_values)
    y_true = _classes_of(probes.labels, index_of)

    grid_started = time.perf_counter()
    neighbours = _neighbours(gallery, probes, index_of, k, space)
    tables = vote_tables(neighbours.labels)
    thresholds = np.array(settings.thresholds)
    grid = grid_search(neighbours, y_true, len(classes), k1_values=settings.k1_values,
                       k2_values=settings.k2_values, thresholds=thresholds, tables=tables)
    grid_s = time.perf_counter() - grid_started
    decimals = max(2, len(f"{settings.thresholds[1] - settings.thresholds[0]:.6f}".rstrip("0").split(".")[1])) \
        if len(settings.thresholds) > 1 else 2
    grid.write_csv(folder / "grid_search_results.csv", threshold_decimals=decimals)
    best = grid.row(grid.best())
    k1, k2, threshold = int(best["k1"]), int(best["k2"]), float(best["threshold"])
    pred = predict(neighbours, tables, k1=k1, k2=k2, thresholds=np.array([threshold]))[0]

    scores = class_report(y_true, pred, classes)
    matrix = confusion_matrix(y_true, pred, len(classes))
    title = f"{embedder.name} at k1={k1}, k2={k2}, threshold={threshold:.2f}"
    figures = {
        "confusion_matrix": plots.confusion_matrix_png(matrix, classes, folder / "confusion_matrix.png", title=title),
    }
    sweep = np.array(settings.open_thresholds)
    sweep_pred = predict(neighbours, tables, k1=k1, k2=k2, thresholds=sweep)
    correct = (sweep_pred == y_true[None, :]).sum(axis=1)
    named = (sweep_pred != UNKNOWN).sum(axis=1)
    pr_precision = np.divide(correct, named, out=np.ones(len(sweep)), where=named > 0)
    pr_recall = correct / max(len(y_true), 1)
    figures["pr_curve"] = plots.pr_curve_png(pr_recall, pr_precision, sweep,
                                             (float(best["precision"]), float(best["recall"])),
                                             folder / "pr_curve.png", title=f"{embedder.name}, k1={k1}, k2={k2}")
    enrolled = EmbeddedSet.join([gallery, probes], embedder.dim)
    enrolled = enrolled.only(enrolled.found)
    figures["pca"] = plots.pca_png(
        enrolled.vectors, enrolled.labels, folder / "pca.png", title=f"{embedder.name}: PCA of the embeddings",
        strangers=None if strangers is None else strangers.vectors[strangers.found],
    )

    result: dict[str, Any] = {
        "backbone": spec.backbone,
        "embedder": embedder.name,
        "random_weights": spec.random_weights,
        "options": {key: str(value) for key, value in spec.options.items()},
        "folder": folder.name,
        "samples": {
            "gallery_files": len(dataset.gallery),
            "gallery_samples": len(gallery),
            "gallery_without_face": int((~gallery.found).sum()),
            "probe_files": len(dataset.probes),
            "probe_samples": len(probes),
            "probes_without_face": int((~probes.found).sum()),
            "classes_without_gallery_face": sorted(set(classes) - set(gallery.labels[gallery.found].tolist())),
            "never_enrolled_samples": 0 if strangers is None else len(strangers),
            "never_enrolled_without_face": 0 if strangers is None else int((~strangers.found).sum()),
        },
        "grid": {"rows": len(grid), "seconds": grid_s, "csv": "grid_search_results.csv"},
        "best": best,
        "accuracy": float(best["precision"]),
        "per_class": [vars(s) for s in scores],
        "f1_groups": [{"group": g, "classes": names} for g, names in f1_groups(scores)],
        "most_confused": [vars(c) for c in most_confused(matrix, classes, top=settings.confused_pairs)],
        "confusion_matrix": matrix.tolist(),
        "backbone_default": _at_default(spec.backbone, neighbours, tables, y_true, len(classes)),
    }
    stranger_neighbours = None if strangers is None else _neighbours(gallery, strangers, index_of, k, space)
    result["calibration"] = calibration_summary(
        spec.backbone, gallery, neighbours, y_true, stranger_neighbours,
        None if strangers is None else strangers.labels, enrolled=enrolled,
        target_far=settings.calibration_target_far,
    )
    if stranger_neighbours is not None:
        default = BACKBONE_DEFAULTS[spec.backbone].threshold
        open_result = open_set_sweep(
            neighbours, y_true, stranger_neighbours, stranger_people=len(dataset.open_set_people),
            k1=k1, k2=k2, thresholds=sweep, target_far=settings.target_far, default_threshold=default,
        )
        figures["open_set"] = plots.open_set_png(open_result, folder / "open_set.png",
                                                 title=f"{embedder.name}: never-enrolled probes")
        result["open_set"] = {
            **open_result.summary(),
            "curve": {"threshold": sweep.tolist(), "far": open_result.far.tolist(), "tar": open_result.tar.tolist()},
        }
    if settings.augment:
        result["augmentation"] = _augmentation(dataset, worker, gallery, probes, y_true, index_of, settings, best,
                                               space)
    counts = class_counts(len(classes), settings.scalability_steps)
    points = scalability(gallery, probes, classes, k1=k1, k2=k2, threshold=threshold, counts=counts,
                         seeds=list(range(max(1, settings.scalability_seeds))), space=space)
    figures["scalability"] = plots.scalability_png(points, folder / "scalability.png",
                                                   title=f"{embedder.name} at k1={k1}, k2={k2}, t={threshold:.2f}")
    result["scalability"] = [p.as_dict() for p in points]
    result["figures"] = {name: f"{folder.name}/{path.name}" for name, path in figures.items()}
    result["speed"] = _speed([s for s in (gallery, probes, strangers) if s is not None])
    result["seconds"] = {"model_load": model_load_s, "embedding": embedded_s - model_load_s,
                         "total": time.perf_counter() - started}
    result["cached"] = worker.cache.root is not None
    return result


def _at_default(backbone: str, neighbours: Neighbours, tables: Any, y_true: np.ndarray, n_classes: int) -> dict:
    defaults = BACKBONE_DEFAULTS[backbone]
    k2 = min(defaults.k2, neighbours.k)
    k1 = min(defaults.k1, k2)
    pred = predict(neighbours, tables, k1=k1, k2=k2, thresholds=np.array([defaults.threshold]))[0]
    return {
        "k1": k1,
        "k2": k2,
        "threshold": defaults.threshold,
        "accuracy": float((pred == y_true).mean()) if len(y_true) else 0.0,
        "unknown": float((pred == UNKNOWN).mean()) if len(y_true) else 0.0,
    }


def _speed(parts: Sequence[EmbeddedSet]) -> dict[str, float]:
    samples = sum(len(p) for p in parts)
    faces = sum(p.faces for p in parts)
    detect = float(sum(p.detect_s.sum() for p in parts))
    embed = float(sum(p.embed_s.sum() for p in parts))
    return {
        "samples": samples,
        "faces": faces,
        "detect_ms_per_sample": 1000 * detect / samples if samples else 0.0,
        "embed_ms_per_face": 1000 * embed / faces if faces else 0.0,
        "faces_per_second": faces / (detect + embed) if detect + embed > 0 else 0.0,
    }


def _augmentation(
    dataset: Dataset,
    worker: SetEmbedder,
    gallery: EmbeddedSet,
    probes: EmbeddedSet,
    y_true: np.ndarray,
    index_of: dict[str, int],
    settings: EvaluationSettings,
    best: dict[str, float | int],
    space: str,
) -> list[dict[str, Any]]:
    """The grid's best accuracy, and the accuracy at the plain gallery's best point, with each
    augmentation's copies added to the gallery, then with all of them."""
    dim = gallery.vectors.shape[1]
    extra = {name: worker.embed(dataset.gallery, augmentation=name, what="gallery") for name in AUGMENTATIONS}
    variants: list[tuple[str, list[EmbeddedSet]]] = [("none", [])]
    variants += [(f"+{name}", [extra[name]]) for name in AUGMENTATIONS]
    variants.append(("+all", list(extra.values())))
    k = max(settings.k2_values)
    rows = []
    for name, added in variants:
        augmented = EmbeddedSet.join([gallery, *added], dim)
        neighbours = _neighbours(augmented, probes, index_of, k, space)
        tables = vote_tables(neighbours.labels)
        grid: GridResult = grid_search(neighbours, y_true, len(index_of), k1_values=settings.k1_values,
                                       k2_values=settings.k2_values, thresholds=np.array(settings.thresholds),
                                       tables=tables)
        top = grid.row(grid.best())
        fixed = predict(neighbours, tables, k1=int(best["k1"]), k2=int(best["k2"]),
                        thresholds=np.array([float(best["threshold"])]))[0]
        rows.append({
            "gallery": name,
            "gallery_faces": augmented.faces,
            "accuracy_at_plain_best": float((fixed == y_true).mean()) if len(y_true) else 0.0,
            "best_accuracy": float(top["precision"]),
            "best_f1": float(top["f1"]),
            "best_point": f"k1={top['k1']}, k2={top['k2']}, threshold={top['threshold']:.2f}",
        })
    return rows
