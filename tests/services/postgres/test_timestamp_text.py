"""Timestamps fetched as PostgreSQL's text (sessions in UTC with ISO dates) come back exactly as the binary
decoders give them, in every era, with NULLs, inside arrays, and whatever the statement holds besides."""

from __future__ import annotations

import random

import asyncpg
import pytest

from harness.postgres import Cluster
from services.postgres.connection_codecs import install_codecs
from services.postgres.service import service
from services.postgres.statements import StatementRunner
from services.postgres.timestamp_text import timestamp_column, timestamp_from_text
from tests.services.postgres.support import call, ok, sql

# One row per timestamp: make_timestamp takes negative years for BC and years up to 294276.
SWEEP = (
    "SELECT nullif(make_timestamp(y, mo, d, h, mi, s), timestamp '1999-12-31 00:00:00') AS ts, "
    "nullif(make_timestamp(y, mo, d, h, mi, s) AT TIME ZONE 'UTC', timestamptz '1999-12-31 00:00:00+00') "
    "AS tstz FROM unnest($1::int[], $2::int[], $3::int[], $4::int[], $5::int[], $6::float8[]) "
    "AS v(y, mo, d, h, mi, s)"
)
INFINITIES = " UNION ALL SELECT 'infinity', '-infinity'"


def sweep_parameters(years: range, count: int) -> list[list]:
    """Seeded random fields, with 1999-12-31 (which the query turns into NULL) and whole seconds mixed in."""
    chance = random.Random(20261126)
    rows = [[1999, 12, 31, 0, 0, 0.0], [2026, 1, 1, 0, 0, 0.0]]
    for _ in range(count):
        year = chance.randint(years.start, years.stop - 1) or 1  # there is no year 0 to make
        second = chance.randint(0, 59) + (chance.randint(0, 999_999) / 1e6 if chance.random() < 0.7 else 0)
        month, day, hour, minute = (
            chance.randint(1, 12),
            chance.randint(1, 28),
            chance.randint(0, 23),
            chance.randint(0, 59),
        )
        rows.append([year, month, day, hour, minute, round(second, 6)])
    return [list(column) for column in zip(*rows, strict=True)]


@pytest.mark.parametrize(
    ("years", "extra"),
    [(range(1, 10000), ""), (range(-4713, 294277), INFINITIES)],
    ids=["years 1 to 9999, rewritten column-wise", "every era, rewritten value by value"],
)
async def test_text_and_binary_decoding_agree(read_only_url, years, extra):
    parameters = sweep_parameters(years, 600)
    as_text = ok(await sql(read_only_url, SWEEP + extra, *parameters))["rows"]
    # An anonymous record in the result makes the service fetch the whole statement in binary.
    query = f"SELECT ts, tstz, ROW(1) FROM ({SWEEP + extra}) sweep"
    as_binary = [row[:2] for row in ok(await sql(read_only_url, query, *parameters))["rows"]]
    assert as_text == as_binary
    assert len(as_text) >= 602 and [None, None] in as_text
    assert any("." in row[0] for row in as_text if row[0] is not None)


async def test_arrays_of_timestamps_fetched_as_text(read_only_url):
    query = (
        "SELECT ARRAY[timestamptz '2026-01-01 00:00:00.25+00', NULL, 'infinity', "
        "timestamptz '0044-03-15 12:00:00+00 BC'], ARRAY[[timestamp '10000-01-01 00:00:00']]"
    )
    assert ok(await sql(read_only_url, query))["rows"] == [
        [
            ["2026-01-01T00:00:00.25+00:00", None, "infinity", "-0043-03-15T12:00:00+00:00"],
            [["+10000-01-01T00:00:00"]],
        ]
    ]


