"""Dates and date-times: text → date, or an aware UTC datetime read in the source's zone. The
Python halves (the reference) come first, then the DuckDB halves that must agree with them.

Python tries the formats in order and takes the first that reads the whole text; DuckDB runs
_strptime's own regex for each format in RE2 (they agree on printable ASCII), reads the common
fixed-width shapes with its strptime, and is never sure within 26 hours of a daylight-saving
change: those wall times are Python's, placed by the source's `nonexistent`/`ambiguous` policy.
"""

from __future__ import annotations

import _strptime
import datetime as dt
import functools
import re
from collections.abc import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb
import pandas as pd
import pyarrow as pa

from crmmigrate.map.coerce.base import _per_value, _stripped
from crmmigrate.schemas import UTC_TS
from crmmigrate.sqlpipe import _LAMBDA, _NoSql, _Pipe, _full, _one_of, _printable_ascii, quote_str

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


# --- the DuckDB halves -------------------------------------------------------------------------

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
    _strptime's does, its `%b` ignores case too: tests/map/test_sql.py holds them equal): cheaper
    than an ISO text rebuilt from substr() pieces, itself cheaper than regexp_extract() and a
    lambda. A text of that shape whose day does not exist is NULL, as Python refuses it.
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


def sql_to_date(p: _Pipe, formats: tuple[str, ...]) -> None:
    if "epoch" in formats:
        raise _NoSql("epoch is a format of timestamps, not of dates")
    _first_format(p, formats, lambda t, i, f: _iso_value(t, False) if f == "iso" else _strptime_value(t, f, i, False))


def sql_to_datetime(p: _Pipe, formats: tuple[str, ...], timezone: str) -> None:
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
