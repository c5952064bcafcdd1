"""dlib's face ResNet in torch against dlib's own: the file reader, the weight cache, the answers.

The reference is dlib's own code (``DlibEmbedder(engine="dlib")``) on the very same chips. Float32
is checked on every face of ../shared/faces, always; a reduced precision only where this machine's
agreement rule chose one, so the test holds on CPUs with and without bf16.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from recognition import FaceDetector, load_image
from recognition.dlib_format import DlibFormatError, read_dnn
from recognition.dlib_resnet import (
    BLOCKS,
    cache_path,
    convert,
    expected_layer_kinds,
    load_weights,
)
from recognition.embed import AGREEMENT_MIN_COSINE, DlibEmbedder, fastest_precision
from recognition.weights import sha256_of

from .conftest import image_paths

pytestmark = pytest.mark.slow  # dlib's own code embeds ~256 faces with mirrors (~50 s on one core)


@pytest.fixture(scope="session")
def resnet_file() -> Path:
    return DlibEmbedder()._weights_path()


@dataclass(frozen=True)
class Chips:
    """Every face of people/ and unknown/ (one per photo) and every face of group/, as chips."""

    names: list[str]
    crops: list[np.ndarray]


@pytest.fixture(scope="session")
def every_face(faces_dir: Path, detector: FaceDetector, dlib_reference: DlibEmbedder) -> Chips:
    names, crops = [], []
    single = image_paths(faces_dir / "people") + image_paths(faces_dir / "unknown")
    for path in single + sorted((faces_dir / "group").glob("*.jpg")):
        rgb = load_image(path)
        faces = detector.detect(rgb)
        assert faces, f"no face found in {path}"
        for number, face in enumerate(faces if path.parent.name == "group" else faces[:1]):
            names.append(f"{path.relative_to(faces_dir)}#{number}")
            crops.append(dlib_reference.crop(rgb, face))
    return Chips(names, crops)


@pytest.fixture(scope="session")
def reference_vectors(every_face: Chips, dlib_reference: DlibEmbedder) -> np.ndarray:
    return dlib_reference.encode(every_face.crops)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.sum(a * b, axis=1)


def worst(names: list[str], values: np.ndarray) -> str:
    order = np.argsort(values)[:3]
    return ", ".join(f"{names[i]}: {values[i]:.6f}" for i in order)


# --- the format reader --------------------------------------------------------------------------

def test_the_reader_reads_dlibs_face_model_to_its_last_byte_with_every_layer_in_place(resnet_file: Path):
    dnn = read_dnn(resnet_file)
    assert [layer.kind for layer in dnn.layers] == expected_layer_kinds()
    assert dnn.loss.kind == "loss_metric_2" and dnn.loss.values["margin"] == pytest.approx(0.04)
    assert dnn.input.values["mean_rgb"] == pytest.approx((122.782, 117.001, 104.298), abs=1e-4)
    assert (dnn.input.values["rows"], dnn.input.values["cols"]) == (150, 150)
    # Each convolution's input channels are the previous one's outputs, through every block.
    convs = [layer for layer in dnn.layers if layer.kind == "con_4"]
    channels = [3, 32] + [c for out, _ in BLOCKS for c in (out, out)]
    assert [c.tensors["filters"].shape[:2] for c in convs] == list(zip(channels[1:], channels[:-1], strict=True))
    assert [c.tensors["biases"].shape for c in convs] == [(c,) for c in channels[1:]]
    fc = dnn.layers[-1]
    assert fc.tensors["weights"].shape == (256, 128) and "biases" not in fc.tensors
    assert all(np.isfinite(t).all() for layer in dnn.layers for t in layer.tensors.values())


# A writer of dlib's primitives, for the round trip: the inverse of what the reader documents.
def packed(value: int) -> bytes:
    magnitude = abs(value).to_bytes(max(1, (abs(value).bit_length() + 7) // 8), "little")
    return bytes([len(magnitude) | (0x80 if value < 0 else 0)]) + magnitude


def text(value: str) -> bytes:
    return packed(len(value)) + value.encode()


def scalar(value: float) -> bytes:
    mantissa, denominator = float(value).as_integer_ratio()  # denominator: a power of two
    return packed(mantissa) + packed(-(denominator.bit_length() - 1))


def tensor(array: np.ndarray) -> bytes:
    shape = (1,) * (4 - array.ndim) + array.shape if array.ndim < 4 else array.shape
    return packed(2) + b"".join(packed(d) for d in shape) + array.astype("<f4").tobytes()


def alias(*shape: int) -> bytes:
    return packed(1) + b"".join(packed(d) for d in shape)


def state(*, bottom: bool) -> bytes:
    empty = tensor(np.zeros((0, 0, 0, 0), np.float32))
    return b"110" + empty * 3 + (packed(1) if bottom else b"")


def test_the_reader_round_trips_a_written_network_with_its_shapes_and_values(tmp_path: Path):
    rng = np.random.default_rng(7)
    filters = rng.normal(size=(4, 3, 3, 3)).astype(np.float32)
    biases = rng.normal(size=4).astype(np.float32)
    weights = rng.normal(size=(4, 5)).astype(np.float32)
    con = (text("con_5") + tensor(np.concatenate([filters.ravel(), biases])) + b"".join(
        packed(v) for v in (4, 3, 3, 1, 1, 1, 1)) + alias(4, 3, 3, 3) + alias(1, 4, 1, 1)
        + b"".join(scalar(v) for v in (1.0, 1.0, 1.0, 0.0)) + b"1")
    fc = (text("fc_2") + packed(5) + packed(4) + tensor(weights.ravel()) + alias(4, 5, 1, 1)
          + alias(0, 0, 0, 0) + packed(1) + b"".join(scalar(v) for v in (1.0, 1.0, 1.0, 0.0)))
    data = (
        packed(1) + text("loss_metric_2") + scalar(0.04) + scalar(0.6)  # add_loss_layer
        + packed(2)  # add_layer: fc
        + packed(1)  # a tag
        + packed(2)  # add_layer: relu
        + packed(3) + text("input_rgb_image_sized") + scalar(122.782) + scalar(117.001) + scalar(-104.298)
        + packed(150) + packed(150) + con + state(bottom=True)
        + text("relu_") + state(bottom=False)
        + fc + state(bottom=False)
    )
    path = tmp_path / "net.dat"
    path.write_bytes(data)
    dnn = read_dnn(path)
    path.write_bytes(data[:-3])
    with pytest.raises(DlibFormatError, match="ends inside"):
        read_dnn(path)
    assert [layer.kind for layer in dnn.layers] == ["con_5", "relu_", "tag_or_skip", "fc_2"]
    assert dnn.input.values["mean_rgb"] == pytest.approx((122.782, 117.001, -104.298))
    assert dnn.loss.values == pytest.approx({"margin": 0.04, "distance_threshold": 0.6})
    conv = dnn.layers[0]
    np.testing.assert_array_equal(conv.tensors["filters"], filters)
    np.testing.assert_array_equal(conv.tensors["biases"], biases)
    assert (conv.values["stride_y"], conv.values["padding_x"], conv.values["use_bias"]) == (1, 1, True)
    np.testing.assert_array_equal(dnn.layers[3].tensors["weights"], weights)
    assert packed(-24) == b"\x81\x18" and packed(0) == b"\x01\x00"  # as the docstring says


def test_another_network_is_refused_by_the_converter(resnet_file: Path):
    dnn = read_dnn(resnet_file)
    dnn.layers.pop(5)
    with pytest.raises(DlibFormatError, match="not dlib's face ResNet"):
        convert(dnn)


# --- the cache of converted weights -------------------------------------------------------------

def test_converted_weights_are_cached_with_the_source_checksum_and_rebuilt_when_corrupt(
    resnet_file: Path, tmp_path: Path
):
    fresh = load_weights(resnet_file)
    first = load_weights(resnet_file, tmp_path)
    cached = cache_path(resnet_file, tmp_path)
    with np.load(cached) as archive:
        meta = json.loads(bytes(archive["_meta"]).decode())
    assert meta["sha256"] == sha256_of(Path(resnet_file))
    assert first.keys() == fresh.keys() and all(np.array_equal(first[k], fresh[k]) for k in fresh)

    for damage in (b"not an npz at all", cached.read_bytes()[:1000]):
        cached.write_bytes(damage)
        again = load_weights(resnet_file, tmp_path)
        assert all(np.array_equal(again[k], fresh[k]) for k in fresh)
        with np.load(cached) as archive:  # rewritten whole
            assert json.loads(bytes(archive["_meta"]).decode())["sha256"] == meta["sha256"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [cached.name]  # no temporary files left

    # A cache made from another file (another sha256) is converted again, not trusted.
    stale = {**fresh, "stem.bias": np.zeros_like(fresh["stem.bias"])}
    stale_meta = np.frombuffer(json.dumps({**meta, "sha256": "0" * 64}).encode(), np.uint8)
    with cached.open("wb") as fh:
        np.savez(fh, _meta=stale_meta, **stale)
    assert np.array_equal(load_weights(resnet_file, tmp_path)["stem.bias"], fresh["stem.bias"])


# --- the same answers as dlib -------------------------------------------------------------------

def test_in_float32_every_face_gets_dlibs_descriptor(
    every_face: Chips, reference_vectors: np.ndarray, tmp_path: Path
):
    torch_fp32 = DlibEmbedder(precision="fp32", cache_dir=tmp_path)
    vectors = torch_fp32.encode(every_face.crops)
    assert torch_fp32.precision == "fp32" and torch_fp32.name == DlibEmbedder(engine="dlib").name
    assert len(every_face.crops) >= 250  # 186 people + 33 unknown + the group photos' faces
    agreement = cosines(vectors, reference_vectors)
    assert agreement.min() >= 0.9999, worst(every_face.names, agreement)


def test_the_raw_descriptors_of_faces_and_their_mirrors_match_dlibs(
    every_face: Chips, dlib_reference: DlibEmbedder
):
    # Below the mirror averaging: the network's own outputs, batched face+mirror by torch.
    crops = every_face.crops[::25]
    torch_fp32 = DlibEmbedder(precision="fp32")
    raw = torch_fp32.forward(torch_fp32.prepare(crops))
    reference = dlib_reference.forward(dlib_reference.prepare(crops))
    assert raw.shape == reference.shape == (2 * len(crops), 128)
    np.testing.assert_allclose(raw, reference, atol=1e-4)  # |descriptor| ~ 1.4; measured ~4e-7


def test_the_fastest_precision_that_runs_agrees_with_dlib_by_the_agreement_rule(
    every_face: Chips, reference_vectors: np.ndarray
):
    auto = DlibEmbedder()  # precision="auto": whatever this machine's rule picks
    auto.load()
    if auto.precision == "fp32":
        # Either nothing faster runs here, or it was measured and refused.
        assert fastest_precision(auto.device) == "fp32" or not (auto.agreement or 0) >= AGREEMENT_MIN_COSINE
        minimum = 0.9999
    else:
        assert auto.agreement is not None and auto.agreement >= AGREEMENT_MIN_COSINE
        minimum = AGREEMENT_MIN_COSINE
    agreement = cosines(auto.encode(every_face.crops), reference_vectors)
    assert agreement.min() >= minimum, (auto.precision, worst(every_face.names, agreement))


def test_both_engines_encode_every_shape_of_input_alike(dlib_reference: DlibEmbedder, every_face: Chips):
    torch_fp32 = DlibEmbedder(precision="fp32", batch_size=2)  # several batches in one call
    crops = every_face.crops[:5]
    assert torch_fp32.encode([]).shape == (0, 128)
    assert cosines(torch_fp32.encode(crops), dlib_reference.encode(crops)).min() >= 0.9999
    # The bench feeds forward() a list of images, one pass each.
    listed = torch_fp32.forward([crops[0], crops[1]])
    assert listed.shape == (2, 128) and cosines(listed, dlib_reference.forward([crops[0], crops[1]])).min() >= 0.9999
    unmirrored = DlibEmbedder(precision="fp32", mirror=False)
    reference = DlibEmbedder(engine="dlib", mirror=False)
    assert cosines(unmirrored.encode(crops), reference.encode(crops)).min() >= 0.9999


def test_an_unknown_engine_is_refused():
    with pytest.raises(ValueError, match="engine"):
        DlibEmbedder(engine="onnx")



@pytest.mark.parametrize("size", [72, 71, 9, 3])
def test_the_stems_max_pool_is_torchs_to_the_bit(size: int):
    import torch
    from torch.nn import functional as F

    from recognition.dlib_resnet import _module_classes

    pool = _module_classes()["max_pool_3x3_stride_2"]
    generator = torch.Generator().manual_seed(size)
    for dtype in (torch.float32, torch.bfloat16):
        x = torch.randn(3, 32, size, size + 1, generator=generator).to(dtype)
        for layout in (torch.contiguous_format, torch.channels_last):
            y = x.contiguous(memory_format=layout)
            assert torch.equal(pool(y), F.max_pool2d(y, 3, 2)), (dtype, layout)
