"""Labelled dataset folders: the paper's train/val layout and a flat layout split with a fixed seed.

Paper layout (one folder per person; ``train`` is enrolled, ``val`` is probed)::

    <root>/<class>/train/*.jpg     or  <root>/<class>/train/<one video>  or  <root>/<class>/train.mp4
    <root>/<class>/val/*.jpg       or  <root>/<class>/val/<one video>    or  <root>/<class>/val.mp4

Flat layout (each class's images are split into gallery and probes, reproducibly)::

    <root>/<class>/*.jpg

Never-enrolled people (open-set probes) come from separate folders, ``<dir>/<person>/*`` (images or
videos, any depth), or ``<dir>/*`` for one person. Any problem with a folder raises `DatasetError`
naming the folder and what to change.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from recognition.errors import RecognitionError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff", ".pgm", ".ppm"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".y4m"})
SPLITS = ("train", "val")

Kind = Literal["image", "video"]
Layout = Literal["paper", "flat"]


class DatasetError(RecognitionError):
    """A dataset folder that cannot be read as the paper's layout or the flat layout."""


@dataclass(frozen=True)
class Source:
    """One file of a dataset: an image, or a video whose sampled frames are each a sample."""

    path: Path
    label: str
    kind: Kind


@dataclass(frozen=True)
class Dataset:
    root: Path
    layout: Layout
    classes: tuple[str, ...]
    gallery: tuple[Source, ...]
    probes: tuple[Source, ...]
    open_set: tuple[Source, ...] = ()
    open_set_people: tuple[str, ...] = ()
    seed: int = 0
    gallery_fraction: float | None = None  # flat layout only
    ignored: tuple[Path, ...] = field(default=())  # files that are neither images nor videos

    def describe(self) -> str:
        split = (
            "train -> gallery, val -> probes"
            if self.layout == "paper"
            else f"each class split {self.gallery_fraction:.0%} gallery / rest probes, seed {self.seed}"
        )
        return (
            f"{self.root} ({self.layout} layout: {split}); {len(self.classes)} classes, "
            f"{len(self.gallery)} gallery files, {len(self.probes)} probe files, "
            f"{len(self.open_set_people)} never-enrolled people ({len(self.open_set)} files)"
        )

    def subset(self, classes: Sequence[str]) -> Dataset:
        keep = set(classes)
        return Dataset(
            root=self.root,
            layout=self.layout,
            classes=tuple(c for c in self.classes if c in keep),
            gallery=tuple(s for s in self.gallery if s.label in keep),
            probes=tuple(s for s in self.probes if s.label in keep),
            open_set=self.open_set,
            open_set_people=self.open_set_people,
            seed=self.seed,
            gallery_fraction=self.gallery_fraction,
            ignored=self.ignored,
        )


def _kind(path: Path) -> Kind | None:
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    return None


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _split_entry(class_dir: Path, split: str) -> Path | None:
    """The class's ``train``/``val`` folder or ``train.<video>`` file, or None when absent."""
    folder = class_dir / split
    videos = [p for p in class_dir.glob(f"{split}.*") if p.is_file() and _kind(p) == "video"]
    if folder.is_dir() and videos:
        raise DatasetError(
            f"{class_dir} has both a {split}/ folder and {videos[0].name}: keep one of them"
        )
    if len(videos) > 1:
        raise DatasetError(f"{class_dir} has several {split} videos ({', '.join(v.name for v in videos)}): keep one")
    if folder.is_dir():
        return folder
    return videos[0] if videos else None


def _read_split(entry: Path, label: str, ignored: list[Path]) -> list[Source]:
    if entry.is_file():
        return [Source(entry, label, "video")]
    files = [p for p in _visible(entry) if p.is_file()]
    images = [p for p in files if _kind(p) == "image"]
    videos = [p for p in files if _kind(p) == "video"]
    ignored.extend(p for p in files if _kind(p) is None)
    if videos and images:
        raise DatasetError(
            f"{entry} mixes images and videos: a split folder holds either images or exactly one video"
        )
    if len(videos) > 1:
        raise DatasetError(
            f"{entry} holds {len(videos)} videos: a split folder holds one video (the paper's layout), "
            "or images"
        )
    if not images and not videos:
        raise DatasetError(f"{entry} has no images or video: add the {entry.name} images of '{label}' or remove it")
    if videos:
        return [Source(videos[0], label, "video")]
    return [Source(p, label, "image") for p in images]


def _class_dirs(root: Path) -> list[Path]:
    if not root.exists():
        raise DatasetError(f"dataset folder {root} does not exist")
    if not root.is_dir():
        raise DatasetError(f"dataset {root} is not a folder: give a folder with one sub-folder per person")
    dirs = [p for p in _visible(root) if p.is_dir()]
    loose = [p for p in _visible(root) if p.is_file() and _kind(p) is not None]
    if loose:
        raise DatasetError(
            f"{root} has images or videos directly inside it ({loose[0].name}, ...): the dataset needs one "
            "sub-folder per person (<root>/<person>/...)"
        )
    if not dirs:
        raise DatasetError(f"{root} has no class folders: the dataset needs one sub-folder per person")
    return dirs


def _has_split(class_dir: Path) -> bool:
    return any(_split_entry(class_dir, split) is not None for split in SPLITS)


