"""Readers: one per source format, each yielding every physical record exactly once.

A reader never raises on a bad record: it yields a ``RawRecord`` with ``values=None`` and a
reason, which the extract stage writes as a reject. Each reader also counts its records
by a second, independent route (``count_records``), so a parser that skips a record shows
up as an unbalanced ledger instead of a quiet loss.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import sqlalchemy as sa

from crmmigrate.errors import SourceError, mask_secrets
from crmmigrate.extract.base import RawRecord, Reader, as_text, checked, json_text, unique_header
from crmmigrate.extract.csvfile import CsvReader, sniff_delimiter
from crmmigrate.spec.model import CsvSource, JsonSource, SqlSource, XlsxSource
from crmmigrate.spec.reasons import ReasonCode

__all__ = ["CsvReader", "JsonReader", "RawRecord", "Reader", "SqlReader", "XlsxReader", "as_text",
           "open_reader", "sniff_delimiter", "unique_header"]

BOM = b"\xef\xbb\xbf"


# -- SQL ---------------------------------------------------------------------------------

class _BadText(bytes):
    """SQLite TEXT that is not valid UTF-8, kept as bytes so that the row becomes a reject
    (sqlite3's default decoding raises and would end the whole read)."""


def _sqlite_text(data: bytes) -> str | _BadText:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return _BadText(data)


def _tolerant_psycopg_loaders(dbapi_con: Any) -> None:
    """Dates PostgreSQL has and Python has not (`infinity`, years BC or past 9999) come back as
    the server's text instead of raising in the middle of the stream."""
    import psycopg
    from psycopg.types import datetime as pgdt
    from psycopg.types.string import TextLoader

    def tolerant(base: type) -> type:
        def load(self: Any, data: Any) -> Any:
            try:
                return base.load(self, data)
            except psycopg.DataError:
                return bytes(data).decode("utf-8", "replace")
        return type(f"Tolerant{base.__name__}", (base,), {"load": load})

    for name, base in (("date", pgdt.DateLoader), ("timestamp", pgdt.TimestampLoader),
                       ("timestamptz", pgdt.TimestamptzLoader), ("time", pgdt.TimeLoader),
                       ("timetz", pgdt.TimetzLoader)):  # (`24:00:00` is a PostgreSQL time, not a Python one)
        dbapi_con.adapters.register_loader(name, tolerant(base))
    # As the server writes them: through Python, JSON numbers went through float (2.50 → 2.5,
    # 30 digits → 1.2e+29) and intervals through timedelta ('1 year 2 mons' → '425 days').
    for name in ("json", "jsonb", "interval"):
        dbapi_con.adapters.register_loader(name, TextLoader)


def _on_connect(dbapi_con: Any, _record: Any) -> None:
    if type(dbapi_con).__module__.startswith("sqlite3"):
        dbapi_con.text_factory = _sqlite_text
    elif type(dbapi_con).__module__.startswith("psycopg"):
        _tolerant_psycopg_loaders(dbapi_con)


def _database(path: Path | None, spec: SqlSource) -> tuple[str, str]:
    """(location for messages and run.json, the URL to connect to). The URL of a server comes
    from the environment variable the spec names; the location never holds its password."""
    if spec.url_env is None:
        assert path is not None  # the spec guarantees `path` xor `url_env`
        if not path.exists():
            raise SourceError(str(path), "database file not found")
        # Read-only URI: extraction must never create or change a legacy database.
        return str(path), f"sqlite:///file:{quote(str(path.resolve()))}?mode=ro&uri=true"
    label = f"${spec.url_env}"
    url = os.environ.get(spec.url_env, "").strip()
    if not url:
        raise SourceError(label, f"environment variable {spec.url_env} is not set; it must hold the database URL")
    if url.partition("://")[2].count("@") > 1:
        # Parsed as it stands, a password holding `@` leaves the rest of it in the host name, where
        # error messages would show it (or a ValueError, about a port, would).
        raise SourceError(label, f"the URL in {spec.url_env} holds more than one '@': percent-encode the user "
                                 f"name and password (@ is %40, : is %3A, / is %2F, ? is %3F, # is %23, % is %25)")
    try:
        # A password may also sit in the query (`?password=`, SQLite URIs, libpq's sslpassword).
        shown = mask_secrets(sa.engine.make_url(url).render_as_string(hide_password=True))
    except (sa.exc.ArgumentError, ValueError):  # (the ValueError's text may quote the password)
        raise SourceError(label, f"environment variable {spec.url_env} does not hold an SQLAlchemy URL (is a "
                                 f"character of the password not percent-encoded?)") from None
    return f"{label} ({shown})", url


# A last `;` and what may follow it: more of them, whitespace, comments.
_TAIL = re.compile(r";(;|\s|--[^\n]*(\n|$)|/\*.*?\*/)*$", re.S)


def _statement(spec: SqlSource, engine: sa.Engine) -> sa.TextClause:
    if spec.table is not None:
        sql = f"SELECT * FROM {engine.dialect.identifier_preparer.quote_identifier(spec.table)}"
    else:
        # A declared query is wrapped in a sub-select for counting: a trailing `;` (and any comment
        # after it) would break it.
        sql = _TAIL.sub("", (spec.query or "").strip()).strip()
    # `\:` keeps text() from reading `:name` (or PostgreSQL's `::` casts) as bind parameters.
    return sa.text(sql.replace(":", "\\:"))


class SqlReader(Reader):
    """A table or a declared query in any SQLAlchemy database, streamed in chunks.

    Parameters
    ----------
    path
        The SQLite file, when the spec gives ``path``; ``None`` for ``url_env``.
    spec
        The source: ``path`` xor ``url_env`` (an environment variable holding the URL, which
        is never written anywhere), ``table`` xor ``query``.
    chunk_rows
        Rows fetched per round trip through a server-side cursor: memory is bounded by it.
    """

    def __init__(self, path: Path | None, spec: SqlSource, chunk_rows: int):
        self.location, url = _database(path, spec)
        self.chunk_rows = chunk_rows
        self.what = f"table {spec.table}" if spec.table is not None else "query"
        try:
            self.engine = sa.create_engine(url)
        except Exception as exc:  # unknown dialect, missing driver, bad options
            raise SourceError(self.location, f"cannot open the database: {mask_secrets(str(exc))}") from None
        sa.event.listen(self.engine, "connect", _on_connect)
        self.statement = _statement(spec, self.engine)
        try:
            with self._connect() as con:
                # The executed statement's own column names (a sub-select would rename
                # duplicates on SQLite); nothing is fetched.
                result = con.execution_options(stream_results=True).execute(self.statement)
                self.header = unique_header([str(k) for k in result.keys()])
                result.close()
        except sa.exc.SQLAlchemyError as exc:
            self.engine.dispose()
            raise SourceError(self.location, f"cannot read {self.what}: {_reason(exc)}") from None
        except (TypeError, UnicodeError) as exc:  # SQLAlchemy's first look at an SQL_ASCII server, which sends bytes
            self.engine.dispose()
            raise SourceError(self.location, f"cannot read {self.what}: {mask_secrets(str(exc))} (a server whose "
                              f"encoding is SQL_ASCII sends bytes: add ?client_encoding=<the encoding its text is in, "
                              f"e.g. latin1> to the URL)") from None

    def _connect(self) -> sa.Connection:
        """A connection whose transactions are read-only where the server supports it: a query
        must not lock (`FOR UPDATE`) or change (`nextval`) the legacy database."""
        con = self.engine.connect()
        return con.execution_options(postgresql_readonly=True) if self.engine.dialect.name == "postgresql" else con

    def records(self) -> Iterator[RawRecord]:
        """Every row, in the order the database returns it (row numbers from 1)."""
        try:
            with self._connect() as con:
                # stream_results: a server-side cursor; yield_per: fetch chunk_rows at a time.
                # (pandas' chunksize alone still buffers the whole result on psycopg.) The size
                # is passed to partitions() too: without it SQLAlchemy 2.1 fetched every row of
                # a text() statement into one partition.
                con = con.execution_options(stream_results=True, yield_per=self.chunk_rows)
                n = 0
                try:
                    for chunk in con.execute(self.statement).partitions(self.chunk_rows):
                        for row in chunk:
                            n += 1
                            yield self._record(n, tuple(row))
                except sa.exc.SQLAlchemyError as exc:  # e.g. a row the query's own functions refuse
                    raise SourceError(self.location, f"cannot read {self.what}: {_reason(exc)} (after {n} rows were read)")\
                        from None
        finally:
            self.engine.dispose()

    def _record(self, n: int, row: tuple[Any, ...]) -> RawRecord:
        bad = [name for name, v in zip(self.header, row) if isinstance(v, _BadText)]
        shown = [v.decode("utf-8", "backslashreplace") if isinstance(v, _BadText) else v for v in row]
        raw = json_text(shown)
        if bad:
            return RawRecord(n, None, raw, ReasonCode.UNDECODABLE, f"column(s) {', '.join(bad)} not valid UTF-8")
        return checked(RawRecord(n, [as_text(v) for v in row], raw))

    def count_records(self) -> int:
        """``SELECT COUNT(*)`` over the same statement (the alias is required by PostgreSQL)."""
        count = sa.text(f"SELECT COUNT(*) FROM (\n{self.statement.text}\n) AS q")
        try:
            with self._connect() as con:
                return int(con.execute(count).scalar_one())
        except sa.exc.SQLAlchemyError as exc:
            # The query ran on its own (the header pass): what broke is the wrapper around it.
            hint = "" if self.what != "query" else " (counted as SELECT COUNT(*) FROM (<query>) AS q, which the query " \
                "must allow)"
            raise SourceError(self.location, f"cannot count {self.what}: {_reason(exc)}{hint}") from None
        finally:
            self.engine.dispose()


def _reason(exc: sa.exc.SQLAlchemyError) -> str:
    """The driver's message, without SQLAlchemy's statement echo and link, password masked."""
    orig = getattr(exc, "orig", None)
    return mask_secrets(str(orig if orig is not None else exc).strip().splitlines()[0])


# -- JSON --------------------------------------------------------------------------------

JSON_WS = b" \t\r\n"
#: Bytes handed to ijson's C parser at a time. Small on purpose: the parser builds a prefix
#: string per nesting level, so a hostile `[[[[…` costs memory quadratic in the depth reached
#: within one buffer; 4 KiB keeps that to tens of MB, and `MAX_DEPTH` stops it after.
JSON_BUFFER = 4096
MAX_DEPTH = 512
# A `\uD800`-`\uDFFF` escape (after an even run of backslashes: `\\ud800` is text). One that is not
# half of a pair, ijson's C parser turns into `?`, joins with the next escape into another
# character, or stops reading the document at; its pure-Python parser (~5x slower) keeps it, so
# that the record becomes an `undecodable` reject as it does in JSON Lines.
_SURROGATE_ESCAPE = re.compile(rb"(?<!\\)((?:\\\\)*)\\u([dD][89a-fA-F][0-9a-fA-F]{2})")
# Quick signs that a block may hold a lone one (searched before the exact reading, which goes
# escape by escape): a high half with no low one after it, more low halves than pairs, or a
# backslash before an escape. Files with only proper pairs (`json.dumps` writes emoji so) show none.
_HIGH_ALONE = re.compile(rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])")
_LOW = re.compile(rb"\\u[dD][c-fC-F]")
_PAIR = re.compile(rb"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F]")
_ESCAPED_BACKSLASH = re.compile(rb"\\\\u[dD][89a-fA-F]")