async def test_a_session_in_another_time_zone_keeps_it_and_answers_in_utc(serve_service, pg: Cluster):
    """The zone of the session is left alone (queries computing dates in it keep working); only the
    answer is in UTC. Such a session fetches timestamps in binary."""
    settings = pg.settings()
    settings = settings.model_copy(update={"database_url": settings.database_url + "?TimeZone=Asia/Kolkata"})
    url, _ = serve_service(service, settings)
    query = (
        "SELECT current_setting('TimeZone'), timestamptz '2026-01-01 00:00:00+05:30', "
        "timestamptz '2026-01-01 00:00:00+05:30'::date, ARRAY[timestamptz 'epoch']"
    )
    assert ok(await sql(url, query))["rows"] == [
        ["Asia/Kolkata", "2025-12-31T18:30:00+00:00", "2026-01-01", ["1970-01-01T00:00:00+00:00"]]
    ]


async def test_a_statement_needing_binary_leaves_the_connection_fetching_text(pg: Cluster):
    connection = await asyncpg.connect(pg.app_url())
    try:
        await install_codecs(connection)
        runner = StatementRunner(read_only=True, statement_timeout_s=5)
        for query in (
            "SELECT tstzrange(timestamptz '2026-01-01 00:00:00+00', NULL)",
            "SELECT ROW(timestamptz '2026-01-01 00:00:00+00')",
        ):
            result = await runner.execute(connection, query, [], 10)
            assert "2026-01-01T00:00:00+00:00" in str(result.rows)
            assert await connection.fetchval("SELECT timestamptz '2026-01-01 00:00:00+00'") == (
                "2026-01-01 00:00:00+00"
            )
    finally:
        await connection.close()


@pytest.mark.parametrize(
    ("text", "utc", "iso"),
    [
        ("2026-11-26 13:45:06.5", False, "2026-11-26T13:45:06.5"),
        ("2026-11-26 13:45:06.123456+00", True, "2026-11-26T13:45:06.123456+00:00"),
        ("0044-03-15 12:00:00+00 BC", True, "-0043-03-15T12:00:00+00:00"),
        ("0001-01-01 00:00:00 BC", False, "0000-01-01T00:00:00"),
        ("294276-12-31 23:59:59.999999+00", True, "+294276-12-31T23:59:59.999999+00:00"),
        ("2026-03-29 02:30:00.5+05:30", True, "2026-03-28T21:00:00.5+00:00"),
        ("1883-11-18 12:00:00-04:56:02", True, "1883-11-18T16:56:02+00:00"),
        ("infinity", True, "infinity"),
        ("-infinity", False, "-infinity"),
        ("-0043-03-15T12:00:00+00:00", True, "-0043-03-15T12:00:00+00:00"),  # already ISO: unchanged
        ("Thu Nov 26 13:45:06 2026 UTC", True, "Thu Nov 26 13:45:06 2026 UTC"),  # another DateStyle
    ],
)
def test_timestamp_text_becomes_iso_8601_in_utc(text, utc, iso):
    assert timestamp_from_text(text, utc) == iso
    assert timestamp_column([None, text], utc) == [None, iso]


def test_a_column_in_the_usual_shape_is_rewritten_whole():
    column = ["2026-01-01 00:00:00+00", None, "9999-12-31 23:59:59.000001+00", "0001-01-01 00:00:00+00"]
    assert timestamp_column(column, utc=True) == [
        "2026-01-01T00:00:00+00:00",
        None,
        "9999-12-31T23:59:59.000001+00:00",
        "0001-01-01T00:00:00+00:00",
    ]
    assert timestamp_column([None, None], utc=False) == [None, None]
    assert timestamp_column([], utc=False) == []


async def test_range_parameters_and_results_holding_timestamps(read_only_url):
    query = "SELECT $1::tstzrange AS period"
    parameter = ["2026-01-01T00:00:00+02:00", None]  # asyncpg takes a range as [lower, upper]
    result = ok(await sql(read_only_url, query, parameter))
    assert result["rows"] == [[{"lower": "2025-12-31T22:00:00+00:00", "upper": None, "bounds": "[)"}]]
    plan = ok(await call(read_only_url, "explain_query", {"query": query, "params": [parameter]}))
    assert plan["plan"]["Node Type"] == "Result"
