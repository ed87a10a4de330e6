"""DuckDB SQL for the map stage: one entity mapping → SQL expressions, plus a per-row `sure` flag.

`map_frame` (mapper.py) stays the reference semantics. The SQL need only be exact on the rows
it marks sure; every other row (a possible reject or skip, a shape the SQL does not read
exactly) is mapped by `map_frame`. So every rule compiles to a value and a condition under
which that value is *provably* the one `map_frame` gives and `map_frame` does not refuse it.
Python and DuckDB differ in subtle places (Unicode case mapping and whitespace, `\\d` and
`\\s`, strptime), so each condition keeps to inputs where they are known to agree;
tests/map/test_sql.py checks each of them by enumeration against the Python code.

A field rule with no exact SQL form (a user transform, a strptime directive not checked here, a
time zone whose rules DuckDB and Python's zoneinfo do not share…) makes that field never sure
(`CompiledEntity.python_fields` says why): map_frame maps it, with the other fields handed over.
What the entity as a whole cannot compile (a source's change time in such a zone, a link without
a column) makes `compile_entity` return None: the caller then maps the entity with `map_frame`
alone. Either way run.json says which route each (source, entity) took, and why.

Read the columns, `sure` (and any `fields_sure`) from `CompiledEntity.over(table)`: a value a
rule reads more than once is computed once per row, as a column of its own in a projection
layered over the table (`SELECT *, … AS __crm_0_v1 FROM (SELECT *, … AS __crm_0_v0 FROM …)`).
DuckDB shares no subexpression inside CASE, AND or OR; binding a value in a lambda
(`list_transform([x], lambda v: …)[1]`) cost ~0.3 s of CPU per field and million rows more.
"""

from __future__ import annotations

import _strptime
import datetime as dt
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb
import pandas as pd
import pyarrow as pa
from sqlalchemy import String

from crmmigrate.crm.models import ENTITIES, entity_fields
from crmmigrate.map import coerce
from crmmigrate.map.mapper import map_frame
from crmmigrate.schemas import LINEAGE_NAMES, UTC_TS, link_fields, mapped_schema
from crmmigrate.spec.model import EntityMapping, FieldSpec, MappingSpec
from crmmigrate.spec.reasons import ReasonCode
from crmmigrate.sqlpipe import (
    _LAMBDA, _WS, _NoSql, _Pipe, _ascii, _full, _one_of, _printable_ascii, _strip, layered, quote_str,
)
from crmmigrate.sqltext import ident
from crmmigrate.transforms import get_transform, transform_names


def sql_half(name: str) -> Any:
    """The DuckDB half registered beside transform *name*'s Python half, or None (no such
    transform, or one without SQL)."""
    return get_transform(name).sql if name in transform_names() else None


@dataclass(frozen=True)
class CompiledEntity:
    """DuckDB expressions over the columns of ``extract/<source>.parquet``."""

    columns: dict[str, str]  # every name of mapped_schema(entity), in its order → expression
    sure: str                # never NULL; TRUE where the row's values equal map_frame's and it maps the row
    # Field of em.fields → never NULL; TRUE where that field's value equals map_frame's and passes
    # every rule of the field (map_frame may take it as known and run only the other fields' rules).
    fields_sure: dict[str, str] = field(default_factory=dict)
    # Never NULL; TRUE where map_frame certainly rejects the row with exactly the failures below.
    reject: str = "false"
    # The failures map_frame lists for a `reject` row, in its order: where the condition holds,
    # the failure struct (schemas.FAILURE's fields) is one of them.
    failures: list[Failure] = field(default_factory=list)
    # (layer, name, expression): the bound values the expressions above read (see `over`).
    lets: list[tuple[int, str, str]] = field(default_factory=list)
    # (field, transform, flag): where that step changed the field's value (read on sure fields only).
    changes: list[tuple[str, str, str]] = field(default_factory=list)
    # Field → why a rule of it has no SQL form: never sure, so map_frame maps it on every row
    # (with the entity's other fields handed over as known).
    python_fields: dict[str, str] = field(default_factory=dict)

    def over(self, table: str) -> str:
        """*table* (an SQL table expression) with the bound values as columns: the FROM of the
        expressions above."""
        return layered(table, self.lets)


