"""Live check-in: one webcam snapshot in, every face's identity out, students marked present.

A face is marked only after the same student is recognised in ROLLCALL_CHECKIN_CONFIRMATIONS
snapshots within ROLLCALL_CHECKIN_WINDOW_SECONDS (the paper's live-feed aggregation), so one bad
frame marks nobody. That count lives in Redis, not in process memory: the snapshots of one camera
land on whichever gunicorn worker is free. A match whose distance falls in the doubtful band just
inside the threshold is never counted; it is offered to the lecturer to confirm by hand.

With a liveness policy (the course's, else the site's for the lecturer's page or the kiosk), every
face of the snapshot also gets a passive live score, in one batch; only snapshots whose face passes
count as confirmations, and the confirmed face is marked only when liveness passes (with the
challenge policy, after answering a random head turn). See checkin/liveness.py.
"""

from __future__ import annotations

import logging
import statistics
import time
import uuid
from dataclasses import dataclass, field, replace

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext

from attendance import ml
from attendance.checkin import liveness as checkin_liveness
from attendance.checkin.lists import forget_doubtful, remember_doubtful, student_names
from attendance.courses.indexes import course_index_get
from attendance.courses.selectors import course_threshold
from attendance.models import AttendanceRecord, CourseMembership, Session, User
from attendance.platform.redis import redis_client, session_key, session_state_clear
from attendance.privacy.services import checkin_snapshot_store
from attendance.sessions.records import attendance_record_mark_face
from attendance.sessions.services import SessionClosedError
from recognition import BackboneDefaults, Embedder, Match, assign_unique, candidate_matches, load_image
from recognition.liveness import LivenessDecision, LivenessPolicy, Observation

logger = logging.getLogger(__name__)

# Snapshots are downscaled by the page to about 640 px; anything larger is shrunk while decoding,
# which bounds the detector's work whatever a client sends.
CHECKIN_MAX_SIDE = 1280
CHECKIN_MAX_FULL_DECODE_PIXELS = 8_000_000  # a non-JPEG is decoded whole (recognition.load_image)
# How long a doubtful match stays on the lecturer's list without being seen again.


class Outcome:
    UNKNOWN = "unknown"  # nobody in the course's index is close enough
    DOUBTFUL = "doubtful"  # a match in the doubtful band: shown to the lecturer, not counted
    CONFIRMING = "confirming"  # recognised, waiting for more agreeing snapshots
    MARKED = "marked"  # this snapshot completed the confirmations and created the record
    RECORDED = "recorded"  # the student already has a record in this session (face, by hand, late...)
    CHALLENGE = "challenge"  # confirmed and passive-live: answer the head-turn prompt (see challenge)
    CHALLENGE_FAILED = "challenge_failed"  # the prompt was not answered in time or the right way: retry
    NOT_LIVE = "not_live"  # possible photo or screen: never marked

    ALL = (UNKNOWN, DOUBTFUL, CONFIRMING, MARKED, RECORDED, CHALLENGE, CHALLENGE_FAILED, NOT_LIVE)


@dataclass(frozen=True)
class FaceResult:
    box: tuple[int, int, int, int]
    outcome: str
    student_id: int | None = None
    name: str = "Unknown"
    distance: float | None = None
    votes: int = 0
    confirmations: int = 0
    record_status: str | None = None
    liveness_score: float | None = None  # this snapshot's passive live score (None if not scored)
    challenge: dict[str, object] | None = None  # prompt, direction, seconds_left (outcome "challenge")
    reason: str = ""  # why not live, for the not_live and challenge_failed outcomes


@dataclass(frozen=True)
class CheckinResult:
    width: int
    height: int
    faces: list[FaceResult]
    confirmations_needed: int
    marked: list[int] = field(default_factory=list)
    processing_ms: int = 0
    liveness: str = LivenessPolicy.OFF.value
    notice: str = ""  # a plain sentence for the lecturer or the kiosk, e.g. liveness unavailable


def doubtful_from(threshold: float) -> float:
    """Distances above this (and within the threshold) are doubtful: the band is a fraction of the
    threshold, so one setting suits dlib's 0.27 and CLIP's 0.82 alike."""
    return threshold * (1.0 - float(settings.ROLLCALL_CHECKIN_DOUBTFUL_BAND or 0.0))


