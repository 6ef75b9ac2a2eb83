"""Small Streamlit building blocks shared by the pages.

Charts with PNG/SVG export, tables with CSV download, image pickers (bundled sample or upload) and the
downsampling note. These are the only dashboard building blocks that call ``st.*``; the figures themselves
come from :mod:`dashboard.figures`.
"""

from __future__ import annotations

import functools
import hashlib
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch

from dashboard import loaders, state
from dashboard.figures.axes import plotly_config
from dashboard.safety import IMAGE_SUFFIXES, UploadError

__all__ = ["ChosenImage", "chart", "choose_image", "downsample_note", "export_format", "labels", "table"]

FIGURE_FORMAT_KEY = "figure_format"


def export_format() -> str:
    """The figure export format chosen in the sidebar (``"png"`` or ``"svg"``)."""
    return str(st.session_state.get(FIGURE_FORMAT_KEY, "png"))


def labels(names: dict[Any, str]) -> Callable[[Any], str]:
    """A widget's ``format_func`` showing ``names[option]`` (``str(option)`` for an option not in ``names``).

    Pages pass this rather than a lambda: a function created by a page script refers to the page's globals, and
    Streamlit keeps a widget's ``format_func`` in the session after the run, which would keep all of the page's
    data alive with it.
    """
    return lambda option: names.get(option, str(option))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "figure"


def chart(fig: go.Figure, name: str, key: str | None = None, **kwargs: Any) -> Any:
    """``st.plotly_chart`` with the export button set to the sidebar's format and a file name from ``name``."""
    return st.plotly_chart(
        fig,
        config=plotly_config(export_format(), _slug(name)),
        key=key or f"chart-{_slug(name)}",
        **kwargs,
    )


#: tables up to this many cells are shown with empty cells as "—" (pandas' Styler); larger ones as they are
STYLED_MAX_CELLS = 100_000


def table(frame: pd.DataFrame, name: str, key: str | None = None, **kwargs: Any) -> None:
    """A dataframe (empty cells shown as "—", not "None"; the values themselves unchanged) and a CSV download."""
    shown: Any = frame.style.format(na_rep="—") if frame.size <= STYLED_MAX_CELLS else frame
    st.dataframe(shown, hide_index=True, **kwargs)
    st.download_button(
        f"Download {name} (CSV)",
        frame.to_csv(index=False).encode(),
        file_name=f"{_slug(name)}.csv",
        mime="text/csv",
        key=key or f"csv-{_slug(name)}",
        on_click="ignore",
    )


def downsample_note(factor: int, size: tuple[int, int], what: str = "images") -> None:
    """Tell the reader when a view shows fewer pixels than were computed."""
    if factor > 1:
        st.caption(
            f":information_source: The {what} are {size[1]}x{size[0]} pixels; shown downsampled by {factor}x for display "
            "(computation uses full resolution)."
        )


@dataclass(frozen=True)
class ChosenImage:
    """An image picked by :func:`choose_image`: a cache key, a display name and a way to get its tensor.

    It holds no pixels: :attr:`tensor` asks the data cache each time (decoding the file or upload again when
    the cache dropped it). A session keeps what its fragments were called with until its next full run, and
    a server keeps disconnected sessions for a while, so an image passed along as a tensor would be memory
    that no cache bounds; pass a ``ChosenImage`` instead.
    """

    key: str
    name: str
    load: Callable[[], torch.Tensor] = field(repr=False, compare=False)
    pixels: int = 0  # H * W (from the file's header), for :func:`dashboard.admission.large_image_slot`

    @property
    def tensor(self) -> torch.Tensor:
        """The image as ``(1, 3, H, W)`` float32, through the data cache; do not keep it past the page run."""
        return self.load()


def header_pixels(source: bytes | str) -> int:
    """``H * W`` of an image file (bytes or path) from its header, without decoding it; 0 when unreadable."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
            width, height = image.size
    except Exception:  # the decoder says why when the image is decoded
        return 0
    return int(width) * int(height)


def choose_image(
    prefix: str, label: str = "Image", allow_upload: bool = True, admit: Callable[[int], object] | None = None
) -> ChosenImage | None:
    """A bundled sample or an uploaded image. Upload problems show ``st.error`` and return ``None``.

    ``admit`` is called with an upload's pixel count (from its header) before it is decoded: a page passes
    :func:`dashboard.admission.large_image_slot` entered for the rest of its run, so a large upload waits for
    its turn before any of its memory is taken.
    """
    samples = loaders.bundled_images()
    options = ["Bundled sample"] + (["Upload"] if allow_upload else [])
    source = st.radio(f"{label} source", options, horizontal=True, key=f"{prefix}-source")
    if source == "Upload":
        upload = st.file_uploader(
            f"{label} (PNG, JPEG, BMP, TIFF, WebP)",
            type=[s.lstrip(".") for s in IMAGE_SUFFIXES],
            key=f"{prefix}-upload",
        )
        if upload is None:
            st.info("Upload an image, or switch to a bundled sample.")
            return None
        data = upload.getvalue()  # the bytes Streamlit already holds for this session's upload (no copy)
        digest = hashlib.sha256(data).hexdigest()[:16]
        # refusals are remembered by content (per session, bounded), so a rerun never decodes a bad file again
        refused = state.remember_refusals(st.session_state, f"{prefix}-refused-uploads")
        if digest in refused:
            st.error(f"Cannot use this image — {refused[digest]}")
            return None
        pixels = header_pixels(data)
        if admit is not None:
            admit(pixels)
        load = functools.partial(loaders.decoded_upload, upload.name, digest, state.max_upload_pixels(), data)
        try:
            load()
        except UploadError as err:
            refused[digest] = str(err)
            st.error(f"Cannot use this image — {err}")
            return None
        return ChosenImage(f"upload:{digest}", upload.name, load, pixels)
    if not samples:
        st.error("No bundled sample images found (scikit-image's data folder is missing).")
        return None
    name = st.selectbox(label, list(samples), key=f"{prefix}-sample")
    path = samples[name]
    return ChosenImage(
        f"file:{path}",
        name,
        functools.partial(loaders.load_image_file, path, loaders.file_key(path)),
        header_pixels(path),
    )


def as_display(image: np.ndarray) -> tuple[np.ndarray, int]:
    """Downsample an ``(H, W, 3)`` uint8 image for display when larger than :data:`state.DISPLAY_MAX_SIDE`."""
    from dashboard.analysis import resize_for_display

    return resize_for_display(image, state.DISPLAY_MAX_SIDE)
