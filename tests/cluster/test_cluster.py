"""Several hosts for real: two web hosts and two worker hosts behind HAProxy, one of them lost while
check-in clients and enrolment uploads keep coming (the cluster: tests/cluster/conftest.py).

Check-in clients, one per (open session, student), post webcam snapshots the enrolment never saw
(the talking-head video's second half, held-out Yale photos) through the balancer, each sending its
next one when the last is answered, and retrying a snapshot that got no answer (a dropped
connection, 502/503/504). Each phase opens fresh sessions, so students are marked while its fault
is happening:

    one host    the clients talk to web1 directly (the single-host figure)
    cluster     the same through HAProxy; web2 has served nothing before and has no index file: the
                first check-in of each course it gets builds the index there from the database
    web cut     web1's cable is pulled at the switch; plugged back at the end
    worker kill two enrolment uploads (the talking head's first half) through the balancer; the
                worker host holding one is SIGKILLed mid-video; the stale sweep hands it to the other
    redis       the data host's Redis is SIGKILLed and started again, empty
    balancer    HAProxy is stopped and started again

Must hold, in every phase: every student shown is marked, with exactly one attendance record per
session, no "marked" answer twice, no face taken for someone else, no traceback; in the web cut a
snapshot needs at most one retry; the killed enrolment ends ready once, at attempt 2, with one set
of embeddings. CI runs each phase for ROLLCALL_CLUSTER_SECONDS (8 s; the whole test about two
minutes on two cores); a student not yet marked then keeps its client sending up to GRACE_SECONDS.
The figures go to test-artifacts/cluster-test.json.
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db.models import F
from django.urls import reverse

from attendance.models import AttendanceRecord, Course, FaceEmbedding, FaceEnrolment, Session
from attendance.sessions.services import session_close, session_open
from tests.attendance.enrolment_videos import KATIE_VIDEO, SPLIT_S, write_mp4
from tests.attendance.factories_faces import enrol_with_vectors, katie_enrolment_vectors, katie_probe_jpegs
from tests.cluster import netns
from tests.cluster.conftest import Cluster, in_namespace
from tests.conftest import REPO_ROOT
from tests.reliability.conftest import api_token, multipart, request, wait_for
from tests.reliability.test_load import yale_vectors_and_probes
from tests.videos import video_frames

pytestmark = pytest.mark.slow

SECONDS = float(os.environ.get("ROLLCALL_CLUSTER_SECONDS", "8"))
GRACE_SECONDS = float(os.environ.get("ROLLCALL_CLUSTER_GRACE_SECONDS", "40"))
MAX_REQUESTS_PER_CLIENT = int(os.environ.get("ROLLCALL_CLUSTER_MAX_REQUESTS", "200"))
RETRYABLE = {502, 503, 504}


@dataclass
class Answer:
    sent: float  # first attempt, seconds since the phase began
    done: float
    status: int
    tries: int


@dataclass
class Tally:
    answers: list[Answer] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)  # every failed attempt, by kind
    marked: Counter[tuple[int, int]] = field(default_factory=Counter)  # (session, student) -> "marked" answers
    seen: set[tuple[int, int]] = field(default_factory=set)  # answered "marked" or "recorded"
    wrong: list[tuple[int, int]] = field(default_factory=list)
    other: list[str] = field(default_factory=list)  # anything that is not a 200 or a retryable answer
    lock: threading.Lock = field(default_factory=threading.Lock)


def _kind(status: int, body: bytes) -> str:
    try:
        return f"{status} {json.loads(body).get('code', '')}".strip()
    except (ValueError, AttributeError):
        text = body.decode(errors="replace")
        return f"{status} balancer: no server available" if "No server is available" in text else f"{status}"


def run_load(cluster: Cluster, base_url: str, targets: list[tuple[int, int, tuple[bytes, ...]]],
             tokens: list[str], *, fault: Callable[[float], dict] | None = None) -> tuple[Tally, dict, float]:
    """Clients for every (session, student, snapshots) target until SECONDS have passed and their
    student is marked; the fault (if any) runs on this thread meanwhile, given the phase's start."""
    tally = Tally()
    started = time.monotonic()
    client_ns = cluster.net.namespace("client")

    def client(number: int, session_id: int, student_id: int, frames: tuple[bytes, ...]) -> None:
        netns.enter(client_ns)
        url = f"{base_url}{reverse('api-session-checkin', args=[session_id])}"
        headers = {"Content-Type": "image/jpeg", "Authorization": f"Token {tokens[number]}",
                   "Accept": "application/json"}
        for sent_count in range(MAX_REQUESTS_PER_CLIENT):
            elapsed = time.monotonic() - started
            if elapsed > SECONDS and ((session_id, student_id) in tally.seen or elapsed > SECONDS + GRACE_SECONDS):
                return
            frame = frames[(number + sent_count) % len(frames)]
            first = time.monotonic() - started
            tries = 0
            while True:
                tries += 1
                try:
                    reply = request("POST", url, body=frame, headers=headers, timeout=60)
                except OSError as exc:
                    with tally.lock:
                        tally.errors[type(exc).__name__] += 1
                else:
                    if reply.status == 200:
                        break
                    with tally.lock:
                        tally.errors[_kind(reply.status, reply.body)] += 1
                        if reply.status not in RETRYABLE or b"Traceback" in reply.body:
                            tally.other.append(f"{reply.status}: {reply.text[:300]}")
                if time.monotonic() - started > SECONDS + GRACE_SECONDS:
                    return
                time.sleep(0.5)
            done = time.monotonic() - started
            with tally.lock:
                tally.answers.append(Answer(first, done, reply.status, tries))
                for face in reply.json()["faces"]:
                    if face["student_id"] not in (None, student_id):
                        tally.wrong.append((student_id, face["student_id"]))
                    if face["student_id"] == student_id and face["outcome"] in ("marked", "recorded"):
                        tally.seen.add((session_id, student_id))
                    if face["outcome"] == "marked":
                        tally.marked[(session_id, face["student_id"])] += 1

    threads = [threading.Thread(target=client, args=(i, *target), daemon=True) for i, target in enumerate(targets)]
    for thread in threads:
        thread.start()
    figures = fault(started) if fault else {}
    for thread in threads:
        thread.join(timeout=SECONDS + GRACE_SECONDS + 120)
    return tally, figures, time.monotonic() - started


