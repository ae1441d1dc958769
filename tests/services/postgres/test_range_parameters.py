"""Property: no JSON value given for a range, multirange or range-array parameter escapes as anything but a
:class:`ParameterError` naming the problem (the conversion runs before PostgreSQL sees the value).

A hypothesis run found ``{"bounds": []}`` raising ``TypeError``; it stays in test_types.py's refusals.
"""

from __future__ import annotations

from asyncpg.types import Type
from hypothesis import given, settings
from hypothesis import strategies as st

from services.postgres.parameters import ParameterError, coerce_parameter

RANGE_TYPES = [
    Type(3904, "int4range", "range", "pg_catalog"),
    Type(3906, "numrange", "range", "pg_catalog"),
    Type(3910, "tstzrange", "range", "pg_catalog"),
    Type(3912, "daterange", "range", "pg_catalog"),
    Type(4451, "int4multirange", "multirange", "pg_catalog"),
    Type(3905, "int4range[]", "array", "pg_catalog"),
    Type(16387, "floatrange", "range", "public"),  # user-defined: bounds go to asyncpg as given
]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["lower", "upper", "bounds", "empty"]) | st.text(max_size=6), children, max_size=4
        )
    ),
    max_leaves=10,
)
RANGE_TEXT = st.text(alphabet='[](){},"\\ 0123456789.-aempty', max_size=24)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(RANGE_TYPES), JSON_VALUES | RANGE_TEXT)
def test_any_json_value_for_a_range_is_converted_or_refused_by_name(parameter_type, value):
    try:
        coerce_parameter(value, parameter_type)
    except ParameterError as refusal:
        assert str(refusal)
