"""Commands other packages add to the ``gvcore`` command line (the ``gvcore.commands`` entry-point group).

gvcore is the layer below: it never imports the dashboard. The dashboard's commands (``dashboard``,
``precompute``, ``report``) are declared in ``pyproject.toml``::

    [project.entry-points."gvcore.commands"]
    dashboard = "dashboard.commands:add_dashboard"

Each value names a function ``add(sub)`` that adds one sub-parser to the ``gvcore`` parser (as
:func:`gvcore.zoo.cli.add_zoo` does) and sets its ``func``. The entries are read from two places:

1. the ``pyproject.toml`` next to the running ``gvcore`` package, when it runs from a checkout (plain or
   editable install): the declarations of the code that actually runs, so a checkout works without
   ``pip install`` and an editable install whose metadata predates a new entry needs no reinstall;
2. the installed distributions' metadata (:func:`importlib.metadata.entry_points`): a wheel, and any other
   package that adds commands.

A name already taken (a built-in command, or an earlier entry) is skipped. An entry whose module cannot be
imported still appears in ``--help``; running it ends with exit code 2 and the reason.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = ["GROUP", "add_registered", "registered_commands"]

#: the entry-point group read by :func:`registered_commands`
GROUP = "gvcore.commands"


def _checkout_entries(root: Path) -> list[tuple[str, str]]:
    """``(name, "module:function")`` declared in ``root/pyproject.toml`` of gvcore, or ``[]`` if there is none."""
    pyproject = root / "pyproject.toml"
    if sys.version_info < (3, 11) or not pyproject.is_file():
        return []
    import tomllib

    try:
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return []
    if project.get("name") != "gvcore":
        return []
    entries = project.get("entry-points", {}).get(GROUP, {})
    return [(str(name), str(value)) for name, value in entries.items()]


def registered_commands(checkout: Path | None = None) -> list[tuple[str, str]]:
    """The registered commands as ``(name, "module:function")``, the checkout's first, each name once.

    Args:
        checkout: the folder holding gvcore's ``pyproject.toml`` (default: the folder above the running
            ``gvcore`` package).

    Returns:
        The entries in declaration order (checkout), then those of installed distributions not yet named.
    """
    root = Path(__file__).resolve().parent.parent if checkout is None else checkout
    found = dict(_checkout_entries(root))
    for entry in metadata.entry_points(group=GROUP):
        found.setdefault(entry.name, entry.value)
    return list(found.items())


def _load(target: str) -> Callable[[SubParsers], Any]:
    """The function a ``module:function`` string names, imported now."""
    module_name, _, attribute = target.partition(":")
    function: Callable[[SubParsers], Any] = getattr(importlib.import_module(module_name), attribute)
    return function


def _unavailable(sub: SubParsers, name: str, target: str, err: Exception) -> None:
    """A placeholder sub-command for an entry that could not be loaded: it says why, exit code 2."""
    reason = f"{type(err).__name__}: {err}"
    # no option prefix: every word after the command (options included) is taken as it is, and ignored
    p = sub.add_parser(
        name, help=f"(unavailable: {target} could not be loaded)", add_help=False, prefix_chars="\0"
    )
    p.add_argument("rest", nargs="*", help=argparse.SUPPRESS)

    def fail(args: argparse.Namespace) -> int:
        raise ValueError(
            f"this command comes from {target}, which could not be loaded ({reason}); "
            "install the package (pip install -e . in the repository, or pip install 'gvcore[dashboard]')"
        )

    p.set_defaults(func=fail)


def add_registered(sub: SubParsers, taken: set[str]) -> list[str]:
    """Add every registered command not in ``taken`` to ``sub``; returns the names added."""
    added = []
    for name, target in registered_commands():
        if name in taken:
            continue
        try:
            add = _load(target)
        except (ImportError, AttributeError) as err:
            _unavailable(sub, name, target, err)
        else:
            add(sub)
        taken.add(name)
        added.append(name)
    return added