def session_check_in(
    *, session: Session, image_bytes: bytes, now: float | None = None, kiosk: bool = False
) -> CheckinResult:
    """Recognise every face of one snapshot and count it towards marking those students present.

    ``kiosk``: the snapshot comes from the session's kiosk (its liveness policy applies, not the
    lecturer page's). Raises SessionClosedError when the session is not open,
    recognition.ImageError for a body that is not a usable image and
    recognition.ModelUnavailableError when the models cannot be loaded.
    """
    started = time.perf_counter()
    if session.status != Session.Status.OPEN:
        raise SessionClosedError(gettext("This session is not open: check-ins are accepted only while it is open."))
    now = time.time() if now is None else now
    course = session.course
    policy = ml.liveness_policy(course_policy=course.liveness, kiosk=kiosk)
    applied, notice = policy.value, ""
    if policy is not LivenessPolicy.OFF and ml.liveness_problem() is not None:
        if kiosk:  # unattended: without liveness a photo held up to it would mark
            raise checkin_liveness.KioskPausedError(str(checkin_liveness.KIOSK_PAUSED))
        # The lecturer's page (the lecturer is in the room) degrades: marked as with liveness off, no
        # checks stored, the page says so, and /healthz and the admin overview say why.
        policy, applied = LivenessPolicy.OFF, checkin_liveness.UNAVAILABLE
        notice = str(checkin_liveness.UNAVAILABLE_NOTICE)
    rgb = load_image(image_bytes, max_side=CHECKIN_MAX_SIDE, max_full_decode_pixels=CHECKIN_MAX_FULL_DECODE_PIXELS)
    height, width = rgb.shape[:2]
    recognizer = ml.recognizer()  # one space for this snapshot: embedded and searched in it
    found = recognizer.embed_faces(rgb)
    needed = int(settings.ROLLCALL_CHECKIN_CONFIRMATIONS)
    if not found:
        return CheckinResult(width=width, height=height, faces=[], confirmations_needed=needed,
                             processing_ms=_ms_since(started), liveness=applied, notice=notice)
    params = ml.recognition_params(k1=course.k1, k2=course.k2, threshold=course_threshold(course=course).value)
    matches = _identify(session=session, vectors=np.stack([vector for _, vector in found]), params=params,
                        embedder=recognizer.embedder)

    student_ids = [int(m.label) for m in matches if m.label is not None]  # type: ignore[arg-type]
    names = student_names(student_ids)
    recorded = dict(
        AttendanceRecord.objects.filter(session=session, student_id__in=student_ids).values_list("student_id", "status")
    )
    doubtful_above = doubtful_from(params.threshold)
    scores = checkin_liveness.live_scores(rgb, [face for face, _ in found], matches, policy=policy,
                                          recorded=recorded, doubtful_above=doubtful_above)
    faces: list[FaceResult] = []
    marked: list[int] = []
    for (face, vector), match, score in zip(found, matches, scores, strict=True):
        box = _int_box(face.box, width, height)
        if match.label is None or match.distance is None:
            faces.append(FaceResult(box=box, outcome=Outcome.UNKNOWN, liveness_score=_round(score)))
            continue
        student_id = int(match.label)
        seen = FaceResult(box=box, outcome=Outcome.CONFIRMING, student_id=student_id,
                          name=names.get(student_id, "Unknown"), distance=round(match.distance, 4), votes=match.votes,
                          liveness_score=_round(score))
        if student_id in recorded:
            faces.append(replace(seen, outcome=Outcome.RECORDED, record_status=recorded[student_id]))
            continue
        if match.distance > doubtful_above:
            remember_doubtful(session_id=session.pk, student_id=student_id, distance=match.distance, now=now)
            faces.append(replace(seen, outcome=Outcome.DOUBTFUL))
            continue
        decision: LivenessDecision | None = None
        if policy is LivenessPolicy.OFF:
            result = seen
            distances = _confirm(session_id=session.pk, student_id=student_id, distance=match.distance, now=now)
            markable = len(distances) >= needed
        elif score is None:  # under a liveness policy a face is never marked without its check
            faces.append(seen)
            continue
        else:
            sighting = checkin_liveness.Sighting(Observation.from_face(face, now, embedding=vector), score)
            result, decision, distances = _live_step(session=session, seen=seen, sighting=sighting,
                                                     match=match, policy=policy, needed=needed, now=now)
            markable = decision is not None  # only a live verdict marks
        if not markable:
            faces.append(replace(result, confirmations=min(len(distances), needed)))
            continue
        distance = statistics.median(distances or [match.distance])
        status = _mark(session=session, student_id=student_id, distance=distance, decision=decision)
        if status is None:  # the session closed while this snapshot was being processed
            faces.append(result)
            continue
        created, record_status = status
        if created:
            marked.append(student_id)
        faces.append(replace(result, confirmations=needed, outcome=Outcome.MARKED if created else Outcome.RECORDED,
                             record_status=record_status))
    if marked:
        _store_snapshot(session=session, image_bytes=image_bytes, student_ids=student_ids)  # all recognised
    return CheckinResult(width=width, height=height, faces=faces, confirmations_needed=needed, marked=marked,
                         processing_ms=_ms_since(started), liveness=applied, notice=notice)


