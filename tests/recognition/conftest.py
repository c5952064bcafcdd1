"""Fixtures for the recognition library's tests: real faces, the real detector, real models.

The faces and the detector model live beside the repository (../shared), never in it. Tests that
need them skip, saying why, when they are absent. Expensive objects (the detector, the dlib
model, the embeddings of the whole faces set) are built once per session.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from recognition import DlibEmbedder, FaceDetector, load_image

cv2.setNumThreads(1)  # one thread per library: tests/conftest.py sets the OpenMP ones


@pytest.fixture(scope="session")
def talking_video(faces_dir: Path) -> Path:
    path = faces_dir / "videos" / "katie_hill_talking.mp4"
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    return path


@pytest.fixture(scope="session")
def group_photos(faces_dir: Path) -> dict[Path, dict[str, Any]]:
    truth = json.loads((faces_dir / "group" / "faces.json").read_text())
    return {faces_dir / "group" / name: entry for name, entry in truth.items()}


@pytest.fixture(scope="session")
def dlib_embedder() -> DlibEmbedder:
    """The dlib backbone as the app runs it (dlib's network in torch, the fastest agreeing precision)."""
    embedder = DlibEmbedder()
    embedder.load()
    return embedder


@pytest.fixture(scope="session")
def dlib_reference() -> DlibEmbedder:
    """dlib's own implementation of the same network: the reference the torch engine must match."""
    embedder = DlibEmbedder(engine="dlib")
    embedder.load()
    return embedder


@dataclass(frozen=True)
class EmbeddedSet:
    """Every photo of people/ and unknown/, one face each, embedded once for the session."""

    paths: list[Path]
    labels: np.ndarray  # person folder names
    known: np.ndarray  # True for people/, False for unknown/
    vectors: np.ndarray  # (n, 128) float32


def image_paths(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*/*") if p.suffix.lower() in {".jpg", ".png"})


@pytest.fixture(scope="session")
def dlib_faces(faces_dir: Path, detector: FaceDetector, dlib_embedder: DlibEmbedder) -> EmbeddedSet:
    paths = image_paths(faces_dir / "people") + image_paths(faces_dir / "unknown")
    vectors = []
    for path in paths:
        rgb = load_image(path)
        faces = detector.detect(rgb)
        assert faces, f"no face found in {path}"
        vectors.append(dlib_embedder.encode([dlib_embedder.crop(rgb, faces[0])])[0])
    return EmbeddedSet(
        paths=paths,
        labels=np.array([p.parent.name for p in paths]),
        known=np.array([p.parent.parent.name == "people" for p in paths]),
        vectors=np.stack(vectors),
    )


@pytest.fixture(scope="session")
def pad_dir(faces_dir: Path) -> Path:
    """Real live faces and real print / screen attacks (../shared/faces/pad/README.md)."""
    path = faces_dir / "pad"
    if not (path / "manifest.csv").is_file():
        pytest.skip(f"the presentation-attack set is not at {path}")
    return path


@pytest.fixture(scope="session")
def antispoof_model_dir(detector_model: Path) -> Path:
    """The folder of the two MiniFASNet files (beside the YuNet model in ../shared/models)."""
    from recognition.liveness import ANTISPOOF_MODELS

    folder = detector_model.parent
    missing = [spec.filename for spec in ANTISPOOF_MODELS if not (folder / spec.filename).is_file()]
    if missing:
        pytest.skip(f"the liveness models {', '.join(missing)} are not in {folder}")
    return folder


@pytest.fixture(scope="session")
def liveness_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the session's scorers keep their OpenCV exports (made once, in a child process)."""
    return tmp_path_factory.mktemp("liveness-exports")


@pytest.fixture(scope="session")
def passive_liveness(antispoof_model_dir: Path, liveness_cache_dir: Path) -> Any:
    from recognition.liveness import PassiveLiveness

    scorer = PassiveLiveness.from_dir(antispoof_model_dir, download=False, cache_dir=liveness_cache_dir)
    scorer.load()
    return scorer


def write_openai_hub_cache(cache: Path, state_dict: dict[str, Any]) -> Path:
    """A Hugging Face cache under `cache` holding `state_dict` as the file open_clip's ViT-B-32 "openai"
    tag resolves to: the tag's weights without a network (tests save random weights there)."""
    import torch

    repo = cache / "models--timm--vit_base_patch32_clip_224.openai"
    snapshot = repo / "snapshots" / "0123456789abcdef0123456789abcdef01234567"
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(snapshot.name)
    torch.save(state_dict, snapshot / "open_clip_pytorch_model.bin")
    return cache
