"""ncnn -> PyTorch: Real-ESRGAN's RRDB and compact (SRVGG) graphs to BasicSR-layout state dicts, and back.

:func:`ncnn_to_state_dict` reads an ncnn ``.param``/``.bin`` pair (:mod:`gvcore.zoo.ncnn_format`), infers the
hyper-parameters (features, blocks, growth channels, scale) from the first layers, builds the graph that a
BasicSR ``RRDBNet`` (x4) or ``SRVGGNetCompact`` (PReLU) of those hyper-parameters exports to, and compares the
two layer by layer (types, parameters, connections; ``Split`` layers, which only copy a blob, are looked
through). Only when every layer matches are the weights read, in file order, into the BasicSR key of the
layer they belong to; any other graph is refused with the first layer that differs.

:func:`state_dict_to_ncnn` is the inverse (the same graph builders): it writes a BasicSR state dict as an ncnn
pair, the way ``onnx2ncnn``/``pnnx`` lay it out (convolutions with a fused leaky ReLU, ``Eltwise`` with
coefficients for the residual scaling, a ``Split`` before every blob read twice). The tests use it to build
small graphs and run them with the ``ncnn`` package's own runtime (:func:`ncnn_forward`).

Example:
    >>> import torch
    >>> state = {"body.0.weight": torch.rand(8, 3, 3, 3), "body.0.bias": torch.rand(8),
    ...          "body.1.weight": torch.rand(8), "body.2.weight": torch.rand(12, 8, 3, 3),
    ...          "body.2.bias": torch.rand(12)}
    >>> param, weights = state_dict_to_ncnn(state)
    >>> back, info = ncnn_to_state_dict(param, weights)
    >>> info["family"], info["scale"], sorted(back) == sorted(state)
    ('SRVGG', 2, True)
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gvcore.zoo.ncnn_format import (
    NcnnFormatError,
    NcnnLayer,
    format_param,
    parse_param,
    read_blob,
    write_blob,
)

__all__ = ["NcnnFormatError", "layer_keys", "ncnn_forward", "ncnn_to_state_dict", "state_dict_to_ncnn"]

_LRELU = {9: 2, 10: [0.2]}  # activation_type 2 = leaky ReLU, slope 0.2 (fused into the convolution)


@dataclass
class _Weighted:
    """A layer that holds weights, and the BasicSR key prefix they go to."""

    layer: str
    key: str
    kind: str  # "conv" or "prelu"
    shape: tuple[int, ...]


@dataclass
class _Graph:
    """A graph being built: layers in execution order (``Split`` layers added by :meth:`finish`)."""

    layers: list[NcnnLayer] = field(default_factory=lambda: [NcnnLayer("Input", "input", [], ["data"])])
    weighted: list[_Weighted] = field(default_factory=list)

    def add(self, kind: str, inputs: Sequence[str], params: dict[int, Any] | None = None) -> str:
        index = len(self.layers)
        top = f"{index}"
        self.layers.append(NcnnLayer(kind, f"{kind}_{index}", list(inputs), [top], dict(params or {})))
        return top

    def conv(self, x: str, key: str, c_in: int, c_out: int, lrelu: bool = False) -> str:
        params = {0: c_out, 1: 3, 4: 1, 5: 1, 6: c_out * c_in * 9} | (_LRELU if lrelu else {})
        top = self.add("Convolution", [x], params)
        self.weighted.append(_Weighted(self.layers[-1].name, key, "conv", (c_out, c_in, 3, 3)))
        return top

    def finish(self, output: str) -> list[NcnnLayer]:
        """The layers with the output blob named ``output`` and a ``Split`` after every blob read twice."""
        for layer in self.layers:
            layer.tops = ["output" if t == output else t for t in layer.tops]
        uses = Counter(b for layer in self.layers for b in layer.bottoms)
        done: list[NcnnLayer] = []
        taken: dict[str, list[str]] = {}
        for layer in self.layers:
            layer.bottoms = [taken[b].pop() if b in taken else b for b in layer.bottoms]
            done.append(layer)
            for top in layer.tops:
                if uses[top] > 1:
                    copies = [f"{top}_splitncnn_{i}" for i in range(uses[top])]
                    done.append(NcnnLayer("Split", f"splitncnn_{top}", [top], copies))
                    taken[top] = copies.copy()
        return done


def _rrdb_graph(c_in: int, c_out: int, feat: int, grow: int, blocks: int) -> tuple[list[NcnnLayer], _Graph]:
    """BasicSR ``RRDBNet`` at x4 (``basicsr/archs/rrdbnet_arch.py``)."""
    g = _Graph()
    first = g.conv("data", "conv_first", c_in, feat)
    x = first
    for b in range(blocks):
        block_in = x
        for r in range(1, 4):
            rdb_in, outs = x, [x]
            for k in range(1, 5):
                inputs = outs[0] if k == 1 else g.add("Concat", outs)
                outs.append(g.conv(inputs, f"body.{b}.rdb{r}.conv{k}", feat + (k - 1) * grow, grow, True))
            last = g.conv(g.add("Concat", outs), f"body.{b}.rdb{r}.conv5", feat + 4 * grow, feat)
            x = g.add("Eltwise", [last, rdb_in], {0: 1, 1: [0.2, 1.0]})
        x = g.add("Eltwise", [x, block_in], {0: 1, 1: [0.2, 1.0]})
    x = g.add("BinaryOp", [first, g.conv(x, "conv_body", feat, feat)])
    for name in ("conv_up1", "conv_up2"):
        x = g.conv(g.add("Interp", [x], {0: 1, 1: 2.0, 2: 2.0}), name, feat, feat, True)
    x = g.conv(g.conv(x, "conv_hr", feat, feat, True), "conv_last", feat, c_out)
    return g.finish(x), g


def _srvgg_graph(c_in: int, c_out: int, feat: int, convs: int, scale: int) -> tuple[list[NcnnLayer], _Graph]:
    """BasicSR ``SRVGGNetCompact`` with PReLU (``basicsr/archs/srvgg_arch.py``)."""
    g = _Graph()
    x = "data"
    for i in range(convs + 1):
        x = g.conv(x, f"body.{2 * i}", c_in if i == 0 else feat, feat)
        x = g.add("PReLU", [x], {0: feat})
        g.weighted.append(_Weighted(g.layers[-1].name, f"body.{2 * i + 1}", "prelu", (feat,)))
    x = g.conv(x, f"body.{2 * convs + 2}", feat, c_out * scale * scale)
    x = g.add("PixelShuffle", [x], {0: scale})
    base = g.add("Interp", ["data"], {0: 1, 1: float(scale), 2: float(scale)})
    return g.finish(g.add("BinaryOp", [x, base])), g


# ------------------------------------------------------------------------------------------------ recognise
def _convs(layers: list[NcnnLayer]) -> list[NcnnLayer]:
    return [layer for layer in layers if layer.type == "Convolution"]


def _int(layer: NcnnLayer, key: int) -> int:
    value = layer.get(key, 0)
    if not isinstance(value, int) or value <= 0:
        raise NcnnFormatError(f"layer {layer.name}: parameter {key} must be a positive int; got {value!r}")
    return value


def _expected_graph(layers: list[NcnnLayer]) -> tuple[list[NcnnLayer], _Graph, dict[str, Any]]:
    """The graph an RRDB or SRVGG of the hyper-parameters read from ``layers`` has, and those settings."""
    kinds = Counter(layer.type for layer in layers)
    convs = _convs(layers)
    if not convs:
        raise NcnnFormatError("not an RRDB or SRVGG graph: it has no Convolution layer")
    feat = _int(convs[0], 0)
    c_in = _int(convs[0], 6) // (feat * 9)
    if kinds["PReLU"] and kinds["PixelShuffle"] == 1:
        shuffle = next(layer for layer in layers if layer.type == "PixelShuffle")
        scale = _int(shuffle, 0)
        c_out = _int(convs[-1], 0) // (scale * scale)
        settings = {"family": "SRVGG", "num_feat": feat, "num_conv": len(convs) - 2, "scale": scale}
        return (
            *_srvgg_graph(c_in, c_out, feat, len(convs) - 2, scale),
            settings | {"in": c_in, "out": c_out},
        )
    if kinds["Eltwise"] and kinds["Concat"] and len(convs) > 1:
        grow = _int(convs[1], 0)
        ups = kinds["Interp"]
        if ups != 2:
            raise NcnnFormatError(
                f"an RRDB graph with {ups} upsampling Interp layer(s): only BasicSR's x4 RRDBNet (two) is "
                "supported (x2/x1 RRDBNets start with a pixel unshuffle)"
            )
        blocks, rest = divmod(len(convs) - 6, 15)
        if rest or blocks < 1:
            raise NcnnFormatError(
                f"an RRDB-like graph with {len(convs)} convolutions, not 6 + 15 per block: not a BasicSR RRDBNet"
            )
        c_out = _int(convs[-1], 0)
        settings = {"family": "RRDB", "num_feat": feat, "num_grow_ch": grow, "num_block": blocks, "scale": 4}
        return (*_rrdb_graph(c_in, c_out, feat, grow, blocks), settings | {"in": c_in, "out": c_out})
    found = ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items()))
    raise NcnnFormatError(
        f"not a graph gvcore converts (BasicSR RRDBNet x4 or SRVGGNetCompact with PReLU); its layers: {found}"
    )


def _canonical(layers: list[NcnnLayer]) -> list[tuple[str, str, dict[int, Any], list[int]]]:
    """``(type, name, params, input layer positions)`` per layer, ``Split`` looked through, ``Input`` = -1."""
    alias: dict[str, str] = {}
    producer: dict[str, int] = {}
    out: list[tuple[str, str, dict[int, Any], list[int]]] = []
    for layer in layers:
        if layer.type == "Split":
            for top in layer.tops:
                alias[top] = alias.get(layer.bottoms[0], layer.bottoms[0])
            continue
        if layer.type == "Input":
            producer[layer.tops[0]] = -1
            continue
        try:
            sources = [producer[alias.get(b, b)] for b in layer.bottoms]
        except KeyError as err:
            raise NcnnFormatError(
                f"layer {layer.name} reads blob {err.args[0]!r}, which no layer makes"
            ) from err
        for top in layer.tops:
            producer[top] = len(out)
        out.append((layer.type, layer.name, layer.params, sources))
    return out


def _same_params(a: dict[int, Any], b: dict[int, Any]) -> bool:
    if set(a) != set(b):
        return False
    return all(np.allclose(np.asarray(a[k], float), np.asarray(b[k], float), rtol=1e-5) for k in a)


def _check_structure(found: list[NcnnLayer], expected: list[NcnnLayer], family: str) -> None:
    got, want = _canonical(found), _canonical(expected)
    for i, ((t1, name, p1, s1), (t2, _, p2, s2)) in enumerate(zip(got, want)):
        if t1 != t2 or s1 != s2 or not _same_params(p1, p2):
            raise NcnnFormatError(
                f"not a BasicSR {family} graph: layer {i} ({name}) is {t1} {p1} reading layers {s1}; "
                f"expected {t2} {p2} reading layers {s2}"
            )
    if len(got) != len(want):
        extra = got[len(want)] if len(got) > len(want) else None
        detail = f"; first extra layer: {extra[1]} ({extra[0]})" if extra else ""
        raise NcnnFormatError(
            f"not a BasicSR {family} graph: {len(got)} layers, expected {len(want)}{detail}"
        )
    if not any("output" in layer.tops for layer in found):
        raise NcnnFormatError("the graph has no blob named 'output'")


def _read_text_or_bytes(value: str | bytes | os.PathLike[str], binary: bool) -> Any:
    if isinstance(value, (str, bytes)) and not isinstance(value, os.PathLike):
        if binary and isinstance(value, bytes):
            return value
        if not binary and isinstance(value, str) and value.lstrip().startswith(str(7767517)):
            return value
    path = Path(os.fsdecode(value))
    return path.read_bytes() if binary else path.read_text(encoding="utf-8", errors="replace")


def _recognise(layers: list[NcnnLayer]) -> tuple[list[tuple[NcnnLayer, _Weighted]], dict[str, Any]]:
    expected, graph, info = _expected_graph(layers)
    _check_structure(layers, expected, info["family"])
    by_name = {w.layer: w for w in graph.weighted}
    wanted = [by_name[name] for (_, name, _, _) in _canonical(expected) if name in by_name]
    found = [layer for layer in layers if layer.type in ("Convolution", "PReLU")]
    return list(zip(found, wanted)), info


def layer_keys(param: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Per weighted layer of a recognised graph: its ncnn ``layer`` name, output ``blob``, BasicSR ``key``.

    ``activation`` is ``"lrelu"`` when ncnn fused a leaky ReLU (slope 0.2) into the convolution, else ``""``:
    the blob then holds ``leaky_relu(conv(x))``. For comparing a converted model with ncnn layer by layer.

    Raises:
        NcnnFormatError: as :func:`ncnn_to_state_dict`.
    """
    pairs, _ = _recognise(parse_param(_read_text_or_bytes(param, binary=False)))
    return [
        {
            "layer": layer.name,
            "blob": layer.tops[0],
            "key": spec.key,
            "activation": "lrelu" if layer.get(9, 0) == 2 else "",
        }
        for layer, spec in pairs
    ]


