"""Data set layouts (DIV2K, BasicSR benchmarks, plain folders, explicit HR/LR pairs) and given LR files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from gvcore.checkpoint.store import save_checkpoint
from gvcore.data.layouts import detect_layout, find_named_datasets, paired_sources
from gvcore.data.sources import load_pairs, resolve_images
from gvcore.eval.evaluate import evaluate
from gvcore.models import build_model
from gvcore.resize import imresize

NAMES = ("baby", "bird", "head")


def _hr(seed: int, h: int = 48, w: int = 48) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.random((h // 4 + 1, w // 4 + 1, 3))
    smooth = np.kron(base, np.ones((4, 4, 1)))[:h, :w]  # some structure, so bicubic LR differs from noise
    return (np.clip(smooth + 0.1 * rng.random((h, w, 3)), 0, 1) * 255).astype(np.uint8)


def _bicubic_lr(hr: np.ndarray, scale: int) -> np.ndarray:
    x = torch.from_numpy(hr).permute(2, 0, 1).float().unsqueeze(0) / 255
    h, w = hr.shape[0] // scale, hr.shape[1] // scale
    lr = imresize(x, size=(h, w)).clamp(0, 1).mul(255).round()
    return lr[0].permute(1, 2, 0).to(torch.uint8).numpy()


def _save(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def _basicsr_set(root: Path, hr_name: str = "GTmod12", lr_pattern: str = "LRbicx{s}/{n}.png") -> Path:
    for i, name in enumerate(NAMES):
        hr = _hr(i)
        _save(root / hr_name / f"{name}.png", hr)
        _save(root / lr_pattern.format(s=2, n=name), _bicubic_lr(hr, 2))
    return root


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ds_ckpt") / "espcn.safetensors"
    return save_checkpoint(path, build_model("espcn", 2), label="espcn-ds")


class TestDetect:
    def test_basicsr_gtmod12_lrbicx(self, tmp_path: Path) -> None:
        layout = detect_layout(_basicsr_set(tmp_path / "Set5"))
        assert layout.kind == "basicsr"
        assert [s.lr_paths[2].parent.name for s in layout.sources] == ["LRbicx2"] * 3

    def test_basicsr_hr_and_lr_bicubic_with_suffix(self, tmp_path: Path) -> None:
        root = _basicsr_set(tmp_path / "Set14", "HR", "LR_bicubic/X{s}/{n}x{s}.png")
        layout = detect_layout(root)
        assert {s.name: s.lr_paths[2].name for s in layout.sources} == {n: f"{n}x2.png" for n in NAMES}

    def test_div2k(self, tmp_path: Path) -> None:
        _save(tmp_path / "DIV2K_valid_HR" / "0801.png", _hr(0))
        _save(tmp_path / "DIV2K_valid_LR_bicubic" / "X2" / "0801x2.png", _bicubic_lr(_hr(0), 2))
        layout = detect_layout(tmp_path)
        assert (layout.kind, layout.sources[0].lr_paths[2].name) == ("div2k", "0801x2.png")

    def test_hr_folder_given_directly_finds_its_lr_siblings(self, tmp_path: Path) -> None:
        layout = detect_layout(_basicsr_set(tmp_path / "Set5") / "GTmod12")
        assert (layout.kind, layout.sources[0].lr_paths[2].parent.name) == ("basicsr", "LRbicx2")

    def test_plain_folder(self, tmp_path: Path) -> None:
        _save(tmp_path / "a.png", _hr(0))
        layout = detect_layout(tmp_path)
        assert (layout.kind, layout.sources[0].lr_paths) == ("folder", {})

    def test_basicsr_was_refused_before(self, tmp_path: Path) -> None:
        sources = resolve_images(_basicsr_set(tmp_path / "Set5"), "test")
        assert [s.name for s in sources] == sorted(NAMES)

    def test_named_datasets(self, tmp_path: Path) -> None:
        _basicsr_set(tmp_path / "benchmark" / "Set5")
        _basicsr_set(tmp_path / "benchmark" / "Urban100", "HR")
        (tmp_path / "benchmark" / "Set14").mkdir()  # empty: not offered
        _save(tmp_path / "DIV2K" / "DIV2K_valid_HR" / "0801.png", _hr(0))
        found = find_named_datasets(tmp_path)
        assert list(found) == ["Set5", "Urban100", "DIV2K-val"]


class TestGivenLR:
    def test_given_lr_is_read_not_synthesised(self, tmp_path: Path) -> None:
        root = _basicsr_set(tmp_path / "Set5")
        odd = np.full_like(_bicubic_lr(_hr(0), 2), 77)
        _save(root / "LRbicx2" / "baby.png", odd)
        pair = load_pairs(resolve_images(root, "test"), 2)[0]
        assert torch.equal(pair.lr, torch.from_numpy(odd).permute(2, 0, 1))
        assert pair.lr_source == "file"

    def test_an_lr_file_that_differs_changes_the_scores(self, tmp_path: Path, checkpoint: Path) -> None:
        same = _basicsr_set(tmp_path / "same")
        changed = _basicsr_set(tmp_path / "changed")
        lr = _bicubic_lr(_hr(0), 2)
        _save(changed / "LRbicx2" / "baby.png", np.flipud(lr).copy())
        a = evaluate([checkpoint], same, 2, progress=False).set_index(["method", "image"])
        b = evaluate([checkpoint], changed, 2, progress=False).set_index(["method", "image"])
        assert a.loc[("bicubic", "baby"), "psnr"] - b.loc[("bicubic", "baby"), "psnr"] > 3.0
        assert a.loc[("espcn-ds", "baby"), "gv_distance"] != b.loc[("espcn-ds", "baby"), "gv_distance"]
        assert a.loc[("espcn-ds", "bird"), "psnr"] == b.loc[("espcn-ds", "bird"), "psnr"]

    def test_shipped_bicubic_files_match_synthesis(self, tmp_path: Path, checkpoint: Path) -> None:
        root = _basicsr_set(tmp_path / "Set5")
        given = evaluate([checkpoint], root, 2, progress=False)
        plain = tmp_path / "plain"
        for path in (root / "GTmod12").iterdir():
            _save(plain / path.name, np.asarray(Image.open(path)))
        synth = evaluate([checkpoint], plain, 2, progress=False)
        assert set(given["lr_source"]) == {"", "file"}
        assert set(synth["lr_source"]) == {"", "synth:bicubic"}
        pd.testing.assert_series_equal(given["psnr"], synth["psnr"])

    def test_official_protocol_synthesises_unless_explicit(self, tmp_path: Path) -> None:
        root = _basicsr_set(tmp_path / "Set5")
        auto = evaluate([], root, 2, "official", progress=False)
        explicit = evaluate([], root / "GTmod12", 2, "official", lr_dir=root / "LRbicx2", progress=False)
        assert set(auto["lr_source"]) == {"", "synth:bilinear"}
        assert set(explicit["lr_source"]) == {"", "file"}

    def test_wrong_size_names_the_file(self, tmp_path: Path) -> None:
        root = _basicsr_set(tmp_path / "Set5")
        _save(root / "LRbicx2" / "bird.png", np.zeros((23, 24, 3), np.uint8))
        with pytest.raises(ValueError, match=r"LR image .*bird\.png is 23x24; expected 24x24"):
            evaluate([], root, 2, progress=False)

    def test_hr_cropped_to_a_multiple_of_the_scale_before_the_check(self, tmp_path: Path) -> None:
        _save(tmp_path / "hr" / "a.png", _hr(0, 49, 50))  # mod-crop to 48x50
        _save(tmp_path / "lr" / "ax2.png", np.zeros((24, 25, 3), np.uint8))
        frame = evaluate([], tmp_path / "hr", 2, lr_dir=tmp_path / "lr", progress=False)
        assert frame["lr_source"].tolist() == ["", "file"]


class TestPairs:
    def test_pairs_by_stem(self, tmp_path: Path) -> None:
        _save(tmp_path / "hr" / "a.png", _hr(0))
        _save(tmp_path / "lr" / "ax2.png", _bicubic_lr(_hr(0), 2))
        sources = paired_sources(tmp_path / "hr", tmp_path / "lr", 2)
        assert sources[0].lr_paths == {2: tmp_path / "lr" / "ax2.png"}

    def test_missing_lr_names_the_hr_file(self, tmp_path: Path) -> None:
        _save(tmp_path / "hr" / "a.png", _hr(0))
        _save(tmp_path / "hr" / "b.png", _hr(1))
        _save(tmp_path / "lr" / "a.png", _bicubic_lr(_hr(0), 2))
        with pytest.raises(ValueError, match=r"HR image .*b\.png has no LR file"):
            paired_sources(tmp_path / "hr", tmp_path / "lr", 2)

    def test_extra_lr_is_an_error(self, tmp_path: Path) -> None:
        _save(tmp_path / "hr" / "a.png", _hr(0))
        _save(tmp_path / "lr" / "a.png", _bicubic_lr(_hr(0), 2))
        _save(tmp_path / "lr" / "z.png", _bicubic_lr(_hr(0), 2))
        with pytest.raises(ValueError, match=r"without an HR image .*z\.png"):
            paired_sources(tmp_path / "hr", tmp_path / "lr", 2)
