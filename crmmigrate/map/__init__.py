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
from crmmigrate.rundir import RunDir, StageResult, StreamWriter
from crmmigrate.schemas import DEFERRED, LINEAGE_NAMES, MAP_NULLED, MAP_REJECTS, mapped_schema
from crmmigrate.sqltext import ident, literal
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
        self.writers: dict[str, StreamWriter] = {}
        for name, (path, schema) in self.files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            self.writers[name] = StreamWriter(path, schema)
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
        errors = []
        for w in self.writers.values():  # every one, so that no writing thread is left behind
            try:
                w.close()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]


def map_source(run: RunDir, project: Project, mapping: MappingSpec, em: EntityMapping, out: Path,
               compiled: bool = True) -> dict[str, int]:
    """One (source, entity): DuckDB maps the rows its SQL is sure of, `map_frame` the rest (all rows
    when the entity does not compile, or with *compiled=False*, the reference route in tests)."""
    source_id = mapping.source_id(em.from_)
    extracted_path = run.require("extract") / f"{source_id}.parquet"
    repeats_path = run.require("extract") / "repeats" / f"{source_id}.parquet"
    sql = compile_entity(em, mapping) if compiled else None
    names = pq.read_schema(extracted_path).names
    if any(c.lower().startswith(_OWN) for c in names) or len({c.lower() for c in names}) < len(names):
        sql = None  # a raw column could be mistaken for one of the query's own, or for another (`ID`, `Id`)
    writers = _Writers(out, source_id, em.entity)
    try:
        if sql is None:
            extracted, repeats = _map_frames(extracted_path, _repeated_rows(repeats_path), em, mapping, writers,
                                             project.spec.chunk_rows)
        else:
            extracted, repeats = _map_sql(extracted_path, repeats_path, sql, em, mapping, writers)
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


SQL_MEMORY_LIMIT = "128MB"
# Smaller batches cost ~5% speed and save ~150 MB at peak (raw and mapped columns travel together).
SQL_BATCH_ROWS = 16_384
_OWN = "__crm_"  # the prefix of the query's own columns (compile_entity refuses columns read by that name)


def _map_sql(path: Path, repeats_path: Path, sql: CompiledEntity, em: EntityMapping, mapping: MappingSpec,
             writers: _Writers) -> tuple[int, int]:
    """One pass: each batch's sure rows are written from Arrow, and so are the rows the SQL knows
    map_frame rejects (with the same failures, message and raw record). The other rows go to
    `map_frame` with the fields the SQL was sure of handed over as known (a row is usually in doubt
    about one field: a phone only `phonenumbers` reads, a date in a shape not compiled), so Python
    runs only the rules in doubt."""
    raw_names = pq.read_schema(path).names
    raw_columns = [c for c in raw_names if c not in LINEAGE_NAMES]
    fields = [f for f in em.fields if f in sql.fields_sure]
    aliases = {name: f"{_OWN}m{i}" for i, name in enumerate(sql.columns)}
    pattern = " + ".join(f"CAST({sql.fields_sure[f]} AS BIGINT) * {1 << i}" for i, f in enumerate(fields)) or "0"
    failures = (f"list_filter([{', '.join(f'CASE WHEN {_OWN}f{i} THEN {f.struct} END' for i, f in enumerate(sql.failures))}], "
                f"lambda {_OWN}x: {_OWN}x IS NOT NULL)" if sql.failures else
                "CAST(NULL AS STRUCT(field VARCHAR, rule VARCHAR, value VARCHAR, reason_code VARCHAR, "
                "category VARCHAR, message VARCHAR)[])")
    # The first failure that rejects names the reject (a lenient field's is listed, not naming).
    first = [(i, f.reason) for i, f in enumerate(sql.failures) if not f.lenient]
    reason = "CASE " + " ".join(f"WHEN {_OWN}f{i} THEN {literal(str(r))}" for i, r in first) + " END" if first else "NULL"
    category = "CASE " + " ".join(f"WHEN {_OWN}f{i} THEN {literal(r.category)}" for i, r in first) + " END" \
        if first else "NULL"
    # Three projections, each computed once: the mapping (sharing each field's work between its
    # value and its flags), what a reject needs, then its message. Raw values are not among them:
    # converting them to Arrow for every row costs more than looking up the few doubtful rows.
    mapping_sql = ", ".join([*map(ident, raw_columns), *(f"{expr} AS {aliases[n]}" for n, expr in sql.columns.items()),
                             f"{sql.sure} AS {_OWN}sure", f"{sql.reject} AS {_OWN}reject", f"{pattern} AS {_OWN}pattern",
                             *(f"{f.when} AS {_OWN}f{i}" for i, f in enumerate(sql.failures))])
    rows_sql = ", ".join([*aliases.values(), f"{_OWN}sure", f"{_OWN}reject", f"{_OWN}pattern",
                          f"CASE WHEN {_OWN}reject THEN {failures} END AS {_OWN}failures",
                          f"CASE WHEN {_OWN}reject THEN {_raw_json(raw_columns)} END AS {_OWN}raw",
                          f"CASE WHEN {_OWN}reject THEN {reason} END AS {_OWN}reason",
                          f"CASE WHEN {_OWN}reject THEN {category} END AS {_OWN}category"])
    texts_sql = (f"array_to_string(list_transform({_OWN}failures, lambda {_OWN}x: {_OWN}x.field || ': ' || "
                 f"{_OWN}x.message), '; ') AS {_OWN}message")
    schema = writers.files["mapped"][1]
    # Row order within the output does not matter: without it DuckDB need not buffer batches.
    con = duckdb.connect(config={"memory_limit": SQL_MEMORY_LIMIT, "threads": 2, "preserve_insertion_order": False})
    doubtful = _Doubtful(path, raw_names, raw_columns, fields, aliases, em, mapping, writers)
    try:
        params = {"rows": str(path)}
        extracted = pq.ParquetFile(path).metadata.num_rows
        repeats, source = 0, "read_parquet($rows)"
        if repeats_path.exists() and (repeats := pq.ParquetFile(repeats_path).metadata.num_rows):
            params["repeats"] = str(repeats_path)
            source = ("(SELECT * FROM read_parquet($rows) WHERE _row_number NOT IN "
                      "(SELECT _row_number FROM read_parquet($repeats)))")
        query = f"SELECT *, {texts_sql} FROM (SELECT {rows_sql} FROM (SELECT {mapping_sql} FROM {sql.over(source)}))"
        for batch in con.sql(query, params=params).to_arrow_reader(SQL_BATCH_ROWS):
            table = pa.Table.from_batches([batch])
            sure, reject = table.column(f"{_OWN}sure"), table.column(f"{_OWN}reject")
            all_sure = pc.all(sure).as_py()  # the common batch: no row to filter out, nothing copied
            writers.write_arrow("mapped", (table if all_sure else table.filter(sure)).select(list(aliases.values()))
                                .rename_columns(list(aliases)).cast(schema))
            if not all_sure:
                if sql.failures:
                    writers.write_arrow("rejects", _certain_rejects(table.filter(reject), aliases, em.entity))
                doubtful.add(table.filter(pc.and_not(pc.invert(sure), reject)))
        doubtful.flush()
    finally:
        con.close()
        doubtful.close()
    return extracted, repeats


