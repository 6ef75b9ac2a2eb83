"""A tiny stand-in for ``assets/`` (checkpoints, results, runs) so the dashboard tests need no reproduction.

:func:`make_fixture_assets` writes, under a folder:

- ``checkpoints/``: an L1 and an L1+GV ESPCN at x2 (random but seeded weights, our safetensors format);
  ``checkpoints/official/`` the same pair marked as trained on the official degradation; ``checkpoints/sweep/``
  three ESPCN x2 sweep points (λ = 0, 0.1, 1);
- ``results/``: ``eval_standard.csv``, ``eval_official.csv`` (real ``gvcore eval`` output on three bundled
  test images), ``paired.csv`` (:func:`gvcore.eval.stats.paired_table` of them), ``summary.md``,
  ``lambda_sweep.csv``, ``reproduce_meta.json``, ``logs/*.csv`` (as ``gvcore reproduce``);
- ``runs/``: two run directories (L1 and L1+GV) with ``log.csv`` and ``config.json``.

The training logs and the λ-sweep table are synthetic (deterministic); the evaluation tables are real.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

ARCH = "espcn"
SCALE = 2
LABELS = {0.0: "ESPCN L1 x2", 0.1: "ESPCN L1+GV x2"}
IMAGES = ("camera", "text", "coins")


def _official_and_sweep_checkpoints(root: Path) -> None:
    import gvcore

    (root / "checkpoints" / "official").mkdir(exist_ok=True)
    (root / "checkpoints" / "sweep").mkdir(exist_ok=True)
    for gv_weight, label in LABELS.items():
        torch.manual_seed(int(gv_weight * 10) + 5)
        name = f"{ARCH}_x{SCALE}_{'l1gv' if gv_weight else 'l1'}_official.safetensors"
        gvcore.save_checkpoint(
            root / "checkpoints" / "official" / name,
            gvcore.build_model(ARCH, SCALE),
            loss={"pixel": "l1", "gv_weight": gv_weight},
            seed=0,
            label=f"{label} official",
            degradation="official",
        )
    for gv_weight in (0.0, 0.1, 1.0):
        torch.manual_seed(int(gv_weight * 10) + 11)
        gvcore.save_checkpoint(
            root / "checkpoints" / "sweep" / f"{ARCH}-x{SCALE}-w{gv_weight:g}-s0.safetensors",
            gvcore.build_model(ARCH, SCALE),
            loss={"pixel": "l1", "gv_weight": gv_weight},
            seed=0,
            label=f"{ARCH}-x{SCALE} λ={gv_weight:g}-s0",
            degradation="standard",
        )


def make_fixture_assets(root: Path) -> Path:
    """Write the fixture assets under ``root`` and return ``root``."""
    import gvcore

    (root / "checkpoints").mkdir(parents=True, exist_ok=True)
    (root / "results").mkdir(parents=True, exist_ok=True)
    for gv_weight, label in LABELS.items():
        torch.manual_seed(int(gv_weight * 10))
        model = gvcore.build_model(ARCH, SCALE)
        loss = {"pixel": "l1", "gv_weight": gv_weight, "gv_patch_size": 8}
        name = f"{ARCH}_x{SCALE}_{'l1gv' if gv_weight else 'l1'}.safetensors"
        gvcore.save_checkpoint(
            root / "checkpoints" / name,
            model,
            loss=loss,
            data="bundled",
            steps=10,
            seed=0,
            metrics={"psnr": 30.0 + gv_weight},
            label=label,
            degradation="standard",
        )
    _official_and_sweep_checkpoints(root)
    from gvcore.data.bundled import bundled_image_paths
    from gvcore.eval.evaluate import evaluate, write_csv
    from gvcore.eval.stats import paired_table

    images = root / "images"
    images.mkdir(exist_ok=True)
    for path in bundled_image_paths("test"):
        if path.stem in IMAGES:
            (images / path.name).write_bytes(path.read_bytes())
    tables = []
    for protocol, folder in (
        ("standard", root / "checkpoints"),
        ("official", root / "checkpoints" / "official"),
    ):
        ckpts = sorted(folder.glob("*.safetensors"))
        table = evaluate(ckpts, images, SCALE, protocol, progress=False)  # type: ignore[arg-type]
        write_csv(table, root / "results" / f"eval_{protocol}.csv")
        tables.append(table)
    write_csv(paired_table(pd.concat(tables), resamples=1000), root / "results" / "paired.csv")
    (root / "results" / "summary.md").write_text("# Fixture summary\n\nSynthetic numbers for tests.\n")
    pd.DataFrame(
        {
            "scale": SCALE,
            "lambda": [0.0, 0.1, 1.0],
            "psnr": [29.0, 29.1, 28.7],
            "ssim": [0.85, 0.86, 0.85],
            "var_ratio": [0.55, 0.71, 0.83],
            "gv_distance": [0.05, 0.04, 0.035],
        }
    ).to_csv(root / "results" / "lambda_sweep.csv", index=False)
    (root / "results" / "reproduce_meta.json").write_text(json.dumps({"fixture": True, "lambda": 0.1}))
    for gv_weight in LABELS:
        run = root / "runs" / f"{ARCH}_x{SCALE}_{'l1gv' if gv_weight else 'l1'}"
        run.mkdir(parents=True, exist_ok=True)
        steps = np.arange(0, 200, 20)
        log = pd.DataFrame(
            {
                "step": steps,
                "epoch": steps // 100,
                "lr": 1e-3,
                "loss": 0.1 / (1 + steps / 50) + gv_weight * 0.01,
                "loss_pixel": 0.1 / (1 + steps / 50),
                "loss_gv": (0.05 / (1 + steps / 80)) if gv_weight else 0.0,
                "elapsed_s": steps * 0.1,
            }
        )
        for column, values in (
            ("val_psnr", 25 + steps / 40),
            ("val_ssim", 0.7 + steps / 2000),
            ("val_gv", 0.1 / (1 + steps / 100)),
            ("val_var_ratio", 0.5 + steps / 1000),
        ):
            log[column] = np.where(steps % 40 == 0, values, np.nan)
        log.to_csv(run / "log.csv", index=False)
        (root / "results" / "logs").mkdir(exist_ok=True)
        log.to_csv(root / "results" / "logs" / f"{run.name}.csv", index=False)  # the shipped copies
        (run / "config.json").write_text(json.dumps({"arch": ARCH, "scale": SCALE, "gv_weight": gv_weight}))
    return root


def image_sized_arrays(height: int, width: int) -> list[str]:
    """Every live tensor or numpy array with both ``height`` and ``width`` in its shape (after a collection)."""
    gc.collect()
    found, seen = [], set()
    for holder in gc.get_objects():
        for obj in (holder, *gc.get_referents(holder)):
            if id(obj) in seen or not issubclass(type(obj), (np.ndarray, torch.Tensor)):
                continue
            seen.add(id(obj))
            if {height, width} <= set(obj.shape):
                found.append(f"{type(obj).__name__}{tuple(obj.shape)} held by {type(holder).__name__}")
    return found


def rect_png(seed: int, height: int, width: int) -> bytes:
    """A seeded random ``height x width`` RGB PNG."""
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


@contextlib.contextmanager
def serving_environment(
    factory: pytest.TempPathFactory, *, data_roots: bool = False, empty_results_db: bool = False
) -> Iterator[Path]:
    """The fixture assets in ``GVLAB_ASSETS`` (and their runs in ``GVLAB_RUNS``) while the block runs.

    ``data_roots``: a server data root holding one set of two 48x64 images (``GVLAB_DATA_ROOTS``);
    ``empty_results_db``: a results database path where none exists yet (``GVLAB_RESULTS_DB``).
    Yields the assets root; every variable is restored afterwards.
    """
    root = make_fixture_assets(factory.mktemp("assets"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GVLAB_ASSETS", str(root))
        patch.setenv("GVLAB_RUNS", str(root / "runs"))
        if data_roots:
            data = factory.mktemp("data")
            (data / "set").mkdir()
            for index in range(2):
                rng = np.random.default_rng(index)
                Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(
                    data / "set" / f"img{index}.png"
                )
            patch.setenv("GVLAB_DATA_ROOTS", str(data))
        if empty_results_db:
            patch.setenv("GVLAB_RESULTS_DB", str(factory.mktemp("db") / "none.sqlite"))
        yield root


@dataclass(frozen=True)
class ShownTable:
    """A static table of a page as ``AppTest`` sees it (:func:`dashboard.widgets.html_table`, read back).

    ``text``: each cell's text as the reader sees it ("—" for an empty cell; a link cell's URL); ``value``: the same
    read as a CSV would be (numbers as numbers, "—" empty), which is the page's data, floats to the last digit.
    """

    text: pd.DataFrame
    value: pd.DataFrame


class _TableParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "a" and self._cell is not None:  # a link cell reads as its URL, not its text
            self._cell.append((dict(attrs).get("href") or "") + "\x00")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).split("\x00")[0])
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def tables(at: Any) -> list[ShownTable]:
    """The page's static tables, in page order (what ``at.table`` was before the tables became HTML)."""
    import csv

    shown = []
    for element in at.get("html"):
        body = str(element.proto.body)
        if 'class="gv-table"' not in body:
            continue
        parser = _TableParser()
        parser.feed(body)
        header, *rows = parser.rows
        text = pd.DataFrame(rows, columns=header)
        buffer = io.StringIO()
        csv.writer(buffer).writerows([header, *rows])
        value = pd.read_csv(io.StringIO(buffer.getvalue()), keep_default_na=False, na_values=["—"])
        shown.append(ShownTable(text, value))
    return shown


def open_details(at: Any, key: str) -> Any:
    """Open the lazy expander ``key`` (:func:`dashboard.widgets.details`) as a click would, and rerun the page."""
    at.session_state[key] = True
    return at.run()


@dataclass(frozen=True)
class ShownChart:
    """A chart of the page (:func:`dashboard.charts.plot`): its element id (ends in ``-KEY``) and Plotly JSON."""

    id: str
    spec: str

    @property
    def figure(self) -> dict[str, Any]:
        return dict(json.loads(self.spec))


def charts(at: Any) -> list[ShownChart]:
    """The page's charts, in page order (what ``at.get("plotly_chart")`` was before they became a component)."""
    from dashboard.charts import COMPONENT_NAME

    return [
        ShownChart(str(element.proto.id), str(json.loads(element.proto.json)["figure"]))
        for element in at.get("bidi_component")
        if element.proto.component_name == COMPONENT_NAME
    ]
