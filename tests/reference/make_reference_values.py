"""Regenerate ``tests/reference/values.json`` from the independent numpy references.

Run from the repository root (rerunnable, deterministic; needs only numpy and scipy)::

    .venv/bin/python tests/reference/make_reference_values.py

The JSON holds PSNR/SSIM of seeded image pairs (``inputs.image_pair``) under the BasicSR protocol, the official
GV protocol and plain RGB, computed by ``basicsr_protocol.py``, and full MATLAB-bicubic outputs of small seeded
images (``inputs.float_image``) computed by ``matlab_imresize.py``. ``tests/test_metrics.py`` and
``tests/test_resize.py`` compare ``gvcore`` against these stored numbers and against the live references.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # the repository root, for `tests.reference`
OUT = HERE / "values.json"

#: (seed, height, width, scale)
METRIC_CASES = [(0, 48, 40, 2), (1, 37, 53, 3), (2, 64, 64, 4), (3, 31, 29, 4)]
#: (seed, height, width, scale) -- sizes deliberately not divisible by the scale
RESIZE_CASES = [
    (10, 11, 13, 1 / 2),
    (11, 11, 13, 1 / 3),
    (12, 14, 11, 1 / 4),
    (13, 7, 6, 2),
    (14, 7, 6, 3),
    (15, 5, 7, 4),
]
#: (seed, height, width, (out_h, out_w)) -- MATLAB's per-axis scales from an output size
RESIZE_SIZE_CASES = [(16, 9, 12, (5, 20))]


def compute() -> dict:
    from tests.reference import basicsr_protocol as ref
    from tests.reference import inputs
    from tests.reference import matlab_imresize as rs

    metrics = []
    for seed, h, w, scale in METRIC_CASES:
        sr, hr = inputs.image_pair(seed, h, w)
        std = ref.protocol_metrics(sr, hr, scale, "standard")
        off = ref.protocol_metrics(sr, hr, scale, "official")
        metrics.append(
            {
                "seed": seed,
                "height": h,
                "width": w,
                "scale": scale,
                "standard": {"psnr": std[0], "ssim": std[1]},
                "official": {"psnr": off[0], "ssim": off[1]},
                "rgb_crop0": {"psnr": ref.calculate_psnr(sr, hr), "ssim": ref.calculate_ssim(sr, hr)},
            }
        )
    resize = []
    for seed, h, w, scale in RESIZE_CASES:
        img = inputs.float_image(seed, h, w, channels=1)
        out = rs.imresize_reference(img[0], scale)
        resize.append({"seed": seed, "height": h, "width": w, "scale": scale, "output": out.tolist()})
    for seed, h, w, size in RESIZE_SIZE_CASES:
        img = inputs.float_image(seed, h, w, channels=1)
        out = rs.imresize_reference(img[0], size=size)
        resize.append({"seed": seed, "height": h, "width": w, "size": list(size), "output": out.tolist()})
    return {
        "generator": "tests/reference/make_reference_values.py",
        "metrics": metrics,
        "imresize": resize,
    }


def main() -> None:
    OUT.write_text(json.dumps(compute(), indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
