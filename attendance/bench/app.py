"""manage.py bench's runner: per backbone, a throwaway database and model settings, then each section."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import override_settings, setup_databases, teardown_databases

from attendance.bench.checkin import CheckinBench
from attendance.bench.enrolment import EnrolmentBench
from recognition import ModelUnavailableError, set_threads
from recognition import bench as lib

REPO_ROOT = Path(settings.BASE_DIR)


def threads_of(report: lib.Report) -> int:
    return int(report.config.get("threads_per_process", 1))


class AppBench(CheckinBench, EnrolmentBench):
    def __init__(self, *, stdout: Any, sections: set[str], backbones: list[str], search_sizes: tuple[int, ...],
                 probes: int, cache_dir: Path | None, current_database: bool, repeats: int, enrolments: int,
                 clients: list[int], seconds: float, max_requests: int, web_workers: int, students: int,
                 per_student: int, video: Path, faces_dir: Path, quick: bool) -> None:
        self.stdout = stdout
        self.sections = sections
        self.backbones = backbones
        self.backbone = backbones[0]
        self.search_sizes = search_sizes
        self.probes = probes
        self.cache_dir = cache_dir
        self.current_database = current_database
        self.repeats = repeats
        self.enrolments = enrolments
        self.clients = clients
        self.seconds = seconds
        self.max_requests = max_requests
        self.web_workers = web_workers
        self.students = students
        self.per_student = per_student
        self.video = video
        self.faces_dir = faces_dir
        self.quick = quick
        self.report = lib.Report()
        self.tmp = Path(tempfile.mkdtemp(prefix="rollcall-bench-app-"))
        self.env_overrides: dict[str, str] = {}
        self.frames: dict[str, np.ndarray] = {}
        self.limits: dict[str, float] = {}

    def say(self, message: str) -> None:
        self.stdout.write(f"[bench] {message}")
        self.stdout.flush()

    def run(self) -> lib.Report:
        self.report.machine.update(lib.machine_info())
        threads = int(settings.ROLLCALL_INFERENCE_THREADS)
        set_threads(threads)
        self.report.config.update({"backbones": ",".join(self.backbones), "threads_per_process": threads,
                                   "web_workers": self.web_workers, "quick": self.quick,
                                   "course": f"{self.students} x {self.per_student}"})
        try:
            for backbone in self.backbones:
                self.backbone = backbone
                self.env_overrides = {}
                self.frames, self.limits = {}, {}
                first = len(self.report.rows)
                self.say(f"--- backbone {backbone} ---")
                with self._models_settings(), self._database():
                    self._run_sections()
                if "search" in self.sections:
                    self._measure_search()
                for row in self.report.rows[first:]:
                    row.section = f"{row.section} {backbone}"
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)
            from attendance import ml
            from attendance.courses import indexes

            ml.reset()
            indexes.clear_cache()
        self.report.config["thread_pools"] = lib.thread_settings()
        self.report.machine["load_end"] = lib.load_average()
        return self.report

    def _measure_search(self) -> None:
        """FAISS alone on face-like galleries of the backbone's dimension (recognition.bench)."""
        from recognition import ClipEmbedder, DlibEmbedder

        dim = DlibEmbedder.dim if self.backbone == "dlib" else ClipEmbedder(settings.ROLLCALL_CLIP_MODEL).dim
        self.say(f"search: galleries of {', '.join(lib.size_label(n) for n in self.search_sizes)} {dim}-d vectors")
        if lib.FACE_MODEL_NOTE not in self.report.notes:
            self.report.notes.append(lib.FACE_MODEL_NOTE)
        lib.measure_search(self.report, self.search_sizes, dim, backbone=f"bench-{self.backbone}",
                           cache_dir=self.cache_dir, probes=self.probes, budget_s=3.0 if self.quick else 8.0,
                           memory=True)

    def _run_sections(self) -> None:
        from attendance import ml
        from attendance.courses import indexes

        # A new database numbers its courses from 1 again: the previous backbone's cached index of
        # "course 1" must not be taken for this one's.
        ml.reset()
        indexes.clear_cache()
        detector, embedder = ml.detector(), ml.embedder()
        embedder.load()  # type: ignore[attr-defined]
        self.report.notes.append(f"Model: {lib.describe_embedder(embedder)}")
        self.frames = lib.benchmark_frames(self.faces_dir)
        if set(self.frames) != {"1 face", "4 faces"}:
            raise CommandError(f"The test frames are not in {self.faces_dir}: pass --faces-dir or set "
                               "ROLLCALL_FACES_DIR.")
        budget = 3.0 if self.quick else 8.0
        self.say("measuring the limit: detector + bare forward per frame")
        for name, frame in self.frames.items():
            detect, model, faces = lib.frame_limit(detector, embedder, frame, repeats=self.repeats, warmup=2,
                                                   budget_s=budget)
            self.limits[name] = detect.median + model.median
            if "limit" in self.sections:
                self.report.add_timing("limit", f"{name}: detector", detect, note=f"{faces} faces found")
                self.report.add_timing("limit", f"{name}: bare forward", model,
                                       note=f"{faces} x {lib.passes_per_face(embedder)} pass(es) in one batch")
                self.report.add("limit", f"{name}: detector + bare forward", self.limits[name], "ms")
        crop = lib.sample_crop(embedder, self.frames, detector)
        batches = (1, 8) if self.quick else lib.FULL_BATCHES
        if getattr(embedder, "engine", "torch") == "dlib":
            batches = (1, 4)  # dlib's own code gains nothing from batching
        peaks = lib.measure_peaks(self.report, threads=threads_of(self.report), budget_s=0.5 if self.quick else 1.5)
        label = f"{self.backbone} forward"
        per_image = lib.measure_forward(self.report, embedder, crop, label=label,
                                        batches=batches, repeats=self.repeats, warmup=2, budget_s=budget)
        lib.add_limit_rows(self.report, embedder, crop, label=label, per_image_ms=per_image, peaks=peaks)
        self.best_forward = min(per_image.values()) * lib.passes_per_face(embedder)

        fixture = self._fixture()
        if "rebuild" in self.sections:
            self._measure_rebuild(fixture)
        self._enrol_katie(fixture, timed="enrolment" in self.sections)
        if "checkin" in self.sections:
            self._measure_checkin(fixture)
            self._measure_liveness(fixture)
        if "concurrency" in self.sections:
            self._measure_concurrency(fixture)
        if "worker" in self.sections:
            self._measure_celery_worker(fixture)
        self._clear_redis(fixture)

    @contextlib.contextmanager
    def _models_settings(self) -> Iterator[None]:
        """The configured models, with two substitutions where this machine cannot load them: CLIP's
        pretrained weights (random weights in a checkpoint file instead: same speed) and the detector
        file (the shared copy)."""
        overrides: dict[str, Any] = {
            "ROLLCALL_BACKBONE": self.backbone,
            "MEDIA_ROOT": self.tmp / "media",
            "ROLLCALL_INDEX_DIR": self.tmp / "indexes",
            "ROLLCALL_CHECKIN_RATE_PER_MINUTE": 1_000_000,
            "ROLLCALL_STORE_SNAPSHOTS": False,
            "CELERY_TASK_ALWAYS_EAGER": False,
        }
        detector = Path(settings.ROLLCALL_DETECTOR_MODEL)
        if not detector.is_file():
            found = lib.default_detector_model()
            if found is None:
                raise CommandError(f"No YuNet model at {detector}: set ROLLCALL_DETECTOR_MODEL.")
            overrides["ROLLCALL_DETECTOR_MODEL"] = found
        if "checkin" in self.sections:  # its liveness rows need both MiniFASNet models
            folder = Path(settings.ROLLCALL_LIVENESS_MODEL_DIR)
            found_dir = lib.default_liveness_model_dir(folder)
            if found_dir is None:
                raise CommandError(f"No MiniFASNet models in {folder}: set ROLLCALL_LIVENESS_MODEL_DIR "
                                   "to the folder that holds both, or leave out the checkin section.")
            overrides["ROLLCALL_LIVENESS_MODEL_DIR"] = found_dir
        if self.backbone == "clip":
            from recognition import ClipEmbedder

            try:
                # The way the workers load it (the standalone tower where it can), so that the bench
                # runs where open_clip's own dependencies are not installed.
                ClipEmbedder(settings.ROLLCALL_CLIP_MODEL, pretrained=settings.ROLLCALL_CLIP_PRETRAINED,
                             checkpoint=settings.ROLLCALL_CLIP_CHECKPOINT, allow_download=False).load()
            except ModelUnavailableError as exc:
                overrides["ROLLCALL_CLIP_CHECKPOINT"] = self._random_clip_checkpoint()
                self.report.notes.append(
                    f"CLIP weights unavailable here ({str(exc)[:80]}...): random {settings.ROLLCALL_CLIP_MODEL} "
                    "weights from a checkpoint file instead; a forward pass costs the same."
                )
        for name in ("MEDIA_ROOT", "ROLLCALL_INDEX_DIR"):
            Path(overrides[name]).mkdir(parents=True, exist_ok=True)
        self.env_overrides.update({name: str(value) for name, value in overrides.items()
                                   if name.startswith(("ROLLCALL_", "MEDIA_ROOT"))})
        with override_settings(**overrides):
            yield

    def _random_clip_checkpoint(self) -> Path:
        import open_clip
        import torch

        torch.manual_seed(0)
        model = open_clip.create_model(settings.ROLLCALL_CLIP_MODEL, pretrained=None)
        path = self.tmp / "clip-random.pt"
        torch.save(model.state_dict(), path)
        return path

    @contextlib.contextmanager
    def _database(self) -> Iterator[None]:
        if self.current_database:
            self._database_url()
            yield
            return
        self.say("creating the throwaway database (migrations)")
        db = connection.settings_dict
        if db["ENGINE"].endswith("sqlite3"):
            db.setdefault("TEST", {})["NAME"] = str(self.tmp / "bench.sqlite3")
        old = setup_databases(verbosity=0, interactive=False)
        try:
            self._database_url()
            yield
        finally:
            connection.close()
            teardown_databases(old, verbosity=0)

    def _database_url(self) -> None:
        """The database in use, for the gunicorn and Celery processes the bench starts."""
        db = connection.settings_dict
        if db["ENGINE"].endswith("sqlite3"):
            self.env_overrides["DATABASE_URL"] = f"sqlite:///{db['NAME']}"
        else:
            auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
            self.env_overrides["DATABASE_URL"] = f"postgres://{auth}@{db['HOST']}:{db['PORT']}/{db['NAME']}"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.env_overrides)
        env.update({"DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "false",
                    "REDIS_URL": settings.REDIS_URL, "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
                    "CELERY_RESULT_BACKEND": settings.CELERY_RESULT_BACKEND,
                    "ROLLCALL_INFERENCE_THREADS": str(self.report.config["threads_per_process"])})
        return env
