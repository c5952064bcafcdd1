"""A reader of the files dlib's DNN tools write with ``serialize(net)`` (``.dat`` network files).

Only numpy is needed: no dlib, no torch. It reads the layer records of a network into plain
arrays and numbers; which network they form is for the caller to check (recognition.dlib_resnet
does, for dlib's face ResNet).

The format, as dlib writes it (dlib/serialize.h, dlib/dnn/{core,layers,input,loss,tensor}.h)
-------------------------------------------------------------------------------------------------
There is no header and no table of contents: the file is the network object serialised
depth-first, and the reader must know the shape of what comes next. Primitives:

- **integer** (any width, signed or not): one control byte, then that many little-endian bytes
  of the magnitude. The control byte's low 4 bits are the byte count (0-8), bit 7 is the sign
  (set: negative), bits 4-6 are zero. 0 is ``01 00``; 1 is ``01 01``; -24 is ``81 18``.
- **bool**: one ASCII byte, ``'1'`` or ``'0'``.
- **floating-point scalar** (float or double): two integers, ``mantissa`` then ``exponent``;
  the value is ``mantissa * 2**exponent`` (0.6 is ``03 9a 99 99  81 18``: 10066330 * 2**-24).
  Exponents near the top of the int16 range encode infinities and NaN; networks store none, and
  this reader refuses them.
- **string**: its length as an integer, then the bytes (no terminator).
- **tensor** (``resizable_tensor``): integer version 2, then four integers num_samples, k
  (channels), nr (rows), nc (columns), then num_samples*k*nr*nc little-endian IEEE float32
  values, row-major in that order (NCHW). Older version-1 tensors (dlib's scalar encoding per
  value) are refused.
- **alias tensor** (a view of part of a layer's parameter tensor): integer version 1, then its
  four dimensions; no data (the data is in the layer's ``params`` tensor, in declaration order).

Network objects, outermost first:

- **add_loss_layer**: integer version 1, the loss's record, then the network below it.
- A **layer position** below the loss starts with an integer version that says which wrapper
  it holds:

  - ``2``: **add_layer** over another layer position: the position below (recursively, so the
    records come out input-first), then the layer's own record, three bools (setup called,
    gradient stale, output disabled) and three tensors (training scratch: empty in a saved
    model).
  - ``3``: **add_layer** directly over the input layer: the input layer's record, the layer's own
    record, three bools, three tensors, then one integer (the sample expansion factor, 1).
  - ``1``: **add_tag_layer** or **add_skip_layer** over a layer position: just the position
    below. The two are indistinguishable in the file, and neither records its tag number: those
    live in the C++ type. A ``tag`` remembers its input; a ``skip`` replaces the data flowing
    up with what a tag remembered; ``add_prev`` adds a tag's output. Read as kind ``tag_or_skip``.

- Layer records start with a string naming the layer and the version of its record:

  - ``con_4`` / ``con_5`` (convolution): params tensor (filters, then biases), then integers
    num_filters, nr, nc, stride_y, stride_x, padding_y, padding_x, the filters alias (num_filters,
    k, nr, nc) and biases alias (1, num_filters, 1, 1), four scalars (learning-rate and
    weight-decay multipliers), and for ``con_5`` a bool ``use_bias``. Filters are OIHW
    cross-correlation kernels, as in torch.
  - ``affine_`` (per-channel ``x * gamma + beta``, what batch norm becomes for inference):
    params tensor (gamma, then beta), the gamma and beta aliases, and an integer mode (0: one
    gamma per channel, 1: per element).
  - ``relu_``, ``add_prev_``: the name only.
  - ``max_pool_2`` / ``avg_pool_2``: integers nr, nc, stride_y, stride_x, padding_y, padding_x
    (nr = nc = 0: the whole image, dlib's ``*_pool_everything``).
  - ``fc_2`` (fully connected): integers num_outputs, num_inputs, params tensor, weights alias
    (num_inputs, num_outputs: ``y = x @ W``), biases alias, an integer bias mode, four scalars.
  - ``input_rgb_image_sized`` (the input layer): scalars avg_red, avg_green, avg_blue, then
    integers nr, nc. dlib feeds the network ``(pixel - avg) / 256`` per channel, planes R, G, B.
  - ``loss_metric_2`` (the loss): scalars margin and distance threshold (``loss_metric_``,
    the older record, has none). For inference the loss is the identity on the last layer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


class DlibFormatError(ValueError):
    """The bytes are not a dlib network this reader understands (says where and why)."""


@dataclass(frozen=True)
class Layer:
    """One layer record: ``kind`` is dlib's record name ("con_4", "affine_", "tag_or_skip", ...),
    ``tensors`` its parameter arrays (float32, shaped as dlib's aliases say), ``values`` its
    integers and scalars."""

    kind: str
    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DnnFile:
    """A network file: its loss and input records and its layers, input side first."""

    loss: Layer
    input: Layer
    layers: list[Layer]


def read_dnn(path: str | os.PathLike[str]) -> DnnFile:
    """Read a network file that dlib wrote with ``serialize(net)``; raises DlibFormatError."""
    data = Path(path).read_bytes()
    reader = _Reader(data)
    try:
        result = reader.network()
    except DlibFormatError as exc:
        raise DlibFormatError(f"{path}: {exc}") from None
    if reader.pos != len(data):
        raise DlibFormatError(f"{path}: {len(data) - reader.pos} bytes left after the network")
    return result


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.pos = 0

    # --- primitives -----------------------------------------------------------------------------

    def _take(self, count: int) -> memoryview:
        end = self.pos + count
        if count < 0 or end > len(self.data):
            raise DlibFormatError(f"the file ends inside a value at byte {self.pos}")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def integer(self) -> int:
        at = self.pos
        control = self._take(1)[0]
        if control & 0x70 or (control & 0x0F) > 8:
            raise DlibFormatError(f"byte {at} is not an integer's control byte (0x{control:02x})")
        magnitude = int.from_bytes(self._take(control & 0x0F), "little")
        return -magnitude if control & 0x80 else magnitude

    def boolean(self) -> bool:
        at = self.pos
        value = self._take(1)[0]
        if value not in (0x30, 0x31):
            raise DlibFormatError(f"byte {at} is not a bool ('0' or '1'), got 0x{value:02x}")
        return value == 0x31

    def scalar(self) -> float:
        at = self.pos
        mantissa = self.integer()
        exponent = self.integer()
        if not -32768 <= exponent < 32000:
            raise DlibFormatError(f"the scalar at byte {at} is infinite, NaN or malformed")
        return float(np.ldexp(float(mantissa), exponent))

    def string(self) -> str:
        length = self.integer()
        if length > 1000:
            raise DlibFormatError(f"implausible string length {length} at byte {self.pos}")
        return bytes(self._take(length)).decode("ascii", errors="replace")

    def expect_version(self, what: str, allowed: tuple[int, ...]) -> int:
        at = self.pos
        version = self.integer()
        if version not in allowed:
            raise DlibFormatError(f"{what} version {version} at byte {at} (this reader knows {allowed})")
        return version

    def tensor(self) -> np.ndarray:
        self.expect_version("tensor", (2,))
        shape = tuple(self.integer() for _ in range(4))
        if any(d < 0 for d in shape):
            raise DlibFormatError(f"negative tensor dimension {shape} before byte {self.pos}")
        count = int(np.prod(shape, dtype=np.int64))
        raw = self._take(4 * count)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)

    def alias(self) -> tuple[int, int, int, int]:
        self.expect_version("alias tensor", (1,))
        n, k, nr, nc = (self.integer() for _ in range(4))
        return n, k, nr, nc

    # --- network objects ------------------------------------------------------------------------

    def network(self) -> DnnFile:
        self.expect_version("add_loss_layer", (1,))
        loss = self.loss()
        layers: list[Layer] = []
        input_layer = self.position(layers)
        return DnnFile(loss=loss, input=input_layer, layers=layers)

    def position(self, layers: list[Layer]) -> Layer:
        """One layer position (and, first, everything below it); returns the input layer."""
        # Iterative down the chain (a ResNet is ~170 positions deep), then the records on the
        # way back up, in the order dlib wrote them.
        pending: list[int] = []
        while True:
            version = self.expect_version("layer wrapper", (1, 2, 3))
            if version == 3:
                input_layer = self.input_layer()
                layers.append(self.layer())
                self.training_state(with_expansion_factor=True)
                break
            pending.append(version)
        for version in reversed(pending):
            if version == 1:
                layers.append(Layer("tag_or_skip"))
            else:
                layers.append(self.layer())
                self.training_state(with_expansion_factor=False)
        return input_layer

    def training_state(self, *, with_expansion_factor: bool) -> None:
        for _ in range(3):
            self.boolean()
        for _ in range(3):
            self.tensor()
        if with_expansion_factor:
            self.integer()

    def loss(self) -> Layer:
        kind = self.string()
        if kind == "loss_metric_2":
            return Layer(kind, values={"margin": self.scalar(), "distance_threshold": self.scalar()})
        if kind == "loss_metric_":
            return Layer(kind)
        raise DlibFormatError(f"unsupported loss {kind!r} before byte {self.pos}")

    def input_layer(self) -> Layer:
        kind = self.string()
        if kind != "input_rgb_image_sized":
            raise DlibFormatError(f"unsupported input layer {kind!r} before byte {self.pos}")
        mean = [self.scalar() for _ in range(3)]
        rows, cols = self.integer(), self.integer()
        return Layer(kind, values={"mean_rgb": tuple(mean), "rows": rows, "cols": cols})

    def layer(self) -> Layer:
        at = self.pos
        kind = self.string()
        if kind in ("con_4", "con_5"):
            return self._convolution(kind)
        if kind == "affine_":
            params = self.tensor().reshape(-1)
            gamma, beta = self.alias(), self.alias()
            mode = self.integer()
            size = int(np.prod(gamma))
            return Layer(kind, tensors={"gamma": params[:size].reshape(gamma),
                                        "beta": params[size : 2 * size].reshape(beta)},
                         values={"mode": mode})
        if kind in ("relu_", "add_prev_"):
            return Layer(kind)
        if kind in ("max_pool_2", "avg_pool_2"):
            names = ("nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x")
            return Layer(kind, values={name: self.integer() for name in names})
        if kind == "fc_2":
            outputs, inputs = self.integer(), self.integer()
            params = self.tensor().reshape(-1)
            weights, biases = self.alias(), self.alias()
            bias_mode = self.integer()
            multipliers = [self.scalar() for _ in range(4)]
            size = int(np.prod(weights))
            tensors = {"weights": params[:size].reshape(inputs, outputs)}
            if int(np.prod(biases)):
                tensors["biases"] = params[size : size + outputs].copy()
            return Layer(kind, tensors=tensors,
                         values={"num_outputs": outputs, "num_inputs": inputs, "bias_mode": bias_mode,
                                 "multipliers": multipliers})
        raise DlibFormatError(f"unsupported layer {kind!r} at byte {at}")

    def _convolution(self, kind: str) -> Layer:
        params = self.tensor().reshape(-1)
        names = ("num_filters", "nr", "nc", "stride_y", "stride_x", "padding_y", "padding_x")
        values: dict[str, Any] = {name: self.integer() for name in names}
        filters, biases = self.alias(), self.alias()
        values["multipliers"] = [self.scalar() for _ in range(4)]
        values["use_bias"] = self.boolean() if kind == "con_5" else True
        size = int(np.prod(filters))
        tensors = {"filters": params[:size].reshape(filters)}
        if values["use_bias"]:
            tensors["biases"] = params[size : size + values["num_filters"]].copy()
        bias_count = int(np.prod(biases)) if values["use_bias"] else 0
        if params.size != size + bias_count or bias_count not in (0, values["num_filters"]):
            raise DlibFormatError(f"{kind}: {params.size} parameters for filters {filters}, biases {biases}")
        return Layer(kind, tensors=tensors, values=values)
