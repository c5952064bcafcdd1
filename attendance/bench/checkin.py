"""manage.py bench's check-in part: a course of faces, the API through Django's test client, gunicorn under load."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from typing import Any

from django.core.management.base import CommandError
from django.test import Client

from attendance.bench.processes import REPO_ROOT, child_pids, free_port, load_run, stop, wait_for_http
from attendance.bench.state import BenchState
from recognition import bench as lib


class CheckinBench(BenchState):
    """AppBench's check-in measurements (a mixin: the state lives on AppBench)."""

    def _fixture(self) -> dict[str, Any]:
        from django.utils import timezone

        from attendance import ml
        from attendance.models import Course, CourseMembership, FaceEmbedding, FaceEnrolment, User
        from attendance.platform.biometric import vector_encrypt
        from attendance.sessions.services import session_kiosk_device_pair, session_kiosk_token_create, session_open

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
                              key_id=sealed[0], vector=sealed[1])
                for n, enrolment in enumerate(enrolments)
                for vector in gallery.vectors[n * self.per_student : (n + 1) * self.per_student]
                for sealed in [vector_encrypt(vector, student_id=enrolment.student_id, backbone=space)]
            ),
            batch_size=2000,
        )
        katie = User.objects.create_user(f"bench-katie-{self.backbone}", password=None, role="student",
                                         first_name="Katie", last_name="Hill")
        CourseMembership.objects.create(course=course, student=katie)
        session = session_open(course=course, by=lecturer, title="Benchmark")
        # The kiosk's device secret (what a paired kiosk sends), not the link's token, which only pairs.
        pairing = session_kiosk_device_pair(token=session_kiosk_token_create(session=session, by=lecturer))
        assert pairing is not None
        token = pairing.secret
        return {"admin": admin, "lecturer": lecturer, "course": course, "katie": katie, "session": session,
                "token": token}

    def _clear_redis(self, fixture: dict[str, Any]) -> None:
        from attendance.checkin.services import checkin_state_clear
        from attendance.platform.redis import key, redis_client

        with contextlib.suppress(Exception):
            session_id = fixture["session"].pk
            checkin_state_clear(session_id=session_id)
            client = redis_client()
            names = list(client.scan_iter(match=key("rate", "checkin", session_id, "*"), count=500))
            if names:
                client.delete(*names)

    def _measure_rebuild(self, fixture: dict[str, Any]) -> None:
        from attendance.courses.indexes import course_index_rebuild

        self.say("rebuilding the course index from the database")
        course = fixture["course"]
        timing = lib.timed(lambda: course_index_rebuild(course=course), warmup=1,
                           repeats=3 if self.quick else 5, budget_s=20)
        self.report.add_timing("rebuild", f"course of {self.students} x {self.per_student}: course_index_rebuild",
                               timing, note="read from the database, build, save, bump the version")

    def _measure_checkin(self, fixture: dict[str, Any]) -> None:
        """The check-in API per frame with liveness off: these rows are the recognition path (what is
        around the models excludes every model); the liveness rows add the passive models' cost."""
        from django.test.utils import override_settings

        with override_settings(ROLLCALL_LIVENESS_KIOSK="off"):
            self._measure_checkin_frames(fixture)

    def _measure_checkin_frames(self, fixture: dict[str, Any]) -> None:
        from attendance import ml
        from attendance.courses import indexes

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
                                   note=f"outcomes {','.join(outcomes) or 'none'}; {loads}; liveness off; ratio to "
                                        "detector + bare forward")
            if limit:
                self.report.add("checkin", f"API, {name}: around the models", max(0.0, timing.median - limit), "ms",
                                note="API median minus detector + bare forward: JPEG decode, alignment, "
                                     "preprocessing, search, Redis, database")

    def _measure_liveness(self, fixture: dict[str, Any]) -> None:
        """A one-face check-in through the API with liveness off, then passive: the cost of the
        passive models (and the Redis bookkeeping) on a check-in. The student is not yet recorded
        and never reaches their confirmations (a face already marked is not scored), so every
        request is the same confirming step, scored under passive."""
        from django.test.utils import override_settings

        from attendance import ml
        from attendance.models import AttendanceRecord

        session, token = fixture["session"], fixture["token"]
        client = Client(HTTP_HOST="127.0.0.1")
        url = f"/api/sessions/{session.pk}/check-in/"
        body = lib.jpeg(self.frames["1 face"])
        AttendanceRecord.objects.filter(session=session).delete()  # the check-in rows marked the student
        self._clear_redis(fixture)
        outcomes: set[str] = set()

        def post() -> None:
            response = client.post(url, data=body, content_type="image/jpeg", HTTP_X_KIOSK_TOKEN=token)
            if response.status_code != 200:
                raise CommandError(f"check-in answered {response.status_code}: {response.content[:300]!r}")
            outcomes.update(face["outcome"] for face in response.json()["faces"])

        medians: dict[str, float] = {}
        for policy in ("off", "passive"):
            self.say(f"check-in through the API, 1 face, liveness {policy}")
            outcomes.clear()
            with override_settings(ROLLCALL_LIVENESS_KIOSK=policy, ROLLCALL_CHECKIN_CONFIRMATIONS=1_000_000):
                post()  # loads the liveness models the first time
                if policy != "off":
                    problem = ml.liveness_problem()
                    if problem is not None:  # the check-ins would run without liveness: nothing to measure
                        raise CommandError(f"Liveness did not load, so its cost cannot be measured: {problem}")
                timing = lib.timed(post, warmup=2, repeats=self.repeats, budget_s=60)
            if outcomes != {"confirming"}:
                raise CommandError(f"The liveness check-ins were {', '.join(sorted(outcomes))}, not confirming: "
                                   "the frame's student must be recognised and not yet recorded.")
            self._clear_redis(fixture)
            medians[policy] = timing.median
            ratio = timing.median / medians["off"]
            engine = f"models run by {ml.liveness().engine}; " if policy != "off" else ""
            self.report.add_timing("liveness", f"API, 1 face, liveness {policy}", timing, ratio=ratio,
                                   note=f"confirming, not yet recorded; {engine}ratio to liveness off (target: at "
                                        "most 1.15)")

    def _measure_concurrency(self, fixture: dict[str, Any]) -> None:
        session, token = fixture["session"], fixture["token"]
        port = free_port()
        log = (self.tmp / "gunicorn.log").open("wb")
        self.say(f"starting gunicorn with {self.web_workers} workers on 127.0.0.1:{port}")
        process = subprocess.Popen(  # noqa: S603  (this interpreter, fixed arguments)
            [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
             "--workers", str(self.web_workers), "--timeout", "60", "--graceful-timeout", "5"],
            cwd=REPO_ROOT, env={**self._env(), "ROLLCALL_LIVENESS_KIOSK": "off", "ROLLCALL_LIVENESS_LECTURER": "off"},
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            wait_for_http(port, process, timeout=90)
            body = lib.jpeg(self.frames["1 face"])
            path = f"/api/sessions/{session.pk}/check-in/"
            # Warm-up: every worker loads its models at start (in the background) and the course index on
            # its first check-in; concurrent posts reach all of them.
            load_run(port, path, body, token, clients=self.web_workers * 2, seconds=30,
                      max_requests=self.web_workers * 6)
            single: float | None = None
            for count in self.clients:
                self.say(f"{count} client(s) for up to {self.seconds:.0f} s")
                result = load_run(port, path, body, token, clients=count, seconds=self.seconds,
                                   max_requests=self.max_requests)
                throughput = result["done"] / result["elapsed"]
                single = single or throughput
                self.report.add("concurrency", f"{count} client(s): check-ins per second", throughput, "1/s",
                                ratio=throughput / single,
                                note=f"{result['done']} in {result['elapsed']:.1f} s, {result['errors']} errors; "
                                     f"latency median {result['median']:.0f} ms, p95 {result['p95']:.0f} ms; "
                                     "liveness off; ratio to 1 client")
            for n, pid in enumerate(child_pids(process.pid)):
                rss, peak = lib.rss_mb(pid)
                self.report.add("memory", f"web worker {n + 1} (gunicorn, model loaded)", rss, "MB",
                                note=f"peak {peak:.0f} MB")
        finally:
            stop(process)
            log.close()
