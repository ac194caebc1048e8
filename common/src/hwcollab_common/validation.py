"""Validation errors as people read them: one short sentence per form field."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError


def _sentence(item: Mapping[str, object]) -> str:
    kind = item.get("type")
    context = item.get("ctx")
    limits = context if isinstance(context, Mapping) else {}
    if kind == "missing":
        return "This field is required."
    if kind == "string_too_short":
        return f"Use at least {limits.get('min_length')} characters."
    if kind == "string_too_long":
        return f"Use at most {limits.get('max_length')} characters."
    if kind == "too_short":
        return f"Choose at least {limits.get('min_length')}."
    if kind == "too_long":
        return f"Choose at most {limits.get('max_length')}."
    message = str(item.get("msg", "")).removeprefix("Value error, ")
    return message[:1].upper() + message[1:]


def field_errors(
    error: ValidationError,
    *,
    root: str = "__root__",
    overrides: Mapping[tuple[str, str], str] | None = None,
) -> dict[str, str]:
    """``{field: message}``, the first message per field; nested fields are dotted
    (``address.zip``), list positions left out. ``overrides`` replaces the message for a
    ``(field, pydantic error type)`` pair; errors not tied to a field go under ``root``."""
    messages: dict[str, str] = {}
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"] if not isinstance(part, int)) or root
        custom = (overrides or {}).get((field, item["type"]))
        messages.setdefault(field, custom or _sentence(item))
    return messages
