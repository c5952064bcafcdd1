"""The paper's counting, written out with numpy so that every number in a report can be checked by hand.

Predictions are class indices into the list of enrolled classes, with ``UNKNOWN`` (-1) for "Unknown"
(no class met the vote, or no face was found in the probe). Every probe's true class is enrolled:
open-set probes (people never enrolled) are scored separately, by `recognition.evaluation.openset`.

One-vs-rest counting over the C enrolled classes, per probe, as the paper counts it:

========================  ====  ====  ====  ======
prediction                 TP    FP    FN    TN
========================  ====  ====  ====  ======
the true class              1     0     0    C - 1
another enrolled class      0     1     1    C - 2
"Unknown"                   0     1     1    C - 1
========================  ====  ====  ====  ======

- A correct prediction is a TP for its class and a TN for each of the C - 1 other classes.
- A wrong class is an FP for the class predicted and an FN for the true class; the C - 2 classes
  that are neither score a TN.
- "Unknown" counts as wrong (the paper's rule): an FN for the true class and an FP charged to the
  "Unknown" pseudo-class, which keeps FP == FN on every row. No enrolled class was predicted, so every
  enrolled class but the true one scores a TN: C - 1. "Unknown" is never a true class, so it is not
  one of the C classes that collect TNs (counting it would add one TN to every named prediction).

So FP == FN always, micro precision == micro recall == accuracy, and
TN = n (C - 1) - (number of probes given a wrong *enrolled* class).
The F1 column is scikit-learn's "weighted" F1: per-class F1 averaged with the class's support
(its number of probes) as weight; a class with no named prediction has precision 0 (and so F1 0),
like scikit-learn's ``zero_division=0``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

UNKNOWN = -1
UNKNOWN_NAME = "Unknown"


@dataclass(frozen=True)
class Counts:
    tp: int
    fp: int
    tn: int
    fn: int
    precision: float
    recall: float
    f1: float  # support-weighted mean of per-class F1

    @property
    def accuracy(self) -> float:
        total = self.tp + self.fn
        return self.tp / total if total else 0.0


@dataclass(frozen=True)
class ClassScore:
    name: str
    precision: float
    recall: float
    f1: float
    support: int
    tp: int
    fp: int
    fn: int
    is_unknown: bool = False  # the "Unknown" pseudo-class row, not an enrolled class


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros(np.broadcast(num, den).shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def per_class_counts(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> tuple[np.ndarray, ...]:
    """Per-class TP, FP, FN and support for one or many prediction rows.

    ``y_pred`` may be (n,) or (G, n) (one row per grid point); the counts come back with the same
    leading shape and a last axis of ``n_classes``. Vectorised with one bincount over (row, class).
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    pred = np.asarray(y_pred, dtype=np.int64)
    squeeze = pred.ndim == 1
    pred2 = pred[None, :] if squeeze else pred
    rows = pred2.shape[0]
    row_ids = np.arange(rows, dtype=np.int64)[:, None]
    correct = pred2 == y_true[None, :]
    named = pred2 >= 0
    tp = np.bincount((row_ids * n_classes + pred2)[correct], minlength=rows * n_classes).reshape(rows, n_classes)
    predicted = np.bincount((row_ids * n_classes + pred2)[named], minlength=rows * n_classes).reshape(
        rows, n_classes
    )
    support = np.bincount(y_true, minlength=n_classes)[None, :].repeat(rows, axis=0)
    fp = predicted - tp
    fn = support - tp
    if squeeze:
        return tp[0], fp[0], fn[0], support[0]
    return tp, fp, fn, support


def weighted_f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, support: np.ndarray) -> np.ndarray:
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    total = support.sum(axis=-1)
    return _ratio((f1 * support).sum(axis=-1), total)


