"""Readers: one per source format, each yielding every physical record exactly once.

A reader never raises on a bad record: it yields a ``RawRecord`` with ``values=None`` and a
reason, which the extract stage writes as a reject. Each reader also counts its records
by a second, independent route (``count_records``), so a parser that skips a record shows
up as an unbalanced ledger instead of a quiet loss.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from crmmigrate.errors import SourceError
from crmmigrate.extract.base import RawRecord, Reader, as_text, unique_header
from crmmigrate.extract.csvfile import CsvReader, sniff_delimiter
from crmmigrate.spec.model import CsvSource, JsonSource, SqlSource, XlsxSource
from crmmigrate.spec.reasons import ReasonCode

__all__ = ["CsvReader", "JsonReader", "RawRecord", "Reader", "SqlReader", "XlsxReader", "as_text",
           "open_reader", "sniff_delimiter", "unique_header"]


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
