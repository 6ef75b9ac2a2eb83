"""Checkpoints: our format round trip, atomic writes, foreign state dicts, spandrel, and refusing bad files."""

from __future__ import annotations

import errno
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

import pytest
import torch
from safetensors.torch import save_file

import gvcore
from gvcore import atomic
from gvcore.checkpoint import store as checkpoint
from gvcore.checkpoint.store import CHECKPOINT_FORMAT, CheckpointError, load_model, save_checkpoint
from gvcore.models import build_model

PNG_BYTES = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(64))


def _output(model: torch.nn.Module, seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)
    with torch.no_grad():
        return model.eval()(torch.rand(1, 3, 6, 5))


# --------------------------------------------------------------------------------------- our format
@pytest.mark.parametrize(("name", "scale"), [("vdsr-lite", 3), ("edsr-lite", 4), ("espcn", 2), ("edsr", 2)])
def test_round_trip_our_format(tmp_path: Path, name: str, scale: int) -> None:
    torch.manual_seed(0)
    model = build_model(name, scale)
    path = save_checkpoint(
        tmp_path / "run.safetensors",
        model,
        loss={"pixel": "l1", "gv_weight": 0.1, "gv_patch_size": 8},
        data="bundled",
        steps=120,
        seed=7,
        metrics={"psnr": 28.5, "ssim": 0.81},
        label="L1+GV",
    )
    loaded, meta = load_model(path, scale=scale)
    assert not loaded.training
    assert loaded.scale == scale
    assert loaded.arch == name
    torch.testing.assert_close(_output(loaded), _output(model), rtol=0, atol=0)
    assert meta["format"] == CHECKPOINT_FORMAT
    assert meta["source"] == "gvcore"
    assert meta["arch"] == name
    assert meta["arch_kwargs"] == {}
    assert meta["scale"] == scale
    assert meta["loss"] == {"pixel": "l1", "gv_weight": 0.1, "gv_patch_size": 8}
    assert (meta["data"], meta["steps"], meta["seed"], meta["label"]) == ("bundled", 120, 7, "L1+GV")
    assert meta["metrics"] == {"psnr": 28.5, "ssim": 0.81}
    assert meta["gvcore_version"] == gvcore.__version__