@dataclass(frozen=True)
class Failure:
    """One failed rule map_frame certainly reports: *when* (never NULL) and what, as mapper._Failures.add
    writes it (`struct`), for the raw input *value* and the text of *message* (both SQL)."""

    field: str
    when: str
    rule: str
    reason: ReasonCode
    value: str
    message: str
    lenient: bool = False  # an `on_invalid: null` field's: listed, but it rejects nothing by itself

    def struct(self, value: str | None = None, message: str | None = None) -> str:
        """A schemas.FAILURE struct; *value* and *message*, where given, name them already computed."""
        return (f"{{'field': {quote_str(self.field)}, 'rule': {quote_str(self.rule)}, 'value': {value or self.value}, "
                f"'reason_code': {quote_str(str(self.reason))}, 'category': {quote_str(self.reason.category)}, "
                f"'message': {message or self.message}}}")


def compile_entity(em: EntityMapping, mapping: MappingSpec, tag: str = "") -> CompiledEntity | None:
    """None when *em* as a whole has no SQL form (the caller then maps the entity with map_frame).

    *tag* goes into the names of the bound values, so that several entities' expressions can
    share one query."""
    return compile_or_why(em, mapping, tag)[0]


def compile_or_why(em: EntityMapping, mapping: MappingSpec, tag: str = "") -> tuple[CompiledEntity | None, str | None]:
    """(the compiled entity, None), or (None, why it has no SQL form): the route is never silent."""
    try:
        return _compile(em, mapping, tag), None
    except _NoSql as exc:
        return None, str(exc)




# --- value map -----------------------------------------------------------------------------

def _value_map(p: _Pipe, table: dict[str, str | bool | None], python_type: type) -> bool:
    """Map the value; a value outside the map is a reject. Returns whether it is already typed."""
    targets = list(table.values())
    if all(t is None or isinstance(t, str) for t in targets):
        typed = False
    elif python_type is bool and all(t is None or type(t) is bool for t in targets):
        typed = True  # map_frame keeps a bool from the map as it is, without coercion
    else:
        raise _NoSql(f"value map {table} mixes types")

    def target(t: str | bool | None) -> str:
        return "NULL" if t is None else str(t).lower() if isinstance(t, bool) else quote_str(t)

    x = p.bind()
    keys = _one_of(x, [quote_str(k) for k in table])
    # Every rule before the map passed and the value is present but not a key: map_frame's
    # `unmapped_value`, and nothing after it fails (the value is then missing, not invalid).
    p.refuse("map", f"{x} IS NOT NULL AND NOT {keys}")
    p.require(f"{x} IS NULL OR {keys}")
    cases = " ".join(f"WHEN {quote_str(k)} THEN {target(t)}" for k, t in table.items())
    p.value = f"CAST(CASE {x} {cases} END AS {'BOOLEAN' if typed else 'VARCHAR'})" if table else \
        f"CAST(NULL AS {'BOOLEAN' if typed else 'VARCHAR'})"
    return typed


# --- coercions (crmmigrate/map/coerce.py) --------------------------------------------------
# Each reads Python-stripped text (coerce._per_value); blank text is missing, not refused.
# Length and required are checked on the emitted value (see _field).

def _stripped(p: _Pipe) -> str:
    return p.let(_strip(p.bind()))


def to_bool(p: _Pipe) -> None:
    # Only ASCII: DuckDB lower-cases `İ` to `i`, so `NEİN` would read as `nein`; Python makes it `neı̇n`.
    t = _stripped(p)
    low = p.let(f"lower({t})")
    true, false = ([quote_str(v) for v in sorted(s)] for s in (coerce.TRUE, coerce.FALSE))
    p.refuse("type", f"{t} <> '' AND {_ascii(t)} AND NOT {_one_of(low, true + false)}")
    p.require(f"{t} IS NULL OR {t} = '' OR ({_ascii(t)} AND {_one_of(low, true + false)})")
    p.value = f"CASE WHEN {_one_of(low, true)} THEN true WHEN {_one_of(low, false)} THEN false END"


def to_int(p: _Pipe, bits: int = 64) -> None:
    t = _stripped(p)
    sql_type = {32: "INTEGER", 64: "BIGINT"}[bits]
    p.value = p.let(f"CASE WHEN {_full(t, '[+-]?[0-9]+')} THEN CAST(try_cast({t} AS {sql_type}) AS BIGINT) END")
    # coerce.to_int reads exactly this: ASCII `[+-]?[0-9]+` within the type. The rest it refuses.
    p.refuse("type", f"{t} <> '' AND {p.value} IS NULL")
    p.require(f"{t} IS NULL OR {t} = '' OR {p.value} IS NOT NULL")  # NULL also where the type overflows


