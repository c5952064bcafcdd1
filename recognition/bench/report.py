"""Benchmark results: rows, timings and the machine they were measured on, as a table and JSON."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..runtime import kernel_cpu_flags


@dataclass
class Row:
    """One figure. Times are milliseconds: ``value`` the median, ``p95`` the 95th percentile."""

    section: str
    name: str
    value: float | None
    unit: str
    p95: float | None = None
    runs: int | None = None
    ratio: float | None = None
    note: str = ""


@dataclass
class Report:
    machine: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, section: str, name: str, value: float | None, unit: str, **extra: Any) -> Row:
        row = Row(section, name, value, unit, **extra)
        self.rows.append(row)
        return row

    def add_timing(self, section: str, name: str, timing: Timing, unit: str = "ms", *, per: int = 1,
                   ratio: float | None = None, note: str = "") -> Row:
        return self.add(section, name, timing.median / per, unit, p95=timing.p95 / per, runs=timing.runs,
                        ratio=ratio, note=note)

    def find(self, section: str, name: str) -> Row | None:
        return next((r for r in self.rows if r.section == section and r.name == name), None)

    def as_dict(self) -> dict[str, Any]:
        return {"machine": self.machine, "config": self.config, "rows": [asdict(r) for r in self.rows],
                "notes": self.notes}

    def write_json(self, path: str | os.PathLike[str]) -> None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(self.as_dict(), indent=2) + "\n")

    def table(self) -> str:
        lines = [f"Machine: {self.machine.get('cpu', '?')}, {self.machine.get('cores', '?')} cores, "
                 f"{self.machine.get('memory_gb', '?')} GB; load average {self.machine.get('load_start', '?')} "
                 f"at start, {self.machine.get('load_end', '?')} at end"]
        if self.config:
            lines.append("Config: " + ", ".join(f"{k}={v}" for k, v in self.config.items()))
        header = ("section", "measurement", "median", "p95", "unit", "runs", "ratio", "note")
        body = [header] + [
            (r.section, r.name, _fmt(r.value), _fmt(r.p95), r.unit, "" if r.runs is None else str(r.runs),
             "" if r.ratio is None else f"{r.ratio:.2f}x", r.note)
            for r in self.rows
        ]
        widths = [max(len(row[i]) for row in body) for i in range(len(header) - 1)]
        for n, row in enumerate(body):
            cells = [row[i].ljust(widths[i]) if i < 2 or i == 4 else row[i].rjust(widths[i])
                     for i in range(len(header) - 1)]
            lines.append("  ".join(cells) + ("  " + row[-1] if row[-1] else ""))
            if n == 0:
                lines.append("  ".join("-" * w for w in widths))
        lines += [f"* {note}" for note in self.notes]
        return "\n".join(lines)


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    if value == 0 or abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 0.1:
        return f"{value:.2f}"
    return f"{value:.3f}"


@dataclass(frozen=True)
class Timing:
    median: float  # ms
    p95: float  # ms
    runs: int

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Timing:
        ms = np.asarray(seconds, dtype=np.float64) * 1000.0
        return cls(float(np.median(ms)), float(np.percentile(ms, 95)), len(ms))


def timed(fn: Callable[[], Any], *, warmup: int = 2, repeats: int = 20, budget_s: float = 10.0,
          min_runs: int = 3) -> Timing:
    """Run ``fn`` ``warmup`` times untimed, then up to ``repeats`` timed runs, stopping early once
    ``budget_s`` is spent (after at least ``min_runs``)."""
    for _ in range(warmup):
        fn()
    seconds: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(seconds) < repeats:
        started = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - started)
        if len(seconds) >= min_runs and time.perf_counter() > deadline:
            break
    return Timing.of(seconds)


def timed_each(calls: Sequence[Callable[[], Any]], *, warmup: int = 3, budget_s: float = 10.0,
               min_runs: int = 3) -> Timing:
    """Time each call once (different inputs: queries), after ``warmup`` untimed calls."""
    for call in calls[:warmup]:
        call()
    seconds: list[float] = []
    deadline = time.perf_counter() + budget_s
    for call in calls:
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
        if len(seconds) >= min_runs and time.perf_counter() > deadline:
            break
    return Timing.of(seconds)


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": _memory_gb(),
        "python": platform.python_version(),
        "load_start": load_average(),
        "cpu_flags": sorted(kernel_cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16",
                                             "amx_int8", "amx_tile"}),
        "versions": _versions(),
    }
    return info


def _cpu_model() -> str:
    try:
        lscpu = shutil.which("lscpu")
        if lscpu is None:
            raise OSError("no lscpu")
        out = subprocess.run([lscpu], capture_output=True, text=True, timeout=10, check=False).stdout  # noqa: S603
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def load_average() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "?"


def _versions() -> dict[str, str]:
    import faiss

    versions = {"numpy": np.__version__, "opencv": cv2.__version__, "faiss": faiss.__version__}
    for name in ("torch", "open_clip", "dlib"):
        try:
            module = __import__(name)
            versions[name] = str(getattr(module, "__version__", "?"))
        except ImportError:
            continue
    return versions


CUDA_LIBRARY_MARKERS = ("/nvidia/", "libtorch_cuda", "libcudnn", "libnccl", "/triton/")


def cuda_library_rss_mb(pid: int | str = "self") -> float:
    """MB of a process's resident memory that are pages of CUDA libraries (a CUDA build of torch
    maps cuBLAS, nvrtc, nvJitLink, ... at ``import torch``, GPU or not); 0 where /proc has no smaps."""
    total_kb, counted = 0, False
    try:
        lines = Path(f"/proc/{pid}/smaps").read_text().splitlines()
    except OSError:
        return 0.0
    for line in lines:
        fields = line.split()
        if fields and "-" in fields[0] and len(fields) >= 5 and ":" in fields[3]:  # a mapping's header
            counted = len(fields) > 5 and any(marker in fields[5] for marker in CUDA_LIBRARY_MARKERS)
        elif counted and fields and fields[0] == "Rss:":
            total_kb += int(fields[1])
    return total_kb / 1024


def rss_mb(pid: int | str = "self") -> tuple[float, float]:
    """(resident, peak resident) memory of a process in MB, from /proc (Linux)."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            values[line.split(":")[0]] = int(line.split()[1]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)
