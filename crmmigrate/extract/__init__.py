"""Extract: every declared source → raw text rows with lineage, rejects, and a snapshot.

Writes ``extract/<source>.parquet``, ``extract/rejects/<source>.parquet``,
``extract/snapshots/<source>.*.zst`` and ``extract/sources.parquet`` (records in per source,
counted independently of the parser).
"""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from crmmigrate.errors import SourceError
from crmmigrate.extract.duplicates import find_repeats
from crmmigrate.extract import fastcsv
from crmmigrate.extract.base import RawRecord, Reader, RejectWriter
from crmmigrate.extract.csvfile import CsvReader
from crmmigrate.extract.fastcsv import FastRead, LineScan, fast_encoding
from crmmigrate.extract.lineage import lineage_of, row_hash, row_hashes
from crmmigrate.sqltext import WHITESPACE
from crmmigrate.extract.readers import open_reader
from crmmigrate.rundir import WORKING_CODEC, ROW_GROUP_BYTES, parquet_stream, row_group_rows, RunDir, StageResult, write_table
from crmmigrate.schemas import LINEAGE_NAMES, REPEATS, SOURCES, extract_schema
from crmmigrate.spec.load import Project, named_columns
from crmmigrate.spec.model import MappingSpec

__all__ = ["extract_source", "lineage_of", "row_hash", "run_extract", "source_header"]



def source_header(project: Project, mapping: MappingSpec, table: str) -> list[str]:
    """The real column names of one source (for checking a mapping before any row moves)."""
    spec = mapping.sources[table]
    reader = open_reader(_source_path(project, spec.path), spec, project.spec.chunk_rows,
                         named_columns(mapping, table))
    reader.close()
    return reader.header


def _source_path(project: Project, relative: str | None) -> Path | None:
    """The source file, or None for a database read through `url_env` (no file)."""
    return None if relative is None else project.path(relative)


def extract_source(project: Project, mapping: MappingSpec, table: str, out: Path,
                   fast: bool = True) -> dict[str, object]:
    """One source into ``extract/<source>.parquet`` and its rejects; *fast=False* forces the
    per-record Python route (the DuckDB route's reference, in tests)."""
    spec = mapping.sources[table]
    source_id = mapping.source_id(table)
    path = _source_path(project, spec.path)
    reader = open_reader(path, spec, project.spec.chunk_rows, named_columns(mapping, table))
    target = out / f"{source_id}.parquet"
    rejects = RejectWriter(out / "rejects" / f"{source_id}.parquet", project.spec.chunk_rows)
    try:
        schema = extract_schema(reader.header)
        # DuckDB's names ignore case: `ID` and `Id` would be one column to it.
        distinct = len({c.lower() for c in reader.header}) == len(reader.header)
        scan = (LineScan(reader) if fast and isinstance(reader, CsvReader) and fast_encoding(spec.encoding)
                and distinct and fastcsv.fits_memory(reader.path) else None)
        snapshot = _Snapshot(out, source_id, path, spec.format, scan)
        read = None
        if scan is not None:
            read = fastcsv.read_csv(reader, snapshot.wait, spec.key, source_id, mapping.department, target, schema,
                                    rejects)
        if read is None:
            read = _read_records(reader, spec.key, source_id, mapping.department, target, schema,
                                 project.spec.chunk_rows, snapshot, rejects)
        snapshot.close()
    finally:
        try:
            reader.close()
        finally:
            rejects.close()
    if read.records_in != read.extracted + read.rejected:
        # The count is a second pass over the source: a database written to in between, or a
        # query that is not deterministic (`random()`, `LIMIT` without `ORDER BY`), differs.
        changed = "the query is not deterministic or the data changed" if spec.format == "sql" else \
            "the file changed"
        raise SourceError(reader.location or str(path), f"counted {read.records_in} records but read "
                          f"{read.extracted + read.rejected} ({changed} while it was read); extract it again")
    return {"source": source_id, "system": mapping.system, "department": mapping.department, "table": table,
            "format": spec.format, "path": spec.path or reader.location, "records_in": read.records_in,
            "extracted": read.extracted, "rejected": read.rejected, "snapshot": snapshot.path.name,
            "fallback_decoded": int(getattr(reader, "fallback_records", 0))}


def _read_records(reader: Reader, key: tuple[str, ...] | str, source: str, department: str, target: Path,
                  schema: pa.Schema, chunk_rows: int, snapshot: _Snapshot, rejects: RejectWriter) -> FastRead:
    """The per-record route: every reader, and delimited files DuckDB may not read."""
    records_in = reader.count_records()
    rows: list[tuple[object, ...]] = []
    extracted = size = 0
    key_at = _key_columns(reader.header, key)
    con = duckdb.connect(config={"threads": 1})  # the rows' hashes
    with con, pq.ParquetWriter(target, schema, **parquet_stream(schema, WORKING_CODEC)) as writer:
        for rec in reader.records():
            snapshot.write_row(rec.raw)
            source_key = None if rec.values is None else _fast_key(rec, key_at)
            if source_key is None:  # a reject, or a key _fast_key cannot tell: the full route
                outcome = lineage_of(rec, reader.header, key, source, department)
                if "reason_code" in outcome:
                    rejects.add(outcome)
                    continue
                source_key = str(outcome["_source_key"])
            rows.append((*rec.values, source, department, source_key, rec.row_number))  # type: ignore[misc]
            size += len(rec.raw)
            if len(rows) >= chunk_rows or size >= ROW_GROUP_BYTES:  # (wide records: bounded by bytes too)
                extracted += _flush_rows(writer, rows, schema, con)
                size = 0
        extracted += _flush_rows(writer, rows, schema, con)
    return FastRead(records_in, extracted, rejects.count)