def to_decimal(p: _Pipe, precision: int, scale: int, cents: bool, mark: str) -> None:
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


_DIRECTIVES = set("YymbBdHMS")


def _strptime_value(t: str, fmt: str, number: int, with_time: bool) -> str:
    """The DATE (or naive TIMESTAMP) that `datetime.strptime(t, fmt)` gives, NULL where it raises.

    Python's own regex for *fmt* (`_strptime._TimeRE_cache`) runs in RE2: on printable ASCII
    Python's Unicode `\\d`, `\\s` and IGNORECASE agree with RE2's. Python takes the first match
    at the start (leftmost-first, as RE2 does) and refuses it when it stops short of the end,
    so the whole match is captured and compared with the text. The date is then built from the
    groups as _strptime does, and DuckDB's cast refuses the days that do not exist."""
    directives = re.findall(r"%(.)", fmt)
    kinds = [sum(d in group for d in directives) for group in ("Yy", "mbB", "d")]
    if not set(directives) <= _DIRECTIVES or len(set(directives)) != len(directives) or kinds != [1, 1, 1] \
            or not (fmt.isascii() and fmt.isprintable()):
        raise _NoSql(f"date format {fmt!r}: only %Y/%y, %m/%b/%B, %d, %H, %M, %S, each once, are compiled")
    pattern = _strptime._TimeRE_cache.pattern(fmt)
    compiled = re.compile(pattern, re.IGNORECASE)
    names = sorted(compiled.groupindex, key=compiled.groupindex.__getitem__)
    if compiled.groups != len(names):
        raise _NoSql(f"date format {fmt!r}: unnamed groups in {pattern!r}")
    g = f"{_LAMBDA}g{number}"

    def group(name: str) -> str:  # DuckDB's struct names ignore case, so `m` and `M` go by position
        return f"struct_extract({g}, {quote_str('whole' if name == 'whole' else f'g{names.index(name)}')})"

    def two(digits: str) -> str:
        return f"lpad(ltrim({digits}), 2, '0')"  # `%d` also reads ' 5'

    if "Y" in names:
        year, checks = group("Y"), [f"{group('Y')} <> '0000'"]  # Python has no year 0
    else:  # _strptime's pivot: 00-68 → 20xx, 69-99 → 19xx
        short = f"CAST({group('y')} AS INTEGER)"
        year, checks = f"CAST({short} + CASE WHEN {short} <= 68 THEN 2000 ELSE 1900 END AS VARCHAR)", []
    if "m" in names:
        month = two(group("m"))
    else:
        key = "b" if "b" in names else "B"
        locale = _strptime._TimeRE_cache.locale_time
        months = list(locale.a_month if key == "b" else locale.f_month)[1:]
        month = two(f"CAST(list_position({months!r}, lower({group(key)})) AS VARCHAR)")
    if "S" in names:
        # The regex takes leap seconds, datetime() does not.
        checks.append(f"NOT {_one_of(group('S'), [quote_str('60'), quote_str('61')])}")
    text = f"{year} || '-' || {month} || '-' || {two(group('d'))}"
    if with_time:
        text += " || ' ' || " + " || ':' || ".join(two(group(n)) if n in names else "'00'" for n in "HMS")
    cast = f"try_cast({text} AS {'TIMESTAMP' if with_time else 'DATE'})"
    ok = " AND ".join([f"{group('whole')} = {t}", *checks])
    extract = f"regexp_extract({t}, {quote_str('(?i)^(' + pattern + ')')}, {['whole', *(f'g{i}' for i in range(len(names)))]!r})"
    # The full-match test is cheap and necessary; the groups are extracted only where it holds.
    fixed, gate = _fixed_width(t, fmt, with_time)
    # Only here is printable ASCII tested (see _first_format), after the gate: most texts never get this far.
    return f"CASE {fixed} WHEN {gate}{_printable_ascii(t)} AND {_full(t, '(?i)' + pattern)} THEN " \
           f"list_transform([{extract}], lambda {g}: CASE WHEN {ok} THEN {cast} END)[1] END"


