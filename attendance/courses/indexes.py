"""Course face indexes: built from the database (the truth), cached on disk and in each process.

An index file is only a cache. Missing, corrupt or built with another embedder, it is rebuilt from
the stored embeddings. Web processes hold each course's index in memory and compare its version
with `Course.index_version` (one indexed query) to reload only after a rebuild, never per request.

Each file is named after the version it was built for (`course-7-dlib-resnet_v1-mirror-v12.faiss`).
A rebuild inside a transaction that later rolls back leaves a file for a version the database never
reached; readers ask for the committed version's file, so they never load it, and the next rebuild
overwrites it. Older versions are deleted once the new one is committed.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction

from attendance import ml
from attendance.models import Course, FaceEmbedding, FaceEnrolment, User
from attendance.platform import biometric
from recognition import Calibration, Embedder, FaceIndex, IndexFormatError, calibrate_threshold

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CourseIndex:
    """A course's index in memory, with the map from FAISS ids (embedding ids) to students."""

    course_id: int
    version: int
    index: FaceIndex
    student_of: dict[int, int]

    def __len__(self) -> int:
        return len(self.index)


_cache: dict[int, CourseIndex] = {}
_cache_lock = threading.Lock()


def _space_slug(space: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.]+", "-", space).strip("-") or "index"


def course_index_path(*, course_id: int, version: int | None = None, space: str | None = None) -> Path:
    """Where the index of one version of a course (default: its committed version), in one
    embedding space (default: the configured embedder's), is cached."""
    if version is None:
        version = Course.objects.values_list("index_version", flat=True).get(pk=course_id)
    slug = _space_slug(space or ml.embedder_name())
    return Path(settings.ROLLCALL_INDEX_DIR) / f"course-{course_id}-{slug}-v{version}.faiss"


def course_embeddings(*, course_id: int, space: str, dim: int) -> tuple[np.ndarray, np.ndarray, dict[int, int]]:
    """Ids, vectors and id->student of every ready embedding of the course's current students."""
    rows = (
        FaceEmbedding.objects.filter(
            backbone=space,
            dim=dim,
            enrolment__status=FaceEnrolment.Status.READY,
            student__memberships__course_id=course_id,
        )
        .order_by("id")
        .values_list("id", "student_id", "vector", "key_id")
    )
    ids: list[int] = []
    vectors: list[np.ndarray] = []
    student_of: dict[int, int] = {}
    ring = biometric.keyring()
    for embedding_id, student_id, vector, key_id in rows.iterator(chunk_size=2000):
        ids.append(embedding_id)
        # Decrypted here, in this process's memory, and nowhere else.
        vectors.append(biometric.vector_decrypt(
            vector, key_id=key_id, student_id=student_id, backbone=space, dim=dim, ring=ring
        ))
        student_of[embedding_id] = student_id
    if not vectors:
        return np.zeros(0, dtype=np.int64), np.zeros((0, dim), dtype=np.float32), student_of
    return np.asarray(ids, dtype=np.int64), np.vstack(vectors).astype(np.float32, copy=False), student_of


def index_file_save(index: FaceIndex, path: Path) -> None:
    """Write an index file sealed with the current biometric key (bound to its file name)."""
    index.save(path, encrypt=lambda data: biometric.seal(data, context=path.name))


def index_file_load(path: Path, *, space: str, dim: int) -> FaceIndex:
    return FaceIndex.load(path, backbone=space, dim=dim,
                          decrypt=lambda data: biometric.unseal(data, context=path.name))


def _build(
    *, course_id: int, space: str, dim: int, calibrate: bool = False
) -> tuple[FaceIndex, dict[int, int], Calibration | None]:
    ids, vectors, student_of = course_embeddings(course_id=course_id, space=space, dim=dim)
    index = FaceIndex(dim, backbone=space)
    if len(ids):
        index.add(ids, vectors)
    calibration = None
    if calibrate:
        # The gallery's own threshold: distances between different enrolled students stand in for
        # strangers (recognition.calibrate says how, and its limits); few students: the default.
        calibration = calibrate_threshold(
            vectors, [student_of[int(i)] for i in ids], backbone=ml.backbone_name(),
            target_far=settings.ROLLCALL_CALIBRATION_TARGET_FAR,
        )
    return index, student_of, calibration


def _index_files(course_id: int) -> list[Path]:
    return list(Path(settings.ROLLCALL_INDEX_DIR).glob(f"course-{course_id}-*.faiss"))


def _prune_old_files(course_id: int, keep: Path) -> None:
    for path in _index_files(course_id):
        if path != keep:
            path.unlink(missing_ok=True)


def course_index_files_delete(*, course_id: int) -> None:
    """Every index file of a course, and this process's cached index of it: for a course that is
    being deleted (its files hold its students' face vectors, sealed, until then)."""
    with _cache_lock:
        _cache.pop(course_id, None)
    for path in _index_files(course_id):
        try:
            path.unlink(missing_ok=True)
        except OSError:  # the course is gone: a file left is logged for an operator, the rest still go
            logger.exception("could not delete the index file %s of deleted course %s", path, course_id)


