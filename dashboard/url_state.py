"""A page's view in its URL, beyond the widgets bound with ``bind="query-params"``.

Widgets a page creates itself are bound to the URL by their key (``bind="query-params"``). The image picker of
:func:`dashboard.widgets.choose_image` is shared by several pages and binds nothing, so :func:`chosen_image` keeps
its bundled sample in the URL as ``?<prefix>-sample=<name>``: a link with it reopens the same image, and choosing
another image writes it. An uploaded image cannot be shared by a link; the parameter is removed then.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from dashboard import loaders, widgets

__all__ = ["chosen_image", "sample_param"]


def sample_param(prefix: str) -> str:
    """The URL parameter (and widget key) of a page's bundled sample: ``"<prefix>-sample"``."""
    return f"{prefix}-sample"


def chosen_image(
    prefix: str, label: str = "Image", admit: Callable[[int], object] | None = None
) -> widgets.ChosenImage | None:
    """:func:`dashboard.widgets.choose_image`, with the bundled sample read from and written to the URL.

    A sample named in the URL is taken once per link (when the URL names another sample than the one this
    page last wrote there); unknown names are ignored.
    """
    param, written = sample_param(prefix), f"{prefix}-url-sample"
    wanted = st.query_params.get(param)
    if wanted is not None and wanted != st.session_state.get(written) and wanted in loaders.bundled_images():
        st.session_state[f"{prefix}-source"] = "Bundled sample"
        st.session_state[param] = wanted
    chosen = widgets.choose_image(prefix, label, admit=admit)
    name = chosen.name if chosen is not None and chosen.key.startswith("file:") else None
    st.session_state[written] = name
    if name is None:
        if param in st.query_params:
            del st.query_params[param]
    elif st.query_params.get(param) != name:
        st.query_params[param] = name
    return chosen