# Each directive's usual spelling, at a fixed width. On such text _strptime's regex takes exactly
# these characters for the directive (its two-digit alternatives come before the one-digit ones),
# and the rest of the text then matches too; so the groups sit at fixed positions.
_FIXED = {"Y": "[0-9]{4}", "y": "[0-9]{2}", "m": "(0[1-9]|1[0-2])", "d": "(0[1-9]|[12][0-9]|3[01])",
          "H": "([01][0-9]|2[0-3])", "M": "[0-5][0-9]", "S": "[0-5][0-9]"}


_ENGLISH_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]


def _fixed_width(t: str, fmt: str, with_time: bool) -> tuple[str, str]:
    """(`WHEN shape THEN value` or '', `gate AND ` or ''): the value of text spelling *fmt* at fixed
    widths (`05/03/2024`, not `5/3/2024`), and a cheap test that _strptime's regex needs.

    Text of that shape is read by DuckDB's strptime with the same directives (its `%y` pivots as
    _strptime's does, its `%b` ignores case too: tests/map/test_sql.py holds them equal): ~3x
    less CPU than an ISO text rebuilt from substr() pieces, itself ~3x less than regexp_extract()
    and a lambda. A text of that shape whose day does not exist is NULL, as Python refuses it.
    The gate (the length _strptime's regex can match, the punctuation it requires) spares the
    regex on texts in another format, which each text meets for every format listed before its own."""
    shape: list[str] | None = []
    duck: list[str] = []  # the format as DuckDB's strptime reads the shape (one space for `\s+`)
    starts: dict[str, int] = {}
    position, shortest, longest, needed = 1, 0, 0, set()
    locale = _strptime._TimeRE_cache.locale_time
    months = [list(locale.a_month)[1:], list(locale.f_month)[1:]]
    for m in re.finditer(r"%(.)|(\s+)|(.)", fmt):
        directive, space, char = m.groups()
        if directive in ("b", "B"):
            names = months[directive == "B"]
            widths = {len(n) for n in names}
            shortest, longest = shortest + min(widths), longest + max(widths)
            # Names of different lengths (`%B`) have no fixed positions; and DuckDB's strptime knows
            # the English names only, which are _strptime's in the C locale (a process may set another).
            if len(widths) > 1 or shape is None or [n.lower() for n in names] != _ENGLISH_MONTHS:
                shape = None
                continue
            width = widths.pop()
            shape.append("(?i:" + "|".join(map(re.escape, names)) + ")")  # _strptime ignores their case
            duck.append(f"%{directive}")
        elif directive is not None and directive != "%":
            width = 2 + 2 * (directive == "Y")
            shortest, longest = shortest + (width if directive in "Yy" else 1), longest + width  # `%d` reads `5`
            if shape is not None:
                shape.append(_FIXED[directive])
                duck.append(f"%{directive}")
        else:  # a literal: one space stands for _strptime's `\s+`; letters match in their own case only
            width, text = 1, " " if space else (char or "%")
            shortest, longest = shortest + 1, longest + (1 << 20 if space else 1)
            if not text.isalnum() and not space:
                needed.add(text)
            if shape is not None:
                shape.append(f"\\x{{{ord(text):x}}}")
                duck.append("%%" if text == "%" else text)
        if directive is not None and directive != "%":
            starts[directive] = position
        position += width
    gate = [f"strlen({t}) >= {shortest}"] + ([f"strlen({t}) <= {longest}"] if longest < 1 << 20 else [])
    gate += [f"contains({t}, {quote_str(c)})" for c in sorted(needed)]
    # strlen() counts characters on printable ASCII, tested next: where it is not, no format reads
    # the text here, and none is refused (a gate mistaken on other text only sends it to Python).
    gate_sql = " AND ".join(gate) + " AND "
    if shape is None:
        return "", gate_sql
    # Its exact length and punctuation first: every text meets the shape of each format listed
    # before its own, and strlen() and contains() spare RE2 most of those (strlen counts characters
    # here, as above).
    checks = [f"strlen({t}) = {position - 1}", *(f"contains({t}, {quote_str(c)})" for c in sorted(needed)),
              _full(t, "".join(shape))]
    if "Y" in starts:
        # Python has no year 0 (DuckDB has). At either end of the text (whose length is checked
        # first) a byte test says so without a substr(), which counts its way through the characters.
        y = starts["Y"]
        checks.append(f"NOT starts_with({t}, '0000')" if y == 1 else f"NOT suffix({t}, '0000')" if y + 4 == position
                      else f"substr({t}, {y}, 4) <> '0000'")
    value = f"try_strptime({t}, {quote_str(''.join(duck))})"
    return f"WHEN {' AND '.join(checks)} THEN {value if with_time else f'CAST({value} AS DATE)'}", gate_sql


