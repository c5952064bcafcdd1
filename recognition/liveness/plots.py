"""The DET curve of the liveness evaluation (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from statistics import NormalDist

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

_CLIP = 0.001  # the normal-deviate axes cannot show 0 or 1


def _probit(rate: float) -> float:
    return NormalDist().inv_cdf(min(max(rate, _CLIP), 1 - _CLIP))


def det_png(points: dict[str, list[tuple[float, float, float]]], path: Path, *, chosen: float) -> Path:
    """APCER (worst attack type) against BPCER on normal-deviate axes, per image and per clip,
    with the chosen threshold marked. Rates of 0 are drawn at 0.1%."""
    fig, ax = plt.subplots(figsize=(6, 5))
    ticks = [0.001, 0.01, 0.05, 0.2, 0.5, 0.8, 0.95, 0.999]
    for (unit, series), style in zip(points.items(), ("-", "--", ":"), strict=False):
        if not series:
            continue
        xs = [_probit(bpcer) for _, _, bpcer in series]
        ys = [_probit(apcer) for _, apcer, _ in series]
        line = ax.plot(xs, ys, style, marker=".", markersize=3, label=f"per {unit}")[0]
        at = min(series, key=lambda p: abs(p[0] - chosen))
        ax.scatter([_probit(at[2])], [_probit(at[1])], color=line.get_color(), s=50, zorder=3, edgecolor="black")
    ax.set_xticks([_probit(t) for t in ticks], [f"{t:.1%}" for t in ticks], rotation=45, fontsize=7)
    ax.set_yticks([_probit(t) for t in ticks], [f"{t:.1%}" for t in ticks], fontsize=7)
    ax.set_xlabel("BPCER (live rejected)")
    ax.set_ylabel("APCER (worst attack type accepted)")
    ax.set_title(f"DET, passive liveness (dots: threshold {chosen:.2f})")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
