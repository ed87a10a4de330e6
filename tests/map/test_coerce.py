"""Coercers: text → typed values with a mask of refused values; never a silent null or default."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest

from crmmigrate.map import coerce

UTC = dt.timezone.utc


def s(*values: str | None) -> pd.Series:
    return pd.Series(list(values), dtype=object)


def result(pair: tuple[pd.Series, pd.Series]) -> tuple[list[object], list[bool]]:
    values, bad = pair
    return [None if v is None or v != v else v for v in values], [bool(b) for b in bad]


def test_to_date() -> None:
    assert result(coerce.to_date(s("31.01.2024", "2024-01-31", "31.02.2024", None), ("%d.%m.%Y", "iso"))) == (
        [dt.date(2024, 1, 31), dt.date(2024, 1, 31), None, None], [False, False, True, False])
    # `iso` never drops a time of day: only midnight reads as a date
    assert result(coerce.to_date(s("2024-01-31T23:00:00", "2024-01-31T00:00"), ("iso",))) == (
        [None, dt.date(2024, 1, 31)], [True, False])


def test_to_datetime_zones_and_epoch() -> None:
    values = s("2024-01-15 12:00", "2024-07-01 12:00", "2024-07-01T12:00:00+02:00", "1700000000", "x")
    got = result(coerce.to_datetime(values, ("%Y-%m-%d %H:%M", "iso", "epoch"), "Europe/Berlin"))
    assert got == ([dt.datetime(2024, 1, 15, 11, tzinfo=UTC), dt.datetime(2024, 7, 1, 10, tzinfo=UTC),
                    dt.datetime(2024, 7, 1, 10, tzinfo=UTC), dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC), None],
                   [False, False, False, False, True])
    assert all(v.utcoffset() == dt.timedelta(0) for v in got[0] if v is not None)


def test_an_epoch_beyond_any_date_is_refused_not_a_crash() -> None:
    # fromtimestamp raises OSError (EOVERFLOW) for some of these, OverflowError or ValueError for others.
    values = s("-9223372036854775808", "99999999999999", "-99999999999", "1e20")
    assert result(coerce.to_datetime(values, ("epoch",), "UTC")) == ([None] * 4, [True] * 4)


@pytest.mark.parametrize(("text", "scale", "cents", "expected"), [
    ("12.5", 2, False, Decimal("12.50")),
    (" 7 ", 2, False, Decimal("7.00")),
    ("12.345", 2, False, None),
    ("Infinity", 2, False, None),
    ("1250", 2, True, Decimal("12.50")),
    ("12.5", 2, True, None),
    ("1,5", 2, False, None),
])
def test_to_decimal(text: str, scale: int, cents: bool, expected: Decimal | None) -> None:
    values, bad = result(coerce.to_decimal(s(text), scale, cents))
    assert values == [expected]
    assert bad == [expected is None]


def test_to_int() -> None:
    assert result(coerce.to_int(s("7", " -3 ", "1.0", "x", None))) == ([7, -3, None, None, None],
                                                                       [False, False, True, True, False])


def test_to_bool() -> None:
    values, bad = result(coerce.to_bool(s("Ja", "nein", "TRUE", "0", "x", "maybe", None)))
    assert values == [True, False, True, False, True, None, None]
    assert bad == [False, False, False, False, False, True, False]


@pytest.mark.parametrize("convert", [
    lambda v: coerce.to_bool(v), lambda v: coerce.to_int(v), lambda v: coerce.to_decimal(v, 2, False),
    lambda v: coerce.to_date(v, ("iso",)), lambda v: coerce.to_datetime(v, ("iso",), "UTC"),
], ids=["bool", "int", "decimal", "date", "datetime"])
def test_blank_text_is_missing_not_refused_nor_false(convert) -> None:
    # SQL and spreadsheet sources hand over '' where CSV already reads a missing value.
    assert result(convert(s("", "  "))) == ([None, None], [False, False])


def test_decimal_trailing_zeros_fit_but_extra_places_are_refused() -> None:
    import pandas as pd
    from decimal import Decimal

    from crmmigrate.map.coerce import to_decimal

    out, bad = to_decimal(pd.Series(["12.340", "12.345"], dtype=object), scale=2, cents=False)
    assert out[0] == Decimal("12.34") and bad.tolist() == [False, True]


def test_dates_in_several_formats_pick_the_first_that_reads() -> None:
    formats = ("%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%Y%m%d", "%d %b %Y", "iso")
    values = s("1970-03-05", "05/03/1970", "12/31/1970", "5.3.1970", "19700305", "05 mar 1970", "5  Mar 1970",
               "1970-3-5", "31/02/1970", "1970-03-05T10:00", "", None)
    assert result(coerce.to_date(values, formats)) == (
        [dt.date(1970, 3, 5), dt.date(1970, 3, 5), dt.date(1970, 12, 31), dt.date(1970, 3, 5), dt.date(1970, 3, 5),
         dt.date(1970, 3, 5), dt.date(1970, 3, 5), dt.date(1970, 3, 5), None, None, None, None],
        [False] * 8 + [True, True] + [False] * 2)


def test_decimal_comma_reads_german_money_and_refuses_the_ambiguous() -> None:
    import pandas as pd
    from decimal import Decimal

    from crmmigrate.map.coerce import to_decimal

    text = pd.Series(["1.234,56", "1234,5", "12 345,00", "-7,10", "1.23", "1,234.56", "1.234.567,891"], dtype=object)
    out, bad = to_decimal(text, scale=2, cents=False, decimal_mark=",")
    assert out[:4].tolist() == [Decimal("1234.56"), Decimal("1234.50"), Decimal("12345.00"), Decimal("-7.10")]
    assert bad.tolist() == [False] * 4 + [True] * 3
    out, bad = to_decimal(pd.Series(["1,234.56", "1,23"], dtype=object), scale=2, cents=False)
    assert out[0] == Decimal("1234.56") and bad.tolist() == [False, True]


def test_iso_dates_are_whole_dates_never_truncated() -> None:
    import pandas as pd

    from crmmigrate.map.coerce import to_date

    text = pd.Series(["2024-01-15", "2024-01-15T00:00:00", "2024-01-151", "2024-01-15 garbage",
                      "2024-01-15T23:30:00-05:00", "2024-01-15T10:00:00"], dtype=object)
    out, bad = to_date(text, ("iso",))
    assert out[:2].map(str).tolist() == ["2024-01-15", "2024-01-15"]
    assert bad.tolist() == [False, False, True, True, True, True]


def test_wall_times_a_dst_change_skips_or_repeats_are_refused_where_the_source_says_reject() -> None:
    out, bad = coerce.to_datetime(s("2024-03-31 02:30", "2024-10-27 02:30", "2024-10-27 03:30"),
                                  ("%Y-%m-%d %H:%M",), "Europe/Berlin", nonexistent="reject", ambiguous="reject")
    assert bad.tolist() == [True, True, False]
    assert out[2] == dt.datetime(2024, 10, 27, 2, 30, tzinfo=UTC)


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Sao_Paulo"])
def test_shift_forward_is_the_first_instant_after_each_gap(zone: str) -> None:
    """Every skipped wall time of 2000-2030, at half-hour steps, lands on the change itself: the
    instant whose offset is the new one while the second before has the old one."""
    from zoneinfo import ZoneInfo

    tz, texts = ZoneInfo(zone), []
    for hour in range(0, 24 * 365 * 31, 24):
        day = dt.datetime(2000, 1, 1) + dt.timedelta(hours=hour)
        for half in range(48):
            wall = day + dt.timedelta(minutes=30 * half)
            if wall.replace(tzinfo=tz, fold=0).utcoffset() != wall.replace(tzinfo=tz, fold=1).utcoffset() and \
                    wall.replace(tzinfo=tz).astimezone(UTC).astimezone(tz).replace(tzinfo=None) != wall:
                texts.append(wall.strftime("%Y-%m-%d %H:%M"))
    assert len(texts) >= 30
    out, bad, placed = coerce.read_datetimes(s(*texts), ("%Y-%m-%d %H:%M",), zone)
    assert not bad.any() and set(placed) == {"nonexistent: shift_forward"}
    for text, instant in zip(texts, out):
        before = (instant - dt.timedelta(seconds=1)).astimezone(tz)
        assert instant.astimezone(tz).utcoffset() != before.utcoffset(), text
        assert instant.astimezone(tz).replace(tzinfo=None) > dt.datetime.strptime(text, "%Y-%m-%d %H:%M"), text


def test_numbers_are_plain_ascii_digits() -> None:
    assert coerce.to_int(s("1_000", "\u0663", "12", "-4"))[1].tolist() == [True, True, False, False]
    assert coerce.to_decimal(s("1_000.5", "NaN", "1.5", "\u0663.1"), 2, False)[1].tolist() == [True, True, False, True]


def test_numbers_beyond_what_the_column_stores_are_refused_not_crashed() -> None:
    values, bad = coerce.to_int(pd.Series(["9223372036854775807", "9223372036854775808", "-9223372036854775809"]))
    assert bad.tolist() == [False, True, True] and values[0] == (1 << 63) - 1
    values, bad = coerce.to_decimal(pd.Series(["999999999999.99", "1000000000000", "-1000000000000.00"]), 2, False,
                             precision=14)
    assert bad.tolist() == [False, True, True] and values[0] == Decimal("999999999999.99")


def test_integer_columns_hold_32_bits_as_on_postgresql() -> None:
    from sqlalchemy import BigInteger, Integer

    assert (coerce.int_bits(Integer()), coerce.int_bits(BigInteger())) == (32, 64)
    _, bad = coerce.to_int(pd.Series(["2147483647", "2147483648", "-2147483648", "-2147483649"]), 32)
    assert bad.tolist() == [False, True, False, True]


def test_an_iso_utc_midnight_is_a_date() -> None:
    """Exports write dates as UTC midnights (`2007-01-01T00:00:00Z`): that is the date. A midnight
    at another offset is another day in UTC, and a time of day would be lost: both refused."""
    text = s("2007-01-01T00:00:00Z", "2007-01-01T00:00:00+00:00", "2007-01-01T00:00Z",
             "2007-01-01T00:00:00+02:00", "2007-01-01T10:00:00Z")
    out, bad = coerce.to_date(text, ("iso",))
    assert out[:3].tolist() == [dt.date(2007, 1, 1)] * 3
    assert bad.tolist() == [False, False, False, True, True]
