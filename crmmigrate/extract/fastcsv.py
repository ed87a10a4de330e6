"""Delimited text at DuckDB speed, read exactly as `CsvReader` reads it.

DuckDB's CSV reader is ~20x faster than the per-record Python route, but it reads some
malformed lines its own way (a space before a quote, a lone CR) and reports no line numbers.
So it reads a file only where the two provably agree: a scan of the bytes, made while the
snapshot is written, checks that the file is valid UTF-8 with no NUL, no lone CR, no blank
line, and that every line holding a quote quotes whole fields. Then every record is one line,
and a record's line number follows from its position and the lines DuckDB refused. Those
lines, and records without a key, are read again by `CsvReader` itself, so their outcome
(values, or a reject with its reason) is the Python route's. Any other file takes the Python
route whole.
"""

from __future__ import annotations

import codecs
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from crmmigrate.extract.base import RejectWriter
from crmmigrate.extract.csvfile import CsvReader
from crmmigrate.rundir import WORKING_CODEC, ROW_GROUP_BYTES, parquet_stream, row_group_rows, StreamWriter
from crmmigrate.extract.lineage import key_sql, lineage_of, row_hash_sql, row_hashes
from crmmigrate.schemas import LINEAGE_NAMES
from crmmigrate.sqltext import ident, literal

LOG = logging.getLogger("crmmigrate")
BATCH_ROWS = 65_536  # at most; fewer for wide lines (see _batch_rows)
# DuckDB's limit on one line; a file with a longer line is read by the Python route (LineScan).
MAX_LINE_BYTES = 1 << 20
BUFFER_BYTES = 1 << 22
MEMORY_MB = 128  # at least; more for long lines (see _memory_mb), up to MAX_MEMORY_MB
MAX_MEMORY_MB = 512


def fast_encoding(encoding: str) -> bool:
    """DuckDB reads UTF-8 only; a file declared in any other encoding takes the Python route."""
    try:
        return codecs.lookup(encoding).name in ("utf-8", "utf-8-sig")
    except LookupError:
        return False


def _valid_utf8(chunk: bytes | memoryview) -> bool:
    """Whether *chunk* is valid UTF-8, by Arrow's validator: decoding 4 MB to a str to find out
    cost 6x the time, and a str of the block's size."""
    offsets = pa.py_buffer(np.array([0, len(chunk)], dtype=np.int64))
    try:
        pa.LargeStringArray.from_buffers(1, offsets, pa.py_buffer(chunk)).validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


