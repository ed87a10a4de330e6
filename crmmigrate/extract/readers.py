"""Readers: one per source format, each yielding every physical record exactly once.

A reader never raises on a bad record: it yields a ``RawRecord`` with ``values=None`` and a
reason, which the extract stage writes as a reject. Each reader also counts its records
by a second, independent route (``count_records``), so a parser that skips a record shows
up as an unbalanced ledger instead of a quiet loss.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from crmmigrate.errors import SourceError
from crmmigrate.spec.model import CsvSource, JsonSource, SqlSource, XlsxSource
from crmmigrate.spec.reasons import ReasonCode


@dataclass
class RawRecord:
    row_number: int
    values: list[str | None] | None  # in header order; None when unreadable
    raw: str
    reason: ReasonCode | None = None
    message: str = ""


class Reader:
    header: list[str]

    def records(self) -> Iterator[RawRecord]:
        raise NotImplementedError

    def count_records(self) -> int:
        raise NotImplementedError


def unique_header(names: list[str]) -> list[str]:
    """Keep duplicate column names addressable: the second `NAME` becomes `NAME~2`."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        name = name.strip()
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}~{seen[name]}")
    return out


def as_text(value: Any) -> str | None:
    """A native value as the text a person would have typed."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


SNIFFED = ",;\t|"


def sniff_delimiter(path: Path) -> str:
    """The separator of a delimited file, guessed from its header line: the candidate that
    occurs most often outside quotes (`,` when there is no header or no candidate)."""
    with path.open("rb") as fh:
        head = fh.readline(1 << 20).decode("latin-1")
    outside = re.sub(r'"[^"]*"', "", head)
    counts = {c: outside.count(c) for c in SNIFFED}
    best = max(counts, key=lambda c: counts[c])
    return best if counts[best] else ","


class CsvReader(Reader):
    """Splits the bytes into physical records (quote-aware), then decodes and parses each alone,
    so one bad record cannot take its neighbours with it."""

    def __init__(self, path: Path, spec: CsvSource):
        self.path, self.spec = path, spec
        self.quote = spec.quotechar.encode("ascii")
        self.sep = spec.delimiter or sniff_delimiter(path)
        self.delimiter = self.sep.encode("ascii")
        first = next(self._physical(), None)
        if first is None:
            self.header = []
        else:
            text = first[1].decode("utf-8-sig" if spec.encoding.lower().replace("-", "") == "utf8" else spec.encoding,
                                   errors="replace")
            self.header = unique_header(self._parse(text) or [])

    def _physical(self) -> Iterator[tuple[int, bytes]]:
        with self.path.open("rb") as fh:
            line_no, start, buf, open_quotes = 0, 1, b"", False
            for line in fh:
                line_no += 1
                if not buf:
                    start = line_no
                buf += line
                open_quotes = self._ends_quoted(line, open_quotes)
                if not open_quotes:
                    yield start, buf
                    buf = b""
            if buf:
                yield start, buf

    def _ends_quoted(self, line: bytes, quoted: bool) -> bool:
        """Whether *line* ends inside a quoted field, by the csv module's rules: a quote opens a
        field only at its start (`5" screen` is text), and `""` inside one is an escaped quote."""
        if self.quote not in line:
            return quoted
        field_start, after_quote = not quoted, False
        for byte in line.rstrip(b"\r\n"):
            char = bytes((byte,))
            if quoted:
                if char == self.quote:
                    quoted, after_quote = False, True
                continue
            if after_quote and char == self.quote:  # `""`: still inside the quoted field
                quoted, after_quote = True, False
                continue
            after_quote = False
            if char == self.delimiter:
                field_start = True
            elif field_start and char == self.quote:
                quoted, field_start = True, False
            else:
                field_start = False
        return quoted

    def _parse(self, text: str) -> list[str] | None:
        rows = list(csv.reader(io.StringIO(text.rstrip("\r\n")), delimiter=self.sep,
                               quotechar=self.spec.quotechar, strict=True))
        return rows[0] if len(rows) == 1 else ([] if not rows else None)

    def records(self) -> Iterator[RawRecord]:
        physical = self._physical()
        next(physical, None)  # header
        width = len(self.header)
        for line_no, data in physical:
            try:
                text = data.decode(self.spec.encoding)
            except UnicodeDecodeError as exc:
                yield RawRecord(line_no, None, data.decode(self.spec.encoding, "backslashreplace"),
                                ReasonCode.UNDECODABLE, f"not valid {self.spec.encoding} at byte {exc.start}")
                continue
            if not text.strip("\r\n"):
                yield RawRecord(line_no, None, text, ReasonCode.MALFORMED_ROW, "blank line")
                continue
            try:
                fields = self._parse(text)
            except csv.Error as exc:
                fields, problem = None, str(exc)
            else:
                problem = "record splits into several rows"
            if fields is None:
                yield RawRecord(line_no, None, text, ReasonCode.MALFORMED_ROW, problem)
            elif len(fields) != width:
                yield RawRecord(line_no, None, text, ReasonCode.MALFORMED_ROW,
                                f"record has {len(fields)} fields, the header has {width}")
            else:
                yield RawRecord(line_no, [f if f != "" else None for f in fields], text)

    def count_records(self) -> int:
        # Python's csv module over the whole file, separate from the per-record path above.
        with self.path.open(encoding=self.spec.encoding, errors="replace", newline="") as fh:
            rows = sum(1 for _ in csv.reader(fh, delimiter=self.sep, quotechar=self.spec.quotechar))
        return max(rows - 1, 0)


class SqlReader(Reader):
    """A table or query in an SQLite file, fetched in chunks through a streaming cursor."""

    def __init__(self, path: Path, spec: SqlSource, chunk_rows: int):
        if not path.exists():
            raise SourceError(str(path), "database file not found")
        self.engine = sa.create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
        self.sql = spec.query or f'SELECT * FROM "{spec.table}"'
        self.chunk_rows = chunk_rows
        try:
            with self.engine.connect() as con:
                self.header = unique_header(list(con.execute(sa.text(self.sql + " LIMIT 0")).keys()))
        except sa.exc.SQLAlchemyError as exc:
            self.engine.dispose()
            raise SourceError(str(path), f"cannot read {spec.table or 'query'}: {exc.orig}") from None

    def records(self) -> Iterator[RawRecord]:
        try:
            with self.engine.connect().execution_options(stream_results=True) as con:
                result = con.execute(sa.text(self.sql))
                n = 0
                while chunk := result.fetchmany(self.chunk_rows):
                    for row in chunk:
                        n += 1
                        yield RawRecord(n, [as_text(v) for v in row],
                                        json.dumps(list(row), default=as_text, ensure_ascii=False))
        finally:
            self.engine.dispose()

    def count_records(self) -> int:
        with self.engine.connect() as con:
            count = con.execute(sa.text(f"SELECT COUNT(*) FROM ({self.sql})")).scalar_one()
        self.engine.dispose()
        return int(count)


def _flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


class JsonReader(Reader):
    """A JSON array of objects; nested objects become dotted columns."""

    def __init__(self, path: Path, spec: JsonSource):
        try:
            self.items = json.loads(path.read_text(encoding="utf-8-sig"))
        except (OSError, ValueError) as exc:
            raise SourceError(str(path), f"not a readable JSON file: {exc}") from None
        if not isinstance(self.items, list):
            raise SourceError(str(path), "the JSON document is not an array of records")
        names: dict[str, None] = {}
        for item in self.items:
            if isinstance(item, dict):
                names.update(dict.fromkeys(_flatten(item)))
        self.header = list(names)

    def records(self) -> Iterator[RawRecord]:
        for n, item in enumerate(self.items, start=1):
            raw = json.dumps(item, ensure_ascii=False)
            if not isinstance(item, dict):
                yield RawRecord(n, None, raw, ReasonCode.MALFORMED_ROW, f"array item is a {type(item).__name__}, not an object")
                continue
            flat = _flatten(item)
            yield RawRecord(n, [as_text(flat.get(c)) for c in self.header], raw)

    def count_records(self) -> int:
        return len(self.items)


class XlsxReader(Reader):
    """One sheet, read-only; dates come back as ISO text, whole numbers without `.0`."""

    def __init__(self, path: Path, spec: XlsxSource):
        import openpyxl

        try:
            self.book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many types for a bad file
            raise SourceError(str(path), f"not a readable xlsx file: {exc}") from None
        if spec.sheet not in self.book.sheetnames:
            self.book.close()
            raise SourceError(str(path), f"no sheet named '{spec.sheet}'; sheets: {', '.join(self.book.sheetnames)}")
        self.sheet = self.book[spec.sheet]
        self.header_row = spec.header_row
        head = list(next(self.sheet.iter_rows(min_row=self.header_row, max_row=self.header_row, values_only=True), ()))
        while head and head[-1] in (None, ""):  # rows are padded to the sheet's width: not header cells
            head.pop()
        self.header = unique_header([as_text(v) or f"column_{i + 1}" for i, v in enumerate(head)])

    def _rows(self) -> Iterator[tuple[int, tuple[Any, ...]]]:
        for n, row in enumerate(self.sheet.iter_rows(min_row=self.header_row + 1, values_only=True),
                                start=self.header_row + 1):
            if any(v not in (None, "") for v in row):
                yield n, row

    def records(self) -> Iterator[RawRecord]:
        width = len(self.header)
        for n, row in self._rows():
            values = [as_text(v) for v in row[:width]] + [None] * (width - len(row))
            extra = [v for v in row[width:] if v not in (None, "")]
            raw = json.dumps([as_text(v) for v in row], ensure_ascii=False)
            if extra:
                yield RawRecord(n, None, raw, ReasonCode.MALFORMED_ROW, f"values beyond the header's {width} columns")
            else:
                yield RawRecord(n, values, raw)

    def count_records(self) -> int:
        # The worksheet's own cell index, not the row iterator the records come from.
        rows = {cell.row for row in self.sheet.iter_rows(min_row=self.header_row + 1)
                for cell in row if getattr(cell, "value", None) not in (None, "")}
        return len(rows)


def open_reader(path: Path, spec: CsvSource | SqlSource | JsonSource | XlsxSource, chunk_rows: int) -> Reader:
    if spec.format != "sql" and not path.exists():
        raise SourceError(str(path), "file not found")
    if isinstance(spec, CsvSource):
        return CsvReader(path, spec)
    if isinstance(spec, SqlSource):
        return SqlReader(path, spec, chunk_rows)
    if isinstance(spec, JsonSource):
        return JsonReader(path, spec)
    return XlsxReader(path, spec)