def course_index_rebuild(*, course: Course) -> int:
    """Rebuild a course's index file from the database and bump its version; returns the vector count.

    The course row is locked until the surrounding transaction ends, so two rebuilds of one course
    (two enrolments finishing together) run one after the other and each file matches the state
    its version commits. Called inside a larger transaction (an enrolment becoming ready), the file
    and the version commit or vanish with it.
    """
    space, dim = ml.embedder_name(), ml.embedder().dim
    with transaction.atomic():
        version = Course.objects.select_for_update().values_list("index_version", flat=True).get(pk=course.pk) + 1
        index, _, calibration = _build(course_id=course.pk, space=space, dim=dim, calibrate=True)
        assert calibration is not None
        path = course_index_path(course_id=course.pk, version=version, space=space)
        path.parent.mkdir(parents=True, exist_ok=True)
        index_file_save(index, path)
        Course.objects.filter(pk=course.pk).update(
            index_version=version, calibrated_threshold=calibration.threshold,
            calibration_source=calibration.source, calibration_people=calibration.n_people,
            calibration_space=space,
        )
        transaction.on_commit(lambda: _prune_old_files(course.pk, path))
    course.index_version = version
    course.calibrated_threshold, course.calibration_source = calibration.threshold, calibration.source
    course.calibration_people, course.calibration_space = calibration.n_people, space
    logger.info("rebuilt index of course %s: %d vectors, version %d", course.pk, len(index), version)
    return len(index)


def courses_index_rebuild(*, course_ids: list[int]) -> None:
    """Rebuild several courses' indexes, always in id order so that concurrent callers lock rows
    in the same order and cannot deadlock."""
    with transaction.atomic():
        for course in Course.objects.filter(pk__in=course_ids).order_by("pk"):
            course_index_rebuild(course=course)


def student_courses_index_rebuild(*, student: User) -> list[int]:
    """Rebuild the index of every course the student takes; returns those courses' ids."""
    course_ids = sorted(student.memberships.values_list("course_id", flat=True))
    courses_index_rebuild(course_ids=course_ids)
    return course_ids


def course_index_get(*, course: Course, embedder: Embedder | None = None) -> CourseIndex:
    """The course's index for searching, loaded once per process and reloaded only when its version
    moved. ``embedder``: the one the probe was embedded with (default: the served space's): the
    index is of its space, so a switch landing mid-request never mixes two spaces."""
    embedder = embedder or ml.embedder()
    space, dim = embedder.name, embedder.dim
    version = Course.objects.values_list("index_version", flat=True).get(pk=course.pk)
    cached = _cache.get(course.pk)
    if cached is not None and cached.version == version and cached.index.backbone == space:
        return cached
    with _cache_lock:
        cached = _cache.get(course.pk)
        if cached is not None and cached.version == version and cached.index.backbone == space:
            return cached
        loaded = _load(course_id=course.pk, version=version, space=space, dim=dim)
        if loaded is None:
            loaded = _repair(course_id=course.pk, space=space, dim=dim)
        _cache[course.pk] = loaded
        # A course deleted in another process leaves its index here until a load: dropped now.
        for gone in set(_cache) - set(Course.objects.filter(pk__in=list(_cache)).values_list("pk", flat=True)):
            del _cache[gone]
        return loaded


def _load(*, course_id: int, version: int, space: str, dim: int) -> CourseIndex | None:
    """The cached file of this version, or None when it is missing, corrupt, of another embedder,
    or names embeddings that no longer exist (deleted since, by a withdrawal)."""
    path = course_index_path(course_id=course_id, version=version, space=space)
    try:
        index = index_file_load(path, space=space, dim=dim)
    except IndexFormatError as exc:
        logger.warning("index of course %s unusable (%s): rebuilding from the database", course_id, exc)
        return None
    ids = [int(i) for i in index.ids()]
    student_of = dict(FaceEmbedding.objects.filter(pk__in=ids).values_list("id", "student_id"))
    if len(student_of) != len(ids):
        logger.warning("index of course %s names deleted embeddings: rebuilding", course_id)
        return None
    return CourseIndex(course_id=course_id, version=version, index=index, student_of=student_of)


def _repair(*, course_id: int, space: str, dim: int) -> CourseIndex:
    """Build the committed version's file again from the database, without bumping the version:
    a missing cache file is not a change, and bumping would make every other process reload."""
    with transaction.atomic():
        version = Course.objects.select_for_update().values_list("index_version", flat=True).get(pk=course_id)
        index, student_of, _ = _build(course_id=course_id, space=space, dim=dim)
        path = course_index_path(course_id=course_id, version=version, space=space)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            index_file_save(index, path)
            # Older versions' files are stale (one may still hold a student who withdrew, its
            # rebuild having failed): pruned as a rebuild prunes them.
            transaction.on_commit(lambda: _prune_old_files(course_id, path))
        except OSError as exc:
            # A full or read-only index disk must not stop check-in: the index just built from the
            # database serves this process from memory; the next rebuild, or another process
            # repairing the same version, writes the file again.
            logger.error("index of course %s rebuilt in memory only, its file could not be written: %s",
                         course_id, exc)
    return CourseIndex(course_id=course_id, version=version, index=index, student_of=student_of)


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()
