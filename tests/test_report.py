"""``gvcore report`` and ``gvcore atlas`` on the command line.

The file, --force, refusals (exit 2, one line), the size budget, and what makes the report self-contained
(plotly.js embedded once, no external resource, a CSP).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from gvcore.cli import main

pytest.importorskip("plotly")

ROOT = Path(__file__).resolve().parents[1]
CKPTS = ROOT / "assets" / "checkpoints"
L1 = str(CKPTS / "espcn-x2-l1-s0.safetensors")
GV = str(CKPTS / "espcn-x2-l1-gv-s0.safetensors")
SWEEP = [str(CKPTS / "sweep" / f"espcn-x2-{n}-s0.safetensors") for n in ("l1-w0", "l1-gv-w0.1", "l1-gv-w1")]


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report_images")
    rng = np.random.default_rng(3)
    for i in range(2):
        block = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
        Image.fromarray(np.kron(block, np.ones((4, 4, 1), dtype=np.uint8))).save(folder / f"im{i}.png")
    return folder


def _report_args(data: Path | str, out: Path, *extra: str) -> list[str]:
    return ["report", "--ckpt", L1, "--ckpt", GV, "--data", str(data), "--scale", "2", "--out", str(out),
            "--top-k", "3", "--no-progress", *extra]  # fmt: skip


def _error(capsys: pytest.CaptureFixture[str], args: list[str]) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def report(images: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    assert main(_report_args(images, out)) == 0
    return out


class TestReportFile:
    def test_written(self, report: Path) -> None:
        assert report.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")

    def test_plotly_js_embedded_once(self, report: Path) -> None:
        from plotly.offline import get_plotlyjs

        assert report.read_text(encoding="utf-8").count(get_plotlyjs()[:200]) == 1

    def test_no_external_resource(self, report: Path) -> None:
        text = report.read_text(encoding="utf-8")
        assert re.findall(r"<(?:script|img|link|iframe)[^>]*\s(?:src|href)=\"(?!data:)", text) == []

    def test_csp_forbids_requests(self, report: Path) -> None:
        assert "default-src 'none'" in report.read_text(encoding="utf-8")

    def test_images_are_png_data_uris(self, report: Path) -> None:
        text = report.read_text(encoding="utf-8")
        assert len(re.findall(r'<img alt="[^"]*" src="data:image/png;base64,', text)) >= 3 * 4

    def test_sections(self, report: Path) -> None:
        text = report.read_text(encoding="utf-8")
        for heading in (
            "Metrics (mean over images)",
            "Paired statistics",
            "The observation",
            "Atlas gallery",
        ):
            assert heading in text

    def test_command_is_recorded(self, report: Path) -> None:
        text = report.read_text(encoding="utf-8")
        assert f"gvcore report --ckpt {L1} --ckpt {GV}" in text

    def test_metrics_match_gvcore_eval(self, report: Path, images: Path) -> None:
        from gvcore.eval.evaluate import evaluate, summarize

        means = summarize(evaluate([L1, GV], images, 2, progress=False))
        psnr = means.loc[means["method"] == "espcn-x2-l1-s0", "psnr"].iloc[0]
        assert f"<td>{psnr:.4g}</td>" in report.read_text(encoding="utf-8")


class TestOverwrite:
    def test_existing_file_is_refused(
        self, capsys: pytest.CaptureFixture[str], images: Path, tmp_path: Path
    ) -> None:
        out = tmp_path / "r.html"
        out.write_text("keep me")
        assert "exists; pass --force" in _error(capsys, _report_args(images, out))
        assert out.read_text() == "keep me"

    def test_force_overwrites(self, images: Path, tmp_path: Path) -> None:
        out = tmp_path / "r.html"
        out.write_text("old")
        assert main(_report_args(images, out, "--force", "--image", "im0", "--top-k", "1")) == 0
        assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


class TestRefusals:
    @pytest.mark.parametrize(
        ("extra", "match"),
        [
            (["--top-k", "257"], "top_k must be at most 256"),
            (["--protocol", "matlab"], "protocol"),
            (["--direction", "up"], "direction"),
            (["--image", "missing"], "missing not in the data set"),
            (["--max-mb", "0"], "--max-mb must be positive"),
        ],
    )
    def test_bad_options(
        self, capsys: pytest.CaptureFixture[str], images: Path, tmp_path: Path, extra: list[str], match: str
    ) -> None:
        out = tmp_path / "r.html"
        assert match in _error(capsys, _report_args(images, out, *extra))
        assert not out.exists()

    def test_too_many_checkpoints(
        self, capsys: pytest.CaptureFixture[str], images: Path, tmp_path: Path
    ) -> None:
        args = _report_args(images, tmp_path / "r.html")
        for _ in range(7):
            args += ["--ckpt", L1]
        assert "1 to 8 checkpoints; got 9" in _error(capsys, args)

    def test_no_checkpoint(self, capsys: pytest.CaptureFixture[str], images: Path, tmp_path: Path) -> None:
        args = ["report", "--data", str(images), "--scale", "2", "--out", str(tmp_path / "r.html")]
        assert "1 to 8 checkpoints; got 0" in _error(capsys, args)

    def test_corrupt_checkpoint(
        self, capsys: pytest.CaptureFixture[str], images: Path, tmp_path: Path
    ) -> None:
        bad = tmp_path / "bad.safetensors"
        bad.write_bytes(b"\x00" * 64)
        args = [
            "report",
            "--ckpt",
            str(bad),
            "--data",
            str(images),
            "--scale",
            "2",
            "--out",
            str(tmp_path / "r.html"),
        ]
        assert "bad.safetensors" in _error(capsys, args)

    def test_hostile_checkpoint(
        self, capsys: pytest.CaptureFixture[str], images: Path, tmp_path: Path
    ) -> None:
        import pickle

        marker = tmp_path / "ran"

        class Payload:
            def __reduce__(self) -> tuple[object, tuple[str]]:
                return (Path.touch, (str(marker),))  # type: ignore[return-value]

        hostile = tmp_path / "hostile.pth"
        hostile.write_bytes(pickle.dumps({"weight": Payload()}, protocol=2))
        args = [
            "report",
            "--ckpt",
            str(hostile),
            "--data",
            str(images),
            "--scale",
            "2",
            "--out",
            str(tmp_path / "r.html"),
        ]
        assert "hostile.pth" in _error(capsys, args)
        assert not marker.exists()

    def test_corrupt_image(self, capsys: pytest.CaptureFixture[str], images: Path, tmp_path: Path) -> None:
        folder = tmp_path / "data"
        folder.mkdir()
        (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
        assert "broken.png" in _error(capsys, _report_args(folder, tmp_path / "r.html"))
        assert not (tmp_path / "r.html").exists()

    def test_missing_data(self, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
        assert "does not exist" in _error(capsys, _report_args(tmp_path / "none", tmp_path / "r.html"))

    def test_out_is_a_folder(self, capsys: pytest.CaptureFixture[str], images: Path, tmp_path: Path) -> None:
        assert "it is a folder" in _error(capsys, _report_args(images, tmp_path))

    def test_out_folder_missing(
        self, capsys: pytest.CaptureFixture[str], images: Path, tmp_path: Path
    ) -> None:
        assert "does not exist" in _error(capsys, _report_args(images, tmp_path / "no" / "r.html"))

    def test_over_budget(self, capsys: pytest.CaptureFixture[str], images: Path, tmp_path: Path) -> None:
        out = tmp_path / "r.html"
        message = _error(capsys, _report_args(images, out, "--max-mb", "1"))
        assert "over the budget of 1.0 MB" in message
        assert not out.exists()

    def test_without_plotly(
        self,
        capsys: pytest.CaptureFixture[str],
        images: Path,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setitem(sys.modules, "dashboard.report", None)
        assert "pip install 'gvcore[dashboard]'" in _error(capsys, _report_args(images, tmp_path / "r.html"))


class TestBudget:
    def test_crops_are_downsampled_to_fit(self, images: Path) -> None:
        from dashboard.report import render_report
        from gvcore.eval.atlas import build_atlas, load_checkpoints

        models, infos = load_checkpoints([L1, GV], 2, "standard")
        result = build_atlas(models, images, 2, infos=infos, top_k=4, region=8)
        full = render_report(result, models, images)
        smaller = render_report(result, models, images, max_bytes=len(full.encode()) - 1)
        assert "Crops downsampled 2x" in smaller

    def test_bundled_report_with_sweep_fits_20_mb(self, tmp_path: Path) -> None:
        out = tmp_path / "bundled.html"
        extra = ["--image", "text", "--top-k", "4"] + [a for s in SWEEP for a in ("--sweep", s)]
        assert main(_report_args("bundled", out, *extra)) == 0
        text = out.read_text(encoding="utf-8")
        assert out.stat().st_size <= 20 * 2**20
        assert "λ sweep" in text


class TestAtlasCommand:
    def test_csv(self, capsys: pytest.CaptureFixture[str], images: Path, tmp_path: Path) -> None:
        csv, table = tmp_path / "regions.csv", tmp_path / "table.csv"
        args = ["atlas", "--ckpt", L1, "--ckpt", GV, "--data", str(images), "--scale", "2", "--top-k", "2",
                "--csv", str(csv), "--table-csv", str(table), "--no-progress"]  # fmt: skip
        assert main(args) == 0
        frame = pd.read_csv(csv)
        assert frame.groupby("ranking").size().max() == 2
        assert set(pd.read_csv(table)["image"]) == {"im0", "im1"}
        assert "| worst | 1 |" in capsys.readouterr().out

    def test_deficit_filter(self, images: Path, tmp_path: Path) -> None:
        csv = tmp_path / "regions.csv"
        args = ["atlas", "--ckpt", L1, "--data", str(images), "--scale", "2", "--top-k", "50",
                "--ranking", "worst", "--csv", str(csv), "--no-progress"]  # fmt: skip
        assert main(args) == 0
        every = pd.read_csv(csv)["score"].sort_values().to_numpy()
        low, high = every[len(every) // 4], every[len(every) // 2]
        assert main([*args, "--deficit-min", str(low), "--deficit-max", str(high)]) == 0
        scores = pd.read_csv(csv)["score"]
        assert len(scores) > 0  # (not fewer than unfiltered: neighbours suppressed there may be kept here)
        assert scores.between(low, high).all()

    def test_unknown_ranking(self, capsys: pytest.CaptureFixture[str], images: Path) -> None:
        args = [
            "atlas",
            "--ckpt",
            L1,
            "--data",
            str(images),
            "--scale",
            "2",
            "--ranking",
            "best",
            "--no-progress",
        ]
        assert "ranking" in _error(capsys, args)
