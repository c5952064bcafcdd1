"""The CLIP embedder with random weights (no weights can be downloaded here) and its failures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recognition import (
    ClipEmbedder,
    Embedder,
    FaceDetector,
    ModelUnavailableError,
    create_embedder,
    load_image,
)
from tests.recognition.conftest import write_openai_hub_cache

pytestmark = pytest.mark.slow  # each model load takes seconds on a small CPU

SETTINGS = ("ROLLCALL_CLIP_PRETRAINED", "ROLLCALL_CLIP_CHECKPOINT", "dlib")


@pytest.fixture(scope="module")
def clip() -> ClipEmbedder:
    import torch

    torch.set_num_threads(1)
    embedder = ClipEmbedder("ViT-B-32", pretrained=None, batch_size=3)
    embedder.load()
    return embedder


@pytest.fixture(scope="module")
def crops(clip: ClipEmbedder, faces_dir: Path, detector: FaceDetector) -> list[np.ndarray]:
    photos = sorted((faces_dir / "group").glob("01[0-1]_*.jpg"))  # 2 + 3 faces
    result = []
    for photo in photos:
        rgb = load_image(photo)
        result += [clip.crop(rgb, face) for face in detector.detect(rgb)]
    assert len(result) == 5
    return result


def test_construction_is_cheap_and_loads_nothing(tmp_path: Path):
    # Construction reads no file and builds no network: a checkpoint that does not exist is only
    # noticed by load(), and no model object exists until then.
    embedder = create_embedder("clip", model_name="ViT-B-32", pretrained="openai")
    assert embedder._model is None  # type: ignore[attr-defined]
    unread = create_embedder("clip", model_name="ViT-B-32", checkpoint=tmp_path / "missing.pt")
    assert unread._model is None  # type: ignore[attr-defined]
    assert embedder.name == "clip:ViT-B-32:openai" and embedder.backbone == "clip"


def test_embeddings_have_the_models_shape_and_unit_length(
    clip: ClipEmbedder,
    crops: list[np.ndarray],
):
    assert isinstance(clip, Embedder)
    assert (clip.dim, clip.crop_size) == (512, 224)
    assert crops[0].shape == (224, 224, 3)
    vectors = clip.encode(crops)
    assert vectors.shape == (5, 512) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert clip.encode([]).shape == (0, 512)


def test_encoding_is_deterministic(clip: ClipEmbedder, crops: list[np.ndarray]):
    assert np.array_equal(clip.encode(crops), clip.encode(crops))


def test_batches_give_the_same_vectors_as_one_by_one(clip: ClipEmbedder, crops: list[np.ndarray]):
    batched = clip.encode(crops)  # batch_size 3: one full batch and one partial
    single = np.concatenate([clip.encode([c]) for c in crops])
    assert np.abs(batched - single).max() < 1e-5


def test_crops_of_other_sizes_go_through_the_models_own_preprocessing(
    clip: ClipEmbedder,
    crops: list[np.ndarray],
):
    import cv2

    bigger = cv2.resize(crops[0], (300, 300), interpolation=cv2.INTER_CUBIC)
    assert clip.encode([bigger]).shape == (1, 512)
    with pytest.raises(ValueError, match="uint8"):
        clip.encode([crops[0].astype(np.float32)])


def test_a_saved_state_dict_loads_as_a_checkpoint_with_identical_embeddings(
    clip: ClipEmbedder,
    crops: list[np.ndarray],
    tmp_path: Path,
):
    import torch

    path = tmp_path / "faces-finetuned.pt"
    torch.save(clip.model.state_dict(), path)
    restored = ClipEmbedder("ViT-B-32", pretrained=None, checkpoint=path)
    assert restored.name == "clip:ViT-B-32:file:faces-finetuned.pt"
    original, loaded = clip.model.state_dict(), restored.model.state_dict()
    assert original.keys() == loaded.keys()
    assert all(torch.equal(original[key], loaded[key]) for key in original)
    # Same weights; the last bits of float32 may differ with memory layout.
    np.testing.assert_allclose(restored.encode(crops), clip.encode(crops), rtol=0, atol=1e-6)


def test_only_the_image_tower_is_kept_and_a_whole_model_checkpoint_gives_the_same_vectors(
    clip: ClipEmbedder,
    crops: list[np.ndarray],
    tmp_path: Path,
):
    import open_clip
    import torch

    names = [name for name, _ in clip.model.named_parameters()]
    assert names and all(name.startswith("visual.") for name in names)  # no text tower resident
    # A checkpoint of the whole CLIP model (what open_clip and its hub save) loads the same tower.
    whole = open_clip.create_model("ViT-B-32", pretrained=None)
    whole.visual.load_state_dict(clip.model.visual.state_dict())
    path = tmp_path / "whole.pt"
    torch.save(whole.state_dict(), path)
    restored = ClipEmbedder("ViT-B-32", pretrained=None, checkpoint=path)
    np.testing.assert_allclose(restored.encode(crops), clip.encode(crops), rtol=0, atol=1e-6)
    # One image-tower weight missing is an error, not a silently random layer.
    partial = {k: v for k, v in whole.state_dict().items() if k != "visual.proj"}
    torch.save(partial, path)
    with pytest.raises(ModelUnavailableError, match=r"missing keys visual\.proj"):
        ClipEmbedder("ViT-B-32", pretrained=None, checkpoint=path).load()


def test_cached_pretrained_weights_load_without_the_network(
    clip: ClipEmbedder,
    crops: list[np.ndarray],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    write_openai_hub_cache(tmp_path, clip.model.state_dict())
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cached = ClipEmbedder("ViT-B-32", pretrained="openai", cache_dir=tmp_path)
    vectors = cached.encode(crops)
    # The "openai" tag switches the model to QuickGELU, as open_clip would: same weights,
    # other activation, so the vectors differ from the plain model's.
    assert vectors.shape == (5, 512)
    assert not np.allclose(vectors, clip.encode(crops), atol=1e-3)


def test_offline_without_weights_fails_fast_naming_the_settings(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    import open_clip  # noqa: F401  # a one-off import cost is not what this test times

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    embedder = ClipEmbedder("ViT-B-32", pretrained="openai", cache_dir=tmp_path)
    # No download is tried: the error names the offline switch, not a network failure.
    with pytest.raises(ModelUnavailableError, match="HF_HUB_OFFLINE") as caught:
        embedder.encode([np.zeros((224, 224, 3), np.uint8)])
    assert not list(tmp_path.rglob("*.part")) and not list(tmp_path.rglob("*.incomplete"))
    assert all(setting in str(caught.value) for setting in SETTINGS)


def test_an_unreachable_hub_fails_fast_instead_of_retrying(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    import open_clip  # noqa: F401

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    monkeypatch.delenv("https_proxy", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    embedder = ClipEmbedder("ViT-B-32", pretrained="laion2b_s34b_b79k", cache_dir=tmp_path)
    # The probe's verdict, not the hub client's retries, decides: the message says "unreachable".
    with pytest.raises(ModelUnavailableError, match="unreachable") as caught:
        embedder.load()
    assert all(setting in str(caught.value) for setting in SETTINGS)


def test_configuration_mistakes_name_what_to_change(tmp_path: Path):
    with pytest.raises(ModelUnavailableError, match="ROLLCALL_CLIP_CHECKPOINT"):
        ClipEmbedder(checkpoint=tmp_path / "missing.pt").load()
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelUnavailableError, match="checkpoint of that model"):
        ClipEmbedder(checkpoint=broken).load()
    with pytest.raises(ModelUnavailableError, match="ROLLCALL_CLIP_PRETRAINED"):
        ClipEmbedder(pretrained="no-such-tag").load()
    with pytest.raises(ModelUnavailableError, match="ROLLCALL_CLIP_MODEL"):
        ClipEmbedder("ViT-Nope", pretrained=None).load()
    with pytest.raises(ValueError, match="backbone"):
        create_embedder("arcface")
