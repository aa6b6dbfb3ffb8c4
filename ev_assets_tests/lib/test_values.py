"""The value coercion the sources share (`lib.values`)."""

from __future__ import annotations

import math

import pytest

from ev_assets.lib import values


@pytest.mark.parametrize("raw, expected", [
    (None, (None, None)), ("", (None, None)), ("  ", (None, None)), ("22", (22.0, None)), (11, (11.0, None)),
    (True, (None, "is not a number (True)")), ("abc", (None, "is not a number ('abc')")),
    ("nan", (None, "is not a finite number ('nan')")), (math.inf, (None, "is not a finite number (inf)")),
])
def test_number_says_why_a_value_is_none(raw, expected):
    assert values.number(raw) == expected
    assert values.finite_float(raw) == expected[0]


@pytest.mark.parametrize("raw, expected", [
    (None, None), (True, None), (7, 7), ("7", 7), ("7.0", 7), (7.5, None), ("x", None), (math.nan, None),
])
def test_integer_refuses_bools_and_fractions(raw, expected):
    assert values.integer(raw) == expected


def test_text_identifier_boolean_and_joined():
    assert values.text({"b": 1, "a": 2}) == '{"a":2,"b":1}' and values.text(3) == "3" and values.text(" x ") == " x "
    assert values.identifier(" 12 ") == "12" and values.identifier(12) == "12" and values.identifier(True) is None
    assert [values.boolean(v) for v in (" TRUE", "0", 1, 2, "yes")] == [True, False, True, None, None]
    assert values.joined(["a", 1]) == "a,1" and values.joined(None) is None
    assert values.cell_text(math.nan) is None and values.cell_text(["a"]) == "['a']"
    assert values.record_json({"ä": object.__new__(object)}).startswith('{"ä": "<object object')
