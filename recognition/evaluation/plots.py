"""The report's figures, drawn with matplotlib's Agg backend (no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

from .metrics import UNKNOWN_NAME
from .openset import OpenSetResult
from .scalability import ScalePoint


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def confusion_matrix_png(matrix: np.ndarray, class_names: Sequence[str], path: Path, *, title: str) -> Path:
    """Rows: true class; columns: predicted class and a last Unknown column."""
    n = len(class_names)
    size = min(22.0, max(5.0, 0.32 * n + 3.0))
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    image = ax.imshow(matrix, cmap="Blues", aspect="auto")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if n <= 60:
        ax.set_xticks(range(n + 1), [*class_names, UNKNOWN_NAME], rotation=90, fontsize=7)
        ax.set_yticks(range(n), list(class_names), fontsize=7)
    if n <= 30:
        peak = matrix.max() or 1
        for (r, c), value in np.ndenumerate(matrix):
            if value:
                colour = "white" if value > peak / 2 else "black"
                ax.text(c, r, str(int(value)), ha="center", va="center", fontsize=6, color=colour)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return _save(fig, path)


def pr_curve_png(
    recall: np.ndarray, precision: np.ndarray, thresholds: np.ndarray, best: tuple[float, float], path: Path,
    *, title: str,
) -> Path:
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.plot(recall, precision, marker=".", markersize=3, label="threshold sweep")
    ax.scatter([best[1]], [best[0]], color="red", zorder=3, label="best grid point (paper's counting)")
    # Label a few thresholds where the curve moves (many thresholds share the last point).
    points = list(zip(recall.tolist(), precision.tolist(), strict=True))
    moved = [i for i in range(len(points)) if i == 0 or points[i] != points[i - 1]]
    for i in [moved[j] for j in np.unique(np.linspace(0, len(moved) - 1, 6).astype(int))]:
        ax.annotate(f"{thresholds[i]:.2f}", (recall[i], precision[i]), fontsize=7, xytext=(3, -8),
                    textcoords="offset points")
    ax.set_xlabel("recall (probes named correctly / all probes)")
    ax.set_ylabel("precision (named correctly / named)")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title(title)
    return _save(fig, path)


def pca_png(vectors: np.ndarray, labels: np.ndarray, path: Path, *, title: str, strangers: np.ndarray | None = None,
            max_points: int = 4000, seed: int = 0) -> Path:
    """The first two principal components (numpy SVD) of the enrolled embeddings, by class;
    never-enrolled probes as grey crosses in the same projection."""
    rng = np.random.default_rng(seed)
    if len(vectors) > max_points:
        keep = np.sort(rng.choice(len(vectors), max_points, replace=False))
        vectors, labels = vectors[keep], labels[keep]
    mean = vectors.mean(axis=0)
    _, _, vt = np.linalg.svd(vectors - mean, full_matrices=False)
    axes = vt[:2].T
    points = (vectors - mean) @ axes
    fig, ax = plt.subplots(figsize=(7, 6))
    names = sorted(set(labels.tolist()))
    colours = plt.get_cmap("tab20")
    for i, name in enumerate(names):
        mask = labels == name
        ax.scatter(points[mask, 0], points[mask, 1], s=12, color=colours(i % 20), label=name,
                   marker="os^Dv"[(i // 20) % 5])
    if strangers is not None and len(strangers):
        projected = (strangers - mean) @ axes
        ax.scatter(projected[:, 0], projected[:, 1], s=18, color="grey", marker="x", label="never enrolled")
    if len(names) <= 25:
        ax.legend(fontsize=6, loc="best", ncol=2)
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title(title)
    return _save(fig, path)


def open_set_png(result: OpenSetResult, path: Path, *, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot(result.thresholds, result.far, label="false accept (stranger named)", color="tab:red")
    ax.plot(result.thresholds, result.tar, label="true accept (enrolled, own name)", color="tab:green")
    ax.plot(result.thresholds, result.misidentified, label="enrolled, wrong name", color="tab:orange",
            linestyle="--")
    if result.chosen_threshold is not None:
        ax.axvline(result.chosen_threshold, color="black", linestyle=":",
                   label=f"FAR <= {result.target_far:g} up to {result.chosen_threshold:.2f}")
    ax.axvline(result.default_threshold, color="tab:blue", linestyle="-.", alpha=0.6,
               label=f"backbone default {result.default_threshold:.2f}")
    ax.set_xlabel("threshold (L2 distance)")
    ax.set_ylabel("rate")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(title)
    return _save(fig, path)


def scalability_png(points: Sequence[ScalePoint], path: Path, *, title: str) -> Path:
    counts = sorted({p.classes for p in points})

    def stat(attr: str) -> tuple[np.ndarray, np.ndarray]:
        values = [[getattr(p, attr) for p in points if p.classes == c] for c in counts]
        return np.array([np.mean(v) for v in values]), np.array([np.std(v) for v in values])

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    mean, std = stat("load_s")
    left.errorbar(counts, mean, yerr=std, marker="o", capsize=3)
    left.set_xlabel("classes")
    left.set_ylabel("seconds (embedding + indexing)")
    left.set_title("loading time")
    left.grid(alpha=0.3)
    for attr in ("precision", "recall", "f1"):
        mean, std = stat(attr)
        right.errorbar(counts, mean, yerr=std, marker="o", capsize=3, label=attr)
    right.set_xlabel("classes")
    right.set_ylim(0, 1.02)
    right.set_title("accuracy")
    right.grid(alpha=0.3)
    right.legend(fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)
