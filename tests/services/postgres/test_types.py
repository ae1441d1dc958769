"""Every PostgreSQL type comes back as faithful JSON, and JSON parameters reach PostgreSQL intact."""

from __future__ import annotations

import base64

import pytest

from tests.services.postgres.support import error, ok, sql


async def test_ordinary_values_of_every_type_become_json(read_only_url):
    result = ok(await sql(read_only_url, "SELECT * FROM every_type WHERE id = $1", 1))
    row = dict(zip([column["name"] for column in result["columns"]], result["rows"][0], strict=True))
    assert row == {
        "id": 1,
        "small": 7,
        "big": 9007199254740993,
        "exact": "12345678901234567890.000000001",
        "price": "4.5000",
        "cash": "$12.34",
        "single": 1.1,
        "dbl": 0.1,
        "flag": True,
        "label": "Grüße, 世界 🐘",
        "fixed": "ab  ",
        "varying": "varié",
        "day": "2026-11-26",
        "moment": "2026-11-26T13:45:06.5",
        "moment_tz": "2026-11-26T11:45:06.123456+00:00",
        "clock": "13:45:06",
        "clock_tz": "13:45:06+05:30",
        "span": "P1Y2M3DT4H5M6.5S",
        "uid": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "doc": {"b": [1, 2.5, "ü"], "a": None},
        "docb": {"k": {"nested": True}},
        "raw": base64.b64encode(bytes.fromhex("deadbeef00")).decode(),
        "ints": [1, None, 3],
        "texts": ["a b", 'c"d', None, "NULL"],
        "grid": [[1, 2], [3, 4]],
        "stamps": ["2026-01-01T00:00:00+00:00", "infinity"],
        "ip": "192.168.0.1/24",
        "net": "10.0.0.0/8",
        "mac": "08:00:2b:01:02:03",
        "bits": "1011",
        "nums": {"lower": 1, "upper": 5, "bounds": "[)"},
        "period": {"lower": "2026-01-01T00:00:00+00:00", "upper": None, "bounds": "[)"},
        "feeling": "happy",
        "combo": {"label": "x", "amount": "1.50", "seen": "2026-01-01T00:00:00+00:00"},
        "spot": [1.5, -2.0],
        "words": "'fox' 'quick' 'the'",
        "lsn": "16/B374D848",
    }


async def test_column_types_are_named(read_only_url):
    result = ok(
        await sql(
            read_only_url, "SELECT id, exact, moment_tz, ints, docb, feeling, combo FROM every_type LIMIT 1"
        )
    )
    assert [(column["name"], column["type"]) for column in result["columns"]] == [
        ("id", "int4"),
        ("exact", "numeric"),
        ("moment_tz", "timestamptz"),
        ("ints", "int4[]"),
        ("docb", "jsonb"),
        ("feeling", "public.mood"),
        ("combo", "public.pair"),
    ]


async def test_nulls_stay_null_in_every_column(read_only_url):
    result = ok(await sql(read_only_url, "SELECT * FROM every_type WHERE id = 2"))
    assert result["rows"][0][0] == 2
    assert result["rows"][0][1:] == [None] * (len(result["columns"]) - 1)


async def test_edge_values_keep_their_meaning(read_only_url):
    result = ok(await sql(read_only_url, "SELECT * FROM every_type WHERE id = 3"))
    row = dict(zip([column["name"] for column in result["columns"]], result["rows"][0], strict=True))
    assert row["exact"] == "NaN"
    assert row["single"] == "-Infinity"
    assert row["dbl"] == "NaN"
    assert row["day"] == "-0043-03-15"  # 44 BC in ISO 8601's astronomical numbering
    assert row["moment"] == "infinity"
    assert row["moment_tz"] == "-infinity"
    assert row["clock"] == "24:00:00"
    assert row["span"] == "P-10M-3DT-4H-5M-6.789S"
    assert row["ints"] == [] and row["texts"] == []
    assert row["big"] == -9223372036854775808 and row["small"] == -32768
    assert row["docb"] == "just a string"
    assert row["raw"] == ""
    assert row["label"] == "line\nbreak \\ tab\t quote ' \""


async def test_json_numbers_a_json_encoder_cannot_write_keep_their_digits(read_only_url):
    query = (
        'SELECT \'{"big": 123456789012345678901234567890, "huge": 1e400, "ok": [1.5, -2]}\'::json, '
        "'[18446744073709551616, 9223372036854775807]'::jsonb"
    )
    doc, array = ok(await sql(read_only_url, query))["rows"][0]
    assert doc == {"big": "123456789012345678901234567890", "huge": "1e400", "ok": [1.5, -2]}
    assert array == ["18446744073709551616", 9223372036854775807]


