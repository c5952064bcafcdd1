"""What the benchmark's parts share: AppBench's settings and results, declared once for the mixins."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recognition import bench as lib


class BenchState:
    """Attributes AppBench sets in __init__ (and per backbone), read by the check-in and enrolment parts."""

    report: lib.Report
    tmp: Path
    backbone: str
    quick: bool
    repeats: int
    enrolments: int
    clients: list[int]
    seconds: float
    max_requests: int
    web_workers: int
    students: int
    per_student: int
    video: Path
    frames: dict[str, np.ndarray]
    limits: dict[str, float]
    best_forward: float

    def say(self, message: str) -> None:
        raise NotImplementedError

    def _env(self) -> dict[str, str]:
        raise NotImplementedError
