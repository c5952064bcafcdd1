"""Passive liveness: the two MiniFASNet models score each detected face of one frame.

Each model sees its own crop of the frame around the detector's box (2.7x and 4x the box, see
``crop_for_model``), as BGR 0-255 floats at 80x80. Both models' softmax vectors are added and
halved; the face's live score is that average's "real" entry (index 1), in [0, 1]. Upstream reads
the arg-max of the same average; a threshold on the real entry is that rule made adjustable.

Engines. The networks are built in torch from the published files (``minifasnet``). On the CPU
each is then exported to ONNX and run by OpenCV's DNN module (the detector's engine):
a MiniFASNet is about a hundred small layers (depthwise convolutions, batch norms, PReLUs), where
torch's per-layer cost dominates and OpenCV, which fuses them, is about twice as fast (both models
9.6 -> 4.8 ms for one face, one thread; BENCHMARKS.md). The export runs once, in a child process
(``onnx_export``: the exporter would add ~90 MB to every web worker), and is kept in the cache
folder under the source file's checksum once it has agreed. It is used only if OpenCV's logits on
fixed probe batches agree with torch's to ``ENGINE_AGREEMENT`` (measured: live scores within 1.2e-6
on pad/); otherwise, on a CUDA device, or without the ``onnx`` package, torch runs them
(``engine_reason`` says why).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import ModelUnavailableError
from ..precision import probe_images
from ..runtime import apply_torch_threads
from ..types import Face
from ..weights import download_file, sha256_of, write_file_atomically

_UPSTREAM = (
    "https://github.com/minivision-ai/Silent-Face-Anti-Spoofing/raw/"
    "b6d5f04ad78778917853b25c778acef6d5626d15/resources/anti_spoof_models"
)
INPUT_SIZE = 80
REAL_CLASS = 1
ENGINES = ("auto", "torch")
"""auto: OpenCV where the export agrees with torch (the CPU), else torch; torch: torch always
(the reference the OpenCV engine is checked against)."""
ENGINE_AGREEMENT = 1e-3
"""Largest difference allowed between OpenCV's and torch's logits on the probe batches (measured:
under 1e-5; the logits are a few units, so 1e-3 moves a live score by well under 1e-3)."""

logger = logging.getLogger(__name__)


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
    between threads. Torch's and OpenCV's thread counts follow ``recognition.set_threads``.
    ``engine`` (ENGINES) and ``cache_dir`` (where the OpenCV exports are kept; None: exported
    again in each process) as in the module's docstring; ``engine`` says which ran, after load.
    """

    def __init__(
        self, model_paths: Mapping[AntiSpoofModel, str | os.PathLike[str]], *, device: str = "cpu",
        engine: str = "auto", cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
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
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.requested_engine = engine
        self.engine = ""  # after load: "opencv" or "torch"
        self.engine_reason = ""  # after load, with torch: why not OpenCV
        self._models: list[tuple[AntiSpoofModel, Callable[[np.ndarray], np.ndarray]]] | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_dir(
        cls, model_dir: str | os.PathLike[str], *, download: bool = True, device: str = "cpu",
        engine: str = "auto", cache_dir: str | os.PathLike[str] | None = None,
    ) -> PassiveLiveness:
        """Both files from (or fetched into) one folder, like the detector's model folder."""
        return cls(resolve_antispoof_models(model_dir, download=download), device=device, engine=engine,
                   cache_dir=cache_dir)

    def load(self) -> None:
        with self._lock:
            if self._models is None:
                models = [(spec, self._load_one(spec)) for spec in ANTISPOOF_MODELS]
                runners = None
                if self.requested_engine != "auto":
                    self.engine_reason = "asked for torch"
                elif self.device != "cpu":
                    self.engine_reason = f"OpenCV runs on the CPU, the models on {self.device}"
                else:
                    runners = self._opencv_runners(models)
                if runners is None:
                    runners = [(spec, self._torch_runner(model)) for spec, model in models]
                    self.engine = "torch"
                else:
                    self.engine, self.engine_reason = "opencv", ""
                self._models = runners

    def _torch_runner(self, model: Any) -> Callable[[np.ndarray], np.ndarray]:
        import torch

        def run(batch: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return model(torch.from_numpy(batch).to(self.device)).float().cpu().numpy()

        return run

    def _opencv_runners(
        self, models: Sequence[tuple[AntiSpoofModel, Any]]
    ) -> list[tuple[AntiSpoofModel, Callable[[np.ndarray], np.ndarray]]] | None:
        """Each model in OpenCV, if every one loads there and agrees with torch on the probe
        batches; None (torch runs, ``engine_reason`` says why) otherwise."""
        if not _onnx_installed():  # the exporter needs it: no child to start
            self.engine_reason = "the onnx package is not installed"
            logger.warning("liveness models run in torch: %s", self.engine_reason)
            return None
        probes = _probe_batches()
        runners = []
        for spec, model in models:
            torch_run = self._torch_runner(model)
            run = self._opencv_run(spec, [(probe, torch_run(probe)) for probe in probes])
            if run is None:
                return None
            runners.append((spec, run))
        return runners

    def _opencv_run(
        self, spec: AntiSpoofModel, references: Sequence[tuple[np.ndarray, np.ndarray]]
    ) -> Callable[[np.ndarray], np.ndarray] | None:
        """The model's OpenCV runner, from the cached export or a new one, if it agrees with
        torch's logits on every probe batch. A cached export that does not load or agree is
        exported again once; an export is kept in ``cache_dir`` only once it has agreed."""
        name = f"{Path(spec.filename).stem}.{spec.sha256[:16]}.opencv.onnx"
        cached_path = self.cache_dir / name if self.cache_dir is not None else None
        problem = ""
        for fresh in (False, True):
            graph, cached = None, False
            try:
                if cached_path is not None and not fresh and cached_path.is_file():
                    graph, cached = cached_path.read_bytes(), True
                else:
                    graph = self._export(spec, name)
                net = cv2.dnn.readNetFromONNX(np.frombuffer(graph, dtype=np.uint8))
                run = self._opencv_runner(net)
                difference = max(float(np.abs(run(probe) - logits).max()) for probe, logits in references)
            except Exception as exc:  # an exporter or importer that refuses, a file that is no graph
                problem = f"no OpenCV export: {exc}"
            else:
                if difference <= ENGINE_AGREEMENT:
                    if cached_path is not None and not cached:
                        self._keep(cached_path, graph)
                    return run
                problem = f"OpenCV's logits differ from torch's by {difference:.2g} (> {ENGINE_AGREEMENT:g})"
            if not cached:
                break
        self.engine_reason = f"{spec.filename}: {problem}"
        logger.warning("liveness models run in torch (%s)", self.engine_reason)
        return None

    def _export(self, spec: AntiSpoofModel, name: str) -> bytes:
        from .onnx_export import export_in_child

        with tempfile.TemporaryDirectory(prefix="rollcall-liveness-") as folder:
            out = Path(folder) / name
            export_in_child(spec.architecture, self.model_paths[spec], out)
            return out.read_bytes()

    def _keep(self, path: Path, graph: bytes) -> None:
        try:
            write_file_atomically(path, graph)
        except OSError as exc:  # a read-only folder: export again in the next process
            logger.warning("could not keep the liveness models' OpenCV export in %s (%s): each process will "
                           "export them again", path.parent, exc)

    def _opencv_runner(self, net: Any) -> Callable[[np.ndarray], np.ndarray]:
        lock = threading.Lock()  # an OpenCV net is not safe to run from two threads at once

        def run(batch: np.ndarray) -> np.ndarray:
            with lock:
                net.setInput(np.ascontiguousarray(batch, dtype=np.float32))
                return np.array(net.forward(), dtype=np.float32)  # a copy: the net reuses its output

        return run

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
        self.load()
        assert self._models is not None
        total = np.zeros((len(faces), 3), dtype=np.float64)
        for (_spec, run), batch in zip(self._models, self.crops(rgb, faces), strict=True):
            # Raw 0-255 BGR, no mean or std: what the models were trained on.
            total += _softmax(run(np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32)))
        return (total / len(self._models)).astype(np.float32)

    def score(self, rgb: np.ndarray, faces: Sequence[Face]) -> list[float]:
        """The live score in [0, 1] of each face (all faces of the frame in one batch per model)."""
        return [float(p) for p in self.probabilities(rgb, faces)[:, REAL_CLASS]]


def _onnx_installed() -> bool:
    return importlib.util.find_spec("onnx") is not None


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.asarray(logits, dtype=np.float64)
    shifted = shifted - shifted.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def _probe_batches() -> list[np.ndarray]:
    """Smooth 80x80 BGR images (0-255 floats, NCHW) to compare the engines on: one alone and four
    together (a frame's faces go through in one batch)."""
    images = probe_images(INPUT_SIZE, count=5)
    batch = np.ascontiguousarray(np.stack(images).transpose(0, 3, 1, 2), dtype=np.float32)
    return [batch[:1], batch[1:]]

