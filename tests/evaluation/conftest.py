"""Datasets built in a temporary folder from ../shared/faces (links, never copies in the repo),
and one embedding cache for the whole session: a face embedded by one test is read back by the
next, whichever layout links to it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import pytest

from recognition.evaluation import EmbeddingCache

cv2.setNumThreads(1)

IMAGE_SUFFIXES = {".jpg", ".png"}


def photos(person_dir: Path) -> list[Path]:
    return sorted(p for p in person_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("embedding-cache")


@pytest.fixture
def cache(cache_dir: Path) -> EmbeddingCache:
    return EmbeddingCache(cache_dir)


def link_flat(root: Path, people: dict[str, Sequence[Path]]) -> Path:
    """``root/<person>/<photo>`` as links to the given photos."""
    for person, files in people.items():
        folder = root / person
        folder.mkdir(parents=True)
        for file in files:
            (folder / file.name).symlink_to(file)
    return root


def link_paper(root: Path, people: dict[str, tuple[Sequence[Path], Sequence[Path]]]) -> Path:
    """``root/<person>/train/*`` and ``root/<person>/val/*`` as links."""
    for person, (train, val) in people.items():
        for split, files in (("train", train), ("val", val)):
            folder = root / person / split
            folder.mkdir(parents=True)
            for file in files:
                (folder / file.name).symlink_to(file)
    return root


SUBSET_PEOPLE = (
    "john_salley", "john_savage", "john_schneider", "john_shimkus",
    "yale_subject01", "yale_subject02", "yale_subject03", "yale_subject04",
)


@pytest.fixture(scope="session")
def subset_people(faces_dir: Path) -> dict[str, list[Path]]:
    """Four photos each of eight people (four john_* chips, four Yale subjects)."""
    return {name: photos(faces_dir / "people" / name)[:4] for name in SUBSET_PEOPLE}


@pytest.fixture(scope="session")
def subset_strangers(faces_dir: Path) -> dict[str, list[Path]]:
    return {p.name: photos(p)[:3] for p in sorted((faces_dir / "unknown").iterdir()) if p.is_dir()}


@pytest.fixture
def make_flat(tmp_path: Path) -> Callable[[dict[str, Sequence[Path]], str], Path]:
    def make(people: dict[str, Sequence[Path]], name: str = "flat") -> Path:
        return link_flat(tmp_path / name, people)

    return make
