"""Strict readers for the agent's documents: each names the field path it refuses.

The same readers check an LLM's reply and the decision log, so "valid" means one thing.
They are strict on purpose: a decimal must be a string (a JSON number has been through a
float somewhere), unknown keys are refused (a misspelt `stopLos` must not silently mean
"no stop loss"), and enums must be one of their values.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

from cogmora.domain.money import parse, require_places
from cogmora.domain.timeutil import from_iso
from cogmora.errors import ValidationError

E = TypeVar("E", bound=StrEnum)


def join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def only_keys(doc: Mapping[str, Any], allowed: frozenset[str], prefix: str) -> None:
    for key in doc:
        if key not in allowed:
            field = join(prefix, str(key))
            raise ValidationError(field, f"{field} is not a known field")


def text(doc: Mapping[str, Any], name: str, prefix: str, *, max_len: int = 200) -> str:
    field = join(prefix, name)
    value = doc.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(field, f"{field} must be a non-empty string")
    if len(value) > max_len:
        raise ValidationError(field, f"{field} must be at most {max_len} characters")
    return value


def opt_text(doc: Mapping[str, Any], name: str, prefix: str, *, max_len: int = 2000) -> str:
    """A free text that may be missing or null (read as empty)."""
    field = join(prefix, name)
    value = doc.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError(field, f"{field} must be a string")
    if len(value) > max_len:
        raise ValidationError(field, f"{field} must be at most {max_len} characters")
    return value


def decimal(doc: Mapping[str, Any], name: str, prefix: str) -> Decimal:
    field = join(prefix, name)
    value = doc.get(name)
    if value is None:
        raise ValidationError(field, f"{field} is required")
    return _decimal(value, field)


def opt_decimal(doc: Mapping[str, Any], name: str, prefix: str) -> Decimal | None:
    value = doc.get(name)
    return None if value is None else _decimal(value, join(prefix, name))


def _decimal(value: object, field: str) -> Decimal:
    if not isinstance(value, str):
        raise ValidationError(field, f'{field} must be a decimal string such as "1.5"')
    return require_places(parse(value, field, positive=True), field)


def enum(doc: Mapping[str, Any], name: str, prefix: str, kind: type[E]) -> E:
    field = join(prefix, name)
    value = doc.get(name)
    if isinstance(value, str):
        for member in kind:
            if member.value == value:
                return member
    allowed = ", ".join(repr(m.value) for m in kind)
    raise ValidationError(field, f"{field} must be one of {allowed}")


def opt_time(doc: Mapping[str, Any], name: str, prefix: str) -> datetime | None:
    field = join(prefix, name)
    value = doc.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(field, f"{field} must be an ISO-8601 time string")
    try:
        return from_iso(value)
    except (ValueError, OverflowError):
        raise ValidationError(field, f"{field} must be an ISO-8601 time string") from None


def mapping(value: object, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValidationError(field, f"{field} must be an object")
    return value