def load_dataset(
    root: str | Path,
    *,
    layout: Literal["auto", "paper", "flat"] = "auto",
    gallery_fraction: float = 0.5,
    seed: int = 0,
    open_set_dirs: Sequence[str | Path] = (),
) -> Dataset:
    """Read a dataset folder (and any never-enrolled people) into gallery, probe and open-set files."""
    root = Path(root)
    if not 0.0 < gallery_fraction < 1.0:
        raise DatasetError(f"gallery fraction must be between 0 and 1 (exclusive), got {gallery_fraction}")
    dirs = _class_dirs(root)
    with_split = [d for d in dirs if _has_split(d)]
    if layout == "auto":
        layout = "paper" if with_split else "flat"
    ignored: list[Path] = []
    gallery: list[Source] = []
    probes: list[Source] = []
    if layout == "paper":
        missing = [d.name for d in dirs if d not in with_split]
        if missing:
            raise DatasetError(
                f"{root} looks like the paper's layout (<class>/train, <class>/val) but "
                f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''} has neither train nor val"
            )
        for class_dir in dirs:
            entries = {split: _split_entry(class_dir, split) for split in SPLITS}
            for split, entry in entries.items():
                if entry is None:
                    raise DatasetError(
                        f"{class_dir} has no {split} folder or {split}.mp4: the paper's layout needs both "
                        "train (enrolled) and val (probed)"
                    )
            gallery += _read_split(entries["train"], class_dir.name, ignored)  # type: ignore[arg-type]
            probes += _read_split(entries["val"], class_dir.name, ignored)  # type: ignore[arg-type]
    else:
        for class_dir in dirs:
            gallery_part, probe_part = _flat_split(class_dir, gallery_fraction, seed, ignored)
            gallery += gallery_part
            probes += probe_part
    classes = tuple(d.name for d in dirs)
    if len(classes) < 2:
        raise DatasetError(f"{root} has only {len(classes)} class: recognition needs at least two people")
    open_set, people = _open_set(open_set_dirs, set(classes), ignored)
    return Dataset(
        root=root,
        layout=layout,
        classes=classes,
        gallery=tuple(gallery),
        probes=tuple(probes),
        open_set=tuple(open_set),
        open_set_people=tuple(people),
        seed=seed,
        gallery_fraction=gallery_fraction if layout == "flat" else None,
        ignored=tuple(ignored),
    )


def _flat_split(
    class_dir: Path, fraction: float, seed: int, ignored: list[Path]
) -> tuple[list[Source], list[Source]]:
    entries = _visible(class_dir)
    sub = [p for p in entries if p.is_dir()]
    if sub:
        raise DatasetError(
            f"{class_dir} holds folders ({', '.join(p.name for p in sub[:3])}) but no train/ and val/: in the flat "
            f"layout each class folder holds images. If these are people, the dataset is one level deeper: "
            f"pass {class_dir} itself"
        )
    files = [p for p in entries if p.is_file()]
    videos = [p for p in files if _kind(p) == "video"]
    if videos:
        raise DatasetError(
            f"{class_dir} holds a video ({videos[0].name}): videos need the paper's layout, "
            f"{class_dir.name}/train.mp4 and {class_dir.name}/val.mp4"
        )
    images = [p for p in files if _kind(p) == "image"]
    ignored.extend(p for p in files if _kind(p) is None)
    if len(images) < 2:
        raise DatasetError(
            f"{class_dir} has {len(images)} image(s): the flat layout needs at least two per person "
            "(one to enrol, one to probe)"
        )
    # Seeded per class, so that a class's split does not depend on which other classes are present.
    shuffled = images[:]
    random.Random(f"{seed}:{class_dir.name}").shuffle(shuffled)
    n_gallery = min(len(images) - 1, max(1, round(len(images) * fraction)))
    label = class_dir.name
    return (
        [Source(p, label, "image") for p in sorted(shuffled[:n_gallery])],
        [Source(p, label, "image") for p in sorted(shuffled[n_gallery:])],
    )


def _media_under(folder: Path, ignored: list[Path]) -> list[Path]:
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    ignored.extend(p for p in files if _kind(p) is None)
    return [p for p in files if _kind(p) is not None]


def _open_set(dirs: Sequence[str | Path], enrolled: set[str], ignored: list[Path]) -> tuple[list[Source], list[str]]:
    sources: list[Source] = []
    people: list[str] = []
    for raw in dirs:
        folder = Path(raw)
        if not folder.is_dir():
            raise DatasetError(f"never-enrolled folder {folder} does not exist or is not a folder")
        direct = [p for p in _visible(folder) if p.is_file() and _kind(p) is not None]
        person_dirs = [folder] if direct else [p for p in _visible(folder) if p.is_dir()]
        if not person_dirs:
            raise DatasetError(f"never-enrolled folder {folder} has no images, videos or person folders")
        for person_dir in person_dirs:
            name = person_dir.name
            if name in enrolled:
                raise DatasetError(
                    f"'{name}' is both an enrolled class and a never-enrolled person ({person_dir}): "
                    "an open-set probe must be someone the gallery does not hold"
                )
            media = _media_under(person_dir, ignored)
            if not media:
                raise DatasetError(f"never-enrolled person folder {person_dir} has no images or videos")
            people.append(name)
            sources += [Source(p, name, _kind(p) or "image") for p in media]
    return sources, people
