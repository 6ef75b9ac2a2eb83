"""LPIPS (Zhang et al., CVPR 2018, v0.1, AlexNet trunk), optional: only from weights already on this machine.

LPIPS needs two sets of weights, and this module downloads neither:

- the trunk: torchvision's ImageNet AlexNet (``AlexNet_Weights.IMAGENET1K_V1``), read from the torch hub cache
  (``<torch.hub.get_dir()>/checkpoints/alexnet-owt-7be5be79.pth``, where torchvision itself caches it);
- the linear heads calibrated on human judgements, which the ``lpips`` PyPI package ships
  (``lpips/weights/v0.1/alex.pth``).

:func:`lpips_available` says whether both are present (and, if not, the one line that says how to enable it);
:func:`load_lpips` builds :class:`LPIPSAlex` from them; :func:`lpips_metrics` is the hook
:func:`gvcore.eval.scoring.score_outputs` takes (``extra=``), so the ``lpips`` column goes through the one scoring
path. Both weight files are pickles read with ``torch.load(weights_only=True)`` (tensors only, no code).

The computation is the package's ``lpips.LPIPS(net="alex", version="0.1")`` forward (tested against it with
identical seeded weights): inputs in [0, 1] mapped to [-1, 1], the package's scaling layer, AlexNet's five ReLU
outputs, each unit-normalised over channels, squared difference, a 1x1 linear head, spatial mean, sum over
layers. RGB, whole image, no border crop (as BasicSR's ``calculate_lpips``). Lower is more similar.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

__all__ = [
    "ALEXNET_FILE",
    "LPIPSAlex",
    "backbone_weights_path",
    "linear_weights_path",
    "load_lpips",
    "lpips_available",
    "lpips_metrics",
]

#: torchvision's ImageNet AlexNet weights file, as torchvision names it in the torch hub cache.
ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
#: channels of AlexNet's five ReLU outputs LPIPS compares, and their indices in ``alexnet().features``.
_CHANNELS = (64, 192, 384, 256, 256)
_TAPS = (1, 4, 7, 9, 11)
_EPS = 1e-10  # lpips.normalize_tensor's


def backbone_weights_path() -> Path:
    """Where the AlexNet trunk is looked for: ``<torch.hub.get_dir()>/checkpoints/alexnet-owt-7be5be79.pth``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_FILE


def linear_weights_path() -> Path | None:
    """The linear heads shipped in the installed ``lpips`` package (``weights/v0.1/alex.pth``).

    ``None`` when the package is not installed. The package is located, not imported.
    """
    spec = importlib.util.find_spec("lpips")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent / "weights" / "v0.1" / "alex.pth"


def lpips_available() -> tuple[bool, str]:
    """Whether LPIPS can be computed here without downloading anything, and a one-line note saying why not.

    Returns:
        ``(True, what is used)`` or ``(False, how to enable it)``.
    """
    missing = []
    linear = linear_weights_path()
    if linear is None or importlib.util.find_spec("torchvision") is None:
        missing.append("`pip install lpips` (it keeps the installed torch and torchvision)")
    elif not linear.is_file():
        missing.append(f"the lpips package's linear weights ({linear} is missing: reinstall lpips)")
    backbone = backbone_weights_path()
    if not backbone.is_file():
        missing.append(
            f"torchvision's AlexNet weights at {backbone} (e.g. copy {ALEXNET_FILE} there, or run "
            "`python -c 'import torchvision; torchvision.models.alexnet(weights=\"DEFAULT\")'` once online)"
        )
    if missing:
        return False, "LPIPS column off (nothing is downloaded at run time); to enable it: " + "; ".join(
            missing
        )
    return True, f"LPIPS v0.1 (AlexNet) from {backbone} and {linear}"


