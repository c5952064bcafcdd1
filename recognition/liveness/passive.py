"""Passive liveness: the two MiniFASNet models score each detected face of one frame.

Each model sees its own crop of the frame around the detector's box (2.7x and 4x the box, see
``crop_for_model``), as BGR 0-255 floats at 80x80. Both models' softmax vectors are added and
halved; the face's live score is that average's "real" entry (index 1), in [0, 1]. Upstream reads
the arg-max of the same average; a threshold on the real entry is that rule made adjustable.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import ModelUnavailableError
from ..runtime import apply_torch_threads
from ..types import Face
from ..weights import download_file, sha256_of

_UPSTREAM = (
    "https://github.com/minivision-ai/Silent-Face-Anti-Spoofing/raw/"
    "b6d5f04ad78778917853b25c778acef6d5626d15/resources/anti_spoof_models"
)
INPUT_SIZE = 80
REAL_CLASS = 1


@dataclass(frozen=True)
class AntiSpoofModel:
    """One published MiniFASNet file: its name, where it comes from, its checksum, its crop scale."""

    filename: str
    architecture: str  # "v2" or "v1se"
    scale: float
    sha256: str

    @property
    def url(self) -> str:
        return f"{_UPSTREAM}/{self.filename}"


MINIFASNET_V2 = AntiSpoofModel(
    "2.7_80x80_MiniFASNetV2.pth", "v2", 2.7, "a5eb02e1843f19b5386b953cc4c9f011c3f985d0ee2bb9819eea9a142099bec0"
)
MINIFASNET_V1SE = AntiSpoofModel(
    "4_0_0_80x80_MiniFASNetV1SE.pth", "v1se", 4.0, "84ee1d37d96894d5e82de5a57df044ef80a58be2b218b5ed7cdfd875ec2f5990"
)
ANTISPOOF_MODELS = (MINIFASNET_V2, MINIFASNET_V1SE)


def resolve_antispoof_models(
    cache_dir: str | os.PathLike[str], *, download: bool = True
) -> dict[AntiSpoofModel, Path]:
    """The paths of both MiniFASNet files in ``cache_dir``, fetched from upstream when absent.

    Like ``resolve_detector_model``: a cached file with the wrong sha256 is deleted and fetched
    once more; without the file and without a download (or offline), ModelUnavailableError.
    """
    found: dict[AntiSpoofModel, Path] = {}
    for spec in ANTISPOOF_MODELS:
        target = Path(cache_dir) / spec.filename
        if target.is_file():
            if sha256_of(target) == spec.sha256:
                found[spec] = target
                continue
            target.unlink()
        if not download:
            raise ModelUnavailableError(
                f"The liveness model {spec.filename} is not at {target} and downloading is off: copy it "
                f"there (sha256 {spec.sha256}) from {spec.url}."
            )
        download_file(spec.url, target, sha256=spec.sha256, what=f"the liveness model {spec.filename}")
        found[spec] = target
    return found


def crop_box(
    box: tuple[float, float, float, float], image_size: tuple[int, int], scale: float
) -> tuple[int, int, int, int]:
    """The (left, top, right, bottom) pixel rectangle, inclusive, a model of ``scale`` sees.

    The box's width and height times ``scale``, centred on the box. The scale shrinks when that
    would not fit the image (so the crop keeps the box's aspect ratio), and a crop that reaches
    past an edge is shifted back inside, never padded: the models were trained on crops made so.
    """
    width, height = image_size
    x, y, w, h = box
    w, h = max(w, 1.0), max(h, 1.0)
    scale = min((height - 1) / h, (width - 1) / w, scale)
    new_w, new_h = w * scale, h * scale
    cx, cy = x + w / 2, y + h / 2
    left, top = cx - new_w / 2, cy - new_h / 2
    right, bottom = cx + new_w / 2, cy + new_h / 2
    if left < 0:
        right, left = right - left, 0.0
    if top < 0:
        bottom, top = bottom - top, 0.0
    if right > width - 1:
        left, right = left - (right - width + 1), float(width - 1)
    if bottom > height - 1:
        top, bottom = top - (bottom - height + 1), float(height - 1)
    return int(left), int(top), int(right), int(bottom)


def crop_for_model(rgb: np.ndarray, face: Face, scale: float) -> np.ndarray:
    """The 80x80 BGR uint8 crop of ``face`` for a model trained at ``scale`` (aspect ignored)."""
    height, width = rgb.shape[:2]
    left, top, right, bottom = crop_box(face.box, (width, height), scale)
    patch = rgb[max(top, 0) : bottom + 1, max(left, 0) : right + 1]
    patch = cv2.resize(patch, (INPUT_SIZE, INPUT_SIZE))
    return cv2.cvtColor(patch, cv2.COLOR_RGB2BGR)


class PassiveLiveness:
    """Scores faces live (near 1) or presented (near 0) with both MiniFASNet models.

    ``model_paths`` maps each AntiSpoofModel to its file (``resolve_antispoof_models`` gives
    one); each file's sha256 is checked when it loads. Construction only checks that the files
    exist; the networks load on first use, once, under a lock, and one scorer may be shared
    between threads. Torch's thread count follows ``recognition.set_threads``.
    """

    def __init__(
        self, model_paths: Mapping[AntiSpoofModel, str | os.PathLike[str]], *, device: str = "cpu"
    ) -> None:
        missing = [spec for spec in ANTISPOOF_MODELS if spec not in model_paths]
        if missing:
            raise ValueError(f"model_paths lacks {', '.join(s.filename for s in missing)}")
        self.model_paths = {spec: Path(model_paths[spec]) for spec in ANTISPOOF_MODELS}
        for spec, path in self.model_paths.items():
            if not path.is_file():
                raise ModelUnavailableError(
                    f"No liveness model at {path}: copy {spec.filename} (sha256 {spec.sha256}) there from "
                    f"{spec.url}, or fetch it with resolve_antispoof_models()."
                )
        self.device = device
        self._models: list[tuple[AntiSpoofModel, Any]] | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_dir(
        cls, model_dir: str | os.PathLike[str], *, download: bool = True, device: str = "cpu"
    ) -> PassiveLiveness:
        """Both files from (or fetched into) one folder, like the detector's model folder."""
        return cls(resolve_antispoof_models(model_dir, download=download), device=device)

    def load(self) -> None:
        with self._lock:
            if self._models is None:
                self._models = [(spec, self._load_one(spec)) for spec in ANTISPOOF_MODELS]

    def _load_one(self, spec: AntiSpoofModel) -> Any:
        import torch

        from . import minifasnet

        apply_torch_threads()
        path = self.model_paths[spec]
        digest = sha256_of(path)
        if digest != spec.sha256:
            raise ModelUnavailableError(
                f"{path} has sha256 {digest}, not {spec.sha256}: it is not {spec.filename} (partial or "
                f"tampered copy?). Replace it with the file from {spec.url}."
            )
        model = minifasnet.minifasnet_v2() if spec.architecture == "v2" else minifasnet.minifasnet_v1se()
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            minifasnet.load_state(model, state)
        except (RuntimeError, OSError, ValueError) as exc:
            raise ModelUnavailableError(f"{path} is not a loadable {spec.filename} ({exc}).") from exc
        return model.to(self.device).eval()

    def crops(self, rgb: np.ndarray, faces: Sequence[Face]) -> list[np.ndarray]:
        """Per model, the (n, 80, 80, 3) BGR uint8 batch of the faces' crops."""
        return [np.stack([crop_for_model(rgb, face, spec.scale) for face in faces]) for spec in ANTISPOOF_MODELS]

    def probabilities(self, rgb: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        """(n, 3): the two models' softmax vectors averaged, per face (index 1 = real)."""
        if not faces:
            return np.zeros((0, 3), dtype=np.float32)
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected an H x W x 3 uint8 RGB frame, got {rgb.dtype} {rgb.shape}")
        import torch

        self.load()
        assert self._models is not None
        total = np.zeros((len(faces), 3), dtype=np.float64)
        with torch.inference_mode():
            for (_spec, model), batch in zip(self._models, self.crops(rgb, faces), strict=True):
                # Raw 0-255 BGR, no mean or std: what the models were trained on.
                tensor = torch.from_numpy(batch).permute(0, 3, 1, 2).float().to(self.device)
                total += torch.softmax(model(tensor), dim=1).cpu().numpy()
        return (total / len(self._models)).astype(np.float32)

    def score(self, rgb: np.ndarray, faces: Sequence[Face]) -> list[float]:
        """The live score in [0, 1] of each face (all faces of the frame in one batch per model)."""
        return [float(p) for p in self.probabilities(rgb, faces)[:, REAL_CLASS]]
