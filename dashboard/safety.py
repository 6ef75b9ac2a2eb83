"""Checks for everything a user hands the dashboard: uploaded images, uploaded checkpoints, folder paths.

Every check raises :class:`UploadError` (a ``ValueError``) whose message names the file and the problem in
words a user can act on; pages show it with ``st.error`` and carry on. Nothing here calls ``st.*``.

- Images: extension allow-list, empty files, decoding through :func:`gvcore.load_image` (which handles
  corrupt/truncated files, 16-bit, gray, palette and RGBA and enforces a pixel limit), then a minimum size.
- Checkpoints: extension allow-list, then :func:`gvcore.load_model` (safetensors for ours; ``.pth`` only
  through gvcore's restricted unpickler / spandrel, so a hostile pickle is refused, never executed), then the
  requested scale.
- Folders: :func:`resolve_under_root` resolves symlinks and ``..`` and refuses anything outside its root.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dashboard.state import MIN_IMAGE_SIDE

__all__ = [
    "CHECKPOINT_SUFFIXES",
    "IMAGE_SUFFIXES",
    "LoadedCheckpoint",
    "UploadError",
    "assets_label",
    "check_suffix",
    "decode_image_upload",
    "list_images_under",
    "load_checkpoint_upload",
    "resolve_under_root",
    "without_paths",
]

_LOG = logging.getLogger(__name__)

#: Image file types accepted by uploads and folder scans.
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
#: Checkpoint file types accepted by uploads.
CHECKPOINT_SUFFIXES: tuple[str, ...] = (".safetensors", ".pth", ".pt", ".ckpt")


class UploadError(ValueError):
    """A user-supplied file or path that the dashboard refuses; the message says why."""


@dataclass(frozen=True)
class LoadedCheckpoint:
    """A checkpoint loaded from an upload: the model (eval mode), its metadata and a display label."""

    model: torch.nn.Module
    metadata: dict[str, Any]
    label: str


def check_suffix(name: str, allowed: tuple[str, ...], kind: str) -> str:
    """Return ``name``'s lower-case suffix if allowed, else raise :class:`UploadError` listing the valid ones."""
    suffix = Path(name).suffix.lower()
    if suffix not in allowed:
        listed = ", ".join(allowed)
        shown = suffix or "no extension"
        raise UploadError(f"{name}: not a supported {kind} file ({shown}); use one of {listed}")
    return suffix


def decode_image_upload(
    name: str, data: bytes, max_pixels: int, min_side: int = MIN_IMAGE_SIDE
) -> torch.Tensor:
    """Decode an uploaded image to a ``(1, 3, H, W)`` float32 tensor in [0, 1].

    Args:
        name: the uploaded file's name (its extension is checked).
        data: the file's bytes.
        max_pixels: the largest accepted ``H * W``.
        min_side: the smallest accepted ``H`` and ``W``.

    Raises:
        UploadError: wrong type, empty, corrupt or truncated, over the pixel limit, or too small.
    """
    from gvcore.io import ImageLoadError, load_image

    check_suffix(name, IMAGE_SUFFIXES, "image")
    if not data:
        raise UploadError(f"{name}: the file is empty")
    try:
        image = load_image(data, max_pixels=max_pixels)
    except ImageLoadError as err:
        raise UploadError(f"{name}: {err}") from err
    except (OSError, ValueError, TypeError, MemoryError) as err:  # decoder errors not wrapped by gvcore
        raise UploadError(f"{name}: could not decode the image ({type(err).__name__}: {err})") from err
    height, width = image.shape[-2:]
    if height < min_side or width < min_side:
        raise UploadError(
            f"{name}: the image is {width}x{height} pixels; at least {min_side}x{min_side} is needed"
        )
    return image