def test_round_trip_half_and_kwargs(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model("edsr-lite", 2, num_blocks=2)
    save_checkpoint(tmp_path / "m.safetensors", model, half=True)
    loaded, meta = load_model(tmp_path / "m.safetensors", device=torch.device("cpu"))
    assert meta["arch_kwargs"] == {"num_blocks": 2}
    assert meta["label"] == "m"
    assert meta["steps"] is None
    assert meta["loss"] is None
    assert meta["dtype"] == "float16"
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    torch.testing.assert_close(_output(loaded), _output(model), rtol=2e-3, atol=2e-3)


def test_save_rejects_bad_arguments(tmp_path: Path) -> None:
    model = build_model("espcn", 2)
    with pytest.raises(CheckpointError, match=r"must end in \.safetensors"):
        save_checkpoint(tmp_path / "m.pth", model)
    with pytest.raises(CheckpointError, match="arch must be one of"):
        save_checkpoint(tmp_path / "m.safetensors", torch.nn.Conv2d(3, 3, 1), scale=2)
    with pytest.raises(CheckpointError, match="metrics must be JSON-serialisable"):
        save_checkpoint(tmp_path / "m.safetensors", model, metrics={"psnr": torch.tensor(1.0)})
    with pytest.raises(CheckpointError, match="does not exist"):
        save_checkpoint(tmp_path / "missing" / "m.safetensors", model)
    assert list(tmp_path.iterdir()) == []


def test_disk_full_keeps_previous_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "last.safetensors"
    save_checkpoint(path, build_model("espcn", 2), steps=1)
    before = path.read_bytes()

    def disk_full(handle: IO[bytes], payload: bytes) -> None:
        handle.write(payload[: len(payload) // 2])  # a partial write, then the disk is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint, "_write_all", disk_full)
    with pytest.raises(CheckpointError, match=r"No space left on device.*unchanged"):
        save_checkpoint(path, build_model("espcn", 2), steps=2)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.safetensors"], "the temp file must be removed"
    assert load_model(path)[1]["steps"] == 1


def test_unwritable_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(atomic.tempfile, "mkstemp", denied)  # what a read-only directory does, even as root
    with pytest.raises(CheckpointError, match=r"is not writable .Permission denied"):
        save_checkpoint(tmp_path / "m.safetensors", build_model("espcn", 2))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_directory(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(CheckpointError, match="not writable"):
            save_checkpoint(locked / "m.safetensors", build_model("espcn", 2))
    finally:
        locked.chmod(0o700)


def test_scale_and_arch_mismatch(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "m.safetensors", build_model("espcn", 4))
    with pytest.raises(CheckpointError, match=r"asked for x2 .* x4 checkpoint"):
        load_model(path, scale=2)
    with pytest.raises(CheckpointError, match="architecture mismatch"):
        load_model(path, arch="vdsr")


# ------------------------------------------------------------------------------- foreign state dicts
def test_basicsr_edsr_nested_params_ema(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model("edsr", 3, num_blocks=2, num_features=16)
    torch.save({"params": {}, "params_ema": model.state_dict()}, tmp_path / "EDSR_Mx3_f16b2.pth")
    loaded, meta = load_model(tmp_path / "EDSR_Mx3_f16b2.pth")
    assert meta == {
        "arch": "edsr",
        "arch_kwargs": {"num_blocks": 2, "num_features": 16, "channels": 3},
        "scale": 3,
        "source": "state_dict",
        "label": "EDSR_Mx3_f16b2",
    }
    torch.testing.assert_close(_output(loaded), _output(model), rtol=0, atol=0)
    with pytest.raises(CheckpointError, match=r"asked for x2 .* x3 checkpoint"):
        load_model(tmp_path / "EDSR_Mx3_f16b2.pth", scale=2)


def test_official_gv_vdsr_scale_from_name_or_argument(tmp_path: Path) -> None:
    model = build_model("vdsr", 2, out_channels=1)
    torch.save(model.state_dict(), tmp_path / "vdsr_2x.pth")
    loaded, meta = load_model(tmp_path / "vdsr_2x.pth")
    assert meta["scale"] == 2
    assert meta["arch_kwargs"]["out_channels"] == 1
    torch.testing.assert_close(_output(loaded), _output(model), rtol=0, atol=0)
    torch.save(model.state_dict(), tmp_path / "weights.pth")
    with pytest.raises(CheckpointError, match="pass scale="):
        load_model(tmp_path / "weights.pth")
    assert load_model(tmp_path / "weights.pth", scale=4)[0].scale == 4


def test_foreign_safetensors_espcn(tmp_path: Path) -> None:
    model = build_model("espcn", 4)
    save_file(model.state_dict(), str(tmp_path / "espcn.safetensors"), metadata={"format": "pt"})
    loaded, meta = load_model(tmp_path / "espcn.safetensors")
    assert (meta["arch"], meta["scale"], meta["source"]) == ("espcn", 4, "state_dict")
    torch.testing.assert_close(_output(loaded), _output(model), rtol=0, atol=0)


def test_spandrel_compact_round_trip(tmp_path: Path) -> None:
    from spandrel.architectures.Compact import Compact

    torch.manual_seed(0)
    net = Compact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=2)
    torch.save(net.state_dict(), tmp_path / "realesr-compact.pth")
    model, meta = load_model(tmp_path / "realesr-compact.pth", scale=2, arch="Compact")
    assert meta == {"arch": "Compact", "scale": 2, "source": "spandrel", "label": "realesr-compact"}
    x = torch.rand(2, 3, 7, 5)
    with torch.no_grad():
        out = model(x)
        torch.testing.assert_close(out, net.eval()(x))
    assert out.shape == (2, 3, 14, 10)
    assert model.scale == 2
    assert not model.training
    with pytest.raises(CheckpointError, match=r"asked for x4 .* x2 checkpoint"):
        load_model(tmp_path / "realesr-compact.pth", scale=4)
    with pytest.raises(CheckpointError, match="architecture mismatch"):
        load_model(tmp_path / "realesr-compact.pth", arch="SwinIR")


def test_unknown_architecture(tmp_path: Path) -> None:
    torch.save({"encoder.weight": torch.zeros(4, 4), "decoder.bias": torch.zeros(4)}, tmp_path / "m.pth")
    with pytest.raises(CheckpointError, match="unknown architecture"):
        load_model(tmp_path / "m.pth")
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="does not hold a state dict"):
        load_model(tmp_path / "list.pth")


# ------------------------------------------------------------------------------- never run a pickle
class _Payload:
    """Pickles to a call of ``func(*args)``: what a malicious checkpoint does on load."""

    def __init__(self, func: Any, *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.func, self.args


@pytest.mark.parametrize("container", ["torch.save", "raw pickle"])
@pytest.mark.parametrize("attack", ["os.system", "subprocess.call", "builtins.open"])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path: Path, container: str, attack: str) -> None:
    marker = tmp_path / "PWNED"
    payload = {
        "os.system": _Payload(os.system, f"touch {marker}"),
        "subprocess.call": _Payload(subprocess.call, [sys.executable, "-c", f"open({str(marker)!r}, 'w')"]),
        "builtins.open": _Payload(open, str(marker), "w"),
    }[attack]
    evil = {"conv.weight": torch.zeros(1), "conv.bias": payload}
    path = tmp_path / "model.pth"
    if container == "torch.save":
        torch.save(evil, path)
    else:
        path.write_bytes(pickle.dumps(evil, protocol=2))
    with pytest.raises(CheckpointError, match=r"refused to load .*never executes pickled code"):
        load_model(path)
    assert not marker.exists()


@pytest.mark.parametrize("container", ["torch.save", "raw pickle"])
def test_refusals_never_suggest_weights_only_false(tmp_path: Path, container: str) -> None:
    """Torch's advice to retry with weights_only=False (which runs the file) is never passed on."""
    evil = {"conv.weight": torch.zeros(1), "conv.bias": _Payload(print, "pwned")}
    path = tmp_path / "model.pth"
    if container == "torch.save":
        torch.save(evil, path)
    else:
        path.write_bytes(pickle.dumps(evil, protocol=2))
    with pytest.raises(CheckpointError) as caught:
        load_model(path)
    assert "weights_only" not in str(caught.value)


def test_torch_load_failure_keeps_the_reason_and_drops_the_advice() -> None:
    err = pickle.UnpicklingError(
        "Weights only load failed. Re-running `torch.load` with `weights_only` set to `False` will likely "
        "succeed, but it can result in arbitrary code execution.\n\nWeightsUnpickler error: pickle data was "
        "truncated"
    )
    message = checkpoint.torch_load_failure("x.pt", err)
    assert message == "'x.pt' is truncated or corrupt (pickle data was truncated)"


def test_loading_foreign_weights_leaves_no_empty_temp_folder(tmp_path: Path) -> None:
    """Importing spandrel (through torch._dynamo) used to leave an empty torchinductor_<user> folder."""
    pytest.importorskip("spandrel")
    temp = tmp_path / "tmp"
    temp.mkdir()
    weights = tmp_path / "foreign.pth"
    torch.save({"some.weight": torch.zeros(2, 2)}, weights)
    code = (
        "from gvcore.checkpoint.store import CheckpointError, load_model\n"
        f"try:\n    load_model({str(weights)!r}, scale=2)\nexcept CheckpointError:\n    pass\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TORCHINDUCTOR_CACHE_DIR"} | {"TMPDIR": str(temp)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)
    assert sorted(p.name for p in temp.iterdir()) == []


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_torchscript_archive_is_refused(tmp_path: Path) -> None:
    torch.jit.script(torch.nn.Conv2d(3, 3, 1)).save(str(tmp_path / "m.pt"))
    with pytest.raises(CheckpointError, match="TorchScript"):
        load_model(tmp_path / "m.pt")


# --------------------------------------------------------------------------------------- bad files
def test_bad_files(tmp_path: Path) -> None:
    good = tmp_path / "good.pth"
    torch.save(build_model("espcn", 2).state_dict(), good)
    cases = {
        "empty.pth": (b"", "is empty"),
        "image.pth": (PNG_BYTES, "not a PyTorch checkpoint"),
        "image.safetensors": (PNG_BYTES, "not a valid .safetensors"),
        "cut.pth": (good.read_bytes()[: good.stat().st_size // 2], "truncated or corrupt"),
        "model.onnx": (b"onnx", r"supported: \.safetensors, \.pth, \.pt, \.ckpt"),
    }
    ours = save_checkpoint(tmp_path / "ours.safetensors", build_model("espcn", 2)).read_bytes()
    cases["cut.safetensors"] = (ours[: len(ours) - 100], "not a valid .safetensors")
    cases["pickle.ckpt"] = (b"\x80\x02}q\x00(X", "truncated or corrupt")
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(CheckpointError, match=message):
            load_model(tmp_path / name)
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "missing.pth")
    with pytest.raises(CheckpointError, match="over the limit of 100"):
        load_model(good, max_bytes=100)
    assert issubclass(CheckpointError, ValueError)


class TestResourceBombs:
    """A small file must not make load_model allocate the model its metadata or keys describe."""

    def _retag(self, tmp_path: Path, arch_kwargs: dict) -> Path:
        import json

        from safetensors import safe_open
        from safetensors.torch import save_file

        good = save_checkpoint(tmp_path / "good.safetensors", build_model("edsr-lite", 2))
        with safe_open(str(good), "pt") as handle:
            meta = dict(handle.metadata())
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
        meta["arch_kwargs"] = json.dumps(arch_kwargs)
        path = tmp_path / "bomb.safetensors"
        save_file(tensors, str(path), metadata=meta)
        return path

    def test_absurd_options_are_refused_before_building(self, tmp_path: Path) -> None:
        path = self._retag(tmp_path, {"num_blocks": 100000, "num_features": 4096})
        with pytest.raises(CheckpointError, match="num_blocks=100000"):
            load_model(path)

    def test_options_that_do_not_match_the_tensors_are_refused(self, tmp_path: Path) -> None:
        path = self._retag(tmp_path, {"num_blocks": 900, "num_features": 512})
        with pytest.raises(CheckpointError, match="does not hold the weights"):
            load_model(path)

    def test_keys_describing_thousands_of_empty_blocks(self, tmp_path: Path) -> None:
        from safetensors.torch import save_file

        state = build_model("edsr-lite", 2).state_dict()
        for i in range(4, 3000):
            for part in ("conv1", "conv2"):
                state[f"body.{i}.{part}.weight"] = torch.zeros(0)
                state[f"body.{i}.{part}.bias"] = torch.zeros(0)
        path = tmp_path / "keys.safetensors"
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
        with pytest.raises(CheckpointError):
            load_model(path)

    def test_nan_weights_are_refused(self, tmp_path: Path) -> None:
        model = build_model("espcn", 2)
        with torch.no_grad():
            next(model.parameters()).fill_(float("nan"))
        path = save_checkpoint(tmp_path / "nan.safetensors", model)
        with pytest.raises(CheckpointError, match="non-finite"):
            load_model(path)


def test_zip_bomb_is_refused_before_inflating(tmp_path: Path) -> None:
    """A .pth whose deflated record expands to 256 MiB is refused from the zip directory alone."""
    import resource
    import zipfile

    path = tmp_path / "bomb.pth"
    chunk = b"\0" * (1 << 20)
    with (
        zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive,
        archive.open("archive/data.pkl", "w", force_zip64=True) as record,
    ):
        for _ in range(256):
            record.write(chunk)
    assert path.stat().st_size < 1 << 20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(CheckpointError, match="decompression bomb"):
        load_model(path)
    with pytest.raises(CheckpointError, match="would expand to"):
        load_model(path, max_bytes=1 << 20)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KiB: nothing inflated


# --- one record type for checkpoint metadata ----------------------------------------------------------
def test_checkpoint_meta_round_trips_through_a_file(tmp_path: Path) -> None:
    from gvcore.checkpoint.store import CheckpointMeta

    path = save_checkpoint(
        tmp_path / "m.safetensors",
        build_model("espcn", 2),
        loss={"recipe": "l1+gv", "pixel": "l1", "gv_weight": 0.03},
        steps=7,
        seed=1,
        metrics={"psnr": 30.0},
        degradation="standard",
    )
    record = CheckpointMeta.read(path)
    assert record.arch == "espcn"
    assert record.scale == 2
    assert (record.steps, record.seed, record.recipe, record.gv_weight) == (7, 1, "l1+gv", 0.03)
    assert record.label == "m"
    _, loaded = load_model(path)
    assert CheckpointMeta.from_dict(loaded) == record  # load_model's dict is the same record
    assert loaded["source"] == "gvcore"


def test_checkpoint_meta_save_options_write_the_same_record(tmp_path: Path) -> None:
    from gvcore.checkpoint.store import CheckpointMeta

    first = save_checkpoint(tmp_path / "a.safetensors", build_model("edsr-lite", 2), steps=3, data="bundled")
    record = CheckpointMeta.read(first)
    second = save_checkpoint(tmp_path / "b.safetensors", build_model("edsr-lite", 2), **record.save_options())
    assert CheckpointMeta.read(second) == record


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ({"format": CHECKPOINT_FORMAT, "arch": "espcn"}, "'scale' is missing"),
        ({"format": CHECKPOINT_FORMAT, "arch": "espcn", "scale": "two"}, "malformed metadata value"),
        (
            {"format": CHECKPOINT_FORMAT, "arch": "espcn", "scale": "2", "loss": "[1]"},
            "'loss' must hold a JSON",
        ),
    ],
)
def test_checkpoint_meta_refuses_malformed_metadata(raw: dict[str, str], match: str) -> None:
    from gvcore.checkpoint.store import CheckpointMeta

    with pytest.raises(ValueError, match=match):
        CheckpointMeta.from_strings(raw)


def test_checkpoint_meta_read_refuses_foreign_files(tmp_path: Path) -> None:
    from gvcore.checkpoint.store import CheckpointMeta

    save_file({"w": torch.zeros(1)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(CheckpointError, match="not a gvcore checkpoint"):
        CheckpointMeta.read(tmp_path / "foreign.safetensors")
