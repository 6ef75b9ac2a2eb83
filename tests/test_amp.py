"""Mixed precision in :func:`gvcore.training.run.train_step`: CPU bf16 autocast and GradScaler semantics.

The CUDA fp16 path of ``gvcore train`` is the same function with a ``GradScaler("cuda")``; these tests pin its
behaviour on CPU: autocast really runs the network in bf16 while the losses stay float32, a disabled scaler is
exactly the plain path, an enabled scaler gives the same update as no scaler, and an overflowing step is
skipped (parameters untouched, scale backed off) instead of corrupting the weights.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from gvcore.training.run import TrainConfig, parse_loss, resolve_config, train_step


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1))


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    hr = torch.rand(2, 3, 16, 16, generator=gen)
    lr = (hr + 0.05 * torch.randn(hr.shape, generator=gen)).clamp(0, 1)
    return lr, hr


def _step(
    net: nn.Module, *, scaler: torch.amp.GradScaler | None = None, amp_dtype: torch.dtype | None = None
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    lr, hr = _batch()
    return train_step(net, parse_loss("l1+gv", 0.5), optimizer, lr, hr, scaler=scaler, amp_dtype=amp_dtype)


def _params(net: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in net.parameters()]


def test_bf16_autocast_runs_the_network_in_bf16_and_the_loss_in_fp32() -> None:
    net, reference = _net(), _net()
    seen: list[torch.dtype] = []
    net[0].register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    loss, values = _step(net, amp_dtype=torch.bfloat16)
    ref_loss, _ = _step(reference)
    assert seen == [torch.bfloat16]
    assert loss.dtype == torch.float32
    assert all(v.dtype == torch.float32 for v in values)
    assert all(p.dtype == torch.float32 for p in net.parameters())
    assert math.isfinite(loss.item())
    assert loss.item() != ref_loss.item()  # bf16 rounding shows: autocast was on
    assert loss.item() == pytest.approx(ref_loss.item(), rel=2e-2)


def test_disabled_scaler_is_exactly_the_plain_path() -> None:
    net, reference = _net(), _net()
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    loss, _ = _step(net, scaler=scaler)
    ref_loss, _ = _step(reference, scaler=None)
    assert loss.item() == ref_loss.item()
    for p, q in zip(_params(net), _params(reference), strict=True):
        torch.testing.assert_close(p, q, rtol=0.0, atol=0.0)


def test_enabled_scaler_unscales_before_the_step() -> None:
    net, reference = _net(), _net()
    before = _params(net)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**12)
    _step(net, scaler=scaler)
    _step(reference)
    for p, q, p0 in zip(_params(net), _params(reference), before, strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-7)
        assert not torch.equal(p, p0)
    assert scaler.get_scale() == 2.0**12


def test_overflowing_step_is_skipped_and_the_scale_backs_off() -> None:
    net = _net()
    before = _params(net)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**12)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    lr, hr = _batch()
    hr[0, 0, 0, 0] = math.inf  # an inf target: inf MSE, non-finite gradients
    loss, _ = train_step(net, parse_loss("mse"), optimizer, lr, hr, scaler=scaler)
    assert not math.isfinite(loss.item())
    for p, p0 in zip(_params(net), before, strict=True):
        torch.testing.assert_close(p, p0, rtol=0.0, atol=0.0)
    assert scaler.get_scale() == 2.0**11


def test_amp_setting_is_validated(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="amp must be one of"):
        resolve_config(TrainConfig(arch="espcn", scale=2, out=str(tmp_path), amp="fp8"))  # type: ignore[arg-type]
