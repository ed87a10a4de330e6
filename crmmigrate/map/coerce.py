"""Text → typed values for the CRM's column types. Each coercer returns (values, bad mask).

Strict: a value that does not parse is refused (and its record rejected), never a silent
null; a decimal with more places than the column holds is refused rather than rounded.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import BigInteger

from crmmigrate.spec.reasons import ReasonCode

TRUE = {"true", "t", "yes", "y", "1", "ja", "j", "x"}
FALSE = {"false", "f", "no", "n", "0", "nein"}


def _per_value(values: pd.Series, parse: Callable[[str], object]) -> tuple[pd.Series, pd.Series]:
    """Blank text is missing (as the CSV reader already reads it), not an invalid value nor `False`.

    Each distinct text is parsed once per chunk (`pd.factorize`), then spread back to its rows:
    a legacy column repeats its values (codes, dates, flags), and *parse* is plain Python.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    parsed = np.empty(len(uniques) + 1, dtype=object)  # the last slot is for missing (-1)
    refused = np.zeros(len(uniques) + 1, dtype=bool)
    for pos, raw in enumerate(uniques):
        text = raw.strip()
        if not text:
            continue
        try:
            parsed[pos] = parse(text)
        except (ValueError, ArithmeticError, TypeError):
            refused[pos] = True
    return (pd.Series(parsed[codes], index=values.index, dtype=object),
            pd.Series(refused[codes], index=values.index))


# Parsed text is remembered across chunks: a source's dates repeat (birth dates, order days),
# and strptime costs microseconds per call. Bounded, so memory stays independent of the input.
_PARSED_TEXTS = 1 << 17


def _localise(naive: dt.datetime, zone: ZoneInfo, nonexistent: str, ambiguous: str) -> tuple[dt.datetime, str | None]:
    """*naive* as a time in *zone*, and the policy that placed it where daylight saving makes the
    wall time name no single instant (None elsewhere). A repeated wall time is its `first`
    (fold=0) or `second` occurrence; a skipped one moves to the first instant after the gap, the
    change itself (`shift_forward`, as pandas names it); `reject` refuses either."""
    early, late = naive.replace(tzinfo=zone, fold=0), naive.replace(tzinfo=zone, fold=1)
    if early.utcoffset() == late.utcoffset():
        return early, None
    if early.astimezone(dt.timezone.utc).astimezone(zone).replace(tzinfo=None) == naive:  # it exists twice
        if ambiguous == "reject":
            raise ValueError(f"{naive} happens twice in {zone.key} (daylight saving ends)")
        return (early if ambiguous == "first" else late), f"ambiguous: {ambiguous}"
    if nonexistent == "reject":
        raise ValueError(f"{naive} does not exist in {zone.key} (daylight saving begins)")
    # The change lies between the two readings; zones change offset on a whole second.
    lo, hi = sorted(int(t.timestamp()) for t in (early, late))
    after = dt.datetime.fromtimestamp(hi, zone).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if dt.datetime.fromtimestamp(mid, zone).utcoffset() == after else (mid, hi)
    return dt.datetime.fromtimestamp(hi, zone), f"nonexistent: {nonexistent}"


@functools.lru_cache(maxsize=32)
def _datetime_parser(formats: tuple[str, ...], timezone: str, nonexistent: str,
                     ambiguous: str) -> Callable[[str], tuple[dt.datetime, str | None]]:
    zone = ZoneInfo(timezone)

    @functools.lru_cache(maxsize=_PARSED_TEXTS)
    def parse(text: str) -> tuple[dt.datetime, str | None]:
        for fmt in formats:
            try:
                if fmt == "iso":
                    value = dt.datetime.fromisoformat(text)
                elif fmt == "epoch":
                    return dt.datetime.fromtimestamp(int(text), dt.timezone.utc), None
                else:
                    value = dt.datetime.strptime(text, fmt)
            except (ValueError, OverflowError, OSError):  # OSError: an epoch past the platform's range
                continue
            placed = None
            if value.tzinfo is None:
                value, placed = _localise(value, zone, nonexistent, ambiguous)
            return value.astimezone(dt.timezone.utc), placed
        raise ValueError(text)

    return parse


def read_datetimes(values: pd.Series, formats: tuple[str, ...], timezone: str, nonexistent: str = "shift_forward",
                   ambiguous: str = "first") -> tuple[pd.Series, pd.Series, pd.Series]:
    """Naive values are read in the source's *timezone*; every result is UTC.

    Parameters
    ----------
    values
        Text (None = missing; blank = missing).
    formats
        strptime formats, ``iso`` or ``epoch`` (seconds), tried in order.
    timezone
        IANA zone of naive values.
    nonexistent, ambiguous
        The source's policies for wall times daylight saving skips or repeats (see `_localise`).

    Returns
    -------
    (values, bad, placed)
        Aware UTC datetimes (None where missing or refused), the mask of refused values, and the
        policy that placed each value daylight saving made doubtful (None for the others).
    """
    read, bad = _per_value(values, _datetime_parser(tuple(formats), timezone, nonexistent, ambiguous))
    # Built as object Series: pandas would infer datetime64 and turn a missing value into NaT.
    values_out = pd.Series([None if pair is None else pair[0] for pair in read], index=read.index, dtype=object)
    placed = pd.Series([None if pair is None else pair[1] for pair in read], index=read.index, dtype=object)
    return values_out, bad, placed


def to_datetime(values: pd.Series, formats: tuple[str, ...], timezone: str, nonexistent: str = "shift_forward",
                ambiguous: str = "first") -> tuple[pd.Series, pd.Series]:
    """`read_datetimes` without the policies' record: (values, bad)."""
    out, bad, _ = read_datetimes(values, formats, timezone, nonexistent, ambiguous)
    return out, bad


