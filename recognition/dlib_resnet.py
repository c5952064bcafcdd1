"""dlib's face ResNet (``dlib_face_recognition_resnet_model_v1``) in torch, weights from dlib's file.

The network is dlib's ``anet_type`` from its dnn_face_recognition_ex.cpp: a 150x150 RGB chip in,
a 128-d descriptor out (the metric-loss layer is the identity at inference). From the input:

- conv 7x7/2 (32), affine, relu, max pool 3x3/2;
- residual blocks ``[conv 3x3, affine, relu, conv 3x3, affine] + shortcut, relu``: 3 at 32
  channels, then at 64, 128, 256 and 256 channels a downsampling block first (its first conv has
  stride 2 and no padding, its shortcut is a 2x2/2 average pool) followed by 3, 2, 2 and 0 plain
  blocks;
- the mean over the image, then a 256 -> 128 linear map without bias.

Two of dlib's rules matter for identical answers. A downsampling block adds tensors of different
shapes (64 channels onto 32; a 3x3 map onto a 4x4 one) by zero-padding the smaller one at the end
of each dimension (dlib's ``tt::add``); and dlib's input layer feeds ``(pixel - mean) / 256`` with
the per-channel means stored in the file (122.782, 117.001, 104.298 for R, G, B).

The affine layers (batch norm frozen for inference) are folded into the convolution before them.
``load_weights`` converts a .dat once and caches the result beside other models (an .npz with the
source file's sha256; rebuilt when that differs or the cache cannot be read).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .dlib_format import DlibFormatError, DnnFile, Layer, read_dnn
from .weights import sha256_of

logger = logging.getLogger(__name__)

INPUT_SIZE = 150
DESCRIPTOR_DIM = 128
CACHE_FORMAT = 1
"""Bump when the converted layout changes: older caches are then rebuilt."""

STEM_CHANNELS = 32
BLOCKS: tuple[tuple[int, bool], ...] = (
    ((32, False),) * 3
    + ((64, True),) + ((64, False),) * 3
    + ((128, True),) + ((128, False),) * 2
    + ((256, True),) + ((256, False),) * 2
    + ((256, True),)
)
"""(output channels, downsamples) of each residual block, from the input."""


def expected_layer_kinds() -> list[str]:
    """The layer records dlib writes for this network, input first (tags and skips unnamed)."""
    kinds = ["con_4", "affine_", "relu_", "max_pool_2"]
    for _, down in BLOCKS:
        body = ["tag_or_skip", "con_4", "affine_", "relu_", "con_4", "affine_"]
        tail = ["tag_or_skip", "tag_or_skip", "avg_pool_2"] if down else []
        kinds += body + tail + ["add_prev_", "relu_"]
    return [*kinds, "avg_pool_2", "fc_2"]


def convert(dnn: DnnFile) -> dict[str, np.ndarray]:
    """The torch state dict of DlibResNet (plus ``mean_rgb``) from a read network file.

    Raises DlibFormatError when the file holds another network."""
    kinds = [layer.kind.replace("con_5", "con_4") for layer in dnn.layers]
    if kinds != expected_layer_kinds():
        raise DlibFormatError("this is not dlib's face ResNet (dlib_face_recognition_resnet_model_v1)")
    if (dnn.input.values["rows"], dnn.input.values["cols"]) != (INPUT_SIZE, INPUT_SIZE):
        raise DlibFormatError(f"the network's input is not {INPUT_SIZE}x{INPUT_SIZE}")
    convs = [i for i, layer in enumerate(dnn.layers) if layer.kind.startswith("con_")]
    names = ["stem"] + [f"blocks.{b}.conv{j}" for b in range(len(BLOCKS)) for j in (1, 2)]
    weights: dict[str, np.ndarray] = {}
    for name, index in zip(names, convs, strict=True):
        conv, affine = dnn.layers[index], dnn.layers[index + 1]
        _check_conv(name, conv)
        weight, bias = _fold(conv, affine)
        weights[f"{name}.weight"], weights[f"{name}.bias"] = weight, bias
    fc = dnn.layers[-1]
    if "biases" in fc.tensors or fc.values["num_outputs"] != DESCRIPTOR_DIM:
        raise DlibFormatError("the last layer is not a 128-output linear map without bias")
    weights["fc.weight"] = np.ascontiguousarray(fc.tensors["weights"].T)  # dlib: y = x @ W
    weights["mean_rgb"] = np.asarray(dnn.input.values["mean_rgb"], dtype=np.float32)
    return weights


def _check_conv(name: str, conv: Layer) -> None:
    v = conv.values
    if name == "stem":
        wanted = (STEM_CHANNELS, 7, 2, 0)
    else:
        block, which = int(name.split(".")[1]), name[-1]
        down = BLOCKS[block][1] and which == "1"
        wanted = (BLOCKS[block][0], 3, 2 if down else 1, 0 if down else 1)
    found = (v["num_filters"], v["nr"], v["stride_y"], v["padding_y"])
    square = v["nr"] == v["nc"] and v["stride_y"] == v["stride_x"] and v["padding_y"] == v["padding_x"]
    if found != wanted or not square or not v["use_bias"]:
        raise DlibFormatError(f"{name}: convolution {found} where dlib's face ResNet has {wanted}")


def _fold(conv: Layer, affine: Layer) -> tuple[np.ndarray, np.ndarray]:
    """conv then ``x * gamma + beta`` per channel, as one convolution (in float64, then float32)."""
    if affine.values["mode"] != 0:
        raise DlibFormatError("an affine layer is per element, not per channel")
    gamma = affine.tensors["gamma"].reshape(-1).astype(np.float64)
    beta = affine.tensors["beta"].reshape(-1).astype(np.float64)
    filters = conv.tensors["filters"].astype(np.float64)
    biases = conv.tensors["biases"].astype(np.float64)
    weight = filters * gamma[:, None, None, None]
    bias = biases * gamma + beta
    return weight.astype(np.float32), bias.astype(np.float32)


# --- the cache of converted weights -------------------------------------------------------------

def cache_path(dat_path: Path, cache_dir: str | os.PathLike[str]) -> Path:
    return Path(cache_dir) / f"{dat_path.stem}.torch.npz"


def load_weights(
    dat_path: str | os.PathLike[str], cache_dir: str | os.PathLike[str] | None = None
) -> dict[str, np.ndarray]:
    """The converted weights of a dlib face ResNet file, from the cache in ``cache_dir`` when it
    was made from this very file (same sha256) and is intact, else converted now and cached there
    (written to a temporary file and moved into place). ``cache_dir=None`` converts in memory."""
    source = Path(dat_path)
    if cache_dir is None:
        return convert(read_dnn(source))
    digest = sha256_of(source)
    path = cache_path(source, cache_dir)
    cached = _read_cache(path, digest)
    if cached is not None:
        return cached
    weights = convert(read_dnn(source))
    try:
        _write_cache(path, weights, {"format": CACHE_FORMAT, "source": source.name, "sha256": digest})
    except OSError as exc:  # a read-only model folder: run from memory, convert again next time
        logger.warning("Could not cache dlib's converted weights at %s (%s)", path, exc)
    return weights


def _expected_shapes() -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {"stem.weight": (STEM_CHANNELS, 3, 7, 7), "stem.bias": (STEM_CHANNELS,)}
    channels = STEM_CHANNELS
    for b, (out, _) in enumerate(BLOCKS):
        shapes[f"blocks.{b}.conv1.weight"] = (out, channels, 3, 3)
        shapes[f"blocks.{b}.conv2.weight"] = (out, out, 3, 3)
        shapes[f"blocks.{b}.conv1.bias"] = shapes[f"blocks.{b}.conv2.bias"] = (out,)
        channels = out
    shapes["fc.weight"] = (DESCRIPTOR_DIM, channels)
    shapes["mean_rgb"] = (3,)
    return shapes


def _read_cache(path: Path, digest: str) -> dict[str, np.ndarray] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            meta = json.loads(bytes(archive["_meta"]).decode())
            arrays = {name: np.asarray(archive[name]) for name in archive.files if name != "_meta"}
    except Exception as exc:  # a torn write, a truncated or foreign file: all mean "rebuild"
        logger.warning("dlib's converted weights at %s are unreadable (%s): converting again", path, exc)
        return None
    if meta.get("format") != CACHE_FORMAT or meta.get("sha256") != digest:
        logger.info("dlib's converted weights at %s are from another file or format: converting again", path)
        return None
    shapes = {name: tuple(array.shape) for name, array in arrays.items()}
    if shapes != _expected_shapes() or any(a.dtype != np.float32 for a in arrays.values()):
        logger.warning("dlib's converted weights at %s have the wrong layout: converting again", path)
        return None
    return arrays


def _write_cache(path: Path, weights: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            encoded = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)
            arrays: dict[str, Any] = {"_meta": encoded, **weights}
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- the torch network --------------------------------------------------------------------------

def build_model(weights: dict[str, np.ndarray]) -> Any:
    """A DlibResNet (torch.nn.Module, eval mode, float32 on the CPU) holding ``weights``."""
    import torch

    model = _module_classes()["DlibResNet"]()
    state = {name: torch.from_numpy(np.ascontiguousarray(array)) for name, array in weights.items()
             if name != "mean_rgb"}
    model.load_state_dict(state, strict=True)
    return model.eval()


_CLASSES: dict[str, Any] = {}


def _module_classes() -> dict[str, Any]:
    """The torch module classes, defined on first use: importing this module needs no torch."""
    if _CLASSES:
        return _CLASSES
    import torch
    from torch import nn
    from torch.nn import functional as F

    def add_zero_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """dlib's tt::add: the sum over the larger extent of each dimension, the smaller tensor
        zero-padded at the end (channels, rows, columns)."""
        if a.shape == b.shape:
            return a + b
        channels, rows, cols = (max(x, y) for x, y in zip(a.shape[1:], b.shape[1:], strict=True))

        def pad(t: torch.Tensor) -> torch.Tensor:
            return F.pad(t, (0, cols - t.shape[3], 0, rows - t.shape[2], 0, channels - t.shape[1]))

        return pad(a) + pad(b)

    def max_pool_3x3_stride_2(x: torch.Tensor) -> torch.Tensor:
        """``F.max_pool2d(x, 3, 2)`` exactly, as the maximum of strided views, rows then columns.
        torch's own kernel is slow on bf16 channels-last maps: 7.4 ms alone for the stem's 32 x 32 x
        72 x 72 at batch 32, against 2.4 ms here; the whole network 1.05x as fast at batch 8-32, with
        identical outputs (BENCHMARKS.md)."""
        rows, cols = (x.shape[2] - 3) // 2 + 1, (x.shape[3] - 3) // 2 + 1
        x = torch.maximum(torch.maximum(x[:, :, 0 : 2 * rows - 1 : 2], x[:, :, 1 : 2 * rows : 2]),
                          x[:, :, 2 : 2 * rows + 1 : 2])
        return torch.maximum(torch.maximum(x[..., 0 : 2 * cols - 1 : 2], x[..., 1 : 2 * cols : 2]),
                             x[..., 2 : 2 * cols + 1 : 2])

    class Residual(nn.Module):
        def __init__(self, inputs: int, outputs: int, down: bool) -> None:
            super().__init__()
            self.down = down
            self.conv1 = nn.Conv2d(inputs, outputs, 3, stride=2 if down else 1, padding=0 if down else 1)
            self.conv2 = nn.Conv2d(outputs, outputs, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.conv2(torch.relu(self.conv1(x)))
            shortcut = F.avg_pool2d(x, 2, 2) if self.down else x
            return torch.relu(add_zero_padded(y, shortcut))

    class DlibResNet(nn.Module):
        """Normalised chips (N, 3, 150, 150) in, raw 128-d descriptors out."""

        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(3, STEM_CHANNELS, 7, stride=2)
            blocks = []
            channels = STEM_CHANNELS
            for out, down in BLOCKS:
                blocks.append(Residual(channels, out, down))
                channels = out
            self.blocks = nn.Sequential(*blocks)
            self.fc = nn.Linear(channels, DESCRIPTOR_DIM, bias=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            # ReLU after the pool: the same numbers (both are monotone), on a quarter of the values.
            x = torch.relu_(max_pool_3x3_stride_2(self.stem(x)))
            x = self.blocks(x)
            return self.fc(x.mean(dim=(2, 3)))

    _CLASSES.update(DlibResNet=DlibResNet, Residual=Residual, max_pool_3x3_stride_2=max_pool_3x3_stride_2)
    return _CLASSES