def _iso_value(t: str, with_time: bool) -> str:
    """Only `YYYY-MM-DD` (and `YYYY-MM-DDTHH:MM[:SS]` for datetimes): fromisoformat reads many more
    shapes, so a text in none of these is not decided, and later formats are never reached."""
    shape = "[0-9]{4}-[0-9]{2}-[0-9]{2}"
    if not with_time:
        return f"CASE WHEN {_full(t, shape)} AND NOT starts_with({t}, '0000') THEN try_cast({t} AS DATE) END"
    shape += "(T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?)?"
    text = f"CASE length({t}) WHEN 10 THEN {t} || ' 00:00:00' WHEN 16 THEN replace({t}, 'T', ' ') || ':00' " \
           f"ELSE replace({t}, 'T', ' ') END"
    return f"CASE WHEN {_full(t, shape)} AND NOT starts_with({t}, '0000') THEN try_cast({text} AS TIMESTAMP) END"


def _epoch_value(t: str) -> str:
    """`datetime.fromtimestamp(int(text), utc)` for ASCII integers in datetime's years 1-9999.
    int() also reads `1_000` and other digits, so a text this does not read is not decided."""
    seconds = f"CASE WHEN {_full(t, '[+-]?[0-9]{1,12}')} THEN try_cast({t} AS BIGINT) END"
    return f"CASE WHEN {seconds} BETWEEN -62135596800 AND 253402300799 " \
           f"THEN timezone('UTC', make_timestamp({seconds} * 1000000)) END"


def _first_format(p: _Pipe, formats: tuple[str, ...], value: Callable[[str, int, str], str]) -> None:
    """Python tries the formats in order and takes the first that reads the text: the first
    non-NULL (coalesce evaluates a format only on the rows the earlier ones left NULL). `iso`
    and `epoch` decide only the shapes they read here, so later formats are never reached."""
    if not formats:
        raise _NoSql("no formats")
    for i, f in enumerate(formats):
        if f in ("iso", "epoch"):
            formats = formats[:i + 1]
            break
    t = _stripped(p)
    values = ", ".join(value(t, i, f) for i, f in enumerate(formats))
    # Python's regexes agree with RE2's on printable ASCII only. The shapes that need no such test
    # (fixed widths, iso, epoch) read ASCII digits, letters and the format's own punctuation, at as
    # many bytes as characters; the others test it themselves, so most dates skip it.
    p.value = p.let(f"coalesce({values})")
    if not set(formats) & {"iso", "epoch"}:
        # On printable ASCII the compiled strptime regexes are Python's, and a date they read
        # that does not exist (31 April) is refused by both: no format reading the text is a
        # refusal (tests/map/test_sql.py holds this both ways, for dates and datetimes).
        # A CASE, not AND: DuckDB evaluates every operand of an AND in a projection, on every row.
        p.refuse("type", f"CASE WHEN {t} <> '' AND {p.value} IS NULL THEN {_printable_ascii(t)} ELSE false END")
    p.require(f"{t} IS NULL OR {t} = '' OR {p.value} IS NOT NULL")


def to_date(p: _Pipe, formats: tuple[str, ...]) -> None:
    if "epoch" in formats:
        raise _NoSql("epoch is a format of timestamps, not of dates")
    _first_format(p, formats, lambda t, i, f: _iso_value(t, False) if f == "iso" else _strptime_value(t, f, i, False))


def to_datetime(p: _Pipe, formats: tuple[str, ...], timezone: str) -> None:
    """Naive times are read in *timezone* (map_frame refuses one that daylight saving makes
    ambiguous or skips); results are UTC instants (TIMESTAMPTZ)."""
    _check_zone(timezone)

    def value(t: str, i: int, fmt: str) -> str:
        if fmt == "epoch":
            return _epoch_value(t)
        return f"timezone({quote_str(timezone)}, {_iso_value(t, True) if fmt == 'iso' else _strptime_value(t, fmt, i, True)})"

    _first_format(p, formats, value)
    if timezone != "UTC":
        # Sure only where the zone's offset is the same 26 hours before and after: then the wall
        # time is neither skipped nor repeated, and DuckDB's offset is the one checked in _check_zone.
        v, zone = p.value, quote_str(timezone)
        local = "epoch(timezone({}, {} {} INTERVAL 26 HOUR))"
        p.require(f"{v} IS NULL OR ({v} BETWEEN {_ZONE_YEARS[0]} AND {_ZONE_YEARS[1]} AND "
                  f"{local.format(zone, v, '+')} - {local.format(zone, v, '-')} = {52 * 3600})")