def _maybe_lone(data: bytes) -> bool:
    return bool(_HIGH_ALONE.search(data) or _ESCAPED_BACKSLASH.search(data)
                or len(_LOW.findall(data)) > len(_PAIR.findall(data)))


_SCAN_BLOCK, _SCAN_CARRY, _SCAN_EDGE = 1 << 20, 64, 16


def _has_lone_surrogate(path: Path) -> bool:
    """Whether the file holds a surrogate escape that is not half of a pair. Block by block: an
    escape within _SCAN_EDGE bytes of a block's end is judged with the next block (carried over
    with the bytes before it, which tell its pair and its backslashes)."""
    carry = b""
    with path.open("rb") as fh:
        while True:
            block = fh.read(_SCAN_BLOCK)
            data = carry + block
            judged = max(len(carry) - _SCAN_EDGE, 0)  # what the previous block judged already
            if _maybe_lone(data) and _lone_between(data, judged, len(data) - _SCAN_EDGE if block else len(data)):
                return True
            if not block:
                return False
            carry = data[-_SCAN_CARRY:]


def _lone_between(data: bytes, lo: int, hi: int) -> bool:
    """Whether a surrogate escape starting in data[lo:hi] is not half of a pair."""
    high_at = None  # where the last high half starts, while it waits for its low half
    for m in _SURROGATE_ESCAPE.finditer(data):
        at = m.end(1)
        if m.group(2)[1:2] in b"89abAB":
            if high_at is not None and lo <= high_at < hi:
                return True  # the previous high half was not followed by a low one
            high_at = at
        elif high_at is not None and high_at + 6 == at:
            high_at = None  # a pair
        elif lo <= at < hi:
            return True
    return high_at is not None and lo <= high_at < hi


