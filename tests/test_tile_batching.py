"""Tiles batched per forward call, the device resolver, and ``gvcore eval --tile-batch``.

``tiled_forward(batch=...)``, the device resolver behind ``gvcore eval --device`` and ``GVLAB_DEVICE``, and
``gvcore eval --tile-batch``: batching changes nothing beyond float rounding (no bit in float64).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch import nn

import gvcore
from gvcore.cli import main
from gvcore.eval.inference import default_tile_batch, resolve_device, tiled_forward
from gvcore.models import MODELS


class _CountingModel(nn.Module):
    """Wraps a model and records the batch size of every forward call."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.batches: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.batches.append(int(x.shape[0]))
        return self.inner(x)


@pytest.mark.parametrize(
    "arch",
    [pytest.param(a, marks=[pytest.mark.slow] if a in ("vdsr", "edsr") else []) for a in sorted(MODELS)],
)
@pytest.mark.parametrize("samples", [1, 2])
def test_batched_tiles_are_bit_identical_to_one_by_one_in_float64(arch: str, samples: int) -> None:
    """float64 takes PyTorch's native convolution at every batch size (a per-sample loop).

    Batching the tiles must not change a single bit, which checks the grouping, stacking and reassembly
    exactly.
    """
    torch.manual_seed(0)
    model = gvcore.build_model(arch, 2).eval().double()
    lr = torch.rand(samples, 3, 45, 38, dtype=torch.float64)  # ragged borders: windows of several shapes
    with torch.no_grad():
        one = tiled_forward(model, lr, 2, tile=16, overlap=6, batch=1)
        four = tiled_forward(model, lr, 2, tile=16, overlap=6, batch=4)
        each = torch.cat([tiled_forward(model, lr[i : i + 1], 2, tile=16, overlap=6) for i in range(samples)])
    assert torch.equal(one, four)
    assert torch.equal(one, each)


@pytest.mark.parametrize("arch", ["vdsr-lite", "espcn"])
def test_batched_tiles_match_one_by_one_in_float32(arch: str) -> None:
    """float32 on CPU: batching may change the last bits (a few 1e-6 measured); nothing more.

    PyTorch runs a batch-1 input with few elements on its native kernel and a batch > 1 through oneDNN.
    """
    torch.manual_seed(0)
    model = gvcore.build_model(arch, 2).eval()
    lr = torch.rand(1, 3, 50, 60)
    with torch.no_grad():
        one = tiled_forward(model, lr, 2, tile=24, overlap=6, batch=1)
        four = tiled_forward(model, lr, 2, tile=24, overlap=6, batch=4)
    torch.testing.assert_close(four, one, rtol=0, atol=1e-5)


def test_tiles_of_one_shape_share_a_forward_call() -> None:
    model = _CountingModel(gvcore.build_model("espcn", 2).eval())
    lr = torch.rand(1, 3, 64, 64)  # 4 x 4 tiles of 16: windows 24, 32, 32, 24 per axis -> 4 shapes
    with torch.no_grad():
        tiled_forward(model, lr, 2, tile=16, overlap=8, batch=4)
    assert sum(model.batches) == 16
    assert max(model.batches) == 4
    assert len(model.batches) < 16


def test_bad_batch_is_refused() -> None:
    with pytest.raises(ValueError, match="batch"):
        tiled_forward(nn.Identity(), torch.rand(1, 3, 40, 40), 1, tile=16, batch=0)


def test_default_tile_batch_follows_the_device() -> None:
    assert default_tile_batch("cpu") == 1
    assert default_tile_batch(torch.device("cuda", 0)) > 1


class TestResolveDevice:
    def test_cpu(self) -> None:
        assert resolve_device("cpu") == "cpu"

    def test_auto_follows_cuda(self) -> None:
        assert resolve_device(" AUTO ") == ("cuda" if torch.cuda.is_available() else "cpu")

    def test_unknown_value_lists_the_valid_ones(self) -> None:
        with pytest.raises(ValueError, match=r"GVLAB_DEVICE must be one of auto, cpu, cuda; got 'gpu'"):
            resolve_device("gpu", "GVLAB_DEVICE")

    @pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
    def test_cuda_without_a_gpu(self) -> None:
        with pytest.raises(ValueError, match="no CUDA GPU is available"):
            resolve_device("cuda", "--device")


@pytest.fixture(scope="module")
def checkpoint_and_images(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("tile_batch")
    torch.manual_seed(3)
    ckpt = gvcore.save_checkpoint(root / "m.safetensors", gvcore.build_model("espcn", 2), label="m")
    images = root / "images"
    images.mkdir()
    rng = np.random.default_rng(3)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)).save(images / f"im{i}.png")
    return Path(ckpt), images


def test_eval_tile_batch_gives_the_same_csv(
    checkpoint_and_images: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt, images = checkpoint_and_images
    tables = []
    for batch in ("1", "4"):
        out = tmp_path / f"b{batch}.csv"
        args = ["eval", "--ckpt", str(ckpt), "--data", str(images), "--tile", "16", "--tile-batch", batch]
        assert main([*args, "--device", "cpu", "--csv", str(out), "--no-progress"]) == 0
        tables.append(pd.read_csv(out))
    capsys.readouterr()
    # outputs agree to ~1e-6 before the 8-bit rounding (test above), so the scores agree to float precision
    pd.testing.assert_frame_equal(tables[0], tables[1], check_exact=False, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--device", "tpu"], "--device must be one of auto, cpu, cuda; got 'tpu'"),
        (["--tile-batch", "0"], "--tile-batch must be a positive integer, got 0"),
    ],
)
def test_eval_refuses_bad_device_options(
    checkpoint_and_images: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    ckpt, images = checkpoint_and_images
    assert main(["eval", "--ckpt", str(ckpt), "--data", str(images), *extra, "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gvcore eval: error: ")
    assert len(err.splitlines()) == 1
    assert err.endswith(message)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_eval_cuda_without_a_gpu_is_a_clear_error(
    checkpoint_and_images: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt, images = checkpoint_and_images
    assert main(["eval", "--ckpt", str(ckpt), "--data", str(images), "--device", "cuda"]) == 2
    assert "--device=cuda was asked for but no CUDA GPU is available" in capsys.readouterr().err
