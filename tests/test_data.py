"""Training data: sources, DIV2K layout, LR synthesis, seeded patches, step sampler, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from gvcore.data.patches import PatchDataset, StepBatchSampler, center_crop_pair, seed_worker
from gvcore.data.sources import load_pairs, resolve_images
from gvcore.protocol import make_lr, mod_crop, pil_bilinear_resize
from gvcore.resize import imresize


def _write_png(path: Path, h: int, w: int, seed: int = 0) -> np.ndarray:
    array = (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)
    Image.fromarray(array).save(path)
    return array


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for i, (h, w) in enumerate(((40, 48), (36, 36), (50, 42))):
        _write_png(tmp_path / f"im{i}.png", h, w, seed=i)
    return tmp_path


class TestResolveImages:
    def test_folder_sorted_images_only(self, folder: Path) -> None:
        (folder / "notes.txt").write_text("not an image")
        names = [s.name for s in resolve_images(folder)]
        assert names == ["im0", "im1", "im2"]

    def test_bundled_splits(self) -> None:
        assert [s.name for s in resolve_images("bundled", "test")][:2] == ["camera", "text"]
        assert "astronaut" in [s.name for s in resolve_images("bundled", "train")]

    def test_single_file(self, folder: Path) -> None:
        assert [s.name for s in resolve_images(folder / "im1.png")] == ["im1"]

    def test_missing_folder(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="does not exist"):
            resolve_images(tmp_path / "nope")

    def test_empty_folder(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="is empty"):
            resolve_images(tmp_path)

    def test_no_images(self, tmp_path: Path) -> None:
        (tmp_path / "a.txt").write_text("x")
        with pytest.raises(ValueError, match="no images"):
            resolve_images(tmp_path)

    def test_div2k_layout_uses_shipped_lr(self, tmp_path: Path) -> None:
        hr_dir, lr_dir = tmp_path / "DIV2K_train_HR", tmp_path / "DIV2K_train_LR_bicubic" / "X2"
        hr_dir.mkdir()
        lr_dir.mkdir(parents=True)
        _write_png(hr_dir / "0001.png", 20, 24)
        shipped = _write_png(lr_dir / "0001x2.png", 10, 12, seed=7)
        _write_png(hr_dir / "0002.png", 20, 24, seed=1)  # no shipped LR: synthesised
        sources = resolve_images(tmp_path)
        assert [s.name for s in sources] == ["0001", "0002"]
        assert sources[0].lr_paths == {2: lr_dir / "0001x2.png"}
        assert sources[1].lr_paths == {}
        pairs = load_pairs(sources, 2)
        assert torch.equal(pairs[0].lr.permute(1, 2, 0), torch.from_numpy(shipped))
        official = load_pairs(sources, 2, "official")  # shipped LR is bicubic: not used for official
        assert not torch.equal(official[0].lr.permute(1, 2, 0), torch.from_numpy(shipped))

    def test_div2k_wrong_lr_size(self, tmp_path: Path) -> None:
        (tmp_path / "X_HR").mkdir()
        (tmp_path / "X_LR_bicubic" / "X2").mkdir(parents=True)
        _write_png(tmp_path / "X_HR" / "a.png", 20, 24)
        _write_png(tmp_path / "X_LR_bicubic" / "X2" / "ax2.png", 9, 12)
        with pytest.raises(ValueError, match="expected 10x12"):
            load_pairs(resolve_images(tmp_path), 2)


class TestLR:
    def test_standard_is_quantised_imresize(self) -> None:
        hr = torch.rand(1, 3, 16, 20)
        lr = make_lr(hr, 4)
        assert lr.shape == (1, 3, 4, 5)
        expected = (imresize(hr, size=(4, 5)).clamp(0, 1) * 255).round() / 255
        assert torch.equal(lr, expected)

    def test_official_is_pils_bilinear_not_torchs(self) -> None:
        hr = (torch.rand(1, 3, 32, 32) * 255).round() / 255
        got = make_lr(hr, 2, "official")
        assert torch.equal(got, pil_bilinear_resize(hr, (16, 16)))
        torch_version = F.interpolate(hr, size=(16, 16), mode="bilinear", align_corners=False, antialias=True)
        assert not torch.equal(got, (torch_version * 255).round() / 255)  # PAPER.md: they differ

    def test_needs_multiple_of_scale(self) -> None:
        with pytest.raises(ValueError, match="multiple of scale"):
            make_lr(torch.rand(1, 3, 15, 16), 2)
        assert mod_crop(torch.rand(1, 3, 15, 17), 4).shape[-2:] == (12, 16)

    def test_unknown_protocol(self) -> None:
        with pytest.raises(ValueError, match="protocol must be one of"):
            make_lr(torch.rand(1, 3, 8, 8), 2, "matlab")  # type: ignore[arg-type]


class TestPatches:
    def test_shapes_and_determinism(self, folder: Path) -> None:
        pairs = load_pairs(resolve_images(folder), 2)
        ds = PatchDataset(pairs, 2, 16, seed=3)
        lr, hr = ds[5]
        assert lr.shape == (3, 8, 8)
        assert hr.shape == (3, 16, 16)
        assert hr.dtype == torch.float32
        again = PatchDataset(pairs, 2, 16, seed=3)[5]
        assert torch.equal(again[0], lr)
        assert torch.equal(again[1], hr)
        other = PatchDataset(pairs, 2, 16, seed=4)[5]
        assert not torch.equal(other[1], hr)

    def test_epoch_is_a_permutation(self, folder: Path) -> None:
        ds = PatchDataset(load_pairs(resolve_images(folder), 2), 2, 16, seed=0)
        assert sorted(ds.epoch_order(7).tolist()) == [0, 1, 2]

    def test_lr_and_hr_stay_aligned_under_augmentation(self, tmp_path: Path) -> None:
        # LR = 2x2 block mean of HR: flips/transposes of aligned crops keep that relation exactly
        _write_png(tmp_path / "a.png", 32, 40)
        pair = load_pairs(resolve_images(tmp_path), 2)[0]
        hr = pair.hr.float()
        lr = F.avg_pool2d(hr.unsqueeze(0), 2)[0].round().to(torch.uint8)
        ds = PatchDataset([type(pair)("a", pair.hr, lr)], 2, 16, seed=0)
        for k in range(16):
            lr_patch, hr_patch = ds[k]
            block_mean = F.avg_pool2d(hr_patch.unsqueeze(0) * 255, 2)[0].round() / 255
            assert torch.allclose(lr_patch, block_mean, atol=1e-6)

    def test_crop_must_be_multiple_of_scale(self, folder: Path) -> None:
        with pytest.raises(ValueError, match="multiple of scale 4"):
            PatchDataset(load_pairs(resolve_images(folder), 4), 4, 18, seed=0)

    def test_image_smaller_than_crop(self, folder: Path) -> None:
        with pytest.raises(ValueError, match=r"im1\.png is 36x36, smaller than the crop 40x40"):
            load_pairs(resolve_images(folder), 2, min_size=40)

    def test_workers_give_the_same_batches(self, folder: Path) -> None:
        ds = PatchDataset(load_pairs(resolve_images(folder), 2), 2, 16, seed=1)

        def batches(workers: int) -> list[torch.Tensor]:
            loader = torch.utils.data.DataLoader(
                ds,
                batch_sampler=StepBatchSampler(4, 3),
                num_workers=workers,
                worker_init_fn=seed_worker,
                generator=torch.Generator().manual_seed(0),
            )
            return [hr for _, hr in loader]

        assert all(torch.equal(a, b) for a, b in zip(batches(0), batches(1)))

    def test_center_crop_pair(self, folder: Path) -> None:
        pair = center_crop_pair(load_pairs(resolve_images(folder), 2)[0], 2, 16)
        assert pair.hr.shape == (3, 16, 16)
        assert pair.lr.shape == (3, 8, 8)


class TestStepBatchSampler:
    def test_ranks_partition_the_global_batch(self) -> None:
        single = list(StepBatchSampler(4, 3))
        ranks = [list(StepBatchSampler(4, 3, rank=r, world_size=2)) for r in range(2)]
        for step, batch in enumerate(single):
            assert sorted(ranks[0][step] + ranks[1][step]) == batch

    def test_resumes_mid_stream(self) -> None:
        assert list(StepBatchSampler(2, 4, start_step=2)) == [[4, 5], [6, 7]]

    def test_batch_not_divisible(self) -> None:
        with pytest.raises(ValueError, match="divisible by the number of processes"):
            StepBatchSampler(3, 2, world_size=2)
