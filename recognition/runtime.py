"""Thread pools of the libraries behind recognition, sized together.

A check-in runs OpenCV (the detector), then torch (CLIP) or dlib, then FAISS, each with its own
pool: OpenCV's, torch's OpenMP, and FAISS's separate copy of OpenMP. Left alone each sizes itself
to every core, and several processes on one machine (gunicorn workers, a Celery worker) then run
cores x processes busy threads. OpenMP's threads wait for each other at every layer, so one
descheduled thread stalls the rest: measured here on 2 cores, CLIP ViT-B-32 bf16 at batch 1 took
47 ms with 2 threads on an idle machine, 76 ms with 1 thread, and 103 ms (p95 295 ms) with 2
threads while one other process kept a core busy. Give each process cores / processes threads.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

_threads: int | None = None


def set_threads(count: int) -> None:
    """Size the OpenCV, torch and FAISS thread pools of this process to ``count`` threads.

    torch is configured now if it is imported, else when a model that runs on it loads (CLIP, or
    dlib's network with its torch engine).
    """
    global _threads
    if count < 1:
        raise ValueError("count must be at least 1")
    _threads = count
    import cv2
    import faiss

    cv2.setNumThreads(count)
    faiss.omp_set_num_threads(count)
    if "torch" in sys.modules:
        _apply_torch(count)


def configured_threads() -> int | None:
    """The count given to ``set_threads`` in this process, or None (each library's default)."""
    return _threads


def apply_torch_threads() -> None:
    """Called once torch is imported (by an embedder that runs on it)."""
    if _threads is not None:
        _apply_torch(_threads)


def _apply_torch(count: int) -> None:
    import torch

    if torch.get_num_threads() != count:
        torch.set_num_threads(count)


def thread_settings() -> dict[str, int | None]:
    """What each pool is sized to now (for reports)."""
    import cv2
    import faiss

    settings: dict[str, int | None] = {
        "configured": _threads,
        "cores": os.cpu_count(),
        "opencv": cv2.getNumThreads(),
        "faiss": faiss.omp_get_max_threads(),
        "torch": None,
    }
    if "torch" in sys.modules:
        import torch

        settings["torch"] = torch.get_num_threads()
    return settings


def kernel_cpu_flags() -> set[str]:
    """The CPU's feature flags as the Linux kernel lists them (empty elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def release_freed_memory() -> None:
    """Hand memory that was freed back to the operating system (glibc's malloc_trim; a no-op
    elsewhere). Loading a model frees a lot at once (the checkpoint as read, the float32 copy of
    a bf16 model, CLIP's text tower): measured with CLIP ViT-B-32 in bf16, the process kept
    ~470 MB more resident without it."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name or not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        pass