class _Collision(Exception):
    """Two keys of one record flatten to the same column (`{"a.b": 1, "a": {"b": 2}}`)."""


def _flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        flat = _flatten(value, f"{name}.") if isinstance(value, dict) else {name: value}
        if clash := out.keys() & flat.keys():
            raise _Collision(min(clash))
        out.update(flat)
    return out


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`json.loads`' object_pairs_hook: a key given twice would keep only its last value."""
    obj = dict(pairs)
    if len(obj) < len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"key '{key}' appears twice in one object")
            seen.add(key)
    return obj


class _Feed:
    """A binary file as ijson's C parser reads it, with what that parser cannot report or survive.

    It counts the bytes handed over (the parser reports no position), skips a UTF-8 BOM (the
    parser rejects it), and ends the stream early before a run of digits longer than Python
    converts to an int (ijson's C backend crashes the process on one). `slow_from` hands the
    bytes over one at a time from that offset on, so a parse error is raised at its exact byte.
    """

    def __init__(self, fh: IO[bytes], slow_from: int | None = None):
        self.fh, self.slow_from = fh, slow_from
        self.start = self.pos = 3 if fh.read(3) == BOM else 0
        fh.seek(self.pos)
        self.chunk_start = self.pos
        self.limit = sys.get_int_max_str_digits()
        self.digits = 0  # digits at the end of what was handed over so far
        self.cut: int | None = None  # where the stream was ended early

    def read(self, size: int = -1) -> bytes:
        if self.cut is not None:
            return b""
        if self.slow_from is not None:
            size = 1 if self.pos >= self.slow_from else min(size, self.slow_from - self.pos)
        data = self.fh.read(size)
        if self.limit:
            data = self._guard_digits(data)
        self.chunk_start = self.pos
        self.pos += len(data)
        return data

    def _guard_digits(self, data: bytes) -> bytes:
        match = re.search(rb"[0-9]{%d}" % (self.limit + 1), data)
        lead = len(data) - len(data.lstrip(b"0123456789"))
        if self.digits and self.digits + lead > self.limit:
            self.cut = self.pos - self.digits
            return b""
        if match is not None:
            self.cut = self.pos + match.start()
            return data[:match.start()]
        self.digits = (self.digits + lead) if lead == len(data) else len(data) - len(data.rstrip(b"0123456789"))
        return data


