"""Optional LPIPS (``gvcore.eval.lpips``): off unless its weights are on the machine, never downloaded.

Without the weights there is a one-line note; when on, the ``lpips`` column goes through the one scoring path.
The wrapper is checked against the ``lpips`` package's own ``LPIPS`` module given identical, locally generated
(seeded random) weights: these tests say nothing about the real LPIPS numbers, which need the real weights.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gvcore
from gvcore.cli import main
from gvcore.eval import lpips as gv_lpips
from gvcore.eval.evaluate import evaluate

pytest.importorskip("torchvision", reason="LPIPS needs torchvision")


def random_weights(folder: Path) -> tuple[Path, Path]:
    """A seeded random AlexNet trunk in a torch-hub-like folder, and random heads.

    The trunk uses torchvision's key layout, the heads the lpips package's.
    """
    torch.manual_seed(7)
    from torchvision.models import alexnet

    trunk = alexnet(weights=None).state_dict()
    backbone = folder / "hub" / "checkpoints" / gv_lpips.ALEXNET_FILE
    backbone.parent.mkdir(parents=True)
    torch.save(trunk, backbone)
    heads = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate((64, 192, 384, 256, 256))}
    linear = folder / "alex.pth"
    torch.save(heads, linear)
    return backbone, linear


@pytest.fixture
def no_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))


@pytest.fixture
def seeded_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    backbone, linear = random_weights(tmp_path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # torch.hub.get_dir() = $TORCH_HOME/hub
    monkeypatch.setattr(gv_lpips, "linear_weights_path", lambda: linear)
    return backbone, linear


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("lpips_images")
    rng = np.random.default_rng(5)
    Image.fromarray(rng.integers(0, 256, (72, 96, 3), dtype=np.uint8)).save(folder / "a.png")
    return folder


def test_without_backbone_weights_it_is_off_with_a_note(no_weights: None) -> None:
    ok, note = gv_lpips.lpips_available()
    assert not ok
    assert note.startswith("LPIPS column off (nothing is downloaded at run time); to enable it:")
    assert gv_lpips.ALEXNET_FILE in note
    assert "\n" not in note


def test_evaluate_has_no_column_and_says_why(no_weights: None, images: Path) -> None:
    frame = evaluate([], images, 2, progress=False)
    assert "lpips" not in frame.columns
    assert frame.attrs["notes"] == [gv_lpips.lpips_available()[1]]
    with pytest.raises(ValueError, match="LPIPS column off"):
        evaluate([], images, 2, progress=False, lpips=True)


def test_cli_prints_the_note_once(no_weights: None, images: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--data", str(images), "--scale", "2", "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("gvcore eval: note: LPIPS column off") == 1
    assert "lpips" not in captured.out.splitlines()[0]


def test_load_lpips_refuses_missing_weights(no_weights: None, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="LPIPS column off"):
        gv_lpips.load_lpips(backbone=tmp_path / "nope.pth")


def test_bad_input_shapes_are_refused(seeded_weights: tuple[Path, Path]) -> None:
    model = gv_lpips.load_lpips()
    with pytest.raises(ValueError, match="at least 32x32"):
        model(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16))
    with pytest.raises(ValueError, match=r"must both be \(B, 3, H, W\)"):
        model(torch.rand(1, 3, 40, 40), torch.rand(1, 3, 40, 48))


@pytest.mark.filterwarnings("ignore::UserWarning")  # torchvision's 'pretrained' deprecation, inside lpips
def test_agrees_with_the_lpips_package_on_identical_weights(seeded_weights: tuple[Path, Path]) -> None:
    lpips = pytest.importorskip("lpips", reason="the lpips package is not installed (pip install lpips)")
    backbone, linear = seeded_weights
    assert gv_lpips.lpips_available()[0]
    ours = gv_lpips.load_lpips()
    theirs = lpips.LPIPS(pretrained=False, net="alex", version="0.1", pnet_rand=True, verbose=False)
    trunk = torch.load(backbone, weights_only=True)
    slices = {0: 1, 3: 2, 6: 3, 8: 4, 10: 5}  # features index -> lpips' alexnet slice
    mapped = {
        f"net.slice{slices[int(k.split('.')[1])]}.{k.split('.')[1]}.{k.split('.')[2]}": v
        for k, v in trunk.items()
        if k.startswith("features.")
    }
    missing, _ = theirs.load_state_dict(mapped | torch.load(linear, weights_only=True), strict=False)
    # lins.* are the same modules as lin0..lin4; the scaling layer's constants are built in
    assert not [k for k in missing if not k.startswith(("lins.", "scaling_layer."))]
    theirs.eval()
    gen = torch.Generator().manual_seed(3)
    x, y = torch.rand(2, 3, 64, 80, generator=gen), torch.rand(2, 3, 64, 80, generator=gen)
    with torch.no_grad():
        expected = theirs(x, y, normalize=True).flatten()
        got = ours(x, y)
    assert expected.min() > 0
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-7)
    assert float(ours(x, x).abs().max()) == 0.0


def test_evaluate_adds_an_lpips_column_through_the_scoring_path(
    seeded_weights: tuple[Path, Path], images: Path, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    ckpt = gvcore.save_checkpoint(tmp_path / "m.safetensors", gvcore.build_model("espcn", 2), label="m")
    frame = evaluate([ckpt], images, 2, progress=False)
    assert frame.attrs["notes"] == []
    by_method = frame.set_index("method")["lpips"]
    assert math.isnan(by_method["HR"])  # like PSNR/SSIM: nothing to compare HR with
    assert by_method["bicubic"] > 0
    assert by_method["m"] > 0
    from gvcore.data.sources import load_pairs, resolve_images
    from gvcore.protocol import upscale_baseline

    lr, hr = load_pairs(resolve_images(images, "test"), 2, "standard")[0].as_float()
    direct = float(gv_lpips.load_lpips()(upscale_baseline(lr, 2, "standard"), hr)[0])
    assert by_method["bicubic"] == pytest.approx(direct, rel=1e-6)
