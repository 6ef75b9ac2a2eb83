"""Model contract (one test over every registered model x scale) and public key-layout compatibility."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from gvcore.models import MODEL_NAMES, MODELS, SCALES, build_model
from gvcore.models.edsr import DIV2K_RGB_MEAN
from gvcore.models.vdsr import upsample_input

CASES = [(name, scale) for name in MODEL_NAMES for scale in SCALES]


@pytest.mark.parametrize(("name", "scale"), CASES)
def test_model_contract(name: str, scale: int) -> None:
    torch.manual_seed(0)
    model = build_model(name, scale)
    assert model.scale == scale
    assert model.arch == name
    assert model.arch_kwargs == {}
    x = torch.rand(2, 3, 7, 9)

    out = model(x)
    assert out.shape == (2, 3, 7 * scale, 9 * scale)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()

    out.square().mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert all(g.abs().sum() > 0 for g in grads if g is not None), "every parameter should get a gradient"

    model.eval()
    with torch.no_grad():
        ref = model(x)
        assert torch.equal(ref, model(x)), "eval mode must be deterministic"
        channels_last = model(x.contiguous(memory_format=torch.channels_last))
        non_contiguous = model(torch.rand(2, 3, 9, 7).transpose(-1, -2).copy_(x))
    torch.testing.assert_close(channels_last, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(non_contiguous, ref, rtol=1e-5, atol=1e-5)
    assert not any(k in model.state_dict() for k in ("mean",)), "constants must not be in the state dict"


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_model_float64_and_single_pixel(name: str) -> None:
    model = build_model(name, 2).double().eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 2, 2, dtype=torch.float64))
    assert out.dtype == torch.float64
    assert out.shape == (1, 3, 4, 4)


def test_build_model_errors() -> None:
    with pytest.raises(ValueError, match="name must be one of 'vdsr'"):
        build_model("srcnn", 2)
    with pytest.raises(TypeError, match="scale must be an int"):
        build_model("vdsr", 2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="scale must be 3 or a power of 2"):
        build_model("edsr", 5)
    with pytest.raises(ValueError, match="out_channels must be 1 or in_channels"):
        build_model("vdsr", 2, out_channels=2)
    with pytest.raises(ValueError, match="interpolation must be one of"):
        build_model("vdsr", 2, interpolation="nearest")
    with pytest.raises(TypeError):
        build_model("espcn", 2, num_blocks=3)
    model = build_model("espcn", 2)
    with pytest.raises(ValueError, match="x must have 3 channels"):
        model(torch.rand(1, 1, 8, 8))
    with pytest.raises(TypeError, match="floating-point"):
        model(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))


def test_presets_are_lighter_and_kwargs_recorded() -> None:
    def count(name: str) -> int:
        return sum(p.numel() for p in build_model(name, 2).parameters())

    assert count("vdsr-lite") < count("vdsr") / 5
    assert count("edsr-lite") < count("edsr") / 5
    model = build_model("edsr-lite", 2, num_blocks=2)
    assert model.arch_kwargs == {"num_blocks": 2}
    assert sum(k.endswith("conv1.weight") for k in model.state_dict()) == 2
    assert set(MODELS) == set(MODEL_NAMES)


# ---------------------------------------------------------------------------- public key layouts
def test_vdsr_official_gv_layout_loads_strictly() -> None:
    """lusinlu/gradient-variance-loss vdsr.py: input 3->64, 18 x residual_layer.i.conv 64->64, output 64->1."""
    torch.manual_seed(1)
    official = {
        "input.weight": torch.randn(64, 3, 3, 3) * 0.05,
        "output.weight": torch.randn(1, 64, 3, 3) * 0.05,
    }
    official |= {f"residual_layer.{i}.conv.weight": torch.randn(64, 64, 3, 3) * 0.05 for i in range(18)}
    model = build_model("vdsr", 2, out_channels=1).eval()
    model.load_state_dict(official, strict=True)
    x = torch.rand(1, 3, 6, 6)
    with torch.no_grad():
        up = F.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False)
        feat = F.relu(F.conv2d(up, official["input.weight"], padding=1))
        for i in range(18):
            feat = F.relu(F.conv2d(feat, official[f"residual_layer.{i}.conv.weight"], padding=1))
        expected = up + F.conv2d(feat, official["output.weight"], padding=1)  # 1 channel added to all 3
        torch.testing.assert_close(model(x), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("scale", SCALES)
def test_edsr_basicsr_layout_and_forward(scale: int) -> None:
    """BasicSR EDSR: conv_first, body.i.conv1/conv2, conv_after_body, upsample.{0,2}, conv_last; mean not saved."""
    nf, blocks = 64, 16
    keys = {"conv_first", "conv_after_body", "conv_last"}
    keys |= {f"body.{i}.conv{j}" for i in range(blocks) for j in (1, 2)}
    stages = {2: [0], 3: [0], 4: [0, 2]}[scale]
    keys |= {f"upsample.{i}" for i in stages}
    expected = {f"{k}.{p}" for k in keys for p in ("weight", "bias")}
    state = build_model("edsr", scale).state_dict()
    assert set(state) == expected
    assert state["upsample.0.weight"].shape == ((9 if scale == 3 else 4) * nf, nf, 3, 3)

    # an independent BasicSR-style forward on a small EDSR
    torch.manual_seed(2)
    model = build_model("edsr", scale, num_blocks=2, num_features=8).eval()
    sd = model.state_dict()

    def conv(t: torch.Tensor, name: str) -> torch.Tensor:
        return F.conv2d(t, sd[f"{name}.weight"], sd[f"{name}.bias"], padding=1)

    x = torch.rand(1, 3, 5, 6)
    mean = torch.tensor(DIV2K_RGB_MEAN).view(1, 3, 1, 1)
    with torch.no_grad():
        feat = conv((x - mean) * 255.0, "conv_first")
        res = feat
        for i in range(2):
            res = res + conv(F.relu(conv(res, f"body.{i}.conv1")), f"body.{i}.conv2")
        up = conv(res, "conv_after_body") + feat
        for i in stages:
            up = F.pixel_shuffle(conv(up, f"upsample.{i}"), 3 if scale == 3 else 2)
        expected_out = conv(up, "conv_last") / 255.0 + mean
        torch.testing.assert_close(model(x), expected_out, rtol=1e-4, atol=1e-5)


def test_espcn_layout() -> None:
    state = build_model("espcn", 3).state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == {
        "first_part.0.weight": (64, 3, 5, 5),
        "first_part.0.bias": (64,),
        "first_part.2.weight": (32, 64, 3, 3),
        "first_part.2.bias": (32,),
        "last_part.0.weight": (27, 32, 3, 3),
        "last_part.0.bias": (27,),
    }


def test_vdsr_interpolation_options() -> None:
    x = torch.rand(1, 3, 5, 5)
    bilinear = build_model("vdsr-lite", 2, interpolation="bilinear")
    assert bilinear(x).shape == (1, 3, 10, 10)
    expected = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    torch.testing.assert_close(upsample_input(x, 2, "bilinear"), expected)
    if importlib.util.find_spec("gvcore.resize") is None:
        pytest.skip("gvcore.resize (imresize) not available yet")
    assert build_model("vdsr-lite", 2, interpolation="matlab")(x).shape == (1, 3, 10, 10)


# --- recognisers next to each model (a new model is added in one place) ----------------------------
@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_every_model_is_recognised_from_its_own_state_dict(name: str, scale: int) -> None:
    from gvcore.models import RECOGNISERS

    family = name.split("-")[0]
    model = build_model(name, scale)
    found = RECOGNISERS[family](model.state_dict())
    assert found is not None
    kwargs, found_scale = found
    assert found_scale in (scale, None)  # VDSR: any scale
    rebuilt = build_model(family, scale, **kwargs)
    shapes = {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()}
    assert shapes == {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_every_model_module_has_one_record_in_the_registry() -> None:
    """Each model module ends with its ``SUPPORT`` record; MODELS and RECOGNISERS are derived from them."""
    import importlib
    import pkgutil

    import gvcore.models as models

    modules = [m.name for m in pkgutil.iter_modules(models.__path__) if not m.name.startswith("_")]
    records = [importlib.import_module(f"gvcore.models.{name}").SUPPORT for name in modules]
    assert sorted(r.family for r in records) == sorted(r.family for r in models.ARCHITECTURES)
    assert set(models.RECOGNISERS) == {r.family for r in models.ARCHITECTURES}
    assert list(models.MODELS) == [n for r in models.ARCHITECTURES for n in r.constructors()]


@pytest.mark.parametrize("name", ["vdsr", "edsr", "espcn"])
def test_recognisers_refuse_tensors_of_the_wrong_rank(name: str) -> None:
    """Keys right, conv weights flattened: not recognised (it used to raise IndexError from inside the loader)."""
    from gvcore.models import RECOGNISERS

    flat = {k: v.flatten() for k, v in build_model(name, 2).state_dict().items()}
    assert RECOGNISERS[name](flat) is None


def test_load_model_refuses_flattened_weights_with_checkpoint_error(tmp_path: Path) -> None:
    from gvcore.checkpoint.store import CheckpointError, load_model

    path = tmp_path / "espcn_x2.pth"
    torch.save({k: v.flatten() for k, v in build_model("espcn", 2).state_dict().items()}, path)
    with pytest.raises(CheckpointError, match=r"espcn_x2\.pth"):
        load_model(path, scale=2)
