"""Commands other packages add to ``gvcore`` (the ``gvcore.commands`` entry-point group, gvcore/commands.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

import gvcore.commands as commands
from gvcore.cli import main

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD_COMMANDS = ["dashboard", "precompute", "report"]


def test_the_checkout_declares_the_dashboard_commands() -> None:
    names = [name for name, _ in commands.registered_commands(ROOT)]
    assert names[:3] == DASHBOARD_COMMANDS
    assert all(target.startswith("dashboard.commands:") for _, target in commands.registered_commands(ROOT))


def test_nothing_registered_outside_a_checkout_without_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commands.metadata, "entry_points", lambda group: [])
    assert commands.registered_commands(tmp_path) == []


def test_help_lists_the_registered_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("train", "eval", "atlas", "zoo", *DASHBOARD_COMMANDS))


def test_without_registered_commands_the_message_says_how_to_get_them(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(commands, "registered_commands", lambda checkout=None: [])
    assert main(["dashboard", "--port", "9000"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gvcore: error: unknown command 'dashboard'; no commands of other packages")
    assert "pip install -e ." in err
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "gvcore.commands" in capsys.readouterr().out
    assert main(["zoo", "list"]) == 0  # the built-in commands are untouched


def test_an_entry_that_cannot_be_loaded_is_listed_and_says_why(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        commands, "registered_commands", lambda checkout=None: [("dashboard", "no_such_module_x:add")]
    )
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "dashboard" in capsys.readouterr().out
    assert main(["dashboard", "--port", "9000"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gvcore dashboard: error: this command comes from no_such_module_x:add")
    assert "No module named 'no_such_module_x'" in err


def test_a_registered_name_never_replaces_a_built_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        commands, "registered_commands", lambda checkout=None: [("eval", "no_such_module_x:add")]
    )
    from gvcore.cli import build_parser

    args = build_parser().parse_args(["eval", "--scale", "2"])
    assert args.func.__module__ == "gvcore.cli"
