"""Dataset folders: the paper's layout, the flat layout, never-enrolled people, and clear errors."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from recognition.evaluation import DatasetError, load_dataset

from .conftest import link_paper, photos


def test_a_flat_folder_is_split_reproducibly_into_disjoint_gallery_and_probes(
    make_flat: Callable[..., Path], subset_people: dict[str, list[Path]]
):
    root = make_flat(subset_people)
    dataset = load_dataset(root, seed=3)
    assert dataset.layout == "flat" and dataset.classes == tuple(sorted(subset_people))
    assert len(dataset.gallery) == len(dataset.probes) == 8 * 2
    assert not {s.path for s in dataset.gallery} & {s.path for s in dataset.probes}
    again = load_dataset(root, seed=3)
    assert again.gallery == dataset.gallery
    other = load_dataset(root, seed=4)
    assert other.gallery != dataset.gallery
    # A class's split does not depend on which other classes are there.
    fewer = load_dataset(root, seed=3).subset(["john_salley", "yale_subject01"])
    alone = make_flat({k: subset_people[k] for k in ("john_salley", "yale_subject01")}, "two")
    assert [s.path.name for s in load_dataset(alone, seed=3).gallery] == [s.path.name for s in fewer.gallery]


def test_the_papers_layout_enrols_train_and_probes_val(tmp_path: Path, subset_people: dict[str, list[Path]]):
    root = link_paper(tmp_path / "paper", {name: (files[:2], files[2:]) for name, files in subset_people.items()})
    (root / "john_salley" / "train" / "notes.txt").write_text("not a picture")
    dataset = load_dataset(root)
    assert dataset.layout == "paper"
    assert len(dataset.gallery) == len(dataset.probes) == 8 * 2
    assert all(s.path.parent.name == "train" for s in dataset.gallery)
    assert [p.name for p in dataset.ignored] == ["notes.txt"]
    assert "paper layout" in dataset.describe()


def test_a_class_may_be_given_as_two_videos(tmp_path: Path, subset_people: dict[str, list[Path]]):
    root = tmp_path / "videos"
    for name in ("ann", "bob"):
        (root / name).mkdir(parents=True)
        (root / name / "train.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
        (root / name / "val.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    dataset = load_dataset(root)
    assert [(s.label, s.kind, s.path.name) for s in dataset.gallery] == [("ann", "video", "train.mp4"),
                                                                          ("bob", "video", "train.mp4")]


def test_never_enrolled_people_come_from_their_own_folders(
    make_flat: Callable[..., Path], subset_people: dict[str, list[Path]], subset_strangers: dict[str, list[Path]],
    tmp_path: Path,
):
    root = make_flat(subset_people)
    strangers = make_flat(subset_strangers, "strangers")
    single = make_flat({"lone_person": subset_strangers["john_simm"][:2]}, "single") / "lone_person"
    dataset = load_dataset(root, open_set_dirs=[strangers, single])
    assert dataset.open_set_people == (*sorted(subset_strangers), "lone_person")
    assert len(dataset.open_set) == sum(len(v) for v in subset_strangers.values()) + 2


def expect(message: str, root: Path, **options: object) -> None:
    with pytest.raises(DatasetError, match=message):
        load_dataset(root, **options)  # type: ignore[arg-type]


def test_malformed_folders_are_refused_with_what_to_change(
    tmp_path: Path, make_flat: Callable[..., Path], subset_people: dict[str, list[Path]], faces_dir: Path
):
    one = subset_people["john_salley"]
    two = subset_people["yale_subject01"]
    expect("does not exist", tmp_path / "missing")
    (tmp_path / "file.txt").write_text("x")
    expect("is not a folder", tmp_path / "file.txt")
    (tmp_path / "empty").mkdir()
    expect("no class folders", tmp_path / "empty")
    loose = tmp_path / "loose"
    loose.mkdir()
    (loose / "a.jpg").symlink_to(one[0])
    expect("one sub-folder per person", loose)
    expect("at least two people", make_flat({"solo": one}, "solo"))
    expect("at least two per person", make_flat({"a": one[:1], "b": two}, "thin"))
    expect("between 0 and 1", make_flat({"a": one, "b": two}, "fraction"), gallery_fraction=1.0)

    nested = make_flat({"a": one, "b": two}, "nested")
    (nested / "a" / "more").mkdir()
    expect("one level deeper", nested)

    def paper(name: str, people: dict[str, tuple[Sequence[Path], Sequence[Path]]]) -> Path:
        return link_paper(tmp_path / name, people)

    no_val = paper("noval", {"a": (one[:2], one[2:]), "b": (two[:2], two[2:])})
    for file in (no_val / "b" / "val").iterdir():
        file.unlink()
    (no_val / "b" / "val").rmdir()
    expect("no val folder", no_val)
    half = paper("half", {"a": (one[:2], one[2:])})
    (half / "b").mkdir()
    (half / "b" / "x.jpg").symlink_to(two[0])
    expect("has neither train nor val", half)
    empty_split = paper("emptysplit", {"a": (one[:2], one[2:]), "b": (two[:2], two[2:])})
    for file in (empty_split / "b" / "val").iterdir():
        file.unlink()
    expect("has no images or video", empty_split)
    mixed = paper("mixed", {"a": (one[:2], one[2:]), "b": (two[:2], two[2:])})
    (mixed / "b" / "train" / "clip.mp4").symlink_to(faces_dir / "videos" / "katie_hill_talking.mp4")
    expect("mixes images and videos", mixed)
    both = paper("both", {"a": (one[:2], one[2:]), "b": (two[:2], two[2:])})
    (both / "b" / "train.mp4").symlink_to(faces_dir / "videos" / "katie_hill_talking.mp4")
    expect("keep one of them", both)
    video_flat = make_flat({"a": one, "b": two}, "videoflat")
    (video_flat / "b" / "clip.mp4").symlink_to(faces_dir / "videos" / "katie_hill_talking.mp4")
    expect("videos need the paper's layout", video_flat)

    good = make_flat({"a": one, "b": two}, "good")
    clash = make_flat({"a": one[:2]}, "clash")
    expect("both an enrolled class and a never-enrolled person", good, open_set_dirs=[clash])
    expect("does not exist", good, open_set_dirs=[tmp_path / "nobody"])
    (tmp_path / "blank").mkdir()
    expect("no images, videos or person folders", good, open_set_dirs=[tmp_path / "blank"])
    (tmp_path / "blank2" / "someone").mkdir(parents=True)
    expect("has no images or videos", good, open_set_dirs=[tmp_path / "blank2"])


def test_the_shared_faces_people_folder_reads_as_a_flat_dataset(faces_dir: Path):
    dataset = load_dataset(faces_dir / "people", open_set_dirs=[faces_dir / "unknown"])
    assert len(dataset.classes) == 17
    assert len(dataset.gallery) + len(dataset.probes) == sum(len(photos(p)) for p in (faces_dir / "people").iterdir())
    assert dataset.open_set_people == ("john_simm", "yale_subject14", "yale_subject15")