def _key_columns(header: list[str], key: tuple[str, ...] | str) -> list[int] | None:
    """Positions of the key columns in the header (None: `row_number`, or a column not in it)."""
    if key == "row_number" or any(k not in header for k in key):
        return None
    return [header.index(k) for k in key]


def _fast_key(rec: RawRecord, key_at: list[int] | None) -> str | None:
    """The source key of a well-formed record from its key positions, the same as `source_key`;
    None when the key is missing or cannot be read by position (then `lineage_of` decides)."""
    if key_at is None:
        return None
    parts = []
    for i in key_at:
        part = rec.values[i]  # type: ignore[index]
        if part is None:
            return None
        part = part.strip(WHITESPACE)
        if not part:
            return None
        parts.append(part)
    return parts[0] if len(parts) == 1 else "|".join(parts)


def _flush_rows(writer: pq.ParquetWriter, rows: list[tuple[object, ...]], schema: pa.Schema,
                con: duckdb.DuckDBPyConnection) -> int:
    """Write rows given as tuples in *schema* order but the row hash, column by column (not one
    dict per row)."""
    if not rows:
        return 0
    n = len(rows)
    columns = [pa.array(col, type=f.type) for col, f in zip(zip(*rows), schema)]
    columns.append(row_hashes(columns[:len(schema) - len(LINEAGE_NAMES)], n, con))
    table = pa.Table.from_arrays(columns, schema=schema)
    writer.write_table(table, row_group_size=row_group_rows(table))
    rows.clear()
    return n


class _Snapshot:
    """A compressed copy of exactly what was read: the file's bytes (copied in a thread while the
    records are parsed, feeding the DuckDB route's `LineScan` on the way), or a table's rows as
    they stream past. zstd, not gzip: 0.5 s instead of 1.8 s per 145 MB of CSV, on a machine
    whose two cores the parse needs too; `zstd -d` or pyarrow read it back."""

    BLOCK = 1 << 22

    def __init__(self, out: Path, source_id: str, path: Path | None, fmt: str, scan: LineScan | None = None):
        folder = out / "snapshots"
        folder.mkdir(parents=True, exist_ok=True)
        self.rows: pa.CompressedOutputStream | None = None
        self.copier: threading.Thread | None = None
        self.error: BaseException | None = None
        self.scan = scan
        if fmt == "sql":
            self.path = folder / f"{source_id}.jsonl.zst"
            self.rows = pa.CompressedOutputStream(str(self.path), "zstd")
            return
        assert path is not None  # only a database source has no file
        self.path = folder / f"{source_id}{path.suffix}.zst"
        self.copier = threading.Thread(target=self._copy, args=(path,), name=f"snapshot {source_id}")
        self.copier.start()

    def _copy(self, source: Path) -> None:
        try:
            # One zstd frame per block: a stream's frames refer back to the previous block (zstd's
            # extDict path), 0.73 instead of 0.52 CPU-s per 145 MB of CSV for the same 78 MB.
            # Concatenated frames are one .zst to `zstd -d` and to pyarrow.
            # An empty file still gets one (empty) frame: zstd -d refuses a .zst of no bytes.
            codec = pa.Codec("zstd", compression_level=1)
            with source.open("rb") as src, self.path.open("wb") as dst:
                first = True
                while (block := src.read(self.BLOCK)) or first:
                    first = False
                    dst.write(codec.compress(block))  # an Arrow buffer, not copied into bytes
                    if self.scan is not None:
                        self.scan.feed(block)
            if self.scan is not None:
                self.scan.finish()
        except BaseException as exc:  # re-raised in the stage's thread by wait()
            self.error = exc

    def wait(self) -> LineScan:
        """The finished line scan (the copy is done when it is)."""
        if self.copier is not None:
            self.copier.join()
        if self.error is not None:
            raise self.error
        assert self.scan is not None
        return self.scan

    def write_row(self, raw: str) -> None:
        if self.rows is not None:
            self.rows.write(raw.encode("utf-8") + b"\n")

    def close(self) -> None:
        if self.rows is not None:
            self.rows.close()
        if self.copier is not None:
            self.copier.join()
        if self.error is not None:
            raise self.error


def run_extract(run: RunDir, project: Project) -> StageResult:
    """Extract every source of every mapping in *project* into *run*."""
    with run.stage("extract") as (out, result):
        stats = []
        for mapping, table in project.sources():
            stat = extract_source(project, mapping, table, out)
            entities = {em.entity: em.read_columns() for em in mapping.entities if em.from_ == table}
            repeats = find_repeats(out / f"{stat['source']}.parquet", entities)
            write_table(out / "repeats" / f"{stat['source']}.parquet", repeats, REPEATS)
            # A record repeats once, however many entities it feeds: differing where any of them differs.
            differing = repeats.groupby("_row_number")["identical"].all().eq(False)
            stats.append({**stat, "repeats_identical": int((~differing).sum()), "repeats_differing": int(differing.sum())})
        write_table(out / "sources.parquet", pd.DataFrame(stats), SOURCES)
        result.counts = {
            "records_in": sum(int(s["records_in"]) for s in stats),
            "extracted": sum(int(s["extracted"]) for s in stats),
            "rejected": sum(int(s["rejected"]) for s in stats),
            "repeated_keys": sum(int(s["repeats_identical"]) + int(s["repeats_differing"]) for s in stats),
            "sources": {str(s["source"]): int(s["records_in"]) for s in stats},
        }
    return result


def read_sources(run: RunDir) -> pd.DataFrame:
    return pd.read_parquet(run.require("extract") / "sources.parquet")