def ncnn_to_state_dict(
    param: str | os.PathLike[str], weights: bytes | str | os.PathLike[str]
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Convert an ncnn RRDB (x4) or SRVGG graph to a BasicSR-layout state dict (float32).

    Args:
        param: the ``.param`` file, or its text.
        weights: the ``.bin`` file, or its bytes.

    Returns:
        ``(state_dict, info)``: ``conv_first.weight``, ``body.0.rdb1.conv1.weight``, ... (RRDBNet) or
        ``body.0.weight``, ... (SRVGGNetCompact); ``info`` holds ``family`` (``"RRDB"``/``"SRVGG"``), ``scale``
        and the hyper-parameters read from the graph.

    Raises:
        NcnnFormatError: not an ncnn pair, a graph other than those two (the first differing layer is named),
            int8/quantised weights, or a ``.bin`` of the wrong size.
    """
    pairs, info = _recognise(parse_param(_read_text_or_bytes(param, binary=False)))
    data: bytes = _read_text_or_bytes(weights, binary=True)
    state: dict[str, torch.Tensor] = {}
    offset = 0
    for layer, spec in pairs:
        count = math.prod(spec.shape)
        values, offset = read_blob(data, offset, count, tagged=spec.kind == "conv", where=layer.name)
        state[f"{spec.key}.weight"] = torch.from_numpy(values.reshape(spec.shape).copy())
        if spec.kind == "conv" and layer.get(5, 0):
            bias, offset = read_blob(data, offset, spec.shape[0], tagged=False, where=layer.name)
            state[f"{spec.key}.bias"] = torch.from_numpy(bias.copy())
    if offset != len(data):
        raise NcnnFormatError(
            f"the .bin holds {len(data)} bytes but the graph's weights take {offset}: not this graph's weights"
        )
    return state, info


# --------------------------------------------------------------------------------------------------- export
def _settings_from_state(state: Mapping[str, torch.Tensor]) -> tuple[list[NcnnLayer], _Graph]:
    if "conv_first.weight" in state:
        feat, c_in = state["conv_first.weight"].shape[:2]
        grow = state["body.0.rdb1.conv1.weight"].shape[0]
        blocks = len({k.split(".")[1] for k in state if k.startswith("body.")})
        return _rrdb_graph(c_in, state["conv_last.weight"].shape[0], feat, grow, blocks)
    if "body.0.weight" in state:
        feat, c_in = state["body.0.weight"].shape[:2]
        last = max(int(k.split(".")[1]) for k in state if k.startswith("body."))
        convs = last // 2 - 1
        out = state[f"body.{last}.weight"].shape[0]
        scale = next(s for s in range(1, 9) if out % (s * s) == 0 and out // (s * s) in (1, 3, 4))
        return _srvgg_graph(c_in, out // (scale * scale), feat, convs, scale)
    raise ValueError(
        "state dict is neither a BasicSR RRDBNet (conv_first.*) nor an SRVGGNetCompact (body.0.*)"
    )


def state_dict_to_ncnn(state: Mapping[str, torch.Tensor], half: bool = True) -> tuple[str, bytes]:
    """Write a BasicSR RRDBNet (x4) or SRVGGNetCompact (PReLU) state dict as an ncnn ``.param`` text and ``.bin``.

    Convolution weights are stored tagged float16 (``half``) or float32, biases and PReLU slopes float32, as
    ``onnx2ncnn`` does. The input blob is ``data``, the output ``output``.
    """
    layers, graph = _settings_from_state(state)
    by_name = {w.layer: w for w in graph.weighted}
    chunks = []
    for layer in layers:
        spec = by_name.get(layer.name)
        if spec is None:
            continue
        weight = state[f"{spec.key}.weight"].detach().float().cpu().numpy()
        chunks.append(write_blob(weight, tagged=spec.kind == "conv", half=half))
        if spec.kind == "conv":
            chunks.append(write_blob(state[f"{spec.key}.bias"].detach().float().cpu().numpy(), tagged=False))
    return format_param(layers), b"".join(chunks)


def ncnn_forward(
    param: str | os.PathLike[str],
    weights: str | os.PathLike[str],
    image: np.ndarray,
    blobs: Sequence[str] = ("output",),
) -> dict[str, np.ndarray]:
    """Run an ncnn graph with the ``ncnn`` package's CPU runtime (float32 storage and arithmetic).

    Args:
        param: the ``.param`` file.
        weights: the ``.bin`` file.
        image: ``(C, H, W)`` float32, fed to the blob ``data``.
        blobs: the blobs to read back.

    Returns:
        blob name -> ``(C, H, W)`` float32 array.

    Raises:
        ImportError: the ``ncnn`` package is not installed (``pip install ncnn``).
        RuntimeError: ncnn could not load the files or extract a blob.
    """
    import ncnn

    net = ncnn.Net()
    for option in ("use_vulkan_compute", "use_fp16_storage", "use_fp16_arithmetic", "use_fp16_packed"):
        setattr(net.opt, option, False)
    net.opt.use_bf16_storage = False
    net.opt.num_threads = 1
    if net.load_param(os.fspath(param)) != 0 or net.load_model(os.fspath(weights)) != 0:
        raise RuntimeError(f"ncnn could not load {os.fspath(param)!r} / {os.fspath(weights)!r}")
    out: dict[str, np.ndarray] = {}
    with net.create_extractor() as extractor:
        extractor.input("data", ncnn.Mat(np.ascontiguousarray(image, dtype=np.float32)))
        for blob in blobs:
            status, mat = extractor.extract(blob)
            if status != 0:
                raise RuntimeError(f"ncnn could not extract blob {blob!r} (status {status})")
            out[blob] = np.array(mat, dtype=np.float32, copy=True)
    net.clear()
    return out
