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

import os
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from attendance import ml
from attendance.bench.app import AppBench
from recognition import bench as lib

SECTIONS = ("limit", "checkin", "enrolment", "rebuild", "concurrency", "worker", "search")


class Command(BaseCommand):
    help = "Measure check-in, enrolment, index rebuild, worker memory and concurrency against the model's limit."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--quick", action="store_true", help="fewer repeats and shorter load runs")
        parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
        parser.add_argument("--sections", default=",".join(SECTIONS), help=f"any of {','.join(SECTIONS)}")
        parser.add_argument("--backbones", help="comma-separated, measured one after the other (default: "
                            "ROLLCALL_BACKBONE); 'clip,dlib' for both")
        parser.add_argument("--search-sizes", type=lib.parse_ints,
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
        backbones = [b.strip() for b in (options["backbones"] or ml.backbone_choice().name).split(",") if b.strip()]
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
