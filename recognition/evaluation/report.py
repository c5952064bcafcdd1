"""report.md: the evaluation's numbers and figures for a person to read, from report.json's data."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _threshold(open_set: dict[str, Any] | None) -> str:
    if not open_set or open_set["threshold_at_target"] is None:
        return "-"
    return f"{open_set['threshold_at_target']:.2f}"


def _rate(value: float | None) -> str:
    """A modelled rate, which may be far below 0.1%: two significant digits."""
    return "-" if value is None else f"{100 * value:.2g}%"


def _weights(result: dict[str, Any]) -> str:
    if result["random_weights"]:
        return "RANDOM weights (mechanics only: the accuracy means nothing)"
    return result["embedder"]


def _transition(curve: dict[str, list[float]], rows: int = 24) -> list[tuple[float, float, float]]:
    """The sweep where it changes: from the last threshold that accepts nobody to the first that
    accepts every stranger, thinned to about ``rows`` rows."""
    points = list(zip(curve["threshold"], curve["far"], curve["tar"], strict=True))
    changing = [i for i in range(1, len(points)) if points[i][1:] != points[i - 1][1:]]
    if not changing:
        return points[:1]
    low, high = max(0, changing[0] - 1), changing[-1]
    window = points[low : high + 1]
    step = max(1, -(-len(window) // rows))
    return window[::step] + ([window[-1]] if (len(window) - 1) % step else [])


def write_report(summary: dict[str, Any], path: Path) -> None:
    dataset, settings = summary["dataset"], summary["settings"]
    lines = [
        "# Recognition evaluation",
        "",
        f"- **Dataset**: {dataset['description']}",
        f"- **Classes**: {', '.join(dataset['classes'])}",
        f"- **Never enrolled**: {', '.join(dataset['never_enrolled_people']) or 'none given'}",
        f"- **Detector**: YuNet, {summary['detector']}",
        f"- **Grid**: k1 {settings['k1']}, k2 {settings['k2']} (k1 < k2), thresholds {settings['thresholds']}",
        f"- **Sampling**: {settings['sampling']}",
        f"- **Machine**: {summary['machine']}; embedding cache {summary['cache']['root'] or 'off'} "
        f"({summary['cache']['hits']} files from cache, {summary['cache']['misses']} embedded now)",
        "",
        "Counting is the paper's: a correct answer is one TP; a wrong name or \"Unknown\" is one FP and one FN; "
        "every other enrolled class scores a TN. So precision = recall = accuracy and FP = FN; F1 is the "
        "support-weighted mean of the per-class F1. The best point is the highest accuracy, then F1, then the "
        "lowest threshold.",
    ]
    if dataset["ignored_files"]:
        lines += ["", f"Ignored {len(dataset['ignored_files'])} files that are neither images nor videos."]
    lines += ["", "## Backbones side by side", ""]
    rows = []
    for r in summary["backbones"]:
        best, open_set = r["best"], r.get("open_set")
        rows.append([
            r["backbone"],
            _weights(r),
            f"k1={best['k1']}, k2={best['k2']}, t={best['threshold']:.2f}",
            f"{r['accuracy']:.4f}",
            f"{best['f1']:.4f}",
            _threshold(open_set),
            "-" if not open_set else _pct(open_set["tar_at_target"]),
            "-" if not open_set else f"{_pct(open_set['far_at_default'])} at {open_set['default_threshold']:.2f}",
            _calibrated_cell(r["calibration"]),
            f"{r['speed']['embed_ms_per_face']:.1f}",
            f"{r['speed']['faces_per_second']:.1f}",
        ])
    target = settings["target_far"]
    lines += _table(
        ["backbone", "model", "best grid point", "accuracy", "F1", f"threshold at FAR <= {target:g}",
         "TAR there", "FAR at default threshold", "calibrated from the gallery (FAR, TAR)",
         "embed ms/face", "faces/s (detect + embed)"],
        rows,
    )
    for r in summary["backbones"]:
        lines += _backbone_section(r, target)
    path.write_text("\n".join(lines) + "\n")


def _backbone_section(r: dict[str, Any], target: float) -> list[str]:
    best, samples, figures = r["best"], r["samples"], r["figures"]
    lines = [f"## {r['backbone']}: {r['embedder']}", ""]
    if r["random_weights"]:
        lines += ["**The weights are random**: this run checks the mechanics; its accuracy means nothing. "
                  "Its embeddings are not cached (random weights differ from one run to the next).", ""]
    lines += [
        f"Gallery: {samples['gallery_samples']} samples from {samples['gallery_files']} files "
        f"({samples['gallery_without_face']} without a face). Probes: {samples['probe_samples']} samples from "
        f"{samples['probe_files']} files ({samples['probes_without_face']} without a face, counted as Unknown).",
        "",
    ]
    if samples["classes_without_gallery_face"]:
        lines += [f"Classes with no gallery face: {', '.join(samples['classes_without_gallery_face'])}.", ""]
    default = r["backbone_default"]
    lines += [
        f"Grid search: {r['grid']['rows']} rows in {r['grid']['seconds']:.2f} s, "
        f"[{r['grid']['csv']}]({r['folder']}/{r['grid']['csv']}).",
        "",
        f"**Best point**: k1={best['k1']}, k2={best['k2']}, threshold={best['threshold']:.2f}: "
        f"precision {best['precision']:.4f}, recall {best['recall']:.4f}, F1 {best['f1']:.4f}, "
        f"TP {best['tp']}, FP {best['fp']}, TN {best['tn']}, FN {best['fn']}.",
        "",
        f"At the backbone's calibrated defaults (k1={default['k1']}, k2={default['k2']}, "
        f"threshold={default['threshold']:.2f}): accuracy {default['accuracy']:.4f}, "
        f"{_pct(default['unknown'])} answered Unknown.",
        "",
        "### Per class at the best point",
        "",
    ]
    lines += _table(
        ["class", "precision", "recall", "F1", "support"],
        [[s["name"], f"{s['precision']:.2f}", f"{s['recall']:.2f}", f"{s['f1']:.2f}", s["support"]]
         for s in r["per_class"]],
    )
    lines += ["### Classes grouped by F1", ""]
    lines += _table(["F1", "classes", "names"],
                    [[g["group"], len(g["classes"]), ", ".join(g["classes"]) or "-"] for g in r["f1_groups"]])
    lines += ["### Most confused pairs", ""]
    if r["most_confused"]:
        lines += _table(["true", "predicted", "probes", "share of the true class"],
                        [[c["true"], c["predicted"], c["count"], _pct(c["share_of_true"])] for c in r["most_confused"]])
    else:
        lines += ["No probe was misclassified.", ""]
    lines += [
        f"![confusion matrix]({figures['confusion_matrix']})",
        "",
        "Precision-recall over thresholds at the best k1/k2 (precision among the probes given a name; "
        "with the paper's counting, where Unknown is also an FP, every point would sit on the diagonal):",
        "",
        f"![precision-recall]({figures['pr_curve']})",
        "",
        f"![PCA]({figures['pca']})",
        "",
    ]
    if "open_set" in r:
        o = r["open_set"]
        lines += ["### Open-set rejection (never-enrolled people)", ""]
        chosen = (
            f"The largest threshold with a false-accept rate <= {target:g} is **{o['threshold_at_target']:.2f}**: "
            f"FAR {_pct(o['far_at_target'])}, TAR {_pct(o['tar_at_target'])}."
            if o["threshold_at_target"] is not None
            else f"No swept threshold keeps the false-accept rate <= {target:g}."
        )
        lines += [
            f"{o['strangers']} face samples of {o['stranger_people']} never-enrolled people, probed at k1={o['k1']}, "
            f"k2={o['k2']}. FAR: strangers given an enrolled name; TAR: enrolled probes given their own name "
            f"(both over samples with a detected face). {chosen} At the backbone default "
            f"{o['default_threshold']:.2f}: FAR {_pct(o['far_at_default'])}, TAR {_pct(o['tar_at_default'])}.",
            "",
        ]
        lines += _table(["threshold", "FAR", "TAR"],
                        [[f"{t:.2f}", _pct(f), _pct(a)] for t, f, a in _transition(o["curve"])])
        lines += [f"![open set]({figures['open_set']})", ""]
    lines += _calibration_section(r["calibration"])
    if "augmentation" in r:
        lines += ["### Augmentation experiment (gallery copies added)", ""]
        lines += _table(
            ["gallery", "faces", "accuracy at the plain best point", "best accuracy", "best F1", "at"],
            [[a["gallery"], a["gallery_faces"], f"{a['accuracy_at_plain_best']:.4f}", f"{a['best_accuracy']:.4f}",
              f"{a['best_f1']:.4f}", a["best_point"]] for a in r["augmentation"]],
        )
    lines += ["### Scalability", "",
              "Loading time is the embedding time measured when each gallery file was first embedded plus the "
              "index build measured now; accuracy at the best point above, on random class subsets.", ""]
    lines += _table(
        ["classes", "seed", "gallery faces", "load s", "precision", "recall", "F1"],
        [[p["classes"], p["seed"], p["gallery_samples"], f"{p['load_s']:.2f}", f"{p['precision']:.4f}",
          f"{p['recall']:.4f}", f"{p['f1']:.4f}"] for p in r["scalability"]],
    )
    speed = r["speed"]
    lines += [
        f"![scalability]({figures['scalability']})",
        "",
        f"Speed: detection {speed['detect_ms_per_sample']:.1f} ms per sample, embedding "
        f"{speed['embed_ms_per_face']:.1f} ms per face ({speed['faces']} faces; as measured when first embedded). "
        f"This backbone's evaluation took {r['seconds']['total']:.1f} s: {r['seconds']['model_load']:.1f} s "
        f"loading the model, {r['seconds']['embedding']:.1f} s reading and embedding.",
        "",
    ]
    return lines


def _calibrated_cell(c: dict[str, Any]) -> str:
    row = c["rows"][0]
    rates = f"{_pct(row.get('far'))}, {_pct(row['tar'])}" if "far" in row else f"-, {_pct(row['tar'])}"
    return f"{row['threshold']:.3f} ({rates})"


def _calibration_section(c: dict[str, Any]) -> list[str]:
    cal = c["calibration"]
    lines = ["### Threshold calibrated from the gallery", ""]
    estimate = (
        f"The model puts the chance that a stranger is accepted at all at {_rate(cal['estimated_far'])} "
        f"(target {cal['target_far']:g}) and the share of enrolled embeddings within the threshold of another of "
        f"the same person at {_pct(cal['genuine_pass_rate'])} (frames of one enrolment: optimistic)."
        if cal["source"] == "calibrated"
        else "The gallery has too few people to estimate from, so the backbone default is used."
    )
    lines += [
        f"From the gallery alone (recognition.calibrate): {c['description']}, {cal['n_impostor_pairs']} pairs of "
        f"enrolled people as each other's strangers. {estimate} Both thresholds measured on data the calibration "
        f"never saw, at k1={c['k1']}, k2={c['k2']}: TAR over {c['probes']} enrolled probes"
        + (f"; FAR over {c['strangers']} samples of {c['stranger_people']} never-enrolled people and over those "
           "people (accepted at least once), with one-sided 95% upper bounds: so few strangers cannot show a rate "
           "near the target." if "strangers" in c else "; no never-enrolled people were given, so no FAR."),
        "",
    ]
    header = ["threshold", "", "TAR", "FAR estimated (model)", "genuine pass (gallery)"]
    if "strangers" in c:
        header += ["FAR (samples)", "95% bound", "samples accepted (people)", "95% bound (people)"]
    rows = []
    for row in c["rows"]:
        cells = [f"{row['threshold']:.3f}", row["which"], _pct(row["tar"]), _rate(row["estimated_far"]),
                 _pct(row["genuine_pass_rate"])]
        if "strangers" in c:
            cells += [_pct(row["far"]), _pct(row["far_upper_95"]),
                      f"{row['strangers_accepted']} of {c['strangers']} "
                      f"({', '.join(row['stranger_people_accepted']) or 'nobody'})",
                      _pct(row["far_people_upper_95"])]
        rows.append(cells)
    return lines + _table(header, rows) + _held_out_section(c.get("held_out"))


def _held_out_section(h: dict[str, Any] | None) -> list[str]:
    if not h or not h["people"]:
        return []
    lines = [
        f"Each enrolled person as a stranger in turn: the gallery calibrated without them, and all {h['samples']} "
        f"samples of the {h['people']} people (gallery and probes) shown to it. The calibrated row's threshold is "
        "the range over those galleries"
        + ("." if h["folds_calibrated"] == h["people"] else
           f"; {h['people'] - h['folds_calibrated']} of them had too few people to calibrate and used the "
           "backbone default."),
        "",
    ]
    rows = [
        [row["threshold"], row["which"],
         f"{len(row['people_accepted'])} of {h['people']} ({', '.join(row['people_accepted']) or 'nobody'})",
         _pct(row["far_people_upper_95"]), f"{row['samples_accepted']} of {h['samples']}", _pct(row["far"]),
         _pct(row["far_upper_95"])]
        for row in h["rows"]
    ]
    return lines + _table(["threshold", "", "people accepted", "95% bound (people)", "samples accepted",
                           "FAR (samples)", "95% bound"], rows)
