"""The ncnn model format: the ``.param`` text graph and the ``.bin`` weight blobs, read and written.

Written from ncnn's format description (``docs/developer-guide/param-and-model-file-structure.md`` and
``src/modelbin.cpp`` of Tencent/ncnn):

``.param`` (text)::

    7767517                                  magic
    LAYER_COUNT BLOB_COUNT
    TYPE NAME BOTTOM_COUNT TOP_COUNT BOTTOMS... TOPS... K=V ...

A parameter ``K=V`` holds an int or a float (``0=64``, ``1=2.000000e+00``); an array is written with key
``-23300 - K`` and ``COUNT,V1,V2,...`` (``-23310=1,2.000000e-01`` is parameter 10 = ``[0.2]``).

``.bin``: the layers' weights, one after the other in the order of the ``.param`` file. A *tagged* blob (a
convolution's weights) starts with a 4-byte tag: ``0x01306B47`` = float16 values (padded to 4 bytes),
``0x00000000`` = float32 values; ``0x000D4B38`` (int8) and other tags (quantised tables) are refused. An
*untagged* blob (a bias, PReLU slopes) is raw float32.

Only what the SR graphs of :mod:`gvcore.zoo.ncnn_convert` use is read: anything else raises :class:`NcnnFormatError`
with the layer's name.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "FP16_TAG",
    "FP32_TAG",
    "PARAM_MAGIC",
    "NcnnFormatError",
    "NcnnLayer",
    "format_param",
    "parse_param",
    "read_blob",
    "write_blob",
]

#: first line of every ``.param`` file.
PARAM_MAGIC = 7767517
#: tag of a float16 blob in a ``.bin`` file (``modelbin.cpp``).
FP16_TAG = 0x01306B47
#: tag of a plain float32 blob.
FP32_TAG = 0x00000000
_INT8_TAG = 0x000D4B38

ParamValue = int | float | list[int] | list[float]


class NcnnFormatError(ValueError):
    """An ncnn ``.param``/``.bin`` pair cannot be read or is not a graph gvcore understands."""


@dataclass
class NcnnLayer:
    """One line of a ``.param`` file: ``type``, ``name``, input and output blob names, and its parameters.

    ``params`` maps the parameter id to an int, a float or a list (array parameters, ids without the
    ``-23300`` offset).
    """

    type: str
    name: str
    bottoms: list[str]
    tops: list[str]
    params: dict[int, ParamValue] = field(default_factory=dict)

    def get(self, key: int, default: ParamValue) -> ParamValue:
        """Parameter ``key``, or ncnn's ``default`` when the file leaves it out."""
        return self.params.get(key, default)


_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*([eE][-+]?\d+)?|\.\d+([eE][-+]?\d+)?|nan|inf)$", re.IGNORECASE)


def _value(text: str, where: str) -> int | float:
    if not _NUMBER.match(text):
        raise NcnnFormatError(f"{where}: {text!r} is not a number")
    if re.fullmatch(r"[-+]?\d+", text):
        return int(text)
    return float(text)


