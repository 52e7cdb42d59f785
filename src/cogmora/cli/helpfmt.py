"""`--help` without Typer's Python type tags.

Typer 0.2x prints each parameter's annotation in the help table (`--store <str>`, `--help
<bool>`), which tells a trader nothing the help text does not, and pushes the text to a
narrow column where it wraps mid-sentence. Shown instead, as click does: an explicit
`metavar` where one is set, the choices of a choice, the option's name in capitals for an
option that takes a value (`--store STORE`), a number's range; nothing for flags.
"""

from __future__ import annotations

from typing import Any

import click
from typer.core import TyperArgument, TyperOption


def _display(self: Any, ctx: click.Context) -> str | None:
    if self.metavar is not None:
        return str(self.metavar)
    descriptor = getattr(self, "type_descriptor", None)
    if descriptor is not None and descriptor.is_choice:
        return "[" + str(self.display_type(ctx)).strip("<>") + "]"
    if isinstance(self, TyperOption) and not (self.is_flag or self.count) and self.name:
        return self.name.upper()
    return None


def hide_type_tags() -> None:
    """Install `_display` for every option and argument (idempotent)."""
    for cls in (TyperOption, TyperArgument):
        cls.display_type_rich = _display  # type: ignore[method-assign,assignment]