class LineScan:
    """Checks, block by block, that a file is one record per line (see the module's docstring).

    Attributes
    ----------
    problem
        Why DuckDB may not read the file, or None.
    lines
        Physical lines, counted by line breaks: the record count the DuckDB route must match.
    """

    def __init__(self, reader: CsvReader):
        self.closed_line = reader.closed_line.fullmatch
        self.quote = reader.quote
        self.delimiter = reader.delimiter
        self.fields = reader.fields
        self.width = len(reader.header)
        self.problem: str | None = None
        self.lines = 0
        self._carry = b""
        self._ends = {"\r\n": False, "\n": False}  # the line ends seen so far
        self._mask = np.empty(0, dtype=bool)

    def feed(self, block: bytes) -> None:
        if self.problem is not None:
            return
        cut = block.rfind(b"\n") + 1
        start = 0
        if cut and self._carry:  # the line begun in the previous block, whole now
            start = block.index(b"\n") + 1
            joined = self._carry + block[:start]
            self._check(joined, 0, len(joined))
            self._carry = b""
        if start < cut and self.problem is None:
            self._check(block, start, cut)
        self._carry += block[cut:]
        # (A block may end between a line's \r and \n: the \r is its line end, not its text.)
        if len(self._carry) - self._carry.endswith(b"\r") + 2 > MAX_LINE_BYTES and self.problem is None:
            self.problem = f"a line over {MAX_LINE_BYTES:,} bytes"  # (CR-only line ends, or one huge line:
            self._carry = b""                                        # not held whole in memory)

    def finish(self) -> None:
        if self._carry and self.problem is None:
            last = self._carry + b"\n"  # a last line without a line break
            self._check(last, 0, len(last), unterminated=True)
        self._carry = b""

    def _check(self, block: bytes, lo: int, hi: int, unterminated: bool = False) -> None:
        """*block*[lo:hi] is whole lines, each ending in a line break but possibly the file's last.

        Line by line, but with numpy over the byte positions of line breaks, quotes and carriage
        returns: a per-line loop in Python cost ~1.5 s of CPU per million lines, on the core the
        parse needs. Only lines that hold other than two quotes, or that end in an empty field, are
        looked at one by one. A byte that is absent (NUL, and \r in files with \n line ends) is
        ruled out by bytes.find() (memchr: 12 ms per 145 MB, numpy's pass 20-45 ms)."""
        chunk = memoryview(block)[lo:hi]  # a view, not a copy (a 4 MB copy per block cost as much as the scan)
        data = np.frombuffer(chunk, dtype=np.uint8)
        if not _valid_utf8(chunk):
            self.problem = "not valid UTF-8"
            return
        if block.find(b"\x00", lo, hi) >= 0:
            self.problem = "NUL byte"
            return
        ends = np.flatnonzero(self._equal(data, 10))  # every line's \n; the last byte is one
        starts = np.concatenate(([0], ends[:-1] + 1))
        stops = ends
        if block.find(b"\r", lo, hi) >= 0:
            returns = np.flatnonzero(self._equal(data, 13))
            if returns[-1] + 1 >= data.size or (data[returns + 1] != 10).any():
                self.problem = "carriage return inside a line"
                return
            # Where each line's text ends: before its \r\n or \n (a \r is always followed by \n now).
            stops = ends - ((data[np.maximum(ends - 1, 0)] == 13) & (ends > starts))
        crlf = stops < ends
        if (stops == starts).any():
            self.problem = "blank line"
            return
        # DuckDB takes the first line's end for the file's; after `\n`, a line ending `,\r\n` counts
        # as two lines, and every later line number it reports is off by one.
        real = slice(None, -1 if unterminated else None)  # the file's last line may have no end of its own
        self._ends["\r\n"] |= bool(crlf[real].any())
        self._ends["\n"] |= bool((~crlf[real]).any())
        if all(self._ends.values()):
            self.problem = "both CRLF and LF line ends"
            return
        # DuckDB refuses a longer line, and was seen to hand the rows before it over last.
        if (stops - starts).max() + 2 > MAX_LINE_BYTES:
            self.problem = f"a line over {MAX_LINE_BYTES:,} bytes"
            return
        if not self._quotes_closed(chunk, data, starts, stops):
            self.problem = "a quote that does not enclose a whole field, or a line break inside quotes"
            return
        if not self._last_fields_counted(chunk, data, starts, stops):
            self.problem = "an empty last field too many (DuckDB would drop it)"
            return
        self.lines += ends.size

    def _equal(self, data: np.ndarray, byte: int) -> np.ndarray:
        """`data == byte` into one reused mask: a fresh one per block cost its page faults."""
        if self._mask.size < data.size:
            self._mask = np.empty(data.size, dtype=bool)
        return np.equal(data, byte, out=self._mask[:data.size])

    def _quotes_closed(self, chunk: bytes | memoryview, data: np.ndarray, starts: np.ndarray,
                       stops: np.ndarray) -> bool:
        """Whether every line holding a quote quotes whole fields only. A line with two quotes, the
        common case, passes when the first opens a field and the second closes one; any other line
        holding a quote is matched whole against `CsvReader.closed_line`."""
        quotes = np.flatnonzero(self._equal(data, self.quote[0]))
        if not quotes.size:
            return True
        line = np.searchsorted(stops, quotes)  # the line of each quote (a quote is never past its line's stop)
        first = np.concatenate(([True], line[1:] != line[:-1]))  # each line's first quote
        counts = np.diff(np.append(np.flatnonzero(first), quotes.size))
        lines, opens = line[first], quotes[first]
        pairs = counts == 2
        closes = quotes[np.flatnonzero(first)[pairs] + 1]
        opens, pair_lines = opens[pairs], lines[pairs]
        delimiter = self.delimiter[0]
        opened = (opens == starts[pair_lines]) | (data[np.maximum(opens - 1, 0)] == delimiter)
        closed = (closes + 1 == stops[pair_lines]) | (data[np.minimum(closes + 1, data.size - 1)] == delimiter)
        if not (opened & closed).all():
            return False
        return all(self.closed_line(chunk[starts[i]:stops[i]]) for i in lines[~pairs])

    def _last_fields_counted(self, chunk: bytes | memoryview, data: np.ndarray, starts: np.ndarray,
                             stops: np.ndarray) -> bool:
        """Whether no line ending in an empty field (`1,a,` or `1,a,""`) holds a field too many,
        which DuckDB would drop where the Python route rejects the record."""
        delimiter, quote = self.delimiter[0], self.quote[0]
        last = data[np.maximum(stops - 1, 0)]
        empty = (last == delimiter) & (stops - starts >= 1)
        quoted = (stops - starts >= 3) & (last == quote) & (data[np.maximum(stops - 2, 0)] == quote) \
            & (data[np.maximum(stops - 3, 0)] == delimiter)
        return all(self.fields(bytes(chunk[starts[i]:stops[i]])) == self.width for i in np.flatnonzero(empty | quoted))


