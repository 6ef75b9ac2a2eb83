"""The ncnn format reader/writer and the RRDB/SRVGG converter, checked against the ncnn package's own runtime.

The graphs are small random BasicSR models written as ncnn files by :func:`state_dict_to_ncnn` (nothing is
downloaded); the ``ncnn`` package (requirements-dev.txt) runs them, and the converted state dict, loaded by
spandrel, must give the same blobs layer by layer.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from gvcore.zoo.ncnn_convert import layer_keys, ncnn_forward, ncnn_to_state_dict, state_dict_to_ncnn
from gvcore.zoo.ncnn_format import FP16_TAG, NcnnFormatError, format_param, parse_param, read_blob, write_blob

ncnn = pytest.importorskip("ncnn", reason="the ncnn package (requirements-dev.txt) runs the reference graphs")


def _spandrel_model(state: dict[str, torch.Tensor]) -> torch.nn.Module:
    from gvcore.checkpoint.foreign import _import_spandrel

    return _import_spandrel().ModelLoader().load_from_state_dict(state).model.eval()


def _basicsr_rrdb(feat: int, grow: int, blocks: int, seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)

    def conv(c_out: int, c_in: int) -> list[torch.Tensor]:
        return [
            torch.randn(c_out, c_in, 3, 3, generator=generator) * 0.1,
            torch.randn(c_out, generator=generator) * 0.1,
        ]

    state: dict[str, torch.Tensor] = {}

    def put(key: str, c_out: int, c_in: int) -> None:
        state[f"{key}.weight"], state[f"{key}.bias"] = conv(c_out, c_in)

    put("conv_first", feat, 3)
    for b in range(blocks):
        for r in range(1, 4):
            for k in range(1, 5):
                put(f"body.{b}.rdb{r}.conv{k}", grow, feat + (k - 1) * grow)
            put(f"body.{b}.rdb{r}.conv5", feat, feat + 4 * grow)
    for key in ("conv_body", "conv_up1", "conv_up2", "conv_hr"):
        put(key, feat, feat)
    put("conv_last", 3, feat)
    return state


def _random_srvgg(feat: int = 8, convs: int = 3, scale: int = 4, seed: int = 1) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    c_in = 3
    for i in range(convs + 1):
        state[f"body.{2 * i}.weight"] = torch.randn(feat, c_in, 3, 3, generator=generator) * 0.2
        state[f"body.{2 * i}.bias"] = torch.randn(feat, generator=generator) * 0.1
        state[f"body.{2 * i + 1}.weight"] = torch.rand(feat, generator=generator) * 0.3
        c_in = feat
    last = 2 * convs + 2
    state[f"body.{last}.weight"] = torch.randn(3 * scale * scale, feat, 3, 3, generator=generator) * 0.2
    state[f"body.{last}.bias"] = torch.randn(3 * scale * scale, generator=generator) * 0.1
    return state


def _write(tmp_path: Path, state: dict[str, torch.Tensor], half: bool = True) -> tuple[Path, Path]:
    param, weights = state_dict_to_ncnn(state, half=half)
    (tmp_path / "m.param").write_text(param)
    (tmp_path / "m.bin").write_bytes(weights)
    return tmp_path / "m.param", tmp_path / "m.bin"


def _fp16(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # what a float16 .bin holds: convolution weights rounded to float16, biases and slopes float32
    return {k: v.half().float() if v.dim() == 4 else v for k, v in state.items()}


def _activations(state: dict[str, torch.Tensor], image: np.ndarray) -> dict[str, torch.Tensor]:
    """Every convolution's output (key -> tensor) of the BasicSR network ``state`` describes, computed here."""
    found: dict[str, torch.Tensor] = {}
    functional = torch.nn.functional

    def conv(x: torch.Tensor, key: str) -> torch.Tensor:
        found[key] = functional.conv2d(x, state[f"{key}.weight"], state[f"{key}.bias"], padding=1)
        return found[key]

    def lrelu(x: torch.Tensor) -> torch.Tensor:
        return functional.leaky_relu(x, 0.2)

    x = torch.from_numpy(image)[None]
    if "conv_first.weight" in state:  # RRDBNet
        feat = first = conv(x, "conv_first")
        for b in range(len({k.split(".")[1] for k in state if k.startswith("body.")})):
            block_in = feat
            for r in range(1, 4):
                outs = [feat]
                for k in range(1, 5):
                    outs.append(lrelu(conv(torch.cat(outs, 1), f"body.{b}.rdb{r}.conv{k}")))
                feat = conv(torch.cat(outs, 1), f"body.{b}.rdb{r}.conv5") * 0.2 + feat
            feat = feat * 0.2 + block_in
        feat = first + conv(feat, "conv_body")
        for key in ("conv_up1", "conv_up2"):
            feat = lrelu(conv(functional.interpolate(feat, scale_factor=2, mode="nearest"), key))
        out = conv(lrelu(conv(feat, "conv_hr")), "conv_last")
    else:  # SRVGGNetCompact
        last = max(int(k.split(".")[1]) for k in state)
        out = x
        for i in range(0, last, 2):
            out = functional.prelu(conv(out, f"body.{i}"), state[f"body.{i + 1}.weight"])
            found[f"body.{i + 1}"] = out
        scale = round((state[f"body.{last}.weight"].shape[0] / 3) ** 0.5)
        out = functional.pixel_shuffle(conv(out, f"body.{last}"), scale)
        out = out + functional.interpolate(x, scale_factor=scale, mode="nearest")
    found["output"] = out
    return found