def summary(tally: Tally, elapsed: float) -> dict:
    latencies = [a.done - a.sent for a in tally.answers]
    q = statistics.quantiles(latencies, n=100) if len(latencies) >= 2 else [latencies[0] if latencies else 0.0] * 99
    return {
        "seconds": round(elapsed, 1), "answered": len(latencies),
        "requests_per_second": round(len(latencies) / elapsed, 2) if elapsed else 0,
        "p50_ms": round(q[49] * 1000), "p95_ms": round(q[94] * 1000),
        "errors": dict(tally.errors), "max_tries": max((a.tries for a in tally.answers), default=0),
    }


def first_ok_after(tally: Tally, moment: float) -> float | None:
    done = [a.done for a in tally.answers if a.sent >= moment]
    return min(done) if done else None


def test_a_cluster_behind_a_balancer_loses_a_host_worker_redis_and_balancer_and_loses_nothing(
    cluster_setup, cluster: Cluster, tmp_path: Path
):
    courses, students, lecturer, tokens, uploaders = cluster_setup
    results: dict[str, dict] = {}
    every_session: dict[int, set[int]] = {}  # session -> students shown in it

    def phase(name: str, course_codes: list[str], base_url: str, fault: Callable[[float], dict] | None = None,
              *, sessions: list[Session] | None = None) -> tuple[Tally, dict]:
        opened = sessions or [session_open(course=courses[code], by=lecturer) for code in course_codes]
        targets = []
        for session in opened:
            members = [s for s in students if s[0] in session.course.memberships.values_list("student_id", flat=True)]
            every_session[session.pk] = {pk for pk, _ in members}
            targets += [(session.pk, pk, frames) for pk, frames in members]
        tally, figures, elapsed = run_load(cluster, base_url, targets, tokens, fault=fault)
        results[name] = {**summary(tally, elapsed), "sessions": len(opened), "clients": len(targets), **figures}
        print(f"\ncluster phase {name}: {json.dumps(results[name])}")
        assert not tally.other, (name, tally.other[:3])
        assert not tally.wrong, (name, tally.wrong[:3])
        for session in opened:
            expected = {(session.pk, pk) for pk in every_session[session.pk]}
            assert expected <= tally.seen, (name, "not marked", expected - tally.seen)
            assert all(tally.marked[key] <= 1 for key in expected), (name, "marked twice", tally.marked)
            session_close(session=session, by=lecturer)
        return tally, figures

    # 1. One host: web1 directly, the figure the cluster is compared with.
    phase("one host", ["A", "B", "C"], cluster.web_url("web1"))

    # 2. The cluster, the same three sessions' load through the balancer. web2 has served nothing
    # yet and has no index file at all: the courses it serves are built from the database there.
    assert not list(cluster.index_dirs["web2"].iterdir())
    phase("cluster", ["A", "B", "C"], cluster.url)
    served = {Session.objects.get(pk=pk).course_id for pk in cluster.served("web2")}
    assert served, "the balancer sent web2 no check-in"
    for course_id in served:
        assert list(cluster.index_dirs["web2"].glob(f"course-{course_id}-*.faiss")), (course_id, "no index on web2")
    results["cluster"]["indexes built on web2 from the database"] = len(served)

    # 3. web1's network cut while the clients run.
    def cut(started: float) -> dict:
        time.sleep(1.5)
        cut_at = time.monotonic()
        cluster.net.cut("web1")
        wait_for(lambda: (cluster.backend_states() or {}).get("web1") == "DOWN", timeout=30, interval=0.1,
                 what="HAProxy to take web1 out")
        marked_down = time.monotonic() - cut_at
        time.sleep(max(0.0, started + SECONDS - 1 - time.monotonic()))
        cluster.net.plug("web1")
        plugged = time.monotonic()
        wait_for(lambda: (cluster.backend_states() or {}).get("web1") == "UP", timeout=60, interval=0.1,
                 what="HAProxy to put web1 back")
        return {"fault_at_s": round(cut_at - started, 1), "marked_down_after_s": round(marked_down, 1),
                "back_in_rotation_after_s": round(time.monotonic() - plugged, 1)}

    tally, figures = phase("web host cut", ["A", "B"], cluster.url, cut)
    assert results["web host cut"]["max_tries"] <= 2, results["web host cut"]  # at most one retry
    ok = first_ok_after(tally, figures["fault_at_s"])
    results["web host cut"]["recovery_s"] = round(ok - figures["fault_at_s"], 1) if ok is not None else None

    # 4. A worker host killed mid-enrolment, while check-ins run.
    clip = write_mp4(video_frames(KATIE_VIDEO, end_s=SPLIT_S), tmp_path / "katie_first_half.mp4").read_bytes()
    uploads: dict[str, int] = {}

    def upload(token: str):
        body, content_type = multipart({"consent": "true"}, {"video": ("katie.mp4", clip, "video/mp4")})
        return in_namespace(cluster.net.namespace("client"), lambda: request(
            "POST", cluster.url + reverse("api-enrolment-create"), body=body, timeout=60,
            headers={"Content-Type": content_type, "Authorization": f"Token {token}", "Accept": "application/json"}))

    def kill_worker(started: float) -> dict:
        # Both uploads at once: an enrolment takes under a second on a fast machine, so the first would be
        # stored before a second upload sent after it reached the queue, and the two would never be
        # processing together.
        with ThreadPoolExecutor(len(uploaders)) as pool:
            replies = list(pool.map(upload, [token for _, token in uploaders]))
        for (uploader, _), reply in zip(uploaders, replies, strict=True):
            assert reply.status == 202, reply.text[:500]
            uploads[uploader.username] = FaceEnrolment.objects.filter(student=uploader).latest("pk").pk
        rows = FaceEnrolment.objects.filter(pk__in=uploads.values())
        # Both claimed (attempt 1 each) and not yet stored: a worker killed now dies mid-enrolment.
        # Claimed, not "some frames done": the progress a fast machine writes between claim and
        # store can come and go between two polls, and the test must not depend on the CPU's speed.
        wait_for(lambda: rows.filter(status="processing").count() == 2, timeout=120,
                 interval=0.05, what="both workers part-way through a video")
        killed_at = time.monotonic()
        cluster.services["worker1"].kill()
        # worker2 finishes its own; the one left processing at attempt 1 was worker1's.
        wait_for(lambda: rows.filter(status="ready").count() == 1, timeout=240, what="worker2's own enrolment")
        orphan = rows.get(status="processing")
        assert orphan.attempts == 1
        FaceEnrolment.objects.filter(pk=orphan.pk).update(
            started_at=F("started_at") - timedelta(minutes=settings.ROLLCALL_ENROLMENT_STALE_MINUTES + 1))
        swept = time.monotonic()
        out = cluster.run_in("worker2", "from attendance.enrolment.services import enrolment_requeue_stale\n"
                                        "print(enrolment_requeue_stale())")
        assert out.strip() == "1", out
        wait_for(lambda: rows.get(pk=orphan.pk).status not in FaceEnrolment.ACTIVE_STATUSES, timeout=240,
                 what="worker2 to finish the killed worker's enrolment")
        return {"orphan": orphan.pk, "finished_after_kill_s": round(time.monotonic() - killed_at, 1),
                "finished_after_sweep_s": round(time.monotonic() - swept, 1)}

    _, figures = phase("worker host killed", ["A", "B"], cluster.url, kill_worker)
    for pk in uploads.values():
        row = FaceEnrolment.objects.get(pk=pk)
        assert row.status == "ready", (row.error_code, row.error_message)
        assert row.attempts == (2 if pk == figures["orphan"] else 1)
        stored = FaceEmbedding.objects.filter(student=row.student)
        assert stored.count() == row.progress["embeddings"] >= 5
        assert set(stored.values_list("enrolment_id", flat=True)) == {pk}
    results["worker host killed"]["enrolments"] = {
        str(pk): FaceEnrolment.objects.get(pk=pk).progress["embeddings"] for pk in uploads.values()}

    # 5. Redis killed and started again, empty.
    def restart_redis(started: float) -> dict:
        time.sleep(1.5)
        down_at = time.monotonic()
        cluster.services["redis"].kill()
        time.sleep(2.0)
        cluster.start_redis()
        back = time.monotonic()
        wait_for(lambda: (cluster.backend_states() or {}) == {"web1": "UP", "web2": "UP"}, timeout=90,
                 what="both web hosts healthy again")
        return {"fault_at_s": round(down_at - started, 1), "restored_at_s": round(back - started, 1),
                "both_hosts_healthy_after_s": round(time.monotonic() - back, 1)}

    tally, figures = phase("redis restarted", ["A", "B"], cluster.url, restart_redis)
    ok = first_ok_after(tally, figures["restored_at_s"])
    assert ok is not None, "no check-in answered after Redis came back"
    results["redis restarted"]["recovery_s"] = round(ok - figures["fault_at_s"], 1)

    # 6. The balancer stopped and started again.
    def restart_balancer(started: float) -> dict:
        time.sleep(1.5)
        down_at = time.monotonic()
        cluster.services["haproxy"].stop()
        time.sleep(1.0)
        cluster.start_haproxy()
        return {"fault_at_s": round(down_at - started, 1), "restored_at_s": round(time.monotonic() - started, 1)}

    tally, figures = phase("balancer restarted", ["A", "B"], cluster.url, restart_balancer)
    ok = first_ok_after(tally, figures["restored_at_s"])
    assert ok is not None, "no check-in answered after the balancer came back"
    results["balancer restarted"]["recovery_s"] = round(ok - figures["fault_at_s"], 1)

    # Across every phase: exactly one record per student shown, nobody else.
    for session_id, shown in every_session.items():
        records = list(AttendanceRecord.objects.filter(session_id=session_id).values_list("student_id", flat=True))
        assert sorted(records) == sorted(shown), (session_id, records, shown)
    results["records"] = {"expected": sum(len(s) for s in every_session.values()),
                          "stored": AttendanceRecord.objects.filter(session_id__in=every_session).count()}
    assert "Traceback" not in cluster.services["web1"].log() + cluster.services["web2"].log()
    artifacts = REPO_ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "cluster-test.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"\ncluster: {json.dumps(results)}")


