from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from sessions_app.validators import external_id_problem, validate_external_id

VISIBLE_ASCII = "".join(chr(c) for c in range(0x21, 0x7F))


@pytest.mark.parametrize(
    "value",
    ["u_1", "a", "x" * 128, "user@example.com", "auth0|5f7c8ec7c33c6c004bbafe82", "Default1", "~!"],
)
def test_it_accepts_visible_ascii_ids(value: str) -> None:
    assert external_id_problem(value) is None
    validate_external_id(value)


@pytest.mark.parametrize(
    ("value", "message_part"),
    [
        ("", "cannot be empty"),
        ("x" * 129, "129 characters long; the limit is 128"),
        ("has space", "whitespace"),
        ("tab\there", "whitespace"),
        ("new\nline", "whitespace"),
        ("nbsp\u00a0x", "whitespace"),
        ("bell\x07", "control characters"),
        ("del\x7f", "control characters"),
        ("caf\u00e9", "visible ASCII"),
        ("\u0430dmin", "visible ASCII"),  # Cyrillic a, a look-alike
        ("default", "shared user id"),
        ("DEFAULT", "shared user id"),
        ("DeFaUlT", "shared user id"),
        (None, "must be text"),
        (42, "must be text"),
    ],
)
def test_it_explains_each_rejected_id(value: object, message_part: str) -> None:
    problem = external_id_problem(value)
    assert problem is not None and message_part in problem
    with pytest.raises(ValidationError) as excinfo:
        validate_external_id(value)
    assert excinfo.value.messages == [problem]


def _follows_the_rule(value: str) -> bool:
    return (
        1 <= len(value) <= 128
        and all(c in VISIBLE_ASCII for c in value)
        and value.lower() != "default"
    )


@given(st.one_of(st.text(max_size=200), st.text(alphabet=VISIBLE_ASCII, max_size=140)))
def test_accepted_values_are_exactly_those_that_follow_the_rule(value: str) -> None:
    problem = external_id_problem(value)  # never raises
    assert (problem is None) == _follows_the_rule(value)
    if problem is not None:
        assert isinstance(problem, str) and problem


@given(st.lists(st.booleans(), min_size=7, max_size=7))
def test_default_is_refused_in_any_letter_case(upper: list[bool]) -> None:
    value = "".join(c.upper() if u else c for c, u in zip("default", upper, strict=True))
    assert "shared user id" in (external_id_problem(value) or "")


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("m\u00fcller", '"\u00fc" (U+00FC LATIN SMALL LETTER U WITH DIAERESIS)'),
        ("\u0430dmin", '"\u0430" (U+0430 CYRILLIC SMALL LETTER A)'),
        ("a\u200bb", "U+200B ZERO WIDTH SPACE"),
    ],
)
def test_a_refused_character_is_shown_as_itself_not_escaped(value: str, shown: str) -> None:
    problem = external_id_problem(value) or ""
    assert problem.endswith(f"it contains {shown}.")
    assert "\\x" not in problem and "\\u" not in problem
