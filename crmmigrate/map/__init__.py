"""Map: extracted rows → canonical entity records, rejects with every reason, and skips.

Reads ``extract/<source>.parquet``; writes ``map/mapped/<entity>/<source>.parquet``,
``map/rejects/<entity>/<source>.parquet``, ``map/skipped/<entity>/<source>.parquet`` and
``map/nulled/<entity>/<source>.parquet`` (values an `on_invalid: null` field dropped: the record
is mapped, the value is not silently lost). Per (source, entity): rows extracted = mapped +
rejected + skipped, checked every run.

DuckDB maps the rows the entity's compiled SQL is sure of (map/sql.py); `map_frame`, the
reference semantics, maps every other row.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from crmmigrate.errors import CrmMigrateError, MappingSpecError
from crmmigrate.map.mapper import MapResult, map_frame
from crmmigrate.map.sql import CompiledEntity, compile_entity
from crmmigrate.rundir import RunDir, StageResult
from crmmigrate.schemas import DEFERRED, MAP_NULLED, MAP_REJECTS, mapped_schema
from crmmigrate.spec.load import Project, check_columns
from crmmigrate.spec.model import EntityMapping, MappingSpec

__all__ = ["MapResult", "map_frame", "run_map"]


class _Writers:
    """One parquet writer per output file, all opened up front so every file exists."""

    def __init__(self, out: Path, source: str, entity: str):
        self.files = {
            "mapped": (out / "mapped" / entity / f"{source}.parquet", mapped_schema(entity)),
            "rejects": (out / "rejects" / entity / f"{source}.parquet", MAP_REJECTS),
            "skipped": (out / "skipped" / entity / f"{source}.parquet", DEFERRED),
            "nulled": (out / "nulled" / entity / f"{source}.parquet", MAP_NULLED),
        }
        self.writers: dict[str, pq.ParquetWriter] = {}
        for name, (path, schema) in self.files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            self.writers[name] = pq.ParquetWriter(path, schema, compression="snappy")
        self.counts = dict.fromkeys(self.files, 0)

    def write(self, result: MapResult) -> None:
        for name, frame in (("mapped", result.mapped), ("rejects", result.rejects), ("skipped", result.skipped),
                            ("nulled", result.nulled)):
            schema = self.files[name][1]
            if len(frame):
                # Unmapped optional fields must arrive as nulls of no type: reindex would fill them
                # with float NaN, which Arrow refuses to cast to a date.
                missing = {c: pd.Series(None, index=frame.index, dtype=object) for c in schema.names if c not in frame}
                frame = frame.assign(**missing)[schema.names]
                table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
                self.writers[name].write_table(table)
                self.counts[name] += len(frame)

    def write_arrow(self, name: str, table: pa.Table) -> None:
        if table.num_rows:
            self.writers[name].write_table(table)
            self.counts[name] += table.num_rows

    def close(self) -> None:
        for w in self.writers.values():
            w.close()


def _repeated_rows(run: RunDir, source_id: str) -> set[int]:
    """Row numbers of repeats of an earlier key: mapped once, through their first occurrence."""
    path = run.require("extract") / "repeats" / f"{source_id}.parquet"
    if not path.exists():
        return set()
    return set(pq.read_table(path, columns=["_row_number"])["_row_number"].to_pylist())


def map_source(run: RunDir, project: Project, mapping: MappingSpec, em: EntityMapping, out: Path,
               compiled: bool = True) -> dict[str, int]:
    """One (source, entity): DuckDB maps the rows its SQL is sure of, `map_frame` the rest (all rows
    when the entity does not compile, or with *compiled=False*, the reference route in tests)."""
    source_id = mapping.source_id(em.from_)
    extracted_path = run.require("extract") / f"{source_id}.parquet"
    repeats_path = run.require("extract") / "repeats" / f"{source_id}.parquet"
    sql = compile_entity(em, mapping) if compiled else None
    writers = _Writers(out, source_id, em.entity)
    try:
        if sql is None:
            extracted, repeats = _map_frames(extracted_path, _repeated_rows(repeats_path), em, mapping, writers,
                                             project.spec.chunk_rows)
        else:
            extracted, repeats = _map_sql(extracted_path, repeats_path, sql, em, mapping, writers,
                                          project.spec.chunk_rows)
    finally:
        writers.close()
    counts = writers.counts
    if extracted != counts["mapped"] + counts["rejects"] + counts["skipped"] + repeats:
        raise CrmMigrateError(f"In mapping `{mapping.system}` ({em.entity} from {em.from_}): {extracted} rows in, "
                              f"{counts['mapped']} mapped + {counts['rejects']} rejected + {counts['skipped']} skipped"
                              f" + {repeats} repeated keys")
    return {"extracted": extracted, **counts, "repeats": repeats}


def _repeated_rows(path: Path) -> set[int]:
    """Row numbers of repeats of an earlier key: mapped once, through their first occurrence."""
    if not path.exists():
        return set()
    return set(pq.read_table(path, columns=["_row_number"])["_row_number"].to_pylist())


def _map_frames(path: Path, repeated: set[int], em: EntityMapping, mapping: MappingSpec, writers: _Writers,
                chunk_rows: int) -> tuple[int, int]:
    extracted = repeats = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
        frame = batch.to_pandas()
        extracted += len(frame)
        if repeated:
            is_repeat = frame["_row_number"].isin(repeated)
            repeats += int(is_repeat.sum())
            frame = frame[~is_repeat]
        writers.write(map_frame(frame, em, mapping))
    return extracted, repeats


# DuckDB's own memory; the rows it is not sure of wait as row numbers (8 bytes each).
SQL_MEMORY_LIMIT = "128MB"
SQL_BATCH_ROWS = 65_536


def _map_sql(path: Path, repeats_path: Path, sql: CompiledEntity, em: EntityMapping, mapping: MappingSpec,
             writers: _Writers, chunk_rows: int) -> tuple[int, int]:
    con = duckdb.connect(config={"memory_limit": SQL_MEMORY_LIMIT, "threads": 2})
    try:
        params = {"rows": str(path)}
        extracted = con.execute("SELECT count(*) FROM read_parquet($rows)", params).fetchall()[0][0]
        repeats = 0
        source = "read_parquet($rows)"
        if repeats_path.exists() and pq.ParquetFile(repeats_path).metadata.num_rows:
            params["repeats"] = str(repeats_path)
            repeats = pq.ParquetFile(repeats_path).metadata.num_rows
            source = ("(SELECT * FROM read_parquet($rows) WHERE _row_number NOT IN "
                      "(SELECT _row_number FROM read_parquet($repeats)))")
        names = list(sql.columns)
        select = ", ".join(f"{expr} AS {_ident(name)}" for name, expr in sql.columns.items())
        schema = writers.files["mapped"][1]
        unsure: list[np.ndarray] = []
        reader = con.sql(f"SELECT {select}, {sql.sure} AS _sure FROM {source}", params=params).to_arrow_reader(
            SQL_BATCH_ROWS)
        for batch in reader:
            sure = batch.column("_sure")
            others = batch.filter(pc.invert(sure)).column("_row_number")
            if len(others):
                unsure.append(others.to_numpy())
            writers.write_arrow("mapped", pa.Table.from_batches([batch.filter(sure)]).select(names).cast(schema))
        numbers = pa.table({"n": np.concatenate(unsure) if unsure else np.array([], dtype=np.int64)})
        if numbers.num_rows:
            con.register("_unsure", numbers)
            _map_unsure(con, source, params, numbers.num_rows, sql, em, mapping, writers, chunk_rows)
    finally:
        con.close()
    return extracted, repeats


def _map_unsure(con: duckdb.DuckDBPyConnection, source: str, params: dict[str, str], count: int,
                sql: CompiledEntity, em: EntityMapping, mapping: MappingSpec, writers: _Writers,
                chunk_rows: int) -> None:
    """The rows DuckDB was not sure of, by `map_frame`. A row is usually unsure of one field (a
    code missing from a value map, a phone only `phonenumbers` reads): its other fields' SQL
    values are handed over as known, so Python runs only the rules of the fields in doubt."""
    fields = [f for f in em.fields if f in sql.fields_sure]
    flags = ", ".join(f"{sql.fields_sure[f]} AS {_ident('_sure_' + f)}" for f in fields)
    values = ", ".join(f"{sql.columns[f]} AS {_ident('_sql_' + f)}" for f in fields)
    extra = (", " + flags + ", " + values) if fields else ""
    rest = con.sql(f"SELECT *{extra} FROM {source} WHERE _row_number IN (SELECT n FROM _unsure) "
                   "ORDER BY _row_number", params=params).to_arrow_reader(chunk_rows)
    for batch in rest:
        frame = batch.to_pandas()
        if not fields:
            writers.write(map_frame(frame, em, mapping))
            continue
        sure = frame[[f"_sure_{f}" for f in fields]].to_numpy(dtype=bool)
        raw = frame.drop(columns=[f"_sure_{f}" for f in fields] + [f"_sql_{f}" for f in fields])
        patterns = pd.Series([row.tobytes() for row in sure], index=frame.index)
        for _, rows in raw.groupby(patterns, sort=False):
            pattern = sure[frame.index.get_indexer(rows.index)[0]]
            known = {f: frame.loc[rows.index, f"_sql_{f}"] for f, ok in zip(fields, pattern) if ok}
            writers.write(map_frame(rows, em, mapping, known))


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def run_map(run: RunDir, project: Project) -> StageResult:
    """Map every entity of every mapping in *project*."""
    extract = run.require("extract")
    headers = {}
    for mapping, table in project.sources():
        source_id = mapping.source_id(table)
        names = pq.read_schema(extract / f"{source_id}.parquet").names
        headers[source_id] = [n for n in names if not n.startswith("_")]
    if problems := check_columns(project, headers):
        raise MappingSpecError(problems)
    with run.stage("map") as (out, result):
        per: dict[str, dict[str, int]] = {}
        for mapping in project.mappings.values():
            for em in mapping.entities:
                per[f"{mapping.source_id(em.from_)}/{em.entity}"] = map_source(run, project, mapping, em, out)
        result.counts = {
            "mapped": sum(c["mapped"] for c in per.values()),
            "rejected": sum(c["rejects"] for c in per.values()),
            "skipped": sum(c["skipped"] for c in per.values()),
            "nulled": sum(c["nulled"] for c in per.values()),
            "by_source_entity": per,
        }
    return result