@pytest.fixture
def cluster_setup(transactional_db, make_user):
    """Courses A (Katie, Yale 1), B (Yale 2, Yale 3) and C (Katie, Yale 3); a device account per
    client; two students who will upload enrolment videos. Built before the cluster starts."""
    lecturer = make_user("lecturer")
    courses = {code: Course.objects.create(code=f"CL{code}", title=f"Cluster {code}", term="2026-autumn")
               for code in "ABC"}
    for course in courses.values():
        course.lecturers.add(lecturer)
    katie = make_user("student", first_name="Katie", last_name="Hill")
    students = []
    enrol_with_vectors(student=katie, vectors=katie_enrolment_vectors(), courses=[courses["A"], courses["C"]])
    students.append((katie.pk, katie_probe_jpegs()))
    for n, codes in ((1, "A"), (2, "B"), (3, "BC")):
        vectors, probes = yale_vectors_and_probes(f"yale_subject{n:02d}")
        student = make_user("student", first_name="Yale", last_name=f"Subject {n}")
        enrol_with_vectors(student=student, vectors=vectors, courses=[courses[c] for c in codes])
        students.append((student.pk, probes))
    tokens = []
    for _ in range(8):
        device = make_user("lecturer")
        for course in courses.values():
            course.lecturers.add(device)
        tokens.append(api_token(device))
    uploaders = []
    for n in range(2):
        uploader = make_user("student", first_name="Upload", last_name=f"Er {n}")
        uploaders.append((uploader, api_token(uploader)))
    return courses, students, lecturer, tokens, uploaders