def _live_step(
    *, session: Session, seen: FaceResult, sighting: checkin_liveness.Sighting, match: Match,
    policy: LivenessPolicy, needed: int, now: float,
) -> tuple[FaceResult, LivenessDecision | None, list[float]]:
    """One recognised face under a liveness policy: (its result, the live verdict when it is to be
    marked now or None, the confirming distances)."""
    session_id, student_id = session.pk, int(match.label)  # type: ignore[arg-type]
    sightings, challenge = checkin_liveness.sighting_add(session_id=session_id, student_id=student_id,
                                                         sighting=sighting, now=now)
    if challenge is not None:
        # Turned heads score and match worse: while a prompt is open, its answer decides (see there).
        verdict = checkin_liveness.challenge_judge(challenge=challenge, sightings=sightings, confirming=needed,
                                                   now=now)
        distances = _confirmations(session_id=session_id, student_id=student_id, now=now)
        if verdict.state == "passed":
            return seen, verdict.decision, distances
        if verdict.state == "pending":
            info = checkin_liveness.challenge_info(challenge, now)
            return replace(seen, outcome=Outcome.CHALLENGE, challenge=info), None, distances
        _not_live(session_id=session_id, student_id=student_id, reason=f"head-turn challenge failed: {verdict.reason}",
                  now=now)
        return replace(seen, outcome=Outcome.CHALLENGE_FAILED, reason=verdict.reason), None, []
    if not sighting.passed:
        # Not counted. A live face fails now and then (7% of live video snapshots); a face that
        # fails as many snapshots as it takes to confirm one is put on the lecturer's list.
        distances = _confirmations(session_id=session_id, student_id=student_id, now=now)
        if checkin_liveness.failed_passive(sightings) >= needed:
            reason = f"possible photo or screen (live score {sighting.score:.2f})"
            checkin_liveness.suspect_remember(session_id=session_id, student_id=student_id, reason=reason, now=now)
            return replace(seen, outcome=Outcome.NOT_LIVE, reason=reason), None, distances
        return seen, None, distances
    if failures := checkin_liveness.too_many_failures(sightings):  # not counted: see there
        distances = _confirmations(session_id=session_id, student_id=student_id, now=now)
        if checkin_liveness.failed_passive(sightings) < needed:  # one early miss of a live face: no alarm
            return seen, None, distances
        checkin_liveness.suspect_remember(session_id=session_id, student_id=student_id, reason=failures, now=now)
        return replace(seen, outcome=Outcome.NOT_LIVE, reason=failures), None, distances
    distances = _confirm(session_id=session_id, student_id=student_id, distance=float(match.distance or 0.0),
                         now=now)
    if len(distances) < needed:
        return seen, None, distances
    decision = checkin_liveness.decide_passive(sightings=sightings, confirming=needed)
    if not decision.live:
        _not_live(session_id=session_id, student_id=student_id, reason=decision.reason, now=now)
        return replace(seen, outcome=Outcome.NOT_LIVE, reason=decision.reason), None, []
    if policy is LivenessPolicy.CHALLENGE:
        challenge = checkin_liveness.challenge_issue(session_id=session_id, student_id=student_id, now=now)
        info = checkin_liveness.challenge_info(challenge, now)
        return replace(seen, outcome=Outcome.CHALLENGE, challenge=info), None, distances
    return seen, decision, distances


def _not_live(*, session_id: int, student_id: int, reason: str, now: float) -> None:
    """The face failed liveness: its confirmations start again, the lecturer's list says so."""
    redis_client().delete(_seen_key(session_id, student_id))
    checkin_liveness.liveness_forget(session_id=session_id, student_id=student_id)
    checkin_liveness.suspect_remember(session_id=session_id, student_id=student_id, reason=reason, now=now)


def _round(score: float | None) -> float | None:
    return None if score is None else round(float(score), 4)