def _raw_json(raw_columns: list[str], table: str = "") -> str:
    """A row's raw values as a JSON object (map_frame's `raw` for a reject): ~10x faster in DuckDB."""
    if not raw_columns:
        return "'{}'"
    return "to_json(struct_pack(" + ", ".join(f"{ident(c)} := {table}{ident(c)}" for c in raw_columns) + "))"


def _certain_rejects(rows: pa.Table, aliases: dict[str, str], entity: str) -> pa.Table:
    """Rows the SQL knows map_frame rejects, as map_frame writes them (schemas.MAP_REJECTS)."""
    n = rows.num_rows
    columns = {name: rows.column(aliases[name]) for name in LINEAGE_NAMES}
    columns |= {"entity": pa.repeat(entity, n), "reason_code": rows.column(f"{_OWN}reason"),
                "category": rows.column(f"{_OWN}category"), "message": rows.column(f"{_OWN}message"),
                "failures": rows.column(f"{_OWN}failures"), "raw": rows.column(f"{_OWN}raw")}
    return pa.table(columns).cast(MAP_REJECTS)


class _Doubtful:
    """Rows the SQL is not sure of, gathered by row number with their sure fields, then read back
    with their raw values (one lookup per SQL_BATCH_ROWS of them) and mapped by `map_frame`."""

    def __init__(self, path: Path, raw_names: list[str], raw_columns: list[str], fields: list[str],
                 aliases: dict[str, str], em: EntityMapping, mapping: MappingSpec, writers: _Writers):
        self.path, self.raw_names, self.raw_columns, self.fields = path, raw_names, raw_columns, fields
        self.aliases, self.em, self.mapping, self.writers = aliases, em, mapping, writers
        self.keep = [aliases[n] for n in fields] + [aliases["_row_number"], f"{_OWN}pattern"]
        self.pending: list[pa.Table] = []
        self.rows = 0
        self.con = duckdb.connect(config={"threads": 1, "memory_limit": SQL_MEMORY_LIMIT})

    def add(self, rows: pa.Table) -> None:
        if rows.num_rows:
            self.pending.append(rows.select(self.keep))
            self.rows += rows.num_rows
            if self.rows >= SQL_BATCH_ROWS:
                self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        pending = pa.concat_tables(self.pending)  # noqa: F841 (the query reads it by name)
        self.pending, self.rows = [], 0
        number = self.aliases["_row_number"]
        low, high = pc.min_max(pending.column(number)).values()
        # The range lets DuckDB skip the row groups of the extract that hold none of these rows.
        rows = self.con.sql(
            f"SELECT r.*, p.* EXCLUDE ({number}), {_raw_json(self.raw_columns, 'r.')} AS {_OWN}raw "
            f"FROM read_parquet($rows) r JOIN pending p ON r._row_number = p.{number} "
            f"WHERE r._row_number BETWEEN $low AND $high",
            params={"rows": str(self.path), "low": low.as_py(), "high": high.as_py()}).to_arrow_table()
        self._map(rows)

    def _map(self, rows: pa.Table) -> None:
        frame = rows.select(self.raw_names).to_pandas()
        raw_json = rows.column(f"{_OWN}raw").to_pandas().set_axis(frame.index)
        patterns = rows.column(f"{_OWN}pattern").to_numpy()
        for pattern in np.unique(patterns):
            at = np.flatnonzero(patterns == pattern)
            subset = frame.iloc[at]
            # set_axis, not pd.Series(..., index=): that would realign by label and shuffle the values.
            known = {f: rows.column(self.aliases[f]).take(at).to_pandas().set_axis(subset.index)
                     for i, f in enumerate(self.fields) if int(pattern) >> i & 1}
            self.writers.write(map_frame(subset, self.em, self.mapping, known, raw_json.iloc[at]))

    def close(self) -> None:
        self.con.close()


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
