"""Reading pickled ``.pth``/``.pt``/``.ckpt`` checkpoints without running their code.

Pickles are never executed: files are read with ``torch.load(weights_only=True)``, whose unpickler only
rebuilds tensors and plain containers; any other global (``os.system``, ``subprocess.*``, a class) makes the
load fail with :class:`~gvcore.checkpoint.meta.CheckpointError` before anything runs. TorchScript archives are
refused, and zip archives are checked from their directory (declared sizes, compression ratio) before anything
is inflated. :func:`torch_load_failure` words any ``torch.load`` failure as one line.
"""

from __future__ import annotations

import io
import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from gvcore.checkpoint.meta import CheckpointError

__all__ = ["DEFAULT_MAX_BYTES", "MAX_ZIP_RATIO", "torch_load_failure"]

#: files larger than this are refused by :func:`gvcore.checkpoint.store.load_model` unless ``max_bytes`` says
#: otherwise.
DEFAULT_MAX_BYTES = 2 * 1024**3
#: keys under which training frameworks nest the state dict, in order of preference.
_WRAPPER_KEYS: tuple[str, ...] = ("params_ema", "params", "state_dict", "model_state_dict", "model", "net")


#: a zip record inflating more than this many times its stored size is a decompression bomb (torch.save stores
#: records uncompressed; ordinary deflate of weights gains far less).
MAX_ZIP_RATIO = 100


def _check_zip_sizes(source: Path, archive: zipfile.ZipFile, max_bytes: int) -> None:
    """Refuse, from the zip directory alone, archives that would inflate past ``max_bytes`` or like a bomb."""
    infos = archive.infolist()
    total = sum(info.file_size for info in infos)
    if total > max_bytes:
        raise CheckpointError(
            f"{str(source)!r} would expand to {total} bytes, over the limit of {max_bytes} "
            "(raise max_bytes to allow it)"
        )
    for info in infos:
        if info.compress_type != zipfile.ZIP_STORED and info.file_size > MAX_ZIP_RATIO * max(
            1, info.compress_size
        ):
            raise CheckpointError(
                f"{str(source)!r} holds a record ({info.filename}) that inflates {info.file_size} bytes from "
                f"{info.compress_size}: refused as a decompression bomb (torch.save does not compress)"
            )


def _read_pickle(source: Path, max_bytes: int = DEFAULT_MAX_BYTES, data: bytes | None = None) -> Any:
    """``torch.load(weights_only=True)`` with every failure turned into a specific :class:`CheckpointError`.

    Zip archives are checked from their directory first (:func:`_check_zip_sizes`): nothing is inflated before
    the declared sizes are known to fit ``max_bytes``. With ``data`` (the file's bytes, already read) the file
    is not opened: everything is checked and loaded from that one buffer.
    """
    if data is None:
        with source.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    head = data[:4]
    is_zip = head == b"PK\x03\x04"
    if not is_zip and not head.startswith(b"\x80"):
        raise CheckpointError(
            f"{str(source)!r} is not a PyTorch checkpoint (it starts with {head!r}, "
            "neither a torch.save zip archive nor a pickle)"
        )
    if is_zip:
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = archive.namelist()
                _check_zip_sizes(source, archive, max_bytes)
        except (zipfile.BadZipFile, OSError) as err:
            raise CheckpointError(f"{str(source)!r} is truncated or corrupt ({err})") from err
        if any(name.endswith("constants.pkl") for name in names):
            raise CheckpointError(
                f"{str(source)!r} is a TorchScript archive; only state dicts are supported (TorchScript runs code)"
            )
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # UnpicklingError, EOFError, RuntimeError from the zip reader, ...
        raise CheckpointError(torch_load_failure(str(source), err)) from err


def torch_load_failure(name: str, err: BaseException) -> str:
    """Why ``torch.load(weights_only=True)`` failed on the file ``name``, as one line.

    Never repeats torch's advice to retry with ``weights_only=False`` (which would run the file's code).

    Example:
        >>> torch_load_failure("resume.pt", EOFError())
        "'resume.pt' is truncated or corrupt (EOFError)"
    """
    text = str(err)
    match = re.search(r"(?:Unsupported global|unsupported GLOBAL|GLOBAL) *:? *(?:GLOBAL )?([\w.]+)", text)
    if isinstance(err, pickle.UnpicklingError) and (match or "Unsupported" in text):
        culprit = f" (it references {match.group(1)})" if match else ""
        return (
            f"refused to load {name!r}: its pickle asks for objects other than tensors and plain containers"
            f"{culprit}; gvcore never executes pickled code. Re-save it as a plain state dict or .safetensors"
        )
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if isinstance(err, pickle.UnpicklingError) and lines and lines[0].startswith("Weights only load failed"):
        # torch wraps the unpickler's own reason in advice; keep the reason only
        reason = next((line for line in lines if line.startswith("WeightsUnpickler error:")), "")
        lines = [reason.removeprefix("WeightsUnpickler error:").strip()] if reason else []
    first = next((line for line in lines if "weights_only" not in line), "") or type(err).__name__
    return f"{name!r} is truncated or corrupt ({first[:200]})"


def _unwrap_state_dict(source: Path, obj: Any) -> dict[str, torch.Tensor]:
    """Find the tensor dict in what ``torch.load`` returned (nested under a known key or not)."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{str(source)!r} does not hold a state dict (found {type(obj).__name__})")
    for key in _WRAPPER_KEYS:
        if isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if len(obj) == 1 and isinstance(next(iter(obj.values())), Mapping):
        obj = next(iter(obj.values()))
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(f"{str(source)!r} does not hold a state dict (no tensors found)")
    for prefix in ("module.", "netG."):
        if all(k.startswith(prefix) for k in tensors):
            tensors = {k[len(prefix) :]: v for k, v in tensors.items()}
    return tensors
