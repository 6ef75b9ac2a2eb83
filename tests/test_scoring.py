"""The one scoring path (gvcore.eval.scoring): rows, the variance ratio, given LR, model labels."""

from __future__ import annotations

import math

import pytest
import torch

import gvcore
from gvcore.eval.scoring import output_variances, score_image, score_outputs, variance_ratio
from gvcore.metrics import evaluate_pair
from gvcore.protocol import prepare_pair, upscale_baseline


def _hr() -> torch.Tensor:
    torch.manual_seed(0)
    return (torch.rand(1, 3, 50, 46) * 255).round() / 255


@pytest.mark.parametrize("protocol", ["standard", "official"])
def test_rows_hr_baseline_models(protocol: str) -> None:
    model = gvcore.build_model("espcn", 2).eval()
    scored = score_image(_hr(), 2, protocol, {"net": model})  # type: ignore[arg-type]
    names = [r["method"] for r in scored.rows]
    assert names == ["HR", "bicubic" if protocol == "standard" else "bilinear", "net"]
    hr_row = scored.rows[0]
    assert math.isnan(hr_row["psnr"])
    assert hr_row["gv_distance"] == 0
    assert hr_row["var_ratio"] == 1
    lr, hr = prepare_pair(_hr(), 2, protocol)  # type: ignore[arg-type]
    assert torch.equal(scored.hr, hr)
    assert torch.equal(scored.lr, lr)
    base = upscale_baseline(lr, 2, protocol)  # type: ignore[arg-type]
    want = evaluate_pair(base, hr, 2, protocol)  # type: ignore[arg-type]
    assert scored.rows[1]["psnr"] == pytest.approx(float(want.psnr[0]), abs=1e-12)
    assert scored.rows[1]["ssim"] == pytest.approx(float(want.ssim[0]), abs=1e-12)
    gx, gy = output_variances(scored.outputs["net"])
    hx, hy = output_variances(hr)
    assert scored.rows[2]["var_ratio"] == pytest.approx(variance_ratio(gx, gy, hx, hy))
    assert scored.rows[2]["gv_distance"] == pytest.approx(
        float(gvcore.gradient_variance_loss(scored.outputs["net"], hr))
    )


def test_given_lr_is_used_as_is() -> None:
    lr = torch.rand(1, 3, 10, 12)
    hr = torch.rand(1, 3, 20, 24)
    scored = score_image(hr, 2, "standard", lr=lr)
    assert torch.equal(scored.lr, lr)
    with pytest.raises(ValueError, match="expected hr = 2 x lr"):
        score_image(torch.rand(1, 3, 21, 24), 2, "standard", lr=lr)


def test_builtin_labels_are_reserved() -> None:
    with pytest.raises(ValueError, match="taken by a built-in row"):
        score_image(_hr(), 2, "standard", {"bicubic": gvcore.build_model("espcn", 2)})


def test_variance_ratio_definition() -> None:
    assert variance_ratio(1.0, 3.0, 2.0, 2.0) == 1.0
    assert variance_ratio(0.0, 0.0, 0.0, 1.0) == 0.5  # a direction flat in HR counts 1


def test_score_outputs_without_reference() -> None:
    rows = score_outputs({"x": _hr()}, None, 2, "standard")
    assert math.isnan(rows[0]["psnr"])
    assert rows[0]["var_gx"] > 0