async def test_numeric_and_real_match_postgresql_text_output(read_only_url, pg):
    query = (
        "SELECT n, n::text, r, r::text FROM ("
        "SELECT (random() * 10 ^ (g % 30 - 10))::numeric(60, 20) / 7 AS n, "
        "(g::real / 7) ^ (g % 5) AS r FROM generate_series(1, 200) g) t"
    )
    rows = ok(await sql(read_only_url, query))["rows"]
    assert len(rows) == 200
    for numeric, numeric_text, real, real_text in rows:
        assert numeric == numeric_text
        assert real == float(real_text) and len(repr(real)) <= len(real_text) + 2


async def test_intervals_match_postgresql_iso_8601_output(read_only_url, pg):
    spans = [
        "0",
        "1 microsecond",
        "-1 microsecond",
        "1 year",
        "-13 months",
        "25 hours",
        "1 day -1 hours",
        "-2 years 3 months -4 days 05:06:07.000008",
        "100 years 11 months 30 days 23:59:59.999999",
    ]
    values = ", ".join(f"('{span}'::interval)" for span in spans)
    rows = ok(await sql(read_only_url, f"SELECT s FROM (VALUES {values}) v(s)"))["rows"]
    admin = await pg.admin()
    try:
        await admin.execute("SET IntervalStyle = iso_8601")
        expected = [row[0] for row in await admin.fetch(f"SELECT s::text FROM (VALUES {values}) v(s)")]
    finally:
        await admin.close()
    assert [row[0] for row in rows] == expected


async def test_timestamps_match_postgresql_fields_across_eras(read_only_url, pg):
    query = (
        "SELECT ts, extract(year FROM ts)::int, extract(month FROM ts)::int, extract(day FROM ts)::int, "
        "to_char(ts, 'HH24:MI:SS.US') FROM ("
        "SELECT make_timestamp(y, 1 + y % 12, 1 + y % 28, 23, 59, 59.25) AS ts "
        "FROM unnest(ARRAY[1, 99, 1582, 1970, 2000, 2038, 9999, 10000, 294275]) y "
        "UNION ALL SELECT '4713-01-01 00:00:00 BC'::timestamp "
        "UNION ALL SELECT '0001-12-31 12:00:00 BC'::timestamp) t"
    )
    for stamp, year, month, day, clock in ok(await sql(read_only_url, query))["rows"]:
        astronomical = year + 1 if year < 0 else year
        date = f"{astronomical:04d}" if 0 <= astronomical <= 9999 else f"{astronomical:+05d}"
        expected = f"{date}-{month:02d}-{day:02d}T{clock.rstrip('0').rstrip('.')}"
        assert stamp == expected