# ------------------------------------------------------------------------------------------------- format
class TestParamFormat:
    def test_round_trip(self) -> None:
        text = "7767517\n3 3\nInput in 0 1 data\nConvolution c 1 1 data x 0=8 1=3 5=1 6=216 9=2 -23310=1,2.000000e-01\nInterp i 1 1 x output 0=1 1=2.0 2=2.0\n"
        layers = parse_param(text)
        assert layers[1].params == {0: 8, 1: 3, 5: 1, 6: 216, 9: 2, 10: [0.2]}
        assert layers[2].params[1] == 2.0
        assert parse_param(format_param(layers)) == layers

    def test_wrong_magic_is_refused(self) -> None:
        with pytest.raises(NcnnFormatError, match="first line must be 7767517"):
            parse_param("1234\n0 0\n")

    def test_wrong_layer_count_is_refused(self) -> None:
        with pytest.raises(NcnnFormatError, match="declares 2 layers but holds 1"):
            parse_param("7767517\n2 1\nInput in 0 1 data\n")

    def test_malformed_parameter_names_the_line(self) -> None:
        with pytest.raises(NcnnFormatError, match="line 4"):
            parse_param("7767517\n2 2\nInput in 0 1 data\nConvolution c 1 1 data x 0=abc\n")

    def test_array_count_is_checked(self) -> None:
        with pytest.raises(NcnnFormatError, match="wrong count"):
            parse_param("7767517\n1 1\nEltwise e 0 1 x -23301=3,1.0,2.0\n")


class TestBlobs:
    def test_fp16_blob_is_tagged_padded_and_read_back(self) -> None:
        values = np.array([0.5, -1.25, 3.0], dtype=np.float32)
        raw = write_blob(values, tagged=True, half=True)
        assert struct.unpack("<I", raw[:4])[0] == FP16_TAG
        assert len(raw) == 4 + 8  # 3 halves = 6 bytes, padded to 8
        back, end = read_blob(raw + b"tail", 0, 3, tagged=True, where="t")
        np.testing.assert_array_equal(back, values)
        assert end == 12

    def test_fp32_tagged_and_raw_blobs(self) -> None:
        values = np.array([0.1, 0.2], dtype=np.float32)
        for tagged in (True, False):
            raw = write_blob(values, tagged=tagged, half=False)
            back, end = read_blob(raw, 0, 2, tagged=tagged, where="t")
            np.testing.assert_array_equal(back, values)
            assert end == len(raw)

    def test_int8_blob_is_refused(self) -> None:
        raw = struct.pack("<I", 0x000D4B38) + bytes(8)
        with pytest.raises(NcnnFormatError, match="conv7: int8 weights are not supported"):
            read_blob(raw, 0, 8, tagged=True, where="conv7")

    def test_truncated_blob_is_refused(self) -> None:
        raw = write_blob(np.zeros(10, np.float32), tagged=True)[:10]
        with pytest.raises(NcnnFormatError, match="ends early"):
            read_blob(raw, 0, 10, tagged=True, where="c")