class LPIPSAlex(nn.Module):
    """LPIPS v0.1 with the AlexNet trunk: ``forward(x, y)`` of ``(B, 3, H, W)`` images in [0, 1] -> ``(B,)``.

    Built with random weights; :func:`load_lpips` fills them from disk. Images need H, W >= 32 (AlexNet's
    stride-4 11x11 stem and two 3x3 pools).
    """

    shift: torch.Tensor
    scale: torch.Tensor

    def __init__(self) -> None:
        """An untrained LPIPS network (torchvision's AlexNet ``features`` up to ``relu5``, five 1x1 heads)."""
        super().__init__()
        from torchvision.models import alexnet

        self.features = alexnet(weights=None).features[: _TAPS[-1] + 1]
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in _CHANNELS)
        self.register_buffer(
            "shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def _taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = ((2 * x - 1) - self.shift) / self.scale
        taps = []
        for index, layer in enumerate(self.features):
            h = layer(h)
            if index in _TAPS:
                taps.append(h / (h.pow(2).sum(dim=1, keepdim=True).sqrt() + _EPS))
        return taps

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """LPIPS distance of each pair of ``(B, 3, H, W)`` images in [0, 1]; ``(B,)``, 0 for identical images."""
        if x.shape != y.shape or x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"x and y must both be (B, 3, H, W); got {tuple(x.shape)} and {tuple(y.shape)}")
        if min(x.shape[-2:]) < 32:
            raise ValueError(f"LPIPS needs images of at least 32x32 pixels; got {x.shape[-1]}x{x.shape[-2]}")
        total = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for lin, a, b in zip(self.lins, self._taps(x), self._taps(y)):
            total = total + lin((a - b) ** 2).mean(dim=(1, 2, 3))
        return total


def load_lpips(backbone: Path | None = None, linear: Path | None = None, device: str = "cpu") -> LPIPSAlex:
    """:class:`LPIPSAlex` with weights read from disk.

    Args:
        backbone: torchvision's AlexNet state dict (default :func:`backbone_weights_path`).
        linear: the lpips package's ``alex.pth`` heads (default :func:`linear_weights_path`).
        device: where the network goes.

    Returns:
        The network, in eval mode, gradients off.

    Raises:
        FileNotFoundError: a weight file is missing (the message says how to enable LPIPS).
        ValueError: a weight file does not hold the expected tensors.
    """
    backbone = backbone or backbone_weights_path()
    linear = linear or linear_weights_path()
    if linear is None or not linear.is_file() or not backbone.is_file():
        raise FileNotFoundError(lpips_available()[1])
    trunk = torch.load(backbone, map_location="cpu", weights_only=True)
    heads = torch.load(linear, map_location="cpu", weights_only=True)
    model = LPIPSAlex()
    try:
        model.features.load_state_dict(
            {k.removeprefix("features."): v for k, v in trunk.items() if k.startswith("features.")}
        )
        model.lins.load_state_dict(
            {f"{i}.weight": heads[f"lin{i}.model.1.weight"] for i in range(len(_CHANNELS))}
        )
    except (KeyError, RuntimeError, AttributeError) as err:
        raise ValueError(f"unexpected LPIPS weights in {backbone} / {linear}: {err}") from err
    return model.to(device)


def lpips_metrics(
    device: str = "cpu",
) -> tuple[dict[str, Callable[[torch.Tensor, torch.Tensor], float]], str]:
    """The hook for :func:`gvcore.eval.scoring.score_outputs`'s ``extra``, with a one-line note.

    ``({"lpips": scorer}, note)`` when LPIPS is available, else ``({}, note)`` where the note says how to enable
    it.

    The scorer takes ``(1, 3, H, W)`` output and HR (as scored: score-ready output, cropped HR) and returns a
    float; it runs on ``device``.
    """
    ok, note = lpips_available()
    if not ok:
        return {}, note
    model = load_lpips(device=device)

    @torch.no_grad()
    def score(out: torch.Tensor, hr: torch.Tensor) -> float:
        return float(model(out.float().to(device), hr.float().to(device))[0])

    return {"lpips": score}, note
