"""Reproducing the paper's evaluation on a labelled dataset, one or more backbones side by side.

``python -m recognition.evaluate DATASET --out DIR`` runs it all; the pieces are here for a
notebook: load_dataset, SetEmbedder (cached embeddings), grid_search, open_set_sweep,
calibration_summary, scalability and evaluate, which writes report.md and report.json.
"""

from .calibration import calibration_summary, upper_bound_95
from .dataset import Dataset, DatasetError, Source, load_dataset
from .embeddings import AUGMENTATIONS, EmbeddedSet, EmbeddingCache, SamplingOptions, SetEmbedder, augment
from .grid import CSV_COLUMNS, GridResult, Neighbours, grid_search, predict, search_neighbours, threshold_range
from .grid import vote_tables as vote_tables
from .metrics import UNKNOWN, Counts, class_report, confusion_matrix, f1_groups, most_confused, paper_counts
from .openset import OpenSetResult, open_set_sweep
from .run import BackboneSpec, EvaluationSettings, evaluate
from .scalability import ScalePoint, class_counts, scalability

__all__ = [
    "AUGMENTATIONS",
    "CSV_COLUMNS",
    "UNKNOWN",
    "BackboneSpec",
    "Counts",
    "Dataset",
    "DatasetError",
    "EmbeddedSet",
    "EmbeddingCache",
    "EvaluationSettings",
    "GridResult",
    "Neighbours",
    "OpenSetResult",
    "SamplingOptions",
    "ScalePoint",
    "SetEmbedder",
    "Source",
    "augment",
    "calibration_summary",
    "class_counts",
    "class_report",
    "confusion_matrix",
    "evaluate",
    "f1_groups",
    "grid_search",
    "load_dataset",
    "most_confused",
    "open_set_sweep",
    "paper_counts",
    "predict",
    "scalability",
    "search_neighbours",
    "threshold_range",
    "upper_bound_95",
    "vote_tables",
]