@pytest.mark.parametrize(
    ("cast", "value", "expected"),
    [
        ("int", "41", 41),
        ("int8", 9007199254740993, 9007199254740993),
        ("numeric", "0.1", "0.1"),
        ("numeric", 2.5, "2.5"),
        ("float8", "NaN", "NaN"),
        ("real", 1.1, 1.1),
        ("bool", "yes", True),
        ("text", "unicode ✓ 🐘", "unicode ✓ 🐘"),
        ("date", "2026-02-28", "2026-02-28"),
        ("date", "infinity", "infinity"),
        ("timestamp", "2026-02-28T10:11:12.5", "2026-02-28T10:11:12.5"),
        ("timestamptz", "2026-02-28T10:11:12+02:00", "2026-02-28T08:11:12+00:00"),
        ("time", "10:11", "10:11:00"),
        ("interval", "P1DT2H30M", "P1DT2H30M"),
        ("interval", 90.5, "PT1M30.5S"),
        ("uuid", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
        ("jsonb", {"a": [1, "ü"]}, {"a": [1, "ü"]}),
        ("json", '{"raw": true}', {"raw": True}),
        ("bytea", base64.b64encode(b"\x00\xff").decode(), base64.b64encode(b"\x00\xff").decode()),
        ("bytea", "\\x00ff", base64.b64encode(b"\x00\xff").decode()),
        ("int[]", [1, None, 3], [1, None, 3]),
        ("text[]", ["a", "b c"], ["a", "b c"]),
        ("timestamptz[]", ["2026-01-01T00:00:00Z"], ["2026-01-01T00:00:00+00:00"]),
        ("inet", "10.1.2.3", "10.1.2.3"),
        ("mood", "sad", "sad"),
        ("int4range", {"lower": 1, "upper": 5, "bounds": "[]"}, {"lower": 1, "upper": 6, "bounds": "[)"}),
        ("int4range", "[1,5)", {"lower": 1, "upper": 5, "bounds": "[)"}),
        ("int4range", " (,10] ", {"lower": None, "upper": 11, "bounds": "()"}),
        ("int4range", [2, 4], {"lower": 2, "upper": 4, "bounds": "[)"}),
        ("int4range", "empty", {"empty": True}),
        ("int4range", {"empty": True}, {"empty": True}),
        (
            "int8range",
            {"lower": "9007199254740993"},
            {"lower": 9007199254740993, "upper": None, "bounds": "[)"},
        ),
        (
            "numrange",
            {"lower": "0.1", "upper": 2.5, "bounds": "(]"},
            {"lower": "0.1", "upper": "2.5", "bounds": "(]"},
        ),
        (
            "daterange",
            "[2026-01-01,2026-02-01]",
            {"lower": "2026-01-01", "upper": "2026-02-02", "bounds": "[)"},
        ),
        (
            "tstzrange",
            '["2026-01-01 00:00:00+02",)',
            {"lower": "2025-12-31T22:00:00+00:00", "upper": None, "bounds": "[)"},
        ),
        (
            "tsrange",
            {"lower": "2026-01-01T10:00:00", "upper": "2026-01-01T12:00:00", "bounds": "()"},
            {"lower": "2026-01-01T10:00:00", "upper": "2026-01-01T12:00:00", "bounds": "()"},
        ),
        (
            "int4multirange",
            "{[1,3), [5,7]}",
            [{"lower": 1, "upper": 3, "bounds": "[)"}, {"lower": 5, "upper": 8, "bounds": "[)"}],
        ),
        (
            "int4multirange",
            [{"lower": 5, "upper": 7}, "[1,3)"],
            [{"lower": 1, "upper": 3, "bounds": "[)"}, {"lower": 5, "upper": 7, "bounds": "[)"}],
        ),
        ("int4multirange", "{}", []),
        (
            "int4range[]",
            ["[1,2)", {"lower": 3, "upper": 4}, None],
            [{"lower": 1, "upper": 2, "bounds": "[)"}, {"lower": 3, "upper": 4, "bounds": "[)"}, None],
        ),
    ],
)
async def test_json_parameters_bind_to_their_postgresql_types(read_only_url, cast, value, expected):
    result = ok(await sql(read_only_url, f"SELECT $1::{cast} AS v", value))
    assert result["rows"] == [[expected]]


async def test_a_range_read_from_a_result_binds_back_as_a_parameter(read_only_url):
    nums, period = ok(await sql(read_only_url, "SELECT nums, period FROM every_type WHERE id = 1"))["rows"][0]
    found = ok(
        await sql(read_only_url, "SELECT id FROM every_type WHERE nums = $1 AND period = $2", nums, period)
    )
    assert found["rows"] == [[1]]


async def test_null_parameters_and_unicode_filters(read_only_url):
    result = ok(
        await sql(
            read_only_url,
            "SELECT id FROM every_type WHERE label = $1 OR ($2::text IS NULL AND id = 2) ORDER BY id",
            "Grüße, 世界 🐘",
            None,
        )
    )
    assert result["rows"] == [[1], [2]]


@pytest.mark.parametrize(
    ("cast", "value", "fragment"),
    [
        ("int", "forty-two", "params[0] ($1, type int4): expected an integer"),
        ("date", "26/11/2026", "expected an ISO 8601 date"),
        ("bytea", "not base64!", "expected base64"),
        ("interval", "2 days", "$1::text::interval"),
        ("int[]", 5, "expected a JSON array"),
        ("int4range", {"low": 1}, "unknown range key(s) 'low'"),
        ("int4range", {"lower": 1, "bounds": "[["}, "'bounds' must be one of"),
        ("int4range", {"bounds": []}, "'bounds' must be one of"),
        ("int4range", {"empty": True, "lower": 1}, "an empty range has no lower"),
        ("int4range", "[1;5)", "exactly one comma"),
        ("int4range", "1,5", "expected a range's text"),
        ("int4range", "[one,5)", "params[0] ($1, type int4range): expected an integer"),
        ("int4range", 5, 'expected a range: {"lower"'),
        ("int4range", [1, 2, 3], "got an array of 3 item(s)"),
        ("int4multirange", "[1,3)", "multirange's text in braces"),
        ("int4multirange", ["[1,3)", "[x,4)"], "range 1: expected an integer"),
    ],
)
async def test_unusable_parameters_are_refused_with_their_position(read_only_url, cast, value, fragment):
    assert fragment in error(await sql(read_only_url, f"SELECT $1::{cast}", value))


async def test_postgresql_syntax_is_reachable_through_a_text_cast(read_only_url):
    result = ok(
        await sql(read_only_url, "SELECT $1::text::interval, $2::text::timestamptz", "2 days", "epoch")
    )
    assert result["rows"] == [["P2D", "1970-01-01T00:00:00+00:00"]]
