"""Reads a dlib DNN file (dlib's own serialization) into its layer records, with numpy and no dlib.

A dlib network file holds the loss layer's record, then a run of version integers from the outermost layer in
(2 for a computational layer, 3 for the one on the input, 1 for a tag or skip layer), then the layer records
from the input up, each computational one followed by its bookkeeping (flags, empty tensors). Layer records
start with a version string ("con_4", "affine_", ...) that says which fields follow (dlib/dnn/layers.h).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gfr.errors import GfrError


@dataclass
class Layer:
    """One layer record: its kind ("con", "affine", "relu", ...), its settings and its parameter arrays."""

    kind: str
    settings: dict = field(default_factory=dict)
    arrays: dict = field(default_factory=dict)


class Reader:
    """dlib's primitive encodings over a byte string (dlib/serialize.h)."""

    def __init__(self, data: bytes, name: str):
        self.data, self.pos, self.name = data, 0, name

    def fail(self, what: str) -> GfrError:
        return GfrError(f"{self.name}: not a dlib face descriptor file as gfr reads it ({what} at byte {self.pos})")

    def integer(self) -> int:
        """Control byte (bit 7: negative, low 4 bits: byte count), then the magnitude, little-endian."""
        if self.pos >= len(self.data):
            raise self.fail("unexpected end of file")
        control = self.data[self.pos]
        n = control & 0x0F
        value = int.from_bytes(self.data[self.pos + 1:self.pos + 1 + n], "little")
        self.pos += 1 + n
        return -value if control & 0x80 else value

    def real(self) -> float:
        """A float: the int64 mantissa, then the int16 exponent (value = mantissa * 2**exponent)."""
        mantissa, exponent = self.integer(), self.integer()
        special = {32000: np.inf, 32001: -np.inf, 32002: np.nan}
        return float(special[exponent]) if exponent in special else float(mantissa) * 2.0 ** exponent

    def string(self) -> str:
        n = self.integer()
        text = self.data[self.pos:self.pos + n]
        self.pos += n
        try:
            return text.decode("ascii")
        except UnicodeDecodeError:
            raise self.fail("a garbled string") from None

    def boolean(self) -> bool:
        byte = self.data[self.pos:self.pos + 1]
        self.pos += 1
        if byte not in (b"0", b"1"):
            raise self.fail(f"a bool that is neither '0' nor '1' ({byte!r})")
        return byte == b"1"

    def tensor(self) -> np.ndarray:
        """A tensor (version 2, n, k, nr, nc, float32 data) as an array of shape (n, k, nr, nc)."""
        if (version := self.integer()) != 2:
            raise self.fail(f"tensor version {version}")
        shape = tuple(self.integer() for _ in range(4))
        size = int(np.prod(shape)) * 4
        array = np.frombuffer(self.data, dtype="<f4", count=size // 4, offset=self.pos).reshape(shape)
        self.pos += size
        return array

    def alias(self) -> tuple[int, ...]:
        """An alias tensor (version 1, n, k, nr, nc; a view into its layer's params): its shape."""
        if (version := self.integer()) != 1:
            raise self.fail(f"alias tensor version {version}")
        return tuple(self.integer() for _ in range(4))


def _split(params: np.ndarray, *shapes: tuple[int, ...]) -> list[np.ndarray]:
    """Cut a layer's flat parameter tensor into the aliased arrays, in order."""
    flat, out, start = params.reshape(-1), [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        out.append(flat[start:start + size].reshape(shape))
        start += size
    return out


def _con(r: Reader, version: str) -> Layer:
    params = r.tensor()
    filters, nr, nc, stride_y, stride_x, pad_y, pad_x = (r.integer() for _ in range(7))
    shapes = r.alias(), r.alias()
    for _ in range(4):  # learning-rate and weight-decay multipliers
        r.real()
    use_bias = r.boolean() if version in ("con_5", "con_6") else True
    if version == "con_6":
        r.boolean()  # use_relu: fused relu, off in files that have separate relu layers
    kernel, bias = _split(params, *shapes)
    return Layer("con", {"filters": filters, "size": (nr, nc), "stride": (stride_y, stride_x),
                         "padding": (pad_y, pad_x), "use_bias": use_bias},
                 {"kernel": kernel.reshape(filters, -1, nr, nc), "bias": bias.reshape(-1)})


def _affine(r: Reader, version: str) -> Layer:
    params = r.tensor()
    gamma_shape, beta_shape = r.alias(), r.alias()
    mode = r.integer()
    if version == "affine_2":
        r.boolean()  # disabled
    gamma, beta = _split(params, gamma_shape, beta_shape)
    return Layer("affine", {"mode": mode}, {"gamma": gamma.reshape(-1), "beta": beta.reshape(-1)})


def _pool(kind: str):
    def read(r: Reader, version: str) -> Layer:
        nr, nc, stride_y, stride_x, pad_y, pad_x = (r.integer() for _ in range(6))
        return Layer(kind, {"size": (nr, nc), "stride": (stride_y, stride_x), "padding": (pad_y, pad_x)})

    return read


def _fc(r: Reader, version: str) -> Layer:
    outputs, inputs = r.integer(), r.integer()
    params = r.tensor()
    weights_shape, bias_shape = r.alias(), r.alias()
    bias_mode = r.integer()
    for _ in range(4):
        r.real()
    if version == "fc_3":
        r.boolean()
    (weights,) = _split(params, weights_shape)
    return Layer("fc", {"outputs": outputs, "inputs": inputs, "bias_mode": bias_mode},
                 {"weights": weights.reshape(inputs, outputs)})


def _relu(r: Reader, version: str) -> Layer:
    if version == "relu_2":
        r.boolean()
    return Layer("relu")


def _input(r: Reader, version: str) -> Layer:
    means = tuple(r.real() for _ in range(3))
    size = (r.integer(), r.integer())
    return Layer("input", {"means": means, "size": size})


RECORDS = {  # version string -> reader of the fields after it
    "con_4": _con, "con_5": _con, "con_6": _con,
    "affine_": _affine, "affine_2": _affine,
    "relu_": _relu, "relu_2": _relu,
    "add_prev_": lambda r, v: Layer("add_prev"),
    "avg_pool_2": _pool("avg_pool"), "max_pool_2": _pool("max_pool"),
    "fc_2": _fc, "fc_3": _fc,
    "input_rgb_image_sized": _input,
}


def read_layers(path: str | Path) -> tuple[dict, list[Layer]]:
    """(the loss layer's settings, the layer records from the input up) of a dlib DNN file."""
    path = Path(path)
    try:
        r = Reader(path.read_bytes(), str(path))
    except OSError as exc:
        raise GfrError(f"{path}: cannot read the dlib model file ({exc.strerror})") from None
    r.integer()  # the loss layer's version
    loss = {"name": r.string()}
    if not loss["name"].startswith("loss_metric"):
        raise r.fail(f"loss layer {loss['name']!r} (expected loss_metric)")
    loss.update(margin=r.real(), distance_threshold=r.real())
    versions = []  # the layers' version integers, outermost first
    while r.data[r.pos] == 0x01 and r.data[r.pos + 1] in (1, 2, 3):
        versions.append(r.integer())
    layers = []
    while r.pos < len(r.data):
        version = r.string()
        if version not in RECORDS:
            raise r.fail(f"unknown layer record {version!r}")
        layers.append(RECORDS[version](r, version))
        if layers[-1].kind == "input":
            continue
        for _ in range(3):  # setup called, gradient stale, output-and-gradient disabled
            r.boolean()
        for _ in range(3):  # gradient and output caches (empty in a saved file)
            r.tensor()
        if len(layers) == 2:  # the layer on the input also stores its sample expansion factor
            r.integer()
    computational = sum(v in (2, 3) for v in versions)
    if computational != len(layers) - 1:
        raise r.fail(f"{computational} layer versions but {len(layers) - 1} layer records")
    return loss, layers
