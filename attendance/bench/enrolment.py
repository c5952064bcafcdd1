"""The enrolment part of manage.py bench: the test video through the real task code, per stage, and a real worker."""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from django.core.files import File
from django.core.management.base import CommandError

from attendance.bench.processes import REPO_ROOT, child_pids, stop
from attendance.bench.state import BenchState
from recognition import bench as lib


class EnrolmentBench(BenchState):
    """AppBench's enrolment measurements (a mixin: the state lives on AppBench)."""

    def _enrol_katie(self, fixture: dict[str, Any], *, timed: bool) -> None:
        from attendance import ml
        from attendance.models import FaceEmbedding, FaceEnrolment

        runs = self.enrolments if timed else 1
        self.say(f"enrolling the talking-head video {runs} time(s) through the task code")
        task = _enrolment_task()
        walls: list[float] = []
        embedded: list[int] = []
        parts: dict[str, list[float]] = {}
        for _ in range(runs):
            enrolment = self._upload(fixture)
            with _stage_timers(ml.embedder(), ml.detector()) as timers:
                started = time.perf_counter()
                if task is not None:
                    task.apply(args=(enrolment.pk,), throw=True)
                else:
                    from attendance.enrolment.processing import enrolment_video_process

                    enrolment_video_process(enrolment_id=enrolment.pk)
                walls.append(time.perf_counter() - started)
            embedded.append(timers.faces)
            for name, seconds in timers.seconds.items():
                parts.setdefault(name, []).append(seconds)
            enrolment.refresh_from_db()
            if enrolment.status != FaceEnrolment.Status.READY:
                raise CommandError(f"The benchmark enrolment ended {enrolment.status}: {enrolment.error_message}")
        stored = FaceEmbedding.objects.filter(enrolment=enrolment).count()
        if not timed:
            return
        timing = lib.Timing.of(walls)
        faces = int(statistics.median(embedded))
        limit = faces * self.best_forward
        how = "attendance.tasks.enrolment_process (in-process)" if task is not None else \
            "enrolment_video_process (no Celery task yet)"
        self.report.add_timing("enrolment", f"{self.video.name}: wall time", timing,
                               ratio=timing.median / limit if limit else None,
                               note=f"{how}; {faces} faces embedded, {stored} stored; ratio to faces x best forward")
        self.report.add("enrolment", "faces embedded x best per-image forward", limit, "ms",
                        note=f"{faces} x {self.best_forward:.1f} ms")
        for name, runs_s in parts.items():
            self.report.add("enrolment", f"part: {name}", statistics.median(runs_s) * 1000, "ms",
                            note=_STAGE_NOTES.get(name, ""))

    def _upload(self, fixture: dict[str, Any]) -> Any:
        from attendance.enrolment.services import enrolment_create

        with self.video.open("rb") as handle:
            return enrolment_create(student=fixture["katie"], video=File(handle, name=self.video.name),
                                    consent=True, by=fixture["admin"], schedule=False)

    def _measure_celery_worker(self, fixture: dict[str, Any]) -> None:
        from attendance.models import FaceEnrolment

        task = _enrolment_task()
        if task is None:
            self.report.notes.append("Celery worker not measured: attendance.tasks has no enrolment task yet.")
            return
        queue = f"rollcall-bench-{os.getpid()}"
        log = (self.tmp / "celery.log").open("wb")
        self.say("starting a Celery worker (prefork, concurrency 1) and enrolling through it")
        process = subprocess.Popen(  # noqa: S603  (this interpreter, fixed arguments)
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--concurrency", "1", "--loglevel", "INFO",
             "-Q", queue, "--hostname", f"{queue}@localhost", "--without-gossip", "--without-mingle",
             "--without-heartbeat"],
            cwd=REPO_ROOT, env=self._env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            from config.celery import app

            deadline = time.monotonic() + 90
            while not app.control.ping(destination=[f"{queue}@localhost"], timeout=0.5):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise CommandError("The Celery worker did not start: see its log:\n"
                                       + (self.tmp / "celery.log").read_text()[-2000:])
            enrolment = self._upload(fixture)
            started = time.perf_counter()
            task.apply_async(args=(enrolment.pk,), queue=queue)
            while True:
                enrolment.refresh_from_db()
                if enrolment.status in (FaceEnrolment.Status.READY, FaceEnrolment.Status.FAILED):
                    break
                if time.perf_counter() - started > 300 or process.poll() is not None:
                    raise CommandError("The Celery worker did not finish the enrolment in 300 s.")
                time.sleep(0.05)
            wall = (time.perf_counter() - started) * 1000
            children = child_pids(process.pid)
            child = children[0] if children else process.pid
            rss, peak = lib.rss_mb(child)
            cuda = lib.cuda_library_rss_mb(child)
            self.report.add("enrolment", "through a Celery worker: queued to ready", wall, "ms",
                            note=f"{enrolment.status}; includes the worker's first model load")
            self.report.add("memory", "Celery worker child (model loaded, after an enrolment)", rss, "MB",
                            note=f"peak {peak:.0f} MB; {cuda:.0f} MB of it CUDA libraries' pages (a CUDA build "
                                 "of torch maps them at import; the CPU build has none)")
        finally:
            stop(process)
            log.close()


def _enrolment_task() -> Any:
    from attendance import tasks

    return getattr(tasks, "enrolment_process", None)


_STAGE_NOTES = {
    "sampled frames: decode, detect, judge": "enrolment._video_views, all of it",
    "of which the detector": "FaceDetector.detect on every sampled frame",
    "embed": "enrolment._embed: the model on the kept faces",
    "store and rebuild indexes": "enrolment._store: one transaction",
    "of which index rebuilds": "student_courses_index_rebuild",
}


class _StageTimers:
    """Seconds spent in each stage of one enrolment, and the faces sent to the model."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.faces = 0

    def wrap(self, owner: Any, attribute: str, name: str, *, count: bool = False) -> Callable[[], None]:
        original = getattr(owner, attribute)
        own = attribute in vars(owner)

        def timed_call(*args: Any, **kwargs: Any) -> Any:
            if count:
                self.faces += len(args[0])
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started

        setattr(owner, attribute, timed_call)

        def restore() -> None:
            if own:
                setattr(owner, attribute, original)
            else:
                delattr(owner, attribute)  # the instance falls back to its class's method again

        return restore


@contextlib.contextmanager
def _stage_timers(embedder: Any, detector: Any) -> Iterator[_StageTimers]:
    """Time the real enrolment code's stages by wrapping its functions for the duration (measurement
    only: the code that runs is the service's own)."""
    from attendance.enrolment import processing as service

    timers = _StageTimers()
    restores = [
        timers.wrap(service, "_video_views", "sampled frames: decode, detect, judge"),
        timers.wrap(detector, "detect", "of which the detector"),
        timers.wrap(service, "_embed", "embed"),
        timers.wrap(embedder, "encode", "of which the model (encode)", count=True),
        timers.wrap(service, "_store", "store and rebuild indexes"),
        timers.wrap(service, "student_courses_index_rebuild", "of which index rebuilds"),
    ]
    try:
        yield timers
    finally:
        for restore in reversed(restores):
            restore()