@dataclass
class FastRead:
    records_in: int
    extracted: int
    rejected: int = 0


def read_csv(reader: CsvReader, scan_done: Callable[[], LineScan], key: tuple[str, ...] | str, source: str, department: str,
             target: Path, schema: pa.Schema, rejects: RejectWriter) -> FastRead | None:
    """Write *reader*'s file to *target* through DuckDB; None when the file is not for this route.

    Parameters
    ----------
    scan_done
        Waits for the `LineScan` fed by the snapshot thread and returns it.
    """
    header = reader.header
    # One thread: line numbers follow from the order of DuckDB's rows, and a parallel scan (with
    # rejects stored) was seen to hand them over out of file order.
    con = duckdb.connect(config={"memory_limit": f"{_memory_mb(reader.path)}MB", "threads": 1})
    try:
        with StreamWriter(target, schema, codec=WORKING_CODEC) as writer:
            try:
                ordinals, keyless = _stream(con, reader, key, source, department, writer, schema)
            except (duckdb.Error, OSError) as exc:  # OSError: DuckDB's errors as the Arrow stream raises them
                # DuckDB gives up on some malformed files as a whole (the line scan refuses those too);
                # anything else is worth a line in the log, since the Python route is ~20x slower.
                if scan_done().problem is None:
                    LOG.warning("%s: read record by record, DuckDB failed: %s", reader.path, str(exc).splitlines()[0])
                ordinals, keyless = -1, []
            scan = scan_done()
            if scan.problem is not None or not header or ordinals < 0:
                return None
            refused = [r[0] for r in con.execute("SELECT DISTINCT line FROM _rejects ORDER BY 1").fetchall()]
            records_in = max(scan.lines - 1, 0)
            if ordinals + len(refused) != records_in:
                return None  # the two counts disagree: let the Python route read it record by record
            again = sorted(set(refused) | {int(n) for n in _line_numbers(np.array(keyless, dtype=np.int64), refused)})
            result = FastRead(records_in, ordinals - len(keyless))
            rows: list[dict[str, object]] = []
            for line_no, data in _read_lines(reader.path, again):
                outcome = lineage_of(reader.record(line_no, data), header, key, source, department)
                if "reason_code" in outcome:
                    rejects.add(outcome)
                    result.rejected += 1
                else:
                    rows.append(outcome)
                if len(rows) == BATCH_ROWS:
                    result.extracted += _write_rows(writer, rows, schema, con)
                    rows = []
            result.extracted += _write_rows(writer, rows, schema, con)
    finally:
        con.close()
    if refused:
        _renumber(target, schema, refused, ordinals - len(keyless), key == "row_number")
    return result