def paper_counts_many(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> dict[str, np.ndarray]:
    """The paper's row (tp, fp, tn, fn, precision, recall, f1) for each row of a (G, n) prediction array."""
    y_true = np.asarray(y_true, dtype=np.int64)
    pred = np.atleast_2d(np.asarray(y_pred, dtype=np.int64))
    n = y_true.shape[0]
    correct = pred == y_true[None, :]
    tp = correct.sum(axis=1)
    wrong = n - tp
    wrong_named = ((pred >= 0) & ~correct).sum(axis=1)
    tn = n * (n_classes - 1) - wrong_named
    ctp, cfp, cfn, support = per_class_counts(y_true, pred, n_classes)
    return {
        "tp": tp,
        "fp": wrong,
        "tn": tn,
        "fn": wrong,
        "precision": _ratio(tp, tp + wrong),
        "recall": _ratio(tp, tp + wrong),
        "f1": weighted_f1(ctp, cfp, cfn, support),
    }


def paper_counts(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, n_classes: int) -> Counts:
    """The paper's counts for one set of predictions (see the module docstring for the rules)."""
    if n_classes < 1:
        raise ValueError("paper_counts needs at least one enrolled class")
    true = np.asarray(y_true, dtype=np.int64)
    pred = np.asarray(y_pred, dtype=np.int64)
    if true.shape != pred.shape or true.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D and the same length, got {true.shape} and {pred.shape}")
    if len(true) and (true.min() < 0 or true.max() >= n_classes):
        raise ValueError("every true label must be an enrolled class (0..n_classes-1)")
    if len(pred) and (pred.min() < UNKNOWN or pred.max() >= n_classes):
        raise ValueError("predictions must be enrolled classes or UNKNOWN (-1)")
    row = paper_counts_many(true, pred, n_classes)
    return Counts(
        tp=int(row["tp"][0]),
        fp=int(row["fp"][0]),
        tn=int(row["tn"][0]),
        fn=int(row["fn"][0]),
        precision=float(row["precision"][0]),
        recall=float(row["recall"][0]),
        f1=float(row["f1"][0]),
    )


def class_report(
    y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, class_names: Sequence[str]
) -> list[ClassScore]:
    """Per-class precision/recall/F1/support (scikit-learn's classification_report), then "Unknown".

    The "Unknown" row appears when anything was predicted Unknown: its support is 0 and its
    precision 0.00, as in the paper's table.
    """
    true = np.asarray(y_true, dtype=np.int64)
    pred = np.asarray(y_pred, dtype=np.int64)
    tp, fp, fn, support = per_class_counts(true, pred, len(class_names))
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, support)
    f1 = _ratio(2 * precision * recall, precision + recall)
    rows = [
        ClassScore(name, float(precision[i]), float(recall[i]), float(f1[i]), int(support[i]), int(tp[i]),
                   int(fp[i]), int(fn[i]))
        for i, name in enumerate(class_names)
    ]
    unknown = int((pred == UNKNOWN).sum())
    if unknown:
        rows.append(ClassScore(UNKNOWN_NAME, 0.0, 0.0, 0.0, 0, 0, unknown, 0, is_unknown=True))
    return rows


F1_GROUPS: tuple[tuple[str, float, float], ...] = (
    ("0-49%", 0.0, 0.50),
    ("50-74%", 0.50, 0.75),
    ("75-100%", 0.75, 1.0 + 1e-9),
)


def f1_groups(scores: Sequence[ClassScore]) -> list[tuple[str, list[str]]]:
    """The enrolled classes grouped by F1 as the paper tabulates them (Unknown is not a class)."""
    enrolled = [s for s in scores if not s.is_unknown]
    groups: list[tuple[str, list[str]]] = []
    for label, low, high in F1_GROUPS:
        # Rounded to 4 places first so that 0.7499999 from float division lands where a reader expects.
        names = [s.name for s in enrolled if low <= round(s.f1, 4) < high]
        groups.append((label, names))
    return groups


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(C, C + 1) counts: rows are true classes, columns predicted classes, the last column Unknown."""
    true = np.asarray(y_true, dtype=np.int64)
    pred = np.asarray(y_pred, dtype=np.int64)
    col = np.where(pred == UNKNOWN, n_classes, pred)
    flat = np.bincount(true * (n_classes + 1) + col, minlength=n_classes * (n_classes + 1))
    return flat.reshape(n_classes, n_classes + 1)


@dataclass(frozen=True)
class Confusion:
    true: str
    predicted: str
    count: int
    share_of_true: float  # of the true class's probes


def most_confused(matrix: np.ndarray, class_names: Sequence[str], *, top: int = 10) -> list[Confusion]:
    """The largest off-diagonal cells of a confusion matrix (Unknown included), largest first."""
    names = [*class_names, UNKNOWN_NAME]
    off = matrix.astype(np.int64).copy()
    n = len(class_names)
    off[np.arange(n), np.arange(n)] = 0
    support = matrix.sum(axis=1)
    order = np.argsort(-off, axis=None, kind="stable")
    out: list[Confusion] = []
    for flat in order[:top]:
        r, c = divmod(int(flat), off.shape[1])
        if off[r, c] <= 0:
            break
        out.append(Confusion(names[r], names[c], int(off[r, c]), float(off[r, c] / support[r]) if support[r] else 0.0))
    return out