# DuckDB's time zones (ICU) are trusted where they were checked against Python's zoneinfo.
_ZONE_YEARS = ("TIMESTAMPTZ '1970-01-03 00:00:00+00'", "TIMESTAMPTZ '2099-12-29 00:00:00+00'")


@functools.lru_cache(maxsize=16)
def _check_zone(timezone: str) -> None:
    """DuckDB (ICU tzdata) and Python (zoneinfo) must give the same instant for a wall time in
    *timezone*: compared twice a day, 1970-2099, wherever Python finds the time unambiguous.
    A zone they disagree on (or ICU does not know) has no exact SQL form."""
    if timezone == "UTC":
        return
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise _NoSql(f"time zone {timezone}: {exc}") from exc
    start, walls, instants = dt.datetime(1970, 1, 1), [], []
    for half_days in range((dt.date(2100, 1, 1) - dt.date(1970, 1, 1)).days * 2):
        wall = start + dt.timedelta(hours=12 * half_days)
        early, late = wall.replace(tzinfo=zone, fold=0), wall.replace(tzinfo=zone, fold=1)
        if early.utcoffset() == late.utcoffset():
            walls.append(wall)
            instants.append(early.astimezone(dt.timezone.utc))
    samples = pa.table({"wall": pa.array(walls, pa.timestamp("us")), "instant": pa.array(instants, UTC_TS)})
    with duckdb.connect() as con:
        con.register("samples", samples)
        try:
            differ = con.sql(f"SELECT count(*) FROM samples WHERE timezone({quote_str(timezone)}, wall) "
                             "IS DISTINCT FROM instant").fetchall()[0][0]
        except duckdb.Error as exc:
            raise _NoSql(f"time zone {timezone} in DuckDB: {exc}") from exc
    if differ or not walls:
        raise _NoSql(f"time zone {timezone}: DuckDB and Python disagree on {differ} wall times")


# --- fields, links, entity -----------------------------------------------------------------

def _sql_type(arrow: pa.DataType) -> str:
    if pa.types.is_decimal(arrow):
        return f"DECIMAL({arrow.precision},{arrow.scale})"
    if pa.types.is_timestamp(arrow):
        return "TIMESTAMPTZ"
    return {pa.string(): "VARCHAR", pa.bool_(): "BOOLEAN", pa.int64(): "BIGINT", pa.date32(): "DATE"}[arrow]


def _literal(value: object, python_type: type, arrow: pa.DataType) -> str:
    """A value map_frame produced, as an SQL literal of the column's type."""
    if value is None:
        return f"CAST(NULL AS {_sql_type(arrow)})"
    if type(value) is not python_type:  # e.g. a constant 5 for a text column: map_frame passes the int on
        raise _NoSql(f"constant {value!r} is not a {python_type.__name__}")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        naive = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return f"timezone('UTC', CAST({quote_str(naive.isoformat(sep=' '))} AS TIMESTAMP))"
    return f"CAST({quote_str(str(value))} AS {_sql_type(arrow)})"


def _constant(em: EntityMapping, name: str, fs: FieldSpec, mapping: MappingSpec) -> tuple[str, str]:
    """A constant is the same on every row: map_frame itself computes it, once, on a one-row frame."""
    for call in fs.transform:
        if sql_half(call.name) is None:
            raise _NoSql(f"{em.entity}.{name}: transform {call.name} has no SQL form")
    alone = EntityMapping(entity=em.entity, from_=em.from_, fields={name: fs})
    lm = mapping.sources[em.from_].last_modified
    raw = [lm.column if lm is not None else "raw"]  # map_frame's rejects need a raw column
    frame = pd.DataFrame({c: pd.Series([0 if c == "_row_number" else None if c in raw else "c"], dtype=object)
                          for c in raw + LINEAGE_NAMES})
    result = map_frame(frame, alone, mapping)
    arrow = mapped_schema(em.entity).field(name).type
    if result.mapped.empty:  # refused: every row is a reject
        return f"CAST(NULL AS {_sql_type(arrow)})", "false"
    return _literal(result.mapped[name].iloc[0], entity_fields(em.entity)[name].python_type, arrow), "true"


