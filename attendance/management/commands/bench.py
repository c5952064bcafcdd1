"""python manage.py bench: the app's speed against the model's own limit.

Everything runs in a throwaway database that Django's test machinery creates (test_<name>) and drops
afterwards, with temporary media and index folders; Redis keys of the bench's session are deleted at
the end. Servers and workers are started on 127.0.0.1 only, and every load loop is bounded in
requests and seconds.

Sections (--sections, all by default):
  limit        detector + bare forward of the configured models on the two test frames
  checkin      the check-in API through Django's test client: 1 face (an enrolled student) and
               4 faces (strangers), in a course of 500 students x 20 embeddings; ratio to the limit
  enrolment    ../shared/faces/videos/katie_hill_talking.mp4 through the real Celery task code,
               in-process; ratio to faces embedded x best per-image forward
  rebuild      the course index rebuilt from PostgreSQL (500 x 20)
  concurrency  check-ins per second with 1, 2 and 4 clients against gunicorn on 127.0.0.1, and each
               web worker's resident memory with the model loaded
  worker       a real Celery worker processes an enrolment: its resident memory with the model loaded
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.files import File
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.test import Client
from django.test.utils import override_settings, setup_databases, teardown_databases

from recognition import ModelUnavailableError, set_threads
from recognition import bench as lib

SECTIONS = ("limit", "checkin", "enrolment", "rebuild", "concurrency", "worker", "search")
REPO_ROOT = Path(settings.BASE_DIR)


class Command(BaseCommand):
    help = "Measure check-in, enrolment, index rebuild, worker memory and concurrency against the model's limit."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--quick", action="store_true", help="fewer repeats and shorter load runs")
        parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
        parser.add_argument("--sections", default=",".join(SECTIONS), help=f"any of {','.join(SECTIONS)}")
        parser.add_argument("--backbones", help="comma-separated, measured one after the other (default: "
                            "ROLLCALL_BACKBONE); 'clip,dlib' for both")
        parser.add_argument("--search-sizes", type=lib._ints,
                            help="gallery sizes for the search section (default 1k,10k,100k,1M; quick 1k,10k)")
        parser.add_argument("--probes", type=int, help="search queries per gallery size (default 200; quick 64)")
        parser.add_argument("--cache-dir", type=Path, default=lib.DEFAULT_CACHE,
                            help="where galleries of 100k vectors and more are cached between runs")
        parser.add_argument("--in-current-database", action="store_true",
                            help="use the configured database as it is (the test suite's) instead of creating and "
                                 "dropping a throwaway one")
        parser.add_argument("--repeats", type=int, help="timed requests per frame (default 20; quick 8)")
        parser.add_argument("--enrolments", type=int, help="timed enrolments (default 3; quick 1)")
        parser.add_argument("--clients", default="1,2,4", help="concurrent clients against gunicorn")
        parser.add_argument("--seconds", type=float, help="seconds per client count (default 15; quick 5)")
        parser.add_argument("--max-requests", type=int, default=400, help="requests at most per client count")
        parser.add_argument("--web-workers", type=int, default=int(os.environ.get("WEB_WORKERS", "2")))
        parser.add_argument("--students", type=int, default=lib.COURSE[0])
        parser.add_argument("--per-student", type=int, default=lib.COURSE[1])
        parser.add_argument("--faces-dir", type=Path, default=lib.default_faces_dir(),
                            help="../shared/faces: the check-in frames come from it")
        parser.add_argument("--video", type=Path, help="the enrolment video (default: the faces folder's "
                            "videos/katie_hill_talking.mp4)")

    def handle(self, *args: Any, **options: Any) -> None:
        quick = bool(options["quick"])
        sections = {s.strip() for s in options["sections"].split(",") if s.strip()}
        unknown = sections - set(SECTIONS)
        if unknown:
            raise CommandError(f"Unknown section(s) {', '.join(sorted(unknown))}: choose from {', '.join(SECTIONS)}.")
        video = Path(options["video"] or Path(options["faces_dir"]) / "videos" / "katie_hill_talking.mp4")
        if not video.is_file():
            raise CommandError(f"The test video is not at {video}: pass --video or set ROLLCALL_FACES_DIR.")
        backbones = [b.strip() for b in (options["backbones"] or settings.ROLLCALL_BACKBONE).split(",") if b.strip()]
        wrong = [b for b in backbones if b not in ("clip", "dlib")]
        if wrong or not backbones:
            raise CommandError(f"Unknown backbone(s) {', '.join(wrong)}: choose clip, dlib or both.")
        bench = AppBench(
            stdout=self.stdout,
            sections=sections,
            backbones=backbones,
            search_sizes=options["search_sizes"] or (lib.QUICK_SIZES if quick else lib.FULL_SIZES),
            probes=options["probes"] or (64 if quick else 200),
            cache_dir=options["cache_dir"],
            current_database=bool(options["in_current_database"]),
            repeats=options["repeats"] or (8 if quick else 20),
            enrolments=options["enrolments"] or (1 if quick else 3),
            clients=[int(c) for c in options["clients"].split(",") if c.strip()],
            seconds=options["seconds"] or (5.0 if quick else 15.0),
            max_requests=options["max_requests"],
            web_workers=options["web_workers"],
            students=options["students"],
            per_student=options["per_student"],
            video=video,
            faces_dir=Path(options["faces_dir"]),
            quick=quick,
        )
        try:
            report = bench.run()
        except BaseException as exc:
            # What was measured before the failure is still worth reading.
            bench.report.notes.append(f"STOPPED EARLY: {type(exc).__name__}: {exc}")
            if options["json"]:
                bench.report.write_json(options["json"])
            raise
        self.stdout.write(report.table())
        if options["json"]:
            report.write_json(options["json"])
            self.stdout.write(f"\nJSON written to {options['json']}")


class AppBench:
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

    # --- orchestration -----------------------------------------------------------------------

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
            from attendance.services import indexes

            ml.reset()
            indexes.clear_cache()
        self.report.config["thread_pools"] = lib.thread_settings()
        self.report.machine["load_end"] = lib._load()
        return self.report

    def _measure_search(self) -> None:
        """FAISS alone on face-like galleries of the backbone's dimension (recognition.bench)."""
        from recognition import ClipEmbedder, DlibEmbedder

        dim = DlibEmbedder.dim if self.backbone == "dlib" else ClipEmbedder(settings.ROLLCALL_CLIP_MODEL).dim
        self.say(f"search: galleries of {', '.join(lib._size_label(n) for n in self.search_sizes)} {dim}-d vectors")
        if lib.FACE_MODEL_NOTE not in self.report.notes:
            self.report.notes.append(lib.FACE_MODEL_NOTE)
        lib.measure_search(self.report, self.search_sizes, dim, backbone=f"bench-{self.backbone}",
                           cache_dir=self.cache_dir, probes=self.probes, budget_s=3.0 if self.quick else 8.0,
                           memory=True)

    def _run_sections(self) -> None:
        from attendance import ml
        from attendance.services import indexes

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
        if lib.passes_per_face(embedder) > 1 or self.backbone == "dlib":
            batches = (1, 4)  # dlib gains nothing from batching
        per_image = lib.measure_forward(self.report, embedder, crop, label=f"{self.backbone} forward",
                                        batches=batches, repeats=self.repeats, warmup=2, budget_s=budget)
        self.best_forward = min(per_image.values()) * lib.passes_per_face(embedder)

        fixture = self._fixture()
        if "rebuild" in self.sections:
            self._measure_rebuild(fixture)
        self._enrol_katie(fixture, timed="enrolment" in self.sections)
        if "checkin" in self.sections:
            self._measure_checkin(fixture)
        if "concurrency" in self.sections:
            self._measure_concurrency(fixture)
        if "worker" in self.sections:
            self._measure_celery_worker(fixture)
        self._clear_redis(fixture)

    # --- environment -------------------------------------------------------------------------

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
        if self.backbone == "clip":
            from recognition import ClipEmbedder

            try:
                ClipEmbedder(settings.ROLLCALL_CLIP_MODEL, pretrained=settings.ROLLCALL_CLIP_PRETRAINED,
                             checkpoint=settings.ROLLCALL_CLIP_CHECKPOINT, allow_download=False)._create()
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

    # --- data --------------------------------------------------------------------------------

    def _fixture(self) -> dict[str, Any]:
        from django.utils import timezone

        from attendance import ml
        from attendance.models import Course, CourseMembership, FaceEmbedding, FaceEnrolment, User
        from attendance.services.sessions import session_kiosk_token_create, session_open

        self.say(f"making a course of {self.students} students x {self.per_student} embeddings")
        admin = User.objects.create_user(f"bench-admin-{self.backbone}", password=None, role="admin", is_staff=True)
        lecturer = User.objects.create_user(f"bench-lecturer-{self.backbone}", password=None, role="lecturer")
        course = Course.objects.create(code=f"BENCH-{self.backbone}", title="Benchmarking", term="bench")
        course.lecturers.add(lecturer)
        embedder = ml.embedder()
        gallery = lib.face_like_gallery(self.students * self.per_student, embedder.dim,
                                        per_identity=self.per_student, seed=21)
        now = timezone.now()
        students = User.objects.bulk_create(
            User(username=f"bench-student-{self.backbone}-{i}", role="student", first_name="Student", last_name=str(i))
            for i in range(self.students)
        )
        CourseMembership.objects.bulk_create(CourseMembership(course=course, student=s) for s in students)
        enrolments = FaceEnrolment.objects.bulk_create(
            FaceEnrolment(student=s, status=FaceEnrolment.Status.READY, consent_given_at=now,
                          backbone=ml.embedder_name(), started_at=now, finished_at=now, attempts=1)
            for s in students
        )
        space = ml.embedder_name()
        FaceEmbedding.objects.bulk_create(
            (
                FaceEmbedding(enrolment=enrolment, student_id=enrolment.student_id, backbone=space, dim=embedder.dim,
                              vector=np.ascontiguousarray(vector, dtype="<f4").tobytes())
                for n, enrolment in enumerate(enrolments)
                for vector in gallery.vectors[n * self.per_student : (n + 1) * self.per_student]
            ),
            batch_size=2000,
        )
        katie = User.objects.create_user(f"bench-katie-{self.backbone}", password=None, role="student",
                                         first_name="Katie", last_name="Hill")
        CourseMembership.objects.create(course=course, student=katie)
        session = session_open(course=course, by=lecturer, title="Benchmark")
        token = session_kiosk_token_create(session=session, by=lecturer)
        return {"admin": admin, "lecturer": lecturer, "course": course, "katie": katie, "session": session,
                "token": token}

    def _clear_redis(self, fixture: dict[str, Any]) -> None:
        from attendance.redis_client import key, redis_client
        from attendance.services.checkin import checkin_state_clear

        with contextlib.suppress(Exception):
            session_id = fixture["session"].pk
            checkin_state_clear(session_id=session_id)
            client = redis_client()
            names = list(client.scan_iter(match=key("rate", "checkin", session_id, "*"), count=500))
            if names:
                client.delete(*names)

    # --- index rebuild -------------------------------------------------------------------------

    def _measure_rebuild(self, fixture: dict[str, Any]) -> None:
        from attendance.services.indexes import course_index_rebuild

        self.say("rebuilding the course index from the database")
        course = fixture["course"]
        timing = lib.timed(lambda: course_index_rebuild(course=course), warmup=1,
                           repeats=3 if self.quick else 5, budget_s=20)
        self.report.add_timing("rebuild", f"course of {self.students} x {self.per_student}: course_index_rebuild",
                               timing, note="read from the database, build, save, bump the version")

    # --- enrolment -----------------------------------------------------------------------------

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
                    from attendance.services.enrolment import enrolment_video_process

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
        from attendance.services.enrolment import enrolment_create

        with self.video.open("rb") as handle:
            return enrolment_create(student=fixture["katie"], video=File(handle, name=self.video.name),
                                    consent=True, by=fixture["admin"], schedule=False)

    # --- check-in through the API --------------------------------------------------------------

    def _measure_checkin(self, fixture: dict[str, Any]) -> None:
        from attendance import ml
        from attendance.services import indexes

        session, token = fixture["session"], fixture["token"]
        client = Client(HTTP_HOST="127.0.0.1")  # an allowed host whatever ALLOWED_HOSTS adds
        url = f"/api/sessions/{session.pk}/check-in/"
        for name, frame in self.frames.items():
            body = lib.jpeg(frame)
            outcomes: list[str] = []

            def post(body: bytes = body, outcomes: list[str] = outcomes) -> None:
                response = client.post(url, data=body, content_type="image/jpeg", HTTP_X_KIOSK_TOKEN=token)
                if response.status_code != 200:
                    raise CommandError(f"check-in answered {response.status_code}: {response.content[:300]!r}")
                outcomes[:] = [face["outcome"] for face in response.json()["faces"]]

            self.say(f"check-in through the API: {name}")
            post()  # the first request loads the course index: warm-up
            before = (id(ml.embedder()), id(ml.detector()), id(indexes._cache.get(fixture["course"].pk)))
            timing = lib.timed(post, warmup=2, repeats=self.repeats, budget_s=60)
            after = (id(ml.embedder()), id(ml.detector()), id(indexes._cache.get(fixture["course"].pk)))
            loads = "no model or index loaded during the timed requests" if before == after else \
                "A MODEL OR INDEX WAS LOADED DURING THE TIMED REQUESTS"
            limit = self.limits.get(name)
            self.report.add_timing("checkin", f"API, {name}", timing, ratio=timing.median / limit if limit else None,
                                   note=f"outcomes {','.join(outcomes) or 'none'}; {loads}; ratio to detector + "
                                        "bare forward")

    # --- gunicorn: concurrency and web worker memory -------------------------------------------

    def _measure_concurrency(self, fixture: dict[str, Any]) -> None:
        session, token = fixture["session"], fixture["token"]
        port = _free_port()
        log = (self.tmp / "gunicorn.log").open("wb")
        self.say(f"starting gunicorn with {self.web_workers} workers on 127.0.0.1:{port}")
        process = subprocess.Popen(  # noqa: S603  (this interpreter, fixed arguments)
            [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
             "--workers", str(self.web_workers), "--timeout", "60", "--graceful-timeout", "5"],
            cwd=REPO_ROOT, env=self._env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            _wait_for_http(port, process, timeout=90)
            body = lib.jpeg(self.frames["1 face"])
            path = f"/api/sessions/{session.pk}/check-in/"
            # Warm-up: every worker loads its models at start (in the background) and the course index on
            # its first check-in; concurrent posts reach all of them.
            _load_run(port, path, body, token, clients=self.web_workers * 2, seconds=30,
                      max_requests=self.web_workers * 6)
            single: float | None = None
            for count in self.clients:
                self.say(f"{count} client(s) for up to {self.seconds:.0f} s")
                result = _load_run(port, path, body, token, clients=count, seconds=self.seconds,
                                   max_requests=self.max_requests)
                throughput = result["done"] / result["elapsed"]
                single = single or throughput
                self.report.add("concurrency", f"{count} client(s): check-ins per second", throughput, "1/s",
                                ratio=throughput / single,
                                note=f"{result['done']} in {result['elapsed']:.1f} s, {result['errors']} errors; "
                                     f"latency median {result['median']:.0f} ms, p95 {result['p95']:.0f} ms; "
                                     "ratio to 1 client")
            for n, pid in enumerate(_children(process.pid)):
                rss, peak = lib.rss_mb(pid)
                self.report.add("memory", f"web worker {n + 1} (gunicorn, model loaded)", rss, "MB",
                                note=f"peak {peak:.0f} MB")
        finally:
            _stop(process)
            log.close()

    # --- a real Celery worker ------------------------------------------------------------------

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
            children = _children(process.pid)
            rss, peak = lib.rss_mb(children[0] if children else process.pid)
            self.report.add("enrolment", "through a Celery worker: queued to ready", wall, "ms",
                            note=f"{enrolment.status}; includes the worker's first model load")
            self.report.add("memory", "Celery worker child (model loaded, after an enrolment)", rss, "MB",
                            note=f"peak {peak:.0f} MB")
        finally:
            _stop(process)
            log.close()


# --- helpers -----------------------------------------------------------------------------------

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
    from attendance.services import enrolment as service

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


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_http(port: int, process: subprocess.Popen[bytes], *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CommandError("gunicorn exited at start; is it installed?")
        with contextlib.suppress(OSError):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/login/")
            conn.getresponse().read()
            conn.close()
            return
        time.sleep(0.2)
    raise CommandError(f"gunicorn did not answer on 127.0.0.1:{port} within {timeout:.0f} s")


def _load_run(port: int, path: str, body: bytes, token: str, *, clients: int, seconds: float,
              max_requests: int) -> dict[str, Any]:
    """``clients`` threads post the snapshot back to back until ``seconds`` pass or ``max_requests``
    have been sent in all: a bounded load on 127.0.0.1 only."""
    lock = threading.Lock()
    latencies: list[float] = []
    errors = [0]
    sent = [0]
    deadline = time.monotonic() + seconds
    headers = {"Content-Type": "image/jpeg", "X-Kiosk-Token": token}

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            while time.monotonic() < deadline:
                with lock:
                    if sent[0] >= max_requests:
                        return
                    sent[0] += 1
                started = time.perf_counter()
                try:
                    conn.request("POST", path, body=body, headers=headers)
                    response = conn.getresponse()
                    response.read()
                    ok = response.status == 200
                except (OSError, http.client.HTTPException):
                    ok = False
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                with lock:
                    if ok:
                        latencies.append(time.perf_counter() - started)
                    else:
                        errors[0] += 1
        finally:
            conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 120)
    elapsed = time.perf_counter() - started
    ms = np.asarray(latencies) * 1000 if latencies else np.zeros(1)
    return {"done": len(latencies), "errors": errors[0], "elapsed": elapsed,
            "median": float(np.median(ms)), "p95": float(np.percentile(ms, 95))}


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            found += [int(child) for child in text]
    return sorted(set(found))


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
