"""The rules for what a person may type: one place, used by models, forms, commands and services."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError

EXTERNAL_ID_MAX_LENGTH = 128
_VISIBLE_ASCII = frozenset(chr(c) for c in range(0x21, 0x7F))


def external_id_problem(value: object) -> str | None:
    """Why `value` cannot be an end user's external id, or None when it can.

    The rule: 1 to 128 visible ASCII characters (no whitespace, no control characters) and never
    `default` in any letter case (Composio's shared user id, which mixes users' connections).
    Never raises, whatever it is given.
    """
    if not isinstance(value, str):
        return "The external id must be text."
    if value == "":
        return "Enter an external id: it cannot be empty."
    if len(value) > EXTERNAL_ID_MAX_LENGTH:
        return (
            f"The external id is {len(value)} characters long; "
            f"the limit is {EXTERNAL_ID_MAX_LENGTH}."
        )
    for char in value:
        if char in _VISIBLE_ASCII:
            continue
        if char.isspace():
            return "The external id cannot contain spaces or other whitespace."
        if ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0:
            return "The external id cannot contain control characters."
        return (
            "The external id can only use visible ASCII characters (letters, digits and "
            f"punctuation); it contains {describe_character(char)}."
        )
    if value.lower() == "default":
        return (
            "'default' is Composio's shared user id and would mix users' connections; "
            "use the user's own stable id."
        )
    return None


def describe_character(char: str) -> str:
    """A character as a person reads it: itself in quotes (when it is visible), then its code
    point and Unicode name, e.g. `"ü" (U+00FC LATIN SMALL LETTER U WITH DIAERESIS)`."""
    code = f"U+{ord(char):04X}"
    name = unicodedata.name(char, "")
    named = f"{code} {name}" if name else code
    if char.isprintable() and not char.isspace() and unicodedata.category(char)[0] != "M":
        return f'"{char}" ({named})'
    return named


def without_browser_limits(fields: Iterable[Any]) -> None:
    """Drop the `maxlength` a form field puts on its input: a browser cuts longer input (a paste)
    silently, while the server refuses it with its limit ("at most 128 characters (it has 300)")."""
    for field in fields:
        field.widget.attrs.pop("maxlength", None)


def validate_external_id(value: object) -> None:
    """Django validator form of `external_id_problem`."""
    problem = external_id_problem(value)
    if problem is not None:
        raise ValidationError(problem, code="invalid_external_id")
