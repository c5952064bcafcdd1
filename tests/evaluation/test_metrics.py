"""The paper's counting against a small example worked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from recognition.evaluation import UNKNOWN, class_report, confusion_matrix, f1_groups, most_confused, paper_counts

CLASSES = ["ana", "ben", "cy"]
# Six probes: ana x3, ben x2, cy x1.
TRUE = [0, 0, 0, 1, 1, 2]
# ana: right, right, named ben; ben: right, Unknown; cy: named ana.
PRED = [0, 0, 1, 1, UNKNOWN, 0]


def test_counts_match_the_hand_worked_example():
    counts = paper_counts(TRUE, PRED, 3)
    # TP: the three right answers. FP == FN: one per wrong answer (ben-for-ana, Unknown, ana-for-cy).
    assert (counts.tp, counts.fp, counts.fn) == (3, 3, 3)
    # TN: each probe scores a TN for every class that is neither its truth nor its (named) prediction:
    # 3 right answers x 2 + 2 wrong names x 1 + 1 Unknown x 2 = 6 + 2 + 2 = 10 (= 6 * 2 - 2).
    assert counts.tn == 10
    assert counts.precision == counts.recall == counts.accuracy == pytest.approx(0.5)
    # Per class: ana P=2/3 R=2/3 F1=2/3 (support 3); ben P=1/2 R=1/2 F1=1/2 (2); cy P=0 R=0 F1=0 (1).
    assert counts.f1 == pytest.approx((3 * 2 / 3 + 2 * 0.5 + 0) / 6)


def test_fp_equals_fn_and_precision_equals_recall_for_any_predictions():
    rng = np.random.default_rng(1)
    for _ in range(50):
        truth = rng.integers(0, 5, 40)
        pred = rng.integers(-1, 5, 40)
        counts = paper_counts(truth, pred, 5)
        assert counts.fp == counts.fn == 40 - counts.tp
        wrong_named = int(((pred >= 0) & (pred != truth)).sum())
        assert counts.tn == 40 * 4 - wrong_named
        assert counts.precision == counts.recall


def test_the_per_class_table_groups_and_confusions_follow_the_same_predictions():
    rows = class_report(TRUE, PRED, CLASSES)
    by_name = {row.name: row for row in rows}
    assert by_name["ana"].precision == pytest.approx(2 / 3) and by_name["ana"].support == 3
    assert by_name["ben"].f1 == pytest.approx(0.5)
    assert by_name["cy"].f1 == 0.0
    assert by_name["Unknown"].is_unknown and by_name["Unknown"].fp == 1 and by_name["Unknown"].support == 0
    assert f1_groups(rows) == [("0-49%", ["cy"]), ("50-74%", ["ana", "ben"]), ("75-100%", [])]
    matrix = confusion_matrix(np.array(TRUE), np.array(PRED), 3)
    assert matrix.tolist() == [[2, 1, 0, 0], [0, 1, 0, 1], [1, 0, 0, 0]]
    confused = most_confused(matrix, CLASSES)
    assert [(c.true, c.predicted, c.count) for c in confused] == [
        ("ana", "ben", 1), ("ben", "Unknown", 1), ("cy", "ana", 1),
    ]
    assert confused[2].share_of_true == 1.0


def test_bad_labels_are_refused_with_a_reason():
    with pytest.raises(ValueError, match="same length"):
        paper_counts([0, 1], [0], 2)
    with pytest.raises(ValueError, match="enrolled class"):
        paper_counts([0, 2], [0, 1], 2)
    with pytest.raises(ValueError, match="UNKNOWN"):
        paper_counts([0, 1], [0, -3], 2)
