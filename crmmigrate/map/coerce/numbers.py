"""Numbers and flags: text → Decimal, int, bool. Each Python half (the reference) is followed by
its DuckDB half, which is sure of plain ASCII text and never of anything Python reads otherwise.

Strict: a value that does not parse is refused, never a silent null; a decimal with more places
than the column holds is refused rather than rounded.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pandas as pd
from sqlalchemy import BigInteger

from crmmigrate.map.coerce.base import _per_value, _stripped
from crmmigrate.sqlpipe import _NoSql, _Pipe, _ascii, _full, _one_of, quote_str

TRUE = {"true", "t", "yes", "y", "1", "ja", "j", "x"}
FALSE = {"false", "f", "no", "n", "0", "nein"}


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


def sql_to_decimal(p: _Pipe, precision: int, scale: int, cents: bool, mark: str) -> None:
    """Plain ASCII numbers, with groups of three (`1,234.56`; `1.234,56` for mark `,`); no exponents."""
    if precision > 28:  # Python's default context quantizes to 28 digits at most
        raise _NoSql(f"DECIMAL({precision},{scale}) is wider than Python's decimal context")
    t = _stripped(p)
    if mark == ".":
        plain, grouped = "[+-]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)", "[+-]?[0-9]{1,3}(,[0-9]{3})+(\\.[0-9]+)?"
        number = f"replace({t}, ',', '')"
    else:
        plain, grouped = "[+-]?([0-9]+(,[0-9]*)?|,[0-9]+)", "[+-]?[0-9]{1,3}([. ][0-9]{3})+(,[0-9]+)?"
        number = f"replace(replace(replace({t}, '.', ''), ' ', ''), ',', '.')"
    number = p.let(f"CASE WHEN {_full(t, plain)} OR {_full(t, grouped)} THEN {number} END")
    if cents:  # integral text only (`12`, `12.00`), then two places to the right: `-7` → `-0.07`
        integral = _full(number, "[+-]?[0-9]*(\\.0*)?")
        digits = p.let(f"CASE WHEN {integral} THEN regexp_extract({number}, '^[+-]?([0-9]*)', 1) END")
        padded = f"CASE WHEN length({digits}) < 3 THEN lpad({digits}, 3, '0') ELSE {digits} END"  # lpad truncates
        number = p.let(f"regexp_extract({number}, '^[+-]?') || regexp_replace({padded}, '([0-9]{{2}})$', '.\\1')")
    # Python refuses a value that would need rounding; DuckDB would round it.
    exact = _full(number, f"[+-]?[0-9]*(\\.[0-9]{{0,{scale}}}0*)?")
    p.value = p.let(f"CASE WHEN {exact} THEN try_cast({number} AS DECIMAL({precision},{scale})) END")
    # coerce.to_decimal reads no number from a text without an ASCII digit (`n/a`, `-`, `?`).
    p.refuse("type", f"{t} <> '' AND NOT regexp_matches({t}, '[0-9]')")
    p.require(f"{t} IS NULL OR {t} = '' OR {p.value} IS NOT NULL")


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


def sql_to_int(p: _Pipe, bits: int = 64) -> None:
    t = _stripped(p)
    sql_type = {32: "INTEGER", 64: "BIGINT"}[bits]
    p.value = p.let(f"CASE WHEN {_full(t, '[+-]?[0-9]+')} THEN CAST(try_cast({t} AS {sql_type}) AS BIGINT) END")
    # coerce.to_int reads exactly this: ASCII `[+-]?[0-9]+` within the type. The rest it refuses.
    p.refuse("type", f"{t} <> '' AND {p.value} IS NULL")
    p.require(f"{t} IS NULL OR {t} = '' OR {p.value} IS NOT NULL")  # NULL also where the type overflows


def to_bool(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    def parse(text: str) -> bool:
        low = text.lower()
        if low in TRUE:
            return True
        if low in FALSE:
            return False
        raise ValueError(text)

    return _per_value(values, parse)


def sql_to_bool(p: _Pipe) -> None:
    # Only ASCII: DuckDB lower-cases `İ` to `i`, so `NEİN` would read as `nein`; Python makes it `neı̇n`.
    t = _stripped(p)
    low = p.let(f"lower({t})")
    true, false = ([quote_str(v) for v in sorted(s)] for s in (TRUE, FALSE))
    p.refuse("type", f"{t} <> '' AND {_ascii(t)} AND NOT {_one_of(low, true + false)}")
    p.require(f"{t} IS NULL OR {t} = '' OR ({_ascii(t)} AND {_one_of(low, true + false)})")
    p.value = f"CASE WHEN {_one_of(low, true)} THEN true WHEN {_one_of(low, false)} THEN false END"
