"""`--help` of every command shows no Python type tags (`<str>`, `<bool>`, ...)."""

from __future__ import annotations

import re
from typing import Any

import typer
from typer.testing import CliRunner

from cogmora.cli.main import app

TAG = re.compile(r"<(str|bool|int|float|path|int range|float range|Path|datetime)[^>]*>")


def _commands(cmd: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [path]
    if hasattr(cmd, "commands"):  # a group (Typer vendors its own click)
        for name, sub in cmd.commands.items():
            out += _commands(sub, (*path, name))
    return out


def test_no_help_page_carries_a_type_tag() -> None:
    """Every command's --help lists its options with a name or range, never `<str>`."""
    runner = CliRunner()
    paths = _commands(typer.main.get_command(app))
    assert len(paths) > 10
    for path in paths:
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "100"})
        assert result.exit_code == 0, (path, result.output)
        assert not TAG.search(result.output), (path, result.output)


def test_an_option_that_takes_a_value_shows_its_name_and_a_flag_nothing() -> None:
    """`--store STORE` and `--port ... [0<=x<=65535]`; `--help` alone."""
    result = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "100"})
    assert re.search(r"--store\s+STORE\s", result.output), result.output
    assert re.search(r"--port\s+PORT \[0<=x<=65535\]", result.output), result.output
    assert re.search(r"--help\s+Show this message", result.output), result.output