def _required_literals(fmt: str) -> str:
    """Characters every text that *fmt* reads must contain: its punctuation outside directives.
    (strptime matches letters case-insensitively and any whitespace run for a space.)"""
    if fmt in ("iso", "epoch"):
        return ""
    literal = re.sub(r"%.", "", fmt)
    return "".join(sorted({c for c in literal if not c.isalpha() and not c.isspace()}))


@functools.lru_cache(maxsize=32)
def _iso_date(text: str) -> dt.date:
    """An ISO date, or an ISO date-time at exactly midnight, with no offset or UTC's (exports write
    dates as `2007-01-01T00:00:00Z`); anything else would lose a time or a day
    (`2024-01-15T23:30-05:00` is the 16th in UTC), so it is refused."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        value = dt.datetime.fromisoformat(text)
    if value.utcoffset() not in (None, dt.timedelta(0)) or value.time() != dt.time():
        raise ValueError(text)
    return value.date()


def _date_parser(formats: tuple[str, ...]) -> Callable[[str], dt.date]:
    needs = [(fmt, _required_literals(fmt)) for fmt in formats]

    @functools.lru_cache(maxsize=_PARSED_TEXTS)
    def parse(text: str) -> dt.date:
        for fmt, literals in needs:
            if any(c not in text for c in literals):
                continue  # strptime would refuse it: skip the cost of trying
            try:
                if fmt == "iso":
                    return _iso_date(text)
                return dt.datetime.strptime(text, fmt).date()
            except ValueError:
                continue
        raise ValueError(text)

    return parse


def to_date(values: pd.Series, formats: tuple[str, ...]) -> tuple[pd.Series, pd.Series]:
    """Dates in the first of *formats* (strptime formats or ``iso``) that reads the whole text.

    Returns
    -------
    (values, bad)
        ``datetime.date`` values (None where missing or refused) and the mask of refused values.
    """
    return _per_value(values, _date_parser(tuple(formats)))


_DIGIT_GROUPS = {".": re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$"), ",": re.compile(r"^[+-]?\d{1,3}([. \u00a0]\d{3})+(,\d+)?$")}


def _plain_number(text: str, mark: str) -> str:
    """`1.234,56` (mark `,`) or `1,234.56` (mark `.`) as `1234.56`; anything else left to Decimal."""
    whole, sep, frac = text.rpartition(mark) if mark in text else (text, "", "")
    if _DIGIT_GROUPS[mark].match(text):
        whole = re.sub(r"[,. \u00a0]", "", whole)
    elif mark == "," and "." in whole:  # a point that does not group by three: ambiguous
        raise ValueError(text)
    return whole + ("." + frac if sep else "")


def to_decimal(values: pd.Series, scale: int, cents: bool, decimal_mark: str = ".",
               precision: int | None = None) -> tuple[pd.Series, pd.Series]:
    """Exact decimals. With ``decimal_mark=","`` the text is read the German way (`1.234,56`);
    digit grouping is accepted only where it groups by three, so `1.23` is not 123 in disguise.
    A value with more than *precision* digits does not fit the column: refused, not overflowed."""
    quantum = Decimal(1).scaleb(-scale)
    limit = None if precision is None else Decimal(10) ** (precision - scale)

    def parse(text: str) -> Decimal:
        text = _plain_number(text, decimal_mark)
        if not _ASCII_DECIMAL.fullmatch(text):  # Decimal() also takes `1_000`, `NaN` and non-ASCII digits
            raise ValueError(text)
        value = Decimal(text)
        if not value.is_finite():
            raise ValueError(text)
        if cents:
            if value != value.to_integral_value():
                raise ValueError(text)
            value = value.scaleb(-2)
        if limit is not None and abs(value) >= limit:
            raise ValueError(f"more than {precision} digits")
        exact = value.quantize(quantum)
        if exact != value:  # `12.340` fits two places; `12.345` would need rounding
            raise ValueError(f"more than {scale} decimal places")
        return exact

    return _per_value(values, parse)


_ASCII_INT = re.compile(r"[+-]?[0-9]+")
_ASCII_DECIMAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


def int_bits(column_type: object) -> int:
    """Bits of a CRM integer column: `Integer` is 32-bit on PostgreSQL and most servers, so a value
    beyond that is refused here rather than failing the load."""
    return 64 if isinstance(column_type, BigInteger) else 32


def to_int(values: pd.Series, bits: int = 64) -> tuple[pd.Series, pd.Series]:
    """Plain ASCII integers within *bits* (Python's int() also takes `1_000` and non-ASCII digits:
    a legacy value like that is refused)."""
    limit = range(-(1 << (bits - 1)), 1 << (bits - 1))

    def parse(text: str) -> int:
        if not _ASCII_INT.fullmatch(text) or int(text) not in limit:
            raise ValueError(text)
        return int(text)

    return _per_value(values, parse)


def to_bool(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    def parse(text: str) -> bool:
        low = text.lower()
        if low in TRUE:
            return True
        if low in FALSE:
            return False
        raise ValueError(text)

    return _per_value(values, parse)


REASON_FOR_TYPE: dict[type, ReasonCode] = {
    dt.datetime: ReasonCode.INVALID_DATETIME,
    dt.date: ReasonCode.INVALID_DATE,
    Decimal: ReasonCode.INVALID_NUMBER,
    int: ReasonCode.INVALID_NUMBER,
    bool: ReasonCode.INVALID_BOOLEAN,
}

__all__ = ["REASON_FOR_TYPE", "int_bits", "read_datetimes", "to_bool", "to_date", "to_datetime", "to_decimal", "to_int"]