# ---------------------------------------------------------------------------------------------- converter
@pytest.mark.parametrize(
    ("family", "state"),
    [("RRDB", _basicsr_rrdb(8, 32, 2, 0)), ("SRVGG", _random_srvgg())],
    ids=["rrdb", "srvgg"],
)
def test_converted_model_matches_ncnn_runtime_layer_by_layer(
    tmp_path: Path, family: str, state: dict[str, torch.Tensor]
) -> None:
    param, weights = _write(tmp_path, state)
    converted, info = ncnn_to_state_dict(param, weights)
    assert info["family"] == family
    assert info["scale"] == 4
    assert sorted(converted) == sorted(state)
    for key, value in _fp16(state).items():  # the weights come back exactly as the .bin holds them
        assert torch.equal(converted[key], value), key
    image = np.random.default_rng(0).random((3, 12, 10), dtype=np.float32)
    layers = layer_keys(param)
    reference = ncnn_forward(param, weights, image, [*(x["blob"] for x in layers), "output"])
    ours = _activations(converted, image)
    for layer in layers:
        got = ours[layer["key"]]
        if layer["activation"] == "lrelu":
            got = torch.nn.functional.leaky_relu(got, 0.2)
        want = reference[layer["blob"]]
        scale = float(np.abs(want).max()) + 1e-6
        np.testing.assert_allclose(got[0].numpy(), want, atol=2e-5 * scale, err_msg=layer["key"])
    np.testing.assert_allclose(ours["output"][0].numpy(), reference["output"], atol=1e-4)
    assert reference["output"].shape == (3, 48, 40)
    with torch.no_grad():  # spandrel reads the BasicSR layout as the same network
        loaded = _spandrel_model(converted)(torch.from_numpy(image)[None])
    np.testing.assert_allclose(loaded[0].numpy(), reference["output"], atol=1e-4)


def test_rrdb_with_other_sizes_converts(tmp_path: Path) -> None:
    state = _basicsr_rrdb(feat=6, grow=2, blocks=1, seed=3)
    _, info = ncnn_to_state_dict(*_write(tmp_path, state, half=False))
    assert (info["num_feat"], info["num_grow_ch"], info["num_block"]) == (6, 2, 1)


def test_float32_bin_gives_exact_weights(tmp_path: Path) -> None:
    state = _random_srvgg(convs=1, scale=2)
    converted, info = ncnn_to_state_dict(*_write(tmp_path, state, half=False))
    assert info["scale"] == 2
    assert all(torch.equal(converted[k], v) for k, v in state.items())


class TestRefusals:
    def test_a_changed_activation_is_refused_naming_the_layer(self, tmp_path: Path) -> None:
        param, weights = _write(tmp_path, _basicsr_rrdb(8, 4, 1, 0))
        layers = parse_param(param.read_text())
        conv = [x for x in layers if x.type == "Convolution"][2]
        conv.params.pop(9)
        conv.params.pop(10)
        with pytest.raises(NcnnFormatError, match=rf"not a BasicSR RRDB graph: layer \d+ \({conv.name}\)"):
            ncnn_to_state_dict(format_param(layers), weights)

    def test_an_extra_trailing_layer_is_refused(self, tmp_path: Path) -> None:
        # realesr-animevideov3's x2 variant: the x4 graph followed by a bicubic downscale
        param, weights = _write(tmp_path, _random_srvgg())
        text = param.read_text().replace(" output", " x4out")
        lines = text.splitlines()
        counts = lines[1].split()
        lines[1] = f"{int(counts[0]) + 1} {int(counts[1]) + 1}"
        lines.append("Interp down 1 1 x4out output 0=3 1=5.000000e-01 2=5.000000e-01")
        with pytest.raises(NcnnFormatError, match="first extra layer: down"):
            ncnn_to_state_dict("\n".join(lines), weights)

    def test_other_graphs_are_refused_with_their_layers(self) -> None:
        text = "7767517\n3 3\nInput in 0 1 data\nConvolution c 1 1 data x 0=8 1=3 5=1 6=216\nSigmoid s 1 1 x output\n"
        with pytest.raises(NcnnFormatError, match=r"not a graph gvcore converts.*Sigmoid x1"):
            ncnn_to_state_dict(text, b"")

    def test_rrdb_at_another_scale_is_refused(self, tmp_path: Path) -> None:
        param, weights = _write(tmp_path, _basicsr_rrdb(8, 4, 1, 0))
        layers = [x for x in parse_param(param.read_text()) if x.type != "Interp"]
        with pytest.raises(NcnnFormatError, match="only BasicSR's x4 RRDBNet"):
            ncnn_to_state_dict(format_param(layers), weights)

    def test_a_bin_of_the_wrong_size_is_refused(self, tmp_path: Path) -> None:
        param, weights = _write(tmp_path, _random_srvgg())
        with pytest.raises(NcnnFormatError, match=r"holds .* bytes but the graph's weights take"):
            ncnn_to_state_dict(param, weights.read_bytes() + bytes(4))
        with pytest.raises(NcnnFormatError, match="ends early"):
            ncnn_to_state_dict(param, weights.read_bytes()[:-8])