def _input(fs: FieldSpec) -> str:
    if fs.column is not None:
        return ident(fs.column)
    assert fs.columns is not None
    # Python joins the present parts (an empty string is present); DuckDB's concat_ws skips NULLs.
    return f"nullif(concat_ws({quote_str(fs.sep)}, {', '.join(map(ident, fs.columns))}), '')"


def _failure(name: str, when: str, rule: str, reason: ReasonCode, message: str, raw: str,
             lenient: bool = False) -> Failure:
    """The failure of rule *rule* of field *name* where *when* holds, for the raw input *raw*."""
    text = f"CAST({raw} AS VARCHAR)"
    return Failure(name, when, rule, reason, text, f"replace({quote_str(message)}, '{{value}}', coalesce({text}, 'None'))",
                   lenient)


def changed_flag(before: str, after: str) -> str:
    """mapper.changed_values in SQL, for two bound names: a held value a step changed. Read only
    where the field is sure, so no step refused it, and each step's value is Python's."""
    return f"coalesce({before} IS NOT NULL AND {before} <> '' AND ({after} IS NULL OR {after} <> {before}), false)"


def _field(em: EntityMapping, name: str, fs: FieldSpec, mapping: MappingSpec, prefix: str,
           changes: list[tuple[str, str, str]] | None = None) -> tuple[str, list[str], list[Failure], list[tuple[int, str, str]]]:
    """(value, [sure conditions], [certain failures], bound values named *prefix*N) of one field;
    each transform step's `changed_flag` is appended to *changes* as (field, transform, flag)."""
    if fs.constant is not None:
        value, sure = _constant(em, name, fs, mapping)
        return value, [sure], [], []
    target = entity_fields(em.entity)[name]
    column_type = ENTITIES[em.entity].__table__.columns[name].type
    p = _Pipe(_input(fs), prefix)
    for call in fs.transform:
        compiler = sql_half(call.name)
        if compiler is None:
            raise _NoSql(f"{em.entity}.{name}: transform {call.name} has no SQL form")
        before = p.bind()
        compiler(p, call.args, mapping)
        if changes is not None:
            changes.append((name, call.name, p.let(changed_flag(before, p.bind()))))
    typed = _value_map(p, fs.map, target.python_type) if fs.map is not None else False
    if typed or target.python_type is str:
        pass  # text is checked for its length below
    elif target.python_type is dt.datetime:
        to_datetime(p, fs.formats or ("iso",), mapping.timezone)
    elif target.python_type is dt.date:
        to_date(p, fs.formats or ("iso",))
    elif target.python_type is Decimal:
        to_decimal(p, column_type.precision, column_type.scale, fs.cents, fs.decimal_mark)
    elif target.python_type is int:
        to_int(p, coerce.int_bits(column_type))
    elif target.python_type is bool:
        to_bool(p)
    else:
        raise _NoSql(f"{em.entity}.{name}: no SQL coercion to {target.python_type.__name__}")
    value, sure, refused = p.emit()
    conditions = [sure]
    limit = column_type.length if isinstance(column_type, String) else None
    if target.python_type is str and limit:  # Python's len() and DuckDB's length() both count code points
        # Text of no more bytes than the limit has no more characters: strlen() reads a stored
        # size, length() the whole text. A CASE, since OR in a projection evaluates both sides.
        conditions.append(f"CASE WHEN strlen({value}) <= {limit} THEN true ELSE coalesce(length({value}) <= {limit}, true) END")
    required = fs.required if fs.required is not None else target.required
    lenient = fs.lenient(required)
    failures = []
    if "map" in refused:
        assert fs.map is not None
        keys = ", ".join(map(str, fs.map))
        failures.append(_failure(name, refused["map"], "map", ReasonCode.UNMAPPED_VALUE,
                                 f"'{{value}}' is not in the value map ({keys})", _input(fs), lenient))
    if "type" in refused:  # as mapper._coerce words it
        reason = coerce.REASON_FOR_TYPE[target.python_type]
        message = f"'{{value}}' is not a valid {target.python_type.__name__}" + (
            f" (formats: {', '.join(fs.formats)})" if fs.formats else "")
        failures.append(_failure(name, refused["type"], "type", reason, message, _input(fs), lenient))
    if required:
        conditions.append(f"({value} IS NOT NULL)")
        # Every rule passed and left nothing: map_frame's only failure of the field is the absence.
        failures.append(_failure(name, f"least({sure}, {value} IS NULL)", "required", ReasonCode.MISSING_REQUIRED,
                                 "a value is required", _input(fs)))
    return value, conditions, failures, p.lets


