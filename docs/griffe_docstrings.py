"""Griffe extension for the API reference (``mkdocs.yml``): read gvcore's docstrings as they are written.

gvcore's Google-style docstrings title their doctests ``Example:``, which Griffe reads as an admonition (its
``>>>`` lines would then render as nested quotes), and cross-reference with Sphinx roles (``:func:`name```),
which Markdown shows literally. Before a docstring is parsed, this extension renames the section to
``Examples:`` and turns each role into a code span. The source files are left as they are.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:$", re.M)
_ROLE = re.compile(r":(?:func|class|data|mod|meth|attr|exc|obj):`~?([^`]+)`")


class GoogleExamples(griffe.Extension):
    """Rewrite ``Example:`` sections and Sphinx roles before Griffe parses a docstring."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Rewrite the docstring of every object as it is created."""
        if obj.docstring is not None:
            text = _EXAMPLE.sub(r"\1Examples:", obj.docstring.value)
            obj.docstring.value = _ROLE.sub(r"`\1`", text)
