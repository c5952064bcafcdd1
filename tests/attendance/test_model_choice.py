"""ROLLCALL_BACKBONE=auto and ROLLCALL_DETECTOR=auto: what runs is decided from what is on this
machine, and the app says what and why."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from attendance import ml
from recognition import FaceDetector, ModelUnavailableError, load_image
from recognition.detect_dlib import DlibFaceDetector


@pytest.fixture(autouse=True)
def fresh_models(db: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # No hub: "auto" must decide from this machine alone (CLIP weights are never cached here).
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", "/nonexistent-hf-home")
    ml.reset()
    yield
    ml.reset()


def test_auto_runs_clip_from_a_given_checkpoint(settings, tmp_path: Path):
    import torch

    from recognition import ClipEmbedder

    checkpoint = tmp_path / "open_clip_model.bin"
    torch.save(ClipEmbedder("ViT-B-32", pretrained=None).model.state_dict(), checkpoint)
    settings.ROLLCALL_BACKBONE = "auto"
    settings.ROLLCALL_CLIP_MODEL = "ViT-B-32"
    settings.ROLLCALL_CLIP_CHECKPOINT = str(checkpoint)
    assert ml.backbone_name() == "clip"
    assert str(checkpoint) in ml.backbone_choice().reason
    embedder = ml.embedder()
    assert embedder.name == "clip:ViT-B-32:file:open_clip_model.bin"
    vector = embedder.encode([np.zeros((embedder.crop_size, embedder.crop_size, 3), dtype=np.uint8)])
    assert vector.shape == (1, 512)
    assert ml.recognition_params().threshold == pytest.approx(0.8, abs=0.2)  # CLIP's calibrated range


def test_auto_runs_dlib_without_a_checkpoint_or_cached_clip_weights(settings):
    settings.ROLLCALL_BACKBONE = "auto"
    settings.ROLLCALL_CLIP_CHECKPOINT = None
    assert ml.backbone_name() == "dlib"
    reason = ml.backbone_choice().reason
    assert "no ViT-B-32/openai CLIP weights cached" in reason and "face-recognition-models" in reason
    assert ml.embedder().name.startswith("dlib:")
    assert ml.recognition_params().threshold < 0.5  # dlib's calibrated range, not CLIP's


def test_an_explicit_backbone_is_run_as_set(settings):
    settings.ROLLCALL_BACKBONE = "clip"
    settings.ROLLCALL_CLIP_CHECKPOINT = None
    assert ml.backbone_choice().name == "clip"
    # Not runnable here (no weights, no hub): it says so when loaded, it does not switch to dlib.
    with pytest.raises(ModelUnavailableError, match="HF_HUB_OFFLINE"):
        ml.embedder().encode([np.zeros((224, 224, 3), dtype=np.uint8)])


def test_auto_detector_takes_yunet_where_its_file_is_and_dlib_where_it_cannot_be_had(
    settings, tmp_path: Path, detector_model: Path, faces_dir: Path, monkeypatch: pytest.MonkeyPatch
):
    settings.ROLLCALL_DETECTOR = "auto"
    settings.ROLLCALL_DETECTOR_MODEL = detector_model
    assert isinstance(ml.detector(), FaceDetector) and ml.detector_choice().name == "yunet"
    ml.reset()
    # No file, an empty model folder and no route to OpenCV Zoo (an unroutable proxy).
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    settings.ROLLCALL_DETECTOR_MODEL = tmp_path / "missing.onnx"
    settings.ROLLCALL_MODEL_DIR = tmp_path / "models"
    choice = ml.detector_choice()
    assert choice.name == "dlib" and "could not be downloaded" in choice.reason
    detector = ml.detector()
    assert isinstance(detector, DlibFaceDetector)
    photo = sorted((faces_dir / "people").glob("*/*.jpg"))[0]
    faces = detector.detect(load_image(photo))
    assert len(faces) == 1 and faces[0].landmarks.shape == (5, 2)
    line = ml.summary()
    assert line.startswith("Recognition runs ") and "dlib's HOG detector" in line
    # "yunet" is not silently replaced.
    ml.reset()
    settings.ROLLCALL_DETECTOR = "yunet"
    with pytest.raises(ModelUnavailableError, match="unreachable"):
        ml.detector()