def _line_bytes(path: Path) -> int:
    """The mean length of the file's first lines (its first MiB)."""
    with path.open("rb") as fh:
        head = fh.read(1 << 20)
    return max(len(head) // max(head.count(b"\n"), 1), 1)


def _batch_rows(path: Path) -> int:
    """Rows per batch: BATCH_ROWS, or fewer where the file's first lines are long, so that a
    batch holds about 4 x ROW_GROUP_BYTES (three are in flight: read, queued, written; the writer
    cuts them into row groups). Batches of one row group cost ~0.1 s per million rows more."""
    return max(1024, min(BATCH_ROWS, 4 * ROW_GROUP_BYTES // _line_bytes(path)))


def _memory_mb(path: Path) -> int:
    """MEMORY_MB, or more for long lines: DuckDB parses 2,048 rows at a time whatever their width
    (lines of 50 KB ran out of memory under 128 and 300 MB; 600 MB was enough)."""
    return max(MEMORY_MB, math.ceil(_line_bytes(path) * 2048 * 6 / 2**20))


def fits_memory(path: Path) -> bool:
    """Whether DuckDB may read the file within MAX_MEMORY_MB; longer lines (~40 KB and more) take
    the per-record route, whose memory the chunk bounds."""
    return _memory_mb(path) <= MAX_MEMORY_MB


def _write_rows(writer: StreamWriter, rows: list[dict[str, object]], schema: pa.Schema,
                con: duckdb.DuckDBPyConnection) -> int:
    """Records read by `CsvReader` (`lineage_of` outcomes), hashed as DuckDB hashed the others."""
    if rows:
        unhashed = schema.remove(schema.get_field_index("_row_hash"))
        table = pa.Table.from_pylist(rows, schema=unhashed)
        raw = [table.column(name) for name in schema.names if name not in LINEAGE_NAMES]
        writer.write_table(table.append_column(schema.field("_row_hash"), row_hashes(raw, table.num_rows, con)))
    return len(rows)


def _stream(con: duckdb.DuckDBPyConnection, reader: CsvReader, key: tuple[str, ...] | str, source: str,
            department: str, writer: StreamWriter, schema: pa.Schema) -> tuple[int, list[int]]:
    """Every record DuckDB accepts, in file order, numbered by position (line = position + 2 until
    `_renumber` accounts for refused lines); records whose key is blank are held back by position."""
    header = reader.header
    quote = literal(reader.spec.quotechar)
    columns = "{" + ", ".join(f"{literal(c)}: 'VARCHAR'" for c in header) + "}"
    source_sql = (f"read_csv({literal(str(reader.path))}, header=true, auto_detect=false, columns={columns}, "
                  f"delim={literal(reader.sep)}, quote={quote}, escape={quote}, strict_mode=true, "
                  f"null_padding=false, store_rejects=true, rejects_table='_rejects', rejects_scan='_scans', "
                  f"max_line_size={MAX_LINE_BYTES}, buffer_size={BUFFER_BYTES}, encoding='utf-8')")
    key_expr = "NULL::VARCHAR" if key == "row_number" else key_sql(key)
    query = (f"SELECT {', '.join(ident(c) for c in header)}, {key_expr} AS _source_key, "
             f"{row_hash_sql(header)} AS _row_hash FROM {source_sql}")
    # Keys may be blank here: those rows are filtered out before the cast to the strict schema.
    loose = schema.set(schema.get_field_index("_source_key"), pa.field("_source_key", pa.string()))
    ordinal, keyless = 0, []
    for batch in con.sql(query).to_arrow_reader(_batch_rows(reader.path)):
        n = batch.num_rows
        numbers = pa.array(np.arange(ordinal + 2, ordinal + 2 + n, dtype=np.int64))
        keys = pc.cast(numbers, pa.string()) if key == "row_number" else batch.column("_source_key")
        columns_out = [batch.column(c) for c in header] + [
            pa.repeat(source, n), pa.repeat(department, n), keys, numbers,
            batch.column("_row_hash")]
        table = pa.Table.from_arrays(columns_out, schema=loose)
        if keys.null_count:
            missing = np.flatnonzero(keys.is_null().to_numpy(zero_copy_only=False))
            keyless.extend((missing + ordinal).tolist())
            table = table.filter(pc.is_valid(keys))
        writer.write_table(table.cast(schema))
        ordinal += n
    return ordinal, keyless


def _line_numbers(ordinals: np.ndarray, refused: list[int]) -> np.ndarray:
    """Line numbers of DuckDB's records by position: the data lines (2, 3, ...) not refused.

    With refused lines r_0 < r_1 < ..., the record at position i sits on line i + 2 + k, where k
    counts the refused lines before it: k = #{j : r_j - j <= i + 2}.
    """
    shifted = np.asarray(refused, dtype=np.int64) - np.arange(len(refused), dtype=np.int64)
    return ordinals + 2 + np.searchsorted(shifted, ordinals + 2, side="right")


def _renumber(target: Path, schema: pa.Schema, refused: list[int], duck_rows: int, number_is_key: bool) -> None:
    """Give DuckDB's records (the file's first *duck_rows* rows) their true line numbers (and
    keys, when the key is the line number)."""
    fixed = target.with_suffix(".renumber")
    source = pq.ParquetFile(target)
    written = 0
    with pq.ParquetWriter(fixed, schema, **parquet_stream(schema, WORKING_CODEC)) as writer:
        for group in range(source.num_row_groups):  # row group by row group, as they were written
            table = source.read_row_group(group)
            own = max(0, min(table.num_rows, duck_rows - written))
            if own:
                provisional = table.column("_row_number").to_numpy()[:own] - 2  # = position
                numbers = np.concatenate([_line_numbers(provisional, refused),
                                          table.column("_row_number").to_numpy()[own:]])
                table = table.set_column(schema.get_field_index("_row_number"), schema.field("_row_number"),
                                         pa.array(numbers))
                if number_is_key:
                    table = table.set_column(schema.get_field_index("_source_key"), schema.field("_source_key"),
                                             pc.cast(table.column("_row_number"), pa.string()))
            writer.write_table(table, row_group_size=row_group_rows(table))
            written += table.num_rows
    source.close()
    fixed.replace(target)


def _read_lines(path: Path, wanted: list[int]) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) of the *wanted* lines (sorted), in one pass over the file."""
    if not wanted:
        return
    pending = iter(wanted)
    next_no = next(pending)
    with path.open("rb") as fh:
        for line_no, data in enumerate(fh, start=1):
            if line_no == next_no:
                yield line_no, data
                next_no = next(pending, None)
                if next_no is None:
                    return
