"""gvcore.protocol: one record per protocol, validated once, and what the rest of gvcore reads from it."""

from __future__ import annotations

import json

import pytest
import torch

import gvcore
from gvcore.eval.scoring import score_image
from gvcore.protocol import (
    PROTOCOLS,
    MetricOptions,
    Protocol,
    make_lr,
    prepare_pair,
    score_ready,
    upscale_baseline,
)


def test_names_and_members_are_the_same_values() -> None:
    assert PROTOCOLS == ("standard", "official")
    assert Protocol.parse("standard") is Protocol.STANDARD
    assert Protocol.parse(Protocol.OFFICIAL) is Protocol.OFFICIAL
    assert Protocol.STANDARD == "standard"
    # written to tables, URLs and JSON as the plain name
    assert json.dumps({"protocol": Protocol.OFFICIAL}) == '{"protocol": "official"}'
    assert f"{Protocol.STANDARD}" == "standard"


@pytest.mark.parametrize("bad", ["matlab", "Standard", "", "official "])
def test_unknown_names_are_refused_with_the_valid_ones_listed(bad: str) -> None:
    with pytest.raises(ValueError, match=r"protocol must be one of 'standard', 'official'; got"):
        Protocol.parse(bad)


@pytest.mark.parametrize("bad", [None, 1, b"standard"])
def test_non_strings_are_refused(bad: object) -> None:
    with pytest.raises(TypeError, match="protocol must be a str"):
        Protocol.parse(bad)


def test_each_record_says_what_the_paper_md_table_says() -> None:
    standard, official = Protocol.STANDARD.spec, Protocol.OFFICIAL.spec
    assert (standard.lr_resample, standard.baseline, standard.lr_source) == (
        "matlab-bicubic",
        "bicubic",
        "synth:bicubic",
    )
    assert (official.lr_resample, official.baseline, official.lr_source) == (
        "pil-bilinear",
        "bilinear",
        "synth:bilinear",
    )
    assert standard.quantize_outputs
    assert not official.quantize_outputs
    assert Protocol.STANDARD.metric_options("psnr", 4, None) == MetricOptions(4, "bt601", "valid")
    assert Protocol.STANDARD.metric_options("ssim", 4, True) == MetricOptions(4, "bt601", "valid")
    assert Protocol.OFFICIAL.metric_options("psnr", None, None) == MetricOptions(0, None, "valid")
    assert Protocol.OFFICIAL.metric_options("ssim", None, None) == MetricOptions(2, "official", "symmetric")
    assert (Protocol.STANDARD.perceptual_crop(3), Protocol.OFFICIAL.perceptual_crop(3)) == (3, 0)


def test_explicit_metric_arguments_are_checked_against_the_record() -> None:
    with pytest.raises(ValueError, match="pass crop_border=scale"):
        Protocol.STANDARD.metric_options("psnr", None, None)
    with pytest.raises(ValueError, match="scores the Y channel"):
        Protocol.STANDARD.metric_options("ssim", 2, False)
    with pytest.raises(ValueError, match="leave crop_border and y_channel unset"):
        Protocol.OFFICIAL.metric_options("ssim", 2, None)


def test_member_and_name_give_identical_results_everywhere() -> None:
    g = torch.Generator().manual_seed(0)
    hr = torch.rand(1, 3, 34, 38, generator=g)
    raw = torch.rand(1, 3, 34, 38, generator=g) * 1.2 - 0.1
    for member in Protocol:
        name = member.value
        assert torch.equal(prepare_pair(hr, 2, member)[0], prepare_pair(hr, 2, name)[0])
        lr = make_lr(hr[..., :34, :38], 2, member)
        assert torch.equal(upscale_baseline(lr, 2, member), upscale_baseline(lr, 2, name))
        assert torch.equal(score_ready(raw, member), score_ready(raw, name))
        a = gvcore.evaluate_pair(score_ready(raw, member), hr, 2, member)
        b = gvcore.evaluate_pair(score_ready(raw, name), hr, 2, name)
        assert torch.equal(a.psnr, b.psnr)
        assert torch.equal(a.ssim, b.ssim)
        rows_member = score_image(hr, 2, member, {}).rows
        rows_name = score_image(hr, 2, name, {}).rows
        assert rows_member == rows_name
        assert rows_member[1]["method"] == member.baseline


def test_the_8_bit_policy_is_the_records() -> None:
    raw = torch.tensor([[-0.1, 0.5004, 1.2]])
    assert score_ready(raw, Protocol.STANDARD).mul(255).tolist() == [[0.0, 128.0, 255.0]]
    assert torch.equal(score_ready(raw, Protocol.OFFICIAL), raw)
