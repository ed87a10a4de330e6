"""Text → typed values for the CRM's column types: one registered coercion per type, its Python
half (the reference: what map_frame stores) and its DuckDB half (sure only where it gives the
same) side by side, in numbers.py and dates.py. tests/map/test_conformance.py holds each pair.

Strict: a value that does not parse is refused (and its record rejected, or dropped and recorded
for a lenient field), never a silent null.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pandas as pd

from crmmigrate.map.coerce.dates import read_datetimes, sql_to_date, sql_to_datetime, to_date, to_datetime
from crmmigrate.map.coerce.numbers import (
    FALSE, TRUE, int_bits, sql_to_bool, sql_to_decimal, sql_to_int, to_bool, to_decimal, to_int,
)
from crmmigrate.spec.reasons import ReasonCode
from crmmigrate.sqlpipe import _Pipe

if TYPE_CHECKING:
    from crmmigrate.spec.model import FieldSpec, MappingSpec


@dataclass(frozen=True)
class Target:
    """What a coercion reads of its field, its column and its source."""

    formats: tuple[str, ...] = ("iso",)
    timezone: str = "UTC"
    nonexistent: str = "shift_forward"
    ambiguous: str = "first"
    precision: int | None = None
    scale: int = 0
    cents: bool = False
    decimal_mark: str = "."
    bits: int = 64


def target_for(column_type: Any, fs: FieldSpec, mapping: MappingSpec,
               dst: tuple[str, str] = ("shift_forward", "first")) -> Target:
    """The one place both routes read a field's coercion settings from."""
    return Target(formats=tuple(fs.formats or ("iso",)), timezone=mapping.timezone, nonexistent=dst[0],
                  ambiguous=dst[1], precision=getattr(column_type, "precision", None),
                  scale=getattr(column_type, "scale", None) or 0, cents=fs.cents, decimal_mark=fs.decimal_mark,
                  bits=int_bits(column_type))


@dataclass(frozen=True)
class Coercion:
    """One coercion: *read* (Python: values, bad, and what a policy placed or None) and *sql* (its
    DuckDB half, writing on a field's pipe)."""

    python_type: type
    reason: ReasonCode
    read: Callable[[pd.Series, Target], tuple[pd.Series, pd.Series, pd.Series | None]]
    sql: Callable[[_Pipe, Target], None]


COERCIONS: dict[type, Coercion] = {c.python_type: c for c in (
    Coercion(dt.datetime, ReasonCode.INVALID_DATETIME,
             lambda v, t: read_datetimes(v, t.formats, t.timezone, t.nonexistent, t.ambiguous),
             lambda p, t: sql_to_datetime(p, t.formats, t.timezone)),
    Coercion(dt.date, ReasonCode.INVALID_DATE, lambda v, t: (*to_date(v, t.formats), None),
             lambda p, t: sql_to_date(p, t.formats)),
    Coercion(Decimal, ReasonCode.INVALID_NUMBER,
             lambda v, t: (*to_decimal(v, t.scale, t.cents, t.decimal_mark, t.precision), None),
             lambda p, t: sql_to_decimal(p, t.precision, t.scale, t.cents, t.decimal_mark)),
    Coercion(int, ReasonCode.INVALID_NUMBER, lambda v, t: (*to_int(v, t.bits), None), lambda p, t: sql_to_int(p, t.bits)),
    Coercion(bool, ReasonCode.INVALID_BOOLEAN, lambda v, t: (*to_bool(v), None), lambda p, t: sql_to_bool(p)),
)}

REASON_FOR_TYPE: dict[type, ReasonCode] = {t: c.reason for t, c in COERCIONS.items()}

__all__ = ["COERCIONS", "FALSE", "REASON_FOR_TYPE", "TRUE", "Coercion", "Target", "int_bits", "read_datetimes",
           "sql_to_bool", "sql_to_date", "sql_to_datetime", "sql_to_decimal", "sql_to_int", "target_for", "to_bool",
           "to_date", "to_datetime", "to_decimal", "to_int"]