@dataclass
class _Broken:
    """Where and why a JSON document stops being readable."""

    offset: int
    line: int
    column: int
    problem: str

    def message(self, records_read: int) -> str:
        return (f"the document breaks off near byte {self.offset} (line {self.line}, column {self.column}) "
                f"after {records_read} record(s): {self.problem}; the rest of the file is this one reject")


def _problem(exc: Exception) -> str:
    arg = exc.args[0] if exc.args else exc
    text = arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def _line_column(path: Path, offset: int) -> tuple[int, int]:
    """1-based line and column of byte *offset*, reading the file in blocks (memory bounded)."""
    line, line_start, pos = 1, 0, 0
    with path.open("rb") as fh:
        while pos < offset and (block := fh.read(min(1 << 20, offset - pos))):
            newlines = block.count(b"\n")
            if newlines:
                line += newlines
                line_start = pos + block.rfind(b"\n") + 1
            pos += len(block)
    return line, offset - line_start + 1


class JsonReader(Reader):
    """JSON: an array of objects (at `records`, a dotted path) or JSON Lines, streamed with ijson.

    Nested objects become dotted columns (`requester.email`), arrays become JSON text, and
    numbers keep the digits they were written with. The header (the union of every record's
    keys) costs one streaming pass before the records are read: two passes, memory bounded by
    one record. In an array, a document that breaks off (truncated, invalid) keeps every
    record before the break, and the rest of the file becomes one reject with its byte, line
    and column. In JSON Lines every line stands alone: a bad one is a reject with its line.
    """

    def __init__(self, path: Path, spec: JsonSource):
        self.path, self.lines, self.location = path, spec.lines, str(path)
        if spec.lines and spec.records:
            raise SourceError(str(path), "`records` is for a JSON document; JSON Lines (`lines: true`) has a record per line")
        self.prefix = spec.records
        self.item_prefix = f"{spec.records}.item" if spec.records else "item"
        self.broken: _Broken | None = None
        self.parser = _json_parser(path) if not spec.lines else None
        self.repeated_keys: dict[int, str] = {}  # array item → a key it gives twice (ijson keeps the last)
        # The records' own dotted keys, and the columns they become (a key named like a lineage
        # column, or blank, is renamed as a CSV header would be).
        self.keys = self._lines_header() if spec.lines else self._array_scan()
        self.header = unique_header(self.keys)

    # JSON Lines

    def _physical_lines(self) -> Iterator[tuple[int, bytes]]:
        """(line number, bytes) of every line that is not blank; blank lines are not records."""
        with self.path.open("rb") as fh:
            for n, line in enumerate(fh, start=1):
                if n == 1 and line.startswith(BOM):
                    line = line[len(BOM):]
                if line.strip(JSON_WS):
                    yield n, line

    def _lines_header(self) -> list[str]:
        names: dict[str, None] = {}
        for n, line in self._physical_lines():
            loaded = self._load_line(n, line)
            if not isinstance(loaded, RawRecord):
                names.update(dict.fromkeys(_keys(loaded[0])))
        return list(names)

    def _load_line(self, n: int, line: bytes) -> tuple[Any, str] | RawRecord:
        """(the parsed value, its text), or the reject that the line is."""
        import json

        try:
            text = line.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            return RawRecord(n, None, line.decode("utf-8", "backslashreplace").rstrip("\r\n"), ReasonCode.UNDECODABLE,
                             f"line {n} is not valid UTF-8 at byte {exc.start}")
        try:
            return json.loads(text, parse_float=_decimal, parse_constant=_no_constant, object_pairs_hook=_unique_pairs), text
        except (ValueError, RecursionError) as exc:
            # A file with CR-only line ends is one line to JSON Lines, whose records end in \n.
            hint = "; the file seems to end its lines with CR only: convert them to LF" if "}\r{" in text else ""
            return checked(RawRecord(n, None, text, ReasonCode.MALFORMED_ROW,
                                     f"line {n} is not valid JSON: {_problem(exc)}{hint}"))

    def _line_record(self, n: int, line: bytes) -> RawRecord:
        loaded = self._load_line(n, line)
        return loaded if isinstance(loaded, RawRecord) else self._object_record(n, *loaded)

    # JSON arrays

    def _array_scan(self) -> list[str]:
        """One pass over the document: the header, the record count (from parser events, not
        the records built from them) and where the document breaks, if it does."""
        import ijson

        names: dict[str, None] = {}
        state = {"found": None, "done": 0, "depth": 0, "events": 0}
        maps: list[set[str]] = []  # the keys of each object being read, innermost last
        inside = (self.item_prefix, f"{self.item_prefix}.")

        def tap(events: Iterator[tuple[str, str, Any]]) -> Iterator[tuple[str, str, Any]]:
            for prefix, event, value in events:
                state["events"] += 1
                if event in ("start_map", "start_array"):
                    state["depth"] += 1
                    if state["depth"] > MAX_DEPTH:
                        raise _TooDeep(f"nested deeper than {MAX_DEPTH} levels")
                    if event == "start_map":
                        maps.append(set())
                elif event in ("end_map", "end_array"):
                    state["depth"] -= 1
                    if event == "end_map":
                        maps.pop()
                elif event == "map_key":
                    if value in maps[-1] and (prefix == inside[0] or prefix.startswith(inside[1])):
                        self.repeated_keys.setdefault(state["done"] + 1, value)  # the item being read
                    maps[-1].add(value)
                if prefix == self.prefix and state["found"] is None and event != "map_key":
                    state["found"] = event
                if prefix == self.item_prefix and event not in ("start_map", "start_array", "map_key"):
                    state["done"] += 1
                yield prefix, event, value

        with self.path.open("rb") as fh:
            feed = _Feed(fh)
            try:
                for item in ijson.items(tap(self.parser.parse(feed, buf_size=JSON_BUFFER)), self.item_prefix):
                    names.update(dict.fromkeys(_keys(item)))
            except (ijson.JSONError, ValueError, _TooDeep) as exc:
                if state["events"] == 0 and feed.cut is None and self._blank():
                    self.counted = 0
                    return []  # an empty file: no records, like an empty CSV
                self.broken = self._locate(feed, exc)
                if state["found"] != "start_array":
                    raise SourceError(str(self.path), f"not a readable JSON file: {self.broken.problem} near byte "
                                      f"{self.broken.offset} (line {self.broken.line}, column {self.broken.column})") from None
        if state["found"] != "start_array":
            where = f"`{self.prefix}`" if self.prefix else "the top level"
            found = {None: "nothing", "start_map": "an object"}.get(state["found"], "a single value")
            raise SourceError(str(self.path), f"the JSON document is not an array of records at {where} (found {found})")
        self.counted = state["done"] + (self.broken is not None)
        return list(names)

    def _blank(self) -> bool:
        with self.path.open("rb") as fh:
            return not any(block.strip(JSON_WS + BOM) for block in iter(lambda: fh.read(1 << 16), b""))

    def _locate(self, feed: _Feed, exc: Exception) -> _Broken:
        """Where the parser failed. ijson's C parser reports no offset, only the text around the
        error; that text is found in the buffer it was parsing (the start of that buffer when
        it cannot be found once and only once)."""
        if feed.cut is not None:
            offset, problem = feed.cut, f"a number longer than {feed.limit} digits"
        elif isinstance(exc, _TooDeep):
            offset, problem = feed.chunk_start, str(exc)
        else:
            problem = _problem(exc)
            offset = self._near(exc, feed.chunk_start, feed.pos) if "premature EOF" not in problem else feed.pos
        line, column = _line_column(self.path, offset)
        return _Broken(offset, line, column, problem)

    def _near(self, exc: Exception, start: int, end: int) -> int:
        arg = exc.args[0] if exc.args else b""
        text = arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)
        lines = text.splitlines()
        if len(lines) < 3 or "^" not in lines[2] or not lines[1].strip():
            return start
        context = lines[1].lstrip()
        before = lines[2].index("^") - (len(lines[1]) - len(context))
        with self.path.open("rb") as fh:  # the buffer and the one before: the context may span both
            fh.seek(max(start - JSON_BUFFER, 0))
            base = fh.tell()
            buffer = fh.read(end - base).decode("utf-8", "replace")
        buffer = re.sub(r"\s", " ", buffer)  # yajl shows every whitespace as a space
        found = [m.start() for m in re.finditer(re.escape(context), buffer)]
        if len(found) != 1 or before < 0:
            return start
        # The caret stands one character past the offending one.
        return base + len(buffer[:max(found[0] + before - 1, 0)].encode("utf-8"))

    def _remainder(self, n: int, records_read: int) -> RawRecord:
        assert self.broken is not None
        with self.path.open("rb") as fh:
            fh.seek(max(self.broken.offset - 200, 0))
            window = fh.read(1200).decode("utf-8", "backslashreplace")  # the snapshot keeps all of it
        return RawRecord(n, None, window, ReasonCode.MALFORMED_ROW, self.broken.message(records_read))

    def _array_records(self) -> Iterator[RawRecord]:
        import ijson

        expected = self.counted - (self.broken is not None)
        n = 0
        with self.path.open("rb") as fh:
            items = self.parser.items(_Feed(fh), self.item_prefix, buf_size=JSON_BUFFER, use_float=False)
            try:
                # Stop at the records the scan saw complete: past them the parser may meet the
                # break (or a hostile nesting) that the scan already located.
                while n < expected:
                    item = next(items)
                    n += 1
                    if n in self.repeated_keys:
                        yield checked(RawRecord(n, None, json_text(item), ReasonCode.MALFORMED_ROW,
                                                f"key '{self.repeated_keys[n]}' appears twice in one object "
                                                f"(raw shows the last value; the snapshot keeps both)"))
                    else:
                        yield self._object_record(n, item, None)
            except (ijson.JSONError, ValueError, StopIteration) as exc:
                # The file changed since the scan: say so rather than lose the difference.
                raise SourceError(str(self.path), f"the file changed while it was read ({_problem(exc)})") from None
        if self.broken is not None:
            yield self._remainder(n + 1, n)

    # shared

    def _object_record(self, n: int, obj: Any, text: str | None) -> RawRecord:
        try:
            raw = text if text is not None else json_text(obj)
        except RecursionError:
            return RawRecord(n, None, "", ReasonCode.MALFORMED_ROW, f"record {n} is nested too deeply to store")
        if not isinstance(obj, dict):
            what = f"line {n}" if self.lines else "array item"
            return checked(RawRecord(n, None, raw, ReasonCode.MALFORMED_ROW,
                                     f"{what} is a {type(obj).__name__}, not an object"))
        try:
            flat = _flatten(obj)
            values = [as_text(flat.get(c)) for c in self.keys]
        except RecursionError:
            return checked(RawRecord(n, None, raw, ReasonCode.MALFORMED_ROW, f"record {n} is nested too deeply to flatten"))
        except _Collision as exc:
            return checked(RawRecord(n, None, raw, ReasonCode.MALFORMED_ROW,
                                     f"two keys of the record both make column '{exc}' (a dotted key and a nested one)"))
        return checked(RawRecord(n, values, raw))

    def records(self) -> Iterator[RawRecord]:
        """Every record: a line of JSON Lines, or an item of the array (numbered from 1)."""
        if self.lines:
            for n, line in self._physical_lines():
                yield self._line_record(n, line)
        else:
            yield from self._array_records()

    def count_records(self) -> int:
        """JSON Lines: the non-blank lines. An array: the items the parser's events closed
        (counted in the header pass, apart from the records built), plus one for a break."""
        if self.lines:
            return sum(1 for _ in self._physical_lines())
        return self.counted