def parse_param(text: str) -> list[NcnnLayer]:
    r"""Parse a ``.param`` file's text into its layers, in file order.

    Raises:
        NcnnFormatError: another magic number, wrong counts, a malformed line (the message names the line).

    Example:
        >>> text = "7767517\n2 2\nInput in 0 1 data\nConvolution c 1 1 data out 0=8 1=3 -23310=1,2.0e-01\n"
        >>> [(layer.type, layer.params) for layer in parse_param(text)]
        [('Input', {}), ('Convolution', {0: 8, 1: 3, 10: [0.2]})]
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != str(PARAM_MAGIC):
        raise NcnnFormatError(f"not an ncnn .param file: the first line must be {PARAM_MAGIC}")
    try:
        layer_count, _blob_count = (int(x) for x in lines[1].split())
    except (IndexError, ValueError) as err:
        raise NcnnFormatError("ncnn .param: line 2 must hold the layer and blob counts") from err
    if layer_count != len(lines) - 2:
        raise NcnnFormatError(f"ncnn .param declares {layer_count} layers but holds {len(lines) - 2}")
    layers = []
    for number, line in enumerate(lines[2:], start=3):
        parts = line.split()
        where = f"ncnn .param line {number}"
        try:
            kind, name, n_in, n_out = parts[0], parts[1], int(parts[2]), int(parts[3])
        except (IndexError, ValueError) as err:
            raise NcnnFormatError(f"{where}: expected TYPE NAME BOTTOMS TOPS ...; got {line[:80]!r}") from err
        if len(parts) < 4 + n_in + n_out:
            raise NcnnFormatError(f"{where}: {name} lists fewer blobs than its counts")
        layer = NcnnLayer(kind, name, parts[4 : 4 + n_in], parts[4 + n_in : 4 + n_in + n_out])
        for item in parts[4 + n_in + n_out :]:
            key_text, _, value_text = item.partition("=")
            try:
                key = int(key_text)
            except ValueError as err:
                raise NcnnFormatError(f"{where}: malformed parameter {item!r}") from err
            if key <= -23300:
                count_text, *values = value_text.split(",")
                if int(count_text) != len(values):
                    raise NcnnFormatError(f"{where}: array parameter {item!r} has the wrong count")
                layer.params[-23300 - key] = [_value(v, where) for v in values]
            else:
                layer.params[key] = _value(value_text, where)
        layers.append(layer)
    return layers


def _format_value(value: int | float) -> str:
    return str(value) if isinstance(value, int) else f"{value:e}"


def format_param(layers: list[NcnnLayer]) -> str:
    """The ``.param`` text of ``layers`` (the inverse of :func:`parse_param`)."""
    blobs = {blob for layer in layers for blob in (*layer.bottoms, *layer.tops)}
    lines = [str(PARAM_MAGIC), f"{len(layers)} {len(blobs)}"]
    for layer in layers:
        items = [layer.type, layer.name, str(len(layer.bottoms)), str(len(layer.tops))]
        items += [*layer.bottoms, *layer.tops]
        for key, value in layer.params.items():
            if isinstance(value, list):
                items.append(f"{-23300 - key}={len(value)}," + ",".join(_format_value(v) for v in value))
            else:
                items.append(f"{key}={_format_value(value)}")
        lines.append(" ".join(items))
    return "\n".join(lines) + "\n"


def read_blob(data: bytes, offset: int, count: int, tagged: bool, where: str) -> tuple[np.ndarray, int]:
    """Read ``count`` weights at ``offset`` of a ``.bin`` file; return them as float32 and the next offset.

    Args:
        data: the whole ``.bin`` file.
        offset: where the blob starts.
        count: how many values it holds.
        tagged: a blob with a type tag (convolution weights) or raw float32 (biases, slopes).
        where: the layer, for error messages.

    Raises:
        NcnnFormatError: the file ends early, or an int8/quantised blob (not supported).
    """

    def take(size: int) -> bytes:
        if offset + size > len(data):
            raise NcnnFormatError(
                f"ncnn .bin ends early: {where} needs {size} bytes at offset {offset}, {len(data) - offset} left"
            )
        return data[offset : offset + size]

    if not tagged:
        raw = take(4 * count)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32), offset + 4 * count
    (tag,) = struct.unpack("<I", take(4))
    offset += 4
    if tag == FP16_TAG:
        raw = take(2 * count)
        padded = (2 * count + 3) // 4 * 4
        return np.frombuffer(raw, dtype="<f2").astype(np.float32), offset + padded
    if tag == FP32_TAG:
        raw = take(4 * count)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32), offset + 4 * count
    kind = "int8" if tag == _INT8_TAG else f"quantised (tag 0x{tag:08X})"
    raise NcnnFormatError(f"{where}: {kind} weights are not supported (float16 and float32 only)")


def write_blob(values: np.ndarray, tagged: bool, half: bool = True) -> bytes:
    """The ``.bin`` bytes of ``values``: tagged float16 (padded to 4 bytes) or float32, or raw float32."""
    flat = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
    if not tagged:
        return flat.astype("<f4").tobytes()
    if not half:
        return struct.pack("<I", FP32_TAG) + flat.astype("<f4").tobytes()
    payload = flat.astype("<f2").tobytes()
    return struct.pack("<I", FP16_TAG) + payload + b"\0" * ((-len(payload)) % 4)
