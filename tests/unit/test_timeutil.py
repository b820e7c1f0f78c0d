"""Timestamps as people export them: one UTC string per instant, the zone assumed recorded."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from graph.errors import ConfigError
from ingest.timeutil import Instant, excel_serial_to_datetime, format_utc, to_utc, zone

NOON_SHANGHAI = "2024-01-30T04:00:00Z"


@pytest.mark.parametrize("value", [
    "2024-01-30T12:00:00+08:00",
    "2024-01-30T04:00:00Z",
    "2024-01-30 04:00:00z",
    "2024-01-29T23:00:00-05:00",
    "2024-01-30T13:00:00+0900",
    "2024-01-30T12:00+08",
    "2024-01-30 04:00 UTC",
    "2024-01-30 12:00 GMT+8",
    "20240130T040000Z",
    1706587200,
    "1706587200",
    1706587200000,
    "1706587200000.0",
])
def test_one_instant_one_string_whatever_the_offset(value: object) -> None:
    assert to_utc(value) == Instant(NOON_SHANGHAI, None)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [
    "2024-01-30 12:00",
    "2024-1-30 12:00:00",
    "2024/01/30 12:00",
    "2024/1/30 12:00",
    "2024.01.30 12:00",
    "2024年1月30日 12:00",
    "2024年01月30日 12时00分",
    "20240130120000",
    45321.5,
    "45321.5",
    datetime(2024, 1, 30, 12, 0),
])
def test_a_naive_time_takes_the_default_zone_and_says_so(value: object) -> None:
    assert to_utc(value) == Instant(NOON_SHANGHAI, "Asia/Shanghai")  # type: ignore[arg-type]


def test_the_default_zone_is_a_parameter() -> None:
    assert to_utc("2024-01-30 12:00", "Europe/Paris") == Instant("2024-01-30T11:00:00Z", "Europe/Paris")
    assert to_utc("2024-07-30 12:00", "Europe/Paris") == Instant("2024-07-30T10:00:00Z", "Europe/Paris")
    assert to_utc("2024-01-30 12:00", "UTC") == Instant("2024-01-30T12:00:00Z", "UTC")
    # an explicit offset wins over any default
    assert to_utc("2024-01-30T12:00:00+01:00", "Asia/Shanghai") == Instant("2024-01-30T11:00:00Z", None)


def test_dates_alone_are_local_midnight() -> None:
    expected = Instant("2024-01-29T16:00:00Z", "Asia/Shanghai")
    assert to_utc("2024-01-30") == to_utc("20240130") == to_utc(20240130) == to_utc("2024年1月30日") == expected
    assert to_utc(date(2024, 1, 30)) == expected


def test_fractions_are_kept_to_the_microsecond() -> None:
    assert to_utc("2024-01-30T12:00:00.25+08:00").utc == "2024-01-30T04:00:00.250Z"
    assert to_utc("2024-01-30T12:00:00.123456+08:00").utc == "2024-01-30T04:00:00.123456Z"
    assert to_utc(1706587200123).utc == "2024-01-30T04:00:00.123Z"


def test_excel_serial_dates() -> None:
    assert excel_serial_to_datetime(45321.5) == datetime(2024, 1, 30, 12, 0)
    assert excel_serial_to_datetime(45321) == datetime(2024, 1, 30)
    assert excel_serial_to_datetime(61) == datetime(1900, 3, 1)
    # 14:30:15 is 0.6043402777… of a day: rounded to the millisecond, not truncated to 14:30:14
    assert excel_serial_to_datetime(45321 + (14 * 3600 + 30 * 60 + 15) / 86400) == datetime(2024, 1, 30, 14, 30, 15)
    with pytest.raises(ValueError, match="outside 61"):
        excel_serial_to_datetime(60)


def test_daylight_saving_edges_take_the_first_occurrence() -> None:
    # 02:30 happens twice in Paris on 2024-10-27: the first (CEST, +02:00) is taken
    assert to_utc("2024-10-27 02:30", "Europe/Paris").utc == "2024-10-27T00:30:00Z"
    # 02:30 does not exist on 2024-03-31: read with the offset before the change (+01:00)
    assert to_utc("2024-03-31 02:30", "Europe/Paris").utc == "2024-03-31T01:30:00Z"


@pytest.mark.parametrize(("value", "message"), [
    ("01/30/2024", "day/month order is ambiguous"),
    ("30.01.2024 12:00", "day/month order is ambiguous"),
    ("2024-02-30", "not a valid date"),
    ("2024-01-30 25:00", "not a valid date"),
    ("yesterday", "is not a timestamp"),
    ("", "empty timestamp"),
    (30, "neither an Excel serial date"),
    (5_000_000, "neither an Excel serial date"),
    (True, "is not a timestamp"),
    ("2024-01-30T12:00:00+15:00", "not a valid UTC offset"),
    # regressions (a new user's review): these raised OverflowError and stopped the import
    ("9999-12-31T23:59:59-12:00", "outside the years 1900-9999"),
    ("0001-01-01T00:00:00+14:00", "outside the years 1900-9999"),
    (float("inf"), "is not a timestamp"),
    (float("-inf"), "is not a timestamp"),
])
def test_what_is_refused_is_named(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        to_utc(value)  # type: ignore[arg-type]


def test_unknown_zone_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="'Asia/Shangai' is unknown"):
        zone("Asia/Shangai")
    with pytest.raises(ConfigError, match="Mars/Base"):
        to_utc("2024-01-30 12:00", "Mars/Base")
    for name in ("Asia", "x" * 300):  # regression: a folder of zones, an overlong name raised OSError
        with pytest.raises(ConfigError, match="is unknown"):
            zone(name)


def test_zone_files_are_there() -> None:
    # the OS zone files or the tzdata package (a dependency) must give the default zone
    assert zone("Asia/Shanghai").utcoffset(datetime(2024, 1, 30)).total_seconds() == 8 * 3600  # type: ignore[union-attr]


def test_format_utc_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError, match="naive"):
        format_utc(datetime(2024, 1, 30))


def test_a_behaviour_dated_after_tomorrow_is_refused() -> None:
    from datetime import timedelta

    from pydantic import ValidationError

    from ingest.records import CrmPipelineRow
    from ingest.timeutil import FUTURE_TOLERANCE, not_in_future

    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    assert not_in_future(now + FUTURE_TOLERANCE, now) == now + FUTURE_TOLERANCE
    with pytest.raises(ValueError, match=r"2026-12-05T12:00:01Z is in the future \(later than 2026-12-05T12:00:00Z\)"):
        not_in_future(now + FUTURE_TOLERANCE + timedelta(seconds=1), now)
    row = {"opportunity_id": "X1", "sales_agent": "A", "product": "P", "deal_stage": "Won",
           "engage_date": "2017-01-02", "close_date": "2204-01-30", "close_value": "10"}
    with pytest.raises(ValidationError, match="close_date") as e:
        CrmPipelineRow.model_validate(row)
    assert "in the future" in str(e.value)
    assert CrmPipelineRow.model_validate({**row, "close_date": "2017-02-01"}).close_date.year == 2017  # type: ignore[union-attr]


def test_an_xapi_timestamp_beyond_year_9999_in_utc_is_refused() -> None:
    from ingest.xapi_statements import parse_timestamp

    with pytest.raises(ValueError, match="outside the years 1-9999 in UTC"):
        parse_timestamp("9999-12-31T23:59:59-12:00")