class _TooDeep(Exception):
    pass


def _json_parser(path: Path) -> Any:
    """ijson's C backend, or its pure-Python one for a file with a lone surrogate escape."""
    import ijson

    if _has_lone_surrogate(path):
        from ijson.backends import python

        return python
    return ijson


def _keys(obj: Any) -> list[str]:
    """The dotted column names of one record; none for a record that will be a reject."""
    if not isinstance(obj, dict):
        return []
    try:
        return list(_flatten(obj))
    except (RecursionError, _Collision):
        return []


def _decimal(text: str) -> Any:
    import decimal

    return decimal.Decimal(text)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


# -- XLSX --------------------------------------------------------------------------------

class XlsxReader(Reader):
    """One sheet, read-only; dates come back as ISO text, whole numbers without `.0`.

    The workbook is opened for each pass and closed after it (a read-only workbook keeps its
    zip file open until closed). Numbers typed into a text column come back as the digits
    Excel shows (`800`, not `800.0`); a leading zero Excel dropped is restored by a mapping
    transform (`zfill`), never guessed here.
    """

    def __init__(self, path: Path, spec: XlsxSource):
        self.path, self.spec, self.location = path, spec, str(path)
        self.header_row = spec.header_row
        with self._sheet() as sheet:
            rows = sheet.iter_rows(min_row=self.header_row, max_row=self.header_row, values_only=True)
            head = list(next((row for _, row in self._guarded(rows, self.header_row)), ()))
            while head and head[-1] in (None, ""):  # rows are padded to the sheet's width: not header cells
                head.pop()
            if not head and any(any(v not in (None, "") for v in row) for _, row in self._rows(sheet)):
                raise SourceError(str(self.path), f"sheet '{self.spec.sheet}': row {self.header_row} (`header_row`) "
                                  f"is empty, but rows below it hold values: which row names the columns?")
        self.header = unique_header([as_text(v) or f"column_{i + 1}" for i, v in enumerate(head)])

    def _open(self) -> Any:
        import openpyxl

        try:
            return openpyxl.load_workbook(self.path, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many types for a bad file
            raise SourceError(str(self.path), f"not a readable xlsx file: {exc}") from None

    @contextmanager
    def _sheet(self) -> Iterator[Any]:
        self.book = book = self._open()  # `book` stays for callers that close it themselves
        try:
            if self.spec.sheet not in book.sheetnames:
                raise SourceError(str(self.path), f"no sheet named '{self.spec.sheet}'; sheets: {', '.join(book.sheetnames)}")
            sheet = book[self.spec.sheet]
            if not hasattr(sheet, "iter_rows"):
                raise SourceError(str(self.path), f"sheet '{self.spec.sheet}' is a chart sheet; it holds no rows")
            # The <dimension> a file declares may be stale (written by another tool); read-only
            # mode would silently stop at its last row. Read every row the sheet really has.
            sheet.reset_dimensions()
            yield sheet
        finally:
            book.close()

    def _rows(self, sheet: Any) -> Iterator[tuple[int, tuple[Any, ...]]]:
        for n, row in self._guarded(sheet.iter_rows(min_row=self.header_row + 1, values_only=True), self.header_row + 1):
            if any(v not in (None, "") for v in row):
                yield n, row

    def _guarded(self, rows: Iterator[Any], first: int) -> Iterator[tuple[int, Any]]:
        """(row number, row) of *rows*, the sheet's from row *first*. openpyxl raises on a cell
        it cannot read (a number cell holding `abc`, a shared string that is not there), and no
        row after it can be read: that is an error naming the row, not a crash."""
        n = first - 1
        while True:
            try:
                row = next(rows)
            except StopIteration:
                return
            except MemoryError:
                raise
            except Exception as exc:  # openpyxl raises ValueError, IndexError, KeyError…
                # (openpyxl reads ahead past empty rows: the bad one is the first with values after n)
                raise SourceError(str(self.path), f"sheet '{self.spec.sheet}': a row after row {n} cannot be read "
                                  f"({type(exc).__name__}: {exc}); fix or re-save the workbook") from None
            n += 1
            yield n, row

    def records(self) -> Iterator[RawRecord]:
        """Every non-empty row below the header; its row number is the sheet's. A cell holding an
        Excel error (`#N/A`, `#DIV/0!`: a formula that failed) makes its row a reject: the text
        would otherwise become a name or a key in the CRM."""
        width = len(self.header)
        with self._sheet() as sheet:
            for n, cells in self._guarded(sheet.iter_rows(min_row=self.header_row + 1), self.header_row + 1):
                row = tuple(getattr(cell, "value", None) for cell in cells)
                if not any(v not in (None, "") for v in row):
                    continue
                values = [as_text(v) for v in row[:width]] + [None] * (width - len(row))
                extra = [v for v in row[width:] if v not in (None, "")]
                errors = [f"{cell.coordinate} {cell.value}" for cell in cells if getattr(cell, "data_type", "") == "e"]
                raw = json_text([as_text(v) for v in row])
                if extra:
                    yield checked(RawRecord(n, None, raw, ReasonCode.MALFORMED_ROW, f"values beyond the header's {width} columns"))
                elif errors:
                    yield checked(RawRecord(n, None, raw, ReasonCode.MALFORMED_ROW,
                                            f"Excel error value in {', '.join(errors)} (a formula that failed)"))
                else:
                    yield checked(RawRecord(n, values, raw))

    def count_records(self) -> int:
        """Rows with a non-empty cell, from the cells themselves (not the row values)."""
        with self._sheet() as sheet:
            rows = {cell.row for _, row in self._guarded(sheet.iter_rows(min_row=self.header_row + 1), self.header_row + 1)
                    for cell in row if getattr(cell, "value", None) not in (None, "")}
        return len(rows)


def open_reader(path: Path | None, spec: CsvSource | SqlSource | JsonSource | XlsxSource, chunk_rows: int) -> Reader:
    """The reader for one source.

    Parameters
    ----------
    path
        The source file resolved against the project folder; ``None`` for an SQL source
        read through ``url_env``.
    spec
        The source as the mapping declares it.
    chunk_rows
        Rows per round trip for database sources.

    Raises
    ------
    SourceError
        The source cannot be opened at all (missing file or variable, unknown table or sheet).
    """
    if isinstance(spec, SqlSource):
        return SqlReader(path, spec, chunk_rows)
    if path is None or not path.exists():
        raise SourceError(str(path), "file not found")
    if isinstance(spec, CsvSource):
        return CsvReader(path, spec)
    if isinstance(spec, JsonSource):
        return JsonReader(path, spec)
    return XlsxReader(path, spec)