def _compile(em: EntityMapping, mapping: MappingSpec, tag: str) -> CompiledEntity:
    lm = mapping.sources[em.from_].last_modified
    read = em.read_columns() + ([lm.column] if lm else [])
    if clash := sorted(c for c in read if c.lower().startswith(_LAMBDA)):
        raise _NoSql(f"columns {clash} would be hidden by the SQL's lambda parameters")
    schema = mapped_schema(em.entity)
    columns = {n: ident(n) for n in LINEAGE_NAMES}
    sure: list[str] = []
    lets: list[tuple[int, str, str]] = []
    if (lm := mapping.sources[em.from_].last_modified) is not None:  # first: a constant runs map_frame
        p = _Pipe(ident(lm.column), f"{_LAMBDA}{tag}lm_v")
        to_datetime(p, lm.formats, mapping.timezone)
        columns["_last_modified"], lm_sure, _ = p.emit()
        sure.append(lm_sure)
        lets += p.lets
    else:
        columns["_last_modified"] = "CAST(NULL AS TIMESTAMPTZ)"
    fields_sure: dict[str, str] = {}
    failures: dict[str, list[Failure]] = {}
    changes: list[tuple[str, str, str]] = []
    python_fields: dict[str, str] = {}
    rest = list(sure)  # the row's conditions outside its fields
    for i, name in enumerate(entity_fields(em.entity)):
        if name in em.fields:
            field_changes: list[tuple[str, str, str]] = []
            try:
                columns[name], conditions, failures[name], bound = _field(em, name, em.fields[name], mapping,
                                                                          f"{_LAMBDA}{tag}{i}_v", field_changes)
            except _NoSql as exc:
                # One rule without SQL costs its field, not its entity: the other fields stay sure.
                python_fields[name] = str(exc)
                columns[name] = f"CAST(NULL AS {_sql_type(schema.field(name).type)})"
                conditions, failures[name], bound, field_changes = ["false"], [], [], []
            changes += field_changes
            lets += bound
            sure += conditions
            fields_sure[name] = _all(conditions)
        else:
            columns[name] = f"CAST(NULL AS {_sql_type(schema.field(name).type)})"
    for parent in link_fields(em.entity):
        link = em.links.get(parent)
        source, key = f"_link_{parent}_source", f"_link_{parent}_key"
        if link is None:
            columns[source] = columns[key] = "CAST(NULL AS VARCHAR)"
        elif link.source == "self":
            columns[source], columns[key] = ident("_source"), ident("_source_key")
        elif link.column is None:
            raise _NoSql(f"link {parent} from {link.source} without a column")
        else:
            columns[source] = f"CAST({quote_str(mapping.source_id(link.source))} AS VARCHAR)"
            columns[key] = _strip(ident(link.column))  # mapper.py keeps a blank key: it is not missing
            if not ENTITIES[em.entity].__table__.columns[f"{parent}_id"].nullable:
                sure.append(f"({ident(link.column)} IS NOT NULL)")
                rest.append(sure[-1])
    if em.when_present:  # skipped when every one of them is missing or blank
        present = [f"coalesce(NOT {_full(ident(c), f'[{_WS}]*')}, false)" for c in em.when_present]
        sure.append(f"greatest({', '.join(present)})")
        rest.append(sure[-1])
    # In map_frame's order: field by field as em.fields lists them.
    ordered = [f for name in em.fields for f in failures.get(name, [])]
    reject = "false"
    if strict := [f.when for f in ordered if not f.lenient]:
        # Each field sure or certainly failed, the rest of the row sure, and one failure that rejects.
        per_field = [f"greatest({fields_sure[n]}, {', '.join(f.when for f in failures[n])})" if failures.get(n)
                     else fields_sure[n] for n in em.fields]
        reject = _all(rest + per_field + [f"greatest({', '.join(strict)})"])
    return CompiledEntity({n: columns[n] for n in schema.names}, _all(sure), fields_sure, reject, ordered, lets,
                          changes, python_fields)


def _all(conditions: list[str]) -> str:
    """Never-NULL conditions (mostly bound flags), all true."""
    return f"least({', '.join([c for c in conditions if c != 'true'] + ['true'])})"


__all__ = ["CompiledEntity", "Failure", "compile_entity", "compile_or_why", "sql_half"]
