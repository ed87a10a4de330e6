"""Text → typed values for the CRM's column types. Each coercer returns (values, bad mask).

Strict: a value that does not parse is refused (and its record rejected), never a silent
null; a decimal with more places than the column holds is refused rather than rounded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from zoneinfo import ZoneInfo

import pandas as pd

from crmmigrate.spec.reasons import ReasonCode

TRUE = {"true", "t", "yes", "y", "1", "ja", "j", "x"}
FALSE = {"false", "f", "no", "n", "0", "nein"}


def _per_value(values: pd.Series, parse: Callable[[str], object]) -> tuple[pd.Series, pd.Series]:
    """Blank text is missing (as the CSV reader already reads it), not an invalid value nor `False`."""
    out = pd.Series(None, index=values.index, dtype=object)
    bad = pd.Series(False, index=values.index)
    for idx, raw in values.dropna().items():
        if not raw.strip():
            continue
        try:
            out[idx] = parse(raw.strip())
        except (ValueError, ArithmeticError, TypeError):
            bad[idx] = True
    return out, bad


def _datetime_parser(formats: tuple[str, ...], zone: ZoneInfo) -> Callable[[str], dt.datetime]:
    def parse(text: str) -> dt.datetime:
        for fmt in formats:
            try:
                if fmt == "iso":
                    value = dt.datetime.fromisoformat(text)
                elif fmt == "epoch":
                    return dt.datetime.fromtimestamp(int(text), dt.timezone.utc)
                else:
                    value = dt.datetime.strptime(text, fmt)
            except (ValueError, OverflowError):
                continue
            if value.tzinfo is None:
                value = value.replace(tzinfo=zone)
            return value.astimezone(dt.timezone.utc)
        raise ValueError(text)

    return parse


def to_datetime(values: pd.Series, formats: tuple[str, ...], timezone: str) -> tuple[pd.Series, pd.Series]:
    """Naive values are read in the source's *timezone*; every result is UTC."""
    out, bad = _per_value(values, _datetime_parser(formats, ZoneInfo(timezone)))
    return out, bad


def to_date(values: pd.Series, formats: tuple[str, ...]) -> tuple[pd.Series, pd.Series]:
    def parse(text: str) -> dt.date:
        for fmt in formats:
            try:
                if fmt == "iso":
                    return dt.date.fromisoformat(text[:10]) if len(text) >= 10 else dt.date.fromisoformat(text)
                return dt.datetime.strptime(text, fmt).date()
            except ValueError:
                continue
        raise ValueError(text)

    return _per_value(values, parse)


def to_decimal(values: pd.Series, scale: int, cents: bool) -> tuple[pd.Series, pd.Series]:
    quantum = Decimal(1).scaleb(-scale)

    def parse(text: str) -> Decimal:
        value = Decimal(text)
        if not value.is_finite():
            raise ValueError(text)
        if cents:
            if value != value.to_integral_value():
                raise ValueError(text)
            value = value.scaleb(-2)
        exact = value.quantize(quantum)
        if exact != value:  # `12.340` fits two places; `12.345` would need rounding
            raise ValueError(f"more than {scale} decimal places")
        return exact

    return _per_value(values, parse)


def to_int(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    return _per_value(values, int)


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

__all__ = ["REASON_FOR_TYPE", "to_bool", "to_date", "to_datetime", "to_decimal", "to_int"]
