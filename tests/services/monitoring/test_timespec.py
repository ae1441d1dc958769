"""Times and durations as the tools accept them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.monitoring.timespec import TimeSpecError, from_unix_nanos, parse_duration, parse_time, rfc3339

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-26T10:00:00Z", datetime(2026, 11, 26, 10, tzinfo=UTC)),
        ("2026-11-26T10:00:00.123456789Z", datetime(2026, 11, 26, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2026-11-26T11:00:00+01:00", datetime(2026, 11, 26, 10, tzinfo=UTC)),
        ("1795687200", datetime(2026, 11, 26, 10, tzinfo=UTC)),
        ("15m", NOW - timedelta(minutes=15)),
        ("1h30m", NOW - timedelta(hours=1, minutes=30)),
        ("now", NOW),
    ],
)
def test_times_are_read_in_every_accepted_form(text, expected):
    assert parse_time(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "15 minutes", "2026-13-40T00:00:00Z", "", "-5m", "1h garbage"])
def test_unreadable_times_name_the_accepted_forms(text):
    with pytest.raises(TimeSpecError, match=r"RFC 3339|duration"):
        parse_time(text, NOW)


def test_durations_refuse_zero_and_unknown_units():
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("250ms") == timedelta(milliseconds=250)
    for text in ("0s", "5y", "m5"):
        with pytest.raises(TimeSpecError):
            parse_duration(text)


@given(st.integers(min_value=0, max_value=4_000_000_000 * 10**9))
def test_nanosecond_timestamps_keep_all_nine_digits(nanos):
    text = from_unix_nanos(nanos)
    assert text.endswith("Z") and len(text) == 30
    assert text[20:29] == f"{nanos % 10**9:09d}"
    assert parse_time(text, NOW) == datetime.fromtimestamp(nanos // 10**9, UTC) + timedelta(
        microseconds=(nanos % 10**9) // 1000
    )


def test_rfc3339_is_utc_with_a_z():
    assert rfc3339(datetime(2026, 11, 26, 11, tzinfo=UTC)) == "2026-11-26T11:00:00Z"