def _identify(*, session: Session, vectors: np.ndarray, params: BackboneDefaults, embedder: Embedder) -> list[Match]:
    """The paper's vote for each face, then one student per face across the frame."""
    course_index = course_index_get(course=session.course, embedder=embedder)
    if not len(course_index):
        return assign_unique([[] for _ in range(len(vectors))])
    results = course_index.index.search(vectors, params.k2)
    # The index is a cache: a student taken off the course without a rebuild (in the admin, by a
    # script) is still in it. Only current members vote, so no one else is ever named or marked.
    found = {course_index.student_of[n.id] for neighbours in results for n in neighbours
             if n.id in course_index.student_of}
    members = set(
        CourseMembership.objects.filter(course_id=session.course_id, student_id__in=found)
        .values_list("student_id", flat=True)
    )
    candidates = [
        candidate_matches(
            # An embedding deleted since the index was loaded has no student: it cannot vote.
            [(course_index.student_of[n.id], n.distance) for n in neighbours
             if course_index.student_of.get(n.id) in members],
            k1=params.k1, k2=params.k2, threshold=params.threshold,
        )
        for neighbours in results
    ]
    return assign_unique(candidates)


def _int_box(box: tuple[float, float, float, float], width: int, height: int) -> tuple[int, int, int, int]:
    """The box clipped to the image, in whole pixels, for the page to draw."""
    x, y, w, h = box
    left, top = max(0, round(x)), max(0, round(y))
    right, bottom = min(width, round(x + w)), min(height, round(y + h))
    return left, top, max(0, right - left), max(0, bottom - top)


def _ms_since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


# --- Live-feed aggregation in Redis -----------------------------------------------------------

def _seen_key(session_id: int, student_id: int) -> str:
    return session_key(session_id, "checkin", "seen", student_id)


def _confirm(*, session_id: int, student_id: int, distance: float, now: float) -> list[float]:
    """Count this snapshot for the student; the distances of every snapshot still inside the window.

    One MULTI/EXEC: concurrent snapshots from two devices (the lecturer's laptop and a kiosk) both
    count, and a sighting older than the window drops out before the count is read.
    """
    window = int(settings.ROLLCALL_CHECKIN_WINDOW_SECONDS)
    name = _seen_key(session_id, student_id)
    member = f"{uuid.uuid4().hex}:{distance:.5f}"
    pipe = redis_client().pipeline(transaction=True)
    pipe.zremrangebyscore(name, "-inf", f"({now - window}")
    pipe.zadd(name, {member: now})
    pipe.expire(name, window + 5)
    pipe.zrange(name, 0, -1)
    members = pipe.execute()[-1]
    return [float(m.split(b":", 1)[1]) for m in members]


def _confirmations(*, session_id: int, student_id: int, now: float) -> list[float]:
    """The distances of the snapshots inside the window, without counting a new one."""
    window = int(settings.ROLLCALL_CHECKIN_WINDOW_SECONDS)
    members: list[bytes] = redis_client().zrangebyscore(  # type: ignore[assignment]
        _seen_key(session_id, student_id), now - window, "+inf")
    return [float(m.split(b":", 1)[1]) for m in members]


def _mark(
    *, session: Session, student_id: int, distance: float, decision: LivenessDecision | None = None
) -> tuple[bool, str] | None:
    """Create the face record unless the student has one; None when the session closed meanwhile.

    The session row is locked (FOR NO KEY UPDATE) so that a close cannot commit between the
    "still open?" check and the insert; the unique constraint decides between two check-ins.
    """
    with transaction.atomic():
        still_open = (
            Session.objects.select_for_update(no_key=True)
            .filter(pk=session.pk, status=Session.Status.OPEN)
            .exists()
        )
        if not still_open:
            return None
        student = User.objects.get(pk=student_id)
        result = attendance_record_mark_face(
            session=session, student=student, distance=distance,
            liveness_score=None if decision is None else decision.score,
            liveness_checks=() if decision is None else decision.checks,
        )
    redis_client().delete(_seen_key(session.pk, student_id))
    forget_doubtful(session_id=session.pk, student_id=student_id)
    checkin_liveness.liveness_forget(session_id=session.pk, student_id=student_id)
    checkin_liveness.suspect_forget(session_id=session.pk, student_id=student_id)
    if result.created:
        logger.info("session %s: student %s marked %s by face (distance %.3f, liveness %s)",
                    session.pk, student_id, result.record.status, distance,
                    "off" if decision is None else f"{decision.score} {','.join(decision.checks)}")
    return result.created, result.record.status


def _store_snapshot(*, session: Session, image_bytes: bytes, student_ids: list[int]) -> None:
    try:
        checkin_snapshot_store(session=session, jpeg=image_bytes, students=User.objects.filter(pk__in=student_ids))
    except Exception:  # a full disk must not undo a check-in that has been recorded
        logger.exception("could not store the check-in snapshot of session %s", session.pk)


def checkin_state_clear(*, session_id: int) -> None:
    """Forget a session's pending confirmations and doubtful matches (it closed)."""
    session_state_clear(session_id=session_id)