def load_checkpoint_upload(
    name: str, data: bytes, scale: int | None, device: str = "cpu", max_bytes: int = 64 * 1024 * 1024
) -> LoadedCheckpoint:
    """Load an uploaded checkpoint (ours or any spandrel-supported architecture) for ``scale``.

    The bytes go to a private temporary file with the same extension (gvcore's loaders pick the format from
    it) that is deleted afterwards. ``max_bytes`` (the upload cap) bounds the file and what a ``.pth`` zip may
    inflate to. Messages name the upload, never the server's temporary file.

    Raises:
        UploadError: wrong type, empty, unreadable, hostile pickle, unknown architecture, or wrong scale.
    """
    from gvcore.checkpoint.store import CheckpointError, load_model

    suffix = check_suffix(name, CHECKPOINT_SUFFIXES, "checkpoint")
    if not data:
        raise UploadError(f"{name}: the file is empty")
    fd, tmp = tempfile.mkstemp(suffix=suffix, prefix="gvlab-upload-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        try:
            model, metadata = load_model(tmp, scale=scale, device=device, max_bytes=max_bytes)
        except CheckpointError as err:
            raise UploadError(f"{name}: {_without_server_path(str(err), tmp, name)}") from err
        except Exception as err:  # any loader failure is the file's problem, shown to the user
            _LOG.warning("checkpoint upload %s failed to load", name, exc_info=True)
            text = _without_server_path(f"{type(err).__name__}: {err}", tmp, name)
            raise UploadError(f"{name}: could not load the checkpoint ({text})") from err
    finally:
        Path(tmp).unlink(missing_ok=True)
    model_scale = metadata.get("scale")
    if scale is not None and model_scale not in (None, "") and int(model_scale) != int(scale):
        raise UploadError(f"{name}: the model upscales x{model_scale}, but x{scale} is selected")
    label = str(metadata.get("label") or Path(name).stem)
    return LoadedCheckpoint(model=model, metadata=dict(metadata), label=f"{label} (uploaded)")


def _without_server_path(text: str, tmp: str, name: str) -> str:
    """``text`` with the server's temporary file (and its folder) replaced by the upload's name.

    A message shown to a user never reveals server paths.
    """
    text = text.replace(repr(tmp), repr(name)).replace(tmp, name)
    return text.replace(str(Path(tmp).parent) + os.sep, "")


_ABSOLUTE_PATH = re.compile(r"(?<![\w.])/(?:[^\s'\":,]+/)+([^\s'\":,]+)")


def without_paths(text: str) -> str:
    """``text`` with every absolute path shortened to its last component, so no server path reaches a page.

    For exception messages shown with ``st.error``/``st.warning``: the file is still named, its folder is not.

    Example:
        >>> without_paths("not an image: /srv/data/set/bad.png (see '/srv/data/set')")
        "not an image: bad.png (see 'set')"
    """
    return _ABSOLUTE_PATH.sub(r"\1", text)


def assets_label(root: Path, bundled: Path) -> str:
    """How a page names the assets root without revealing where it lives on the server.

    Args:
        root: the assets root in use (``GVLAB_ASSETS`` or the bundled one).
        bundled: the repository's own assets folder.

    Returns:
        ``"bundled assets"`` for the repository's own folder, else the folder's name and where it was set.

    Example:
        >>> assets_label(Path("/srv/lab/assets"), Path("/srv/lab/assets"))
        'bundled assets'
        >>> assets_label(Path("/home/me/runs/my-assets"), Path("/srv/lab/assets"))
        '`my-assets` (GVLAB_ASSETS)'
    """
    try:
        same = Path(root).resolve() == Path(bundled).resolve()
    except OSError:
        same = False
    if same:
        return "bundled assets"
    return f"`{Path(root).name or 'assets'}` (GVLAB_ASSETS)"


def resolve_under_root(root: Path, relative: str | os.PathLike[str]) -> Path:
    """Resolve ``relative`` inside ``root``; refuse anything that escapes it (``..``, absolute paths, symlinks).

    Raises:
        UploadError: the resolved path is outside ``root`` or does not exist.
    """
    base = Path(root).resolve()
    text = str(relative).strip()
    candidate = (base / text).resolve() if text else base
    # messages name the root by its folder name only: a user never sees where it lives on the server
    if candidate != base and base not in candidate.parents:
        raise UploadError(f"{text!r} is outside the allowed folder {base.name!r}")
    if not candidate.exists():
        raise UploadError(f"{text!r} does not exist under {base.name!r}")
    return candidate


def list_images_under(root: Path, relative: str = "", limit: int = 500) -> list[Path]:
    """Image files directly inside ``root / relative`` (confined to ``root``), sorted by name, at most ``limit``."""
    folder = resolve_under_root(root, relative)
    if not folder.is_dir():
        raise UploadError(f"{relative!r} is not a folder")
    base = Path(root).resolve()
    images = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            continue
        resolved = path.resolve()
        if base in resolved.parents:  # a symlink pointing out of the root is skipped
            images.append(resolved)
        if len(images) >= limit:
            break
    return images
