"""Readers: one per source format, each yielding every physical record exactly once.

A reader never raises on a bad record: it yields a ``RawRecord`` with ``values=None`` and a
reason, which the extract stage writes as a reject. Each reader also counts its records
by a second, independent route (``count_records``), so a parser that skips a record shows
up as an unbalanced ledger instead of a quiet loss.
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa

from crmmigrate.errors import SourceError, mask_secrets
from crmmigrate.extract.base import RawRecord, Reader, as_text, checked, json_text, unique_header
from crmmigrate.extract.csvfile import CsvReader, sniff_delimiter
from crmmigrate.extract.jsonfile import JsonReader
from crmmigrate.spec.model import CsvSource, JsonSource, SqlSource, XlsxSource
from crmmigrate.spec.reasons import ReasonCode

__all__ = ["CsvReader", "EmptyFileReader", "JsonReader", "RawRecord", "Reader", "SqlReader", "XlsxReader", "as_text",
           "open_reader", "sniff_delimiter", "unique_header"]

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
        # Arrays of them too, whole (`{"{\"a\": 2.50}"}`), rather than lists of texts.
        dbapi_con.adapters.register_loader(dbapi_con.adapters.types[name].array_oid, TextLoader)


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
    unencoded = SourceError(label, f"the URL in {spec.url_env} cannot be read as it stands: percent-encode the "
                                   f"password and query values (@ is %40, : is %3A, / is %2F, ? is %3F, # is %23, "
                                   f"% is %25)")
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise SourceError(label, f"environment variable {spec.url_env} does not hold an SQLAlchemy URL") from None
    except ValueError:  # a port that is not a number: often the rest of a password (its text must not be shown)
        raise unencoded from None
    # An `@` in a password leaves the rest of it in the host name, where a connection error would
    # show it; one in a query value is misread as the end of a password. (A user name holding
    # `@`, `user@server`, is read right.)
    if "@" in (parsed.host or "") or "@" in url.partition("://")[2].partition("?")[2]:
        raise unencoded
    # A password may also sit in the query (`?password=`, SQLite URIs, libpq's sslpassword).
    shown = mask_secrets(parsed.render_as_string(hide_password=True))
    return f"{label} ({shown})", url


# A `;` followed by nothing but whitespace, comments and more `;` (linear: a C comment is read
# in its unrolled form, never backtracking across another's end).
_TAIL = re.compile(r";(?:;|\s|--[^\n]*(?:\n|$)|/\*[^*]*\*+(?:[^/*][^*]*\*+)*/)*$")


def _statement(spec: SqlSource, engine: sa.Engine) -> sa.TextClause:
    if spec.table is not None:
        sql = f"SELECT * FROM {engine.dialect.identifier_preparer.quote_identifier(spec.table)}"
    else:
        # A declared query is wrapped in a sub-select for counting: a trailing `;` would break it.
        sql = (spec.query or "").strip().rstrip(";").strip()
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
        try:
            with self._connect() as con:
                try:
                    return int(con.execute(_count(self.statement.text)).scalar_one())
                except sa.exc.SQLAlchemyError:
                    # `…; -- comment` breaks the wrapper. Counted without what looks like a trailing
                    # comment (a `;` inside a literal can look so: the read, unchanged, must then
                    # agree with this count, or extract refuses the source).
                    untailed = _TAIL.sub("", self.statement.text)
                    if untailed == self.statement.text:
                        raise
                    con.rollback()
                    return int(con.execute(_count(untailed)).scalar_one())
        except sa.exc.SQLAlchemyError as exc:
            # The query ran on its own (the header pass): what broke is the wrapper around it.
            hint = "" if self.what != "query" else " (counted as SELECT COUNT(*) FROM (<query>) AS q, which the query " \
                "must allow)"
            raise SourceError(self.location, f"cannot count {self.what}: {_reason(exc)}{hint}") from None
        finally:
            self.engine.dispose()


def _count(sql: str) -> sa.TextClause:
    """``SELECT COUNT(*)`` over *sql* (already escaped for text(); the alias is PostgreSQL's need)."""
    return sa.text(f"SELECT COUNT(*) FROM (\n{sql}\n) AS q")


def _reason(exc: sa.exc.SQLAlchemyError) -> str:
    """The driver's message, without SQLAlchemy's statement echo and link, password masked."""
    orig = getattr(exc, "orig", None)
    return mask_secrets(str(orig if orig is not None else exc).strip().splitlines()[0])


# -- XLSX --------------------------------------------------------------------------------

# A sheet's cell (any namespace prefix), and one holding a formula with no saved value: written
# by a tool that does not compute formulas (openpyxl, many exporters), it reads as empty.
_CELL = re.compile(rb"<(?:\w+:)?c\b")
_UNCOMPUTED = re.compile(rb"<(?:\w+:)?c\b([^>]*)>\s*<(?:\w+:)?f\b[^>]*(?:/>|>[^<]*</(?:\w+:)?f>)\s*"
                         rb"(?:<(?:\w+:)?v\s*/>|<(?:\w+:)?v>\s*</(?:\w+:)?v>)?\s*</(?:\w+:)?c>")
_REF = re.compile(rb"""\br\s*=\s*(["'])([A-Za-z]+)([0-9]+)\1""")
_TYPE = re.compile(rb"""\bt\s*=\s*(["'])(\w+)\1""")
_XML_BLOCK = 1 << 20


# A row or cell start tag, with its reference when it has one (OOXML makes `r` optional: without it,
# the row or cell follows the one before).
_TAG = re.compile(rb"""<(?:\w+:)?(row|c)(?=[\s/>])(?:[^>]*?\br\s*=\s*(["'])([A-Za-z]*)([0-9]+)(?:\.0*)?\2)?""")
# Comments, CDATA sections and processing instructions hold text, not rows or cells.
_SPECIAL = re.compile(rb"<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>", re.S)
_SPECIAL_START = re.compile(rb"<!--|<!\[CDATA\[|<\?")


@dataclass
class _SheetScan:
    """What openpyxl does not say about a sheet's XML: cells whose formula has no saved value,
    and the first row or cell out of the order OOXML requires. openpyxl's read-only mode silently
    skips a row that comes after a later one or repeats one, and keeps one of two cells given for
    the same place: records or values would be lost while every count agreed."""

    uncomputed: dict[int, list[str]] = field(default_factory=dict)
    disorder: str | None = None
    row: int = 0
    column: int = 0

    def order(self, data: bytes, end: int) -> None:
        from openpyxl.utils.cell import column_index_from_string, get_column_letter  # (loaded for xlsx only)

        for tag, _, letters, digits in _TAG.findall(data, 0, end):
            letters = letters.upper()  # openpyxl reads `b3` as B3
            if self.disorder is not None:
                return
            if tag == b"row":
                number = int(digits) if digits else self.row + 1
                if number <= self.row:
                    self.disorder = f"row {number} comes after row {self.row}"
                self.row, self.column = number, 0
                continue
            try:
                column = column_index_from_string(letters.decode()) if letters else self.column + 1
            except ValueError:  # not a column openpyxl reads: reading the rows says so, naming the row
                column = self.column + 1
            if digits and int(digits) != self.row:
                self.disorder = f"cell {(letters + digits).decode()} is inside row {self.row}"
            elif column <= self.column:
                self.disorder = f"cell {(letters + digits).decode() or '(without a reference)'} of row {self.row} " \
                                f"comes after column {get_column_letter(self.column)}"
            self.column = column


def _scan_sheet(path: Path, member: str) -> _SheetScan:
    """One pass over the sheet XML *member* (see `_SheetScan`). A text formula's empty result is
    a value: `t="str"` with an empty `<v>` is left alone."""
    scan = _SheetScan()
    with zipfile.ZipFile(path) as archive, archive.open(member) as fh:
        carry = b""
        while True:
            block = fh.read(_XML_BLOCK)
            data = carry + block
            cut = _last_cell_start(data) if block else len(data)  # the last cell may go on in the next block
            text = data[:cut]
            if b"<!" in text or b"<?" in text:  # rare: Excel writes none in a sheet
                closed = max((m.end() for m in _SPECIAL.finditer(text)), default=0)
                if block and (start := _SPECIAL_START.search(text, closed)) is not None:
                    cut = start.start()  # a section that goes on in the next block
                text = _SPECIAL.sub(b"", data[:cut])
            for m in _UNCOMPUTED.finditer(text):
                ref, kind = _REF.search(m.group(1)), _TYPE.search(m.group(1))
                if ref is not None and (kind is None or kind.group(2) not in (b"str", b"inlineStr")):
                    cell = (ref.group(2).upper() + ref.group(3)).decode()
                    scan.uncomputed.setdefault(int(ref.group(3)), []).append(cell)
            scan.order(text, len(text))
            if not block:
                return scan
            carry = data[cut:]


def _last_cell_start(data: bytes) -> int:
    """Where the last cell of *data* starts, looked for near the end first; else its last tag
    (which may be the start of a cell cut off by the block's end)."""
    for window in (1 << 16, len(data)):
        starts = [m.start() for m in _CELL.finditer(data, max(len(data) - window, 0))]
        if starts:
            return starts[-1]
    last_tag = data.rfind(b"<")
    return last_tag if last_tag >= 0 else len(data)


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
            scan = _scan_sheet(self.path, sheet._worksheet_path)  # noqa: SLF001 (openpyxl's own)
        if scan.disorder is not None:
            raise SourceError(str(self.path), f"sheet '{self.spec.sheet}': {scan.disorder} in the file, which is not "
                              f"valid xlsx; it would be read without some of its rows or values. Open and save "
                              f"it in Excel or LibreOffice, which write them in order")
        self.uncomputed = {n: cells for n, cells in scan.uncomputed.items() if n > self.header_row}
        self.header = unique_header([as_text(v) or "" for v in head])  # (blank: column_N, never a real name)

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
                uncomputed = self.uncomputed.get(n)
                if not any(v not in (None, "") for v in row) and not uncomputed:
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
                elif uncomputed:
                    yield checked(RawRecord(n, None, raw, ReasonCode.MALFORMED_ROW,
                                            f"formula without a saved value in {', '.join(uncomputed)}: the file was "
                                            f"written by a tool that does not compute formulas; open and save it in "
                                            f"Excel or LibreOffice"))
                else:
                    yield checked(RawRecord(n, values, raw))

    def count_records(self) -> int:
        """Rows with a non-empty cell, from the cells themselves (not the row values)."""
        with self._sheet() as sheet:
            rows = {cell.row for _, row in self._guarded(sheet.iter_rows(min_row=self.header_row + 1), self.header_row + 1)
                    for cell in row if getattr(cell, "value", None) not in (None, "")}
        return len(rows | set(self.uncomputed))  # (a row of formulas with no saved value reads as empty)


class EmptyFileReader(Reader):
    """A source file of no bytes, in any format: an export that found nothing to export. It holds
    0 records, not an error that would stop the whole project; having no header either, it takes
    the columns the mapping names, so that the stages after it map 0 records like any others."""

    def __init__(self, path: Path, columns: Sequence[str]):
        self.path = path
        self.location = str(path)
        self.header = list(columns)

    def records(self) -> Iterator[RawRecord]:
        return iter(())

    def count_records(self) -> int:
        return 0


def open_reader(path: Path | None, spec: CsvSource | SqlSource | JsonSource | XlsxSource, chunk_rows: int,
                columns: Sequence[str] = ()) -> Reader:
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
    columns
        The header of a file of no bytes (an ``EmptyFileReader``): the columns the mapping names.

    Raises
    ------
    SourceError
        The source cannot be opened at all (missing file or variable, unknown table or sheet).
    """
    if isinstance(spec, SqlSource):
        return SqlReader(path, spec, chunk_rows)
    if path is None or not path.exists():
        raise SourceError(str(path), "file not found")
    if path.is_file() and path.stat().st_size == 0:
        return EmptyFileReader(path, columns)
    if isinstance(spec, CsvSource):
        return CsvReader(path, spec)
    if isinstance(spec, JsonSource):
        return JsonReader(path, spec)
    return XlsxReader(path, spec)
