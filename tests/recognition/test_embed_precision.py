"""CLIP's fast path (bf16 on a CPU, fp16 on a GPU) must give the float32 model's embeddings.

Random weights (none can be downloaded here), seeded so that two embedders hold the same model.
The tolerance is recognition.precision.AGREEMENT_MIN_COSINE: cosine >= 0.999 per face.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import recognition.precision as embed_module
from recognition import ClipEmbedder, FaceDetector, load_image
from recognition.embed import AGREEMENT_MIN_COSINE, fastest_precision

pytestmark = pytest.mark.slow  # each model load takes seconds on a small CPU


def seeded_clip(precision: str) -> ClipEmbedder:
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(1234)
    embedder = ClipEmbedder("ViT-B-32", pretrained=None, precision=precision)
    embedder.load()
    return embedder


@pytest.fixture(scope="module")
def fp32() -> ClipEmbedder:
    return seeded_clip("fp32")


@pytest.fixture(scope="module")
def bf16() -> ClipEmbedder:
    return seeded_clip("bf16")


@pytest.fixture(scope="module")
def face_crops(fp32: ClipEmbedder, faces_dir: Path, detector: FaceDetector) -> list[np.ndarray]:
    crops = []
    for photo in sorted((faces_dir / "group").glob("01[0-2]_*.jpg")):  # 2 + 3 + 4 faces
        rgb = load_image(photo)
        crops += [fp32.crop(rgb, face) for face in detector.detect(rgb)]
    assert len(crops) == 9
    return crops


def test_bf16_embeddings_of_real_faces_agree_with_float32(
    fp32: ClipEmbedder, bf16: ClipEmbedder, face_crops: list[np.ndarray]
):
    assert (fp32.precision, bf16.precision) == ("fp32", "bf16")
    assert bf16.agreement is not None and bf16.agreement >= AGREEMENT_MIN_COSINE
    cosines = np.sum(bf16.encode(face_crops) * fp32.encode(face_crops), axis=1)
    assert cosines.min() >= AGREEMENT_MIN_COSINE, cosines
    # And the faces stay told apart: each face is nearest to its own float32 embedding.
    similarity = bf16.encode(face_crops) @ fp32.encode(face_crops).T
    assert list(similarity.argmax(axis=1)) == list(range(len(face_crops)))


def test_int8_embeddings_of_real_faces_agree_with_float32(fp32: ClipEmbedder, face_crops: list[np.ndarray]):
    # Dynamic int8 of the Linear layers: what auto picks on a CPU with VNNI but no bf16. Run
    # explicitly here, so it is checked whatever this machine's CPU would pick.
    int8 = seeded_clip("int8")
    assert int8.precision == "int8" and int8.agreement is not None and int8.agreement >= AGREEMENT_MIN_COSINE
    cosines = np.sum(int8.encode(face_crops) * fp32.encode(face_crops), axis=1)
    assert cosines.min() >= AGREEMENT_MIN_COSINE, cosines
    similarity = int8.encode(face_crops) @ fp32.encode(face_crops).T
    assert list(similarity.argmax(axis=1)) == list(range(len(face_crops)))


def test_dlib_refuses_int8_saying_why():
    from recognition import DlibEmbedder

    with pytest.raises(ValueError, match="Linear layers only"):
        DlibEmbedder(precision="int8")


def test_the_fast_preprocessing_equals_open_clips_own(fp32: ClipEmbedder, face_crops: list[np.ndarray]):
    import torch
    from PIL import Image

    fast = fp32.prepare(face_crops)
    reference = torch.stack([fp32._preprocess(Image.fromarray(crop)) for crop in face_crops])
    assert fast.shape == reference.shape == (9, 3, 224, 224)
    assert float((fast - reference).abs().max()) < 1e-5


def test_encode_is_prepare_then_forward_then_unit_length(bf16: ClipEmbedder, face_crops: list[np.ndarray]):
    raw = bf16.forward(bf16.prepare(face_crops[:3]))
    assert raw.shape == (3, 512) and raw.dtype == np.float32
    expected = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    np.testing.assert_allclose(bf16.encode(face_crops[:3]), expected, atol=1e-6)


def test_a_reduced_precision_that_disagrees_falls_back_to_float32(
    fp32: ClipEmbedder, face_crops: list[np.ndarray], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(embed_module, "AGREEMENT_MIN_COSINE", 1.01)  # nothing can agree this well
    fallback = seeded_clip("bf16")
    assert fallback.precision == "fp32"
    assert fallback.agreement is not None and 0.99 < fallback.agreement < 1.01
    np.testing.assert_allclose(fallback.encode(face_crops[:2]), fp32.encode(face_crops[:2]), atol=1e-5)


def test_auto_picks_the_fastest_type_the_hardware_has(monkeypatch: pytest.MonkeyPatch):
    assert fastest_precision("cuda") == "fp16" and fastest_precision("cuda:1") == "fp16"
    monkeypatch.setattr(embed_module, "cpu_flags", lambda: {"avx2", "fma"})
    assert fastest_precision("cpu") == "fp32"
    monkeypatch.setattr(embed_module, "cpu_flags", lambda: {"avx512f", "avx512_bf16"})
    assert fastest_precision("cpu") == "bf16"
    monkeypatch.setattr(embed_module, "cpu_flags", lambda: {"amx_bf16", "amx_tile"})
    assert fastest_precision("cpu") == "bf16"
    # int8 only for a model that asks (CLIP's Linear layers), only with int8 dot products, and
    # bf16 still first where the CPU has both.
    monkeypatch.setattr(embed_module, "cpu_flags", lambda: {"avx2", "avx512f", "avx512_vnni"})
    assert fastest_precision("cpu") == "fp32" and fastest_precision("cpu", int8=True) == "int8"
    monkeypatch.setattr(embed_module, "cpu_flags", lambda: {"avx2", "fma"})
    assert fastest_precision("cpu", int8=True) == "fp32"
    monkeypatch.setattr(embed_module, "cpu_flags", lambda: {"avx512_vnni", "avx512_bf16"})
    assert fastest_precision("cpu", int8=True) == "bf16"
    assert fastest_precision("cuda", int8=True) == "fp16"
    assert fastest_precision("mps") == "fp32"


def test_an_unknown_precision_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="auto, fp32, bf16, fp16"):
        ClipEmbedder(pretrained=None, precision="int4")
