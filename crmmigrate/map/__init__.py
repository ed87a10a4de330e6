"""Map: extracted rows → canonical entity records, rejects with every reason, and skips.

Reads ``extract/<source>.parquet``; writes ``map/mapped/<entity>/<source>.parquet``,
``map/rejects/<entity>/<source>.parquet``, ``map/skipped/<entity>/<source>.parquet`` and
``map/changed/<entity>/<source>.parquet`` (values a rule placed: a wall time daylight saving
skips or repeats) and ``map/nulled/<entity>/<source>.parquet`` (values a lenient field dropped: the record
is mapped, the value is not silently lost). Per (source, entity): rows extracted = mapped +
rejected + skipped, checked every run.

DuckDB maps the rows the entity's compiled SQL is sure of (map/sql.py); `map_frame`, the
reference semantics, maps every other row.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from crmmigrate.errors import CrmMigrateError, MappingSpecError
from crmmigrate.map.mapper import MapResult, map_frame
from crmmigrate.map.sql import CompiledEntity, compile_or_why, layered
from crmmigrate.rundir import PARQUET_STREAM, WORKING_CODEC, RunDir, StageResult, StreamWriter
from crmmigrate.schemas import DEFERRED, FAILURE, LINEAGE_NAMES, MAP_CHANGED, MAP_NULLED, MAP_REJECTS, mapped_schema
from crmmigrate.sqltext import ident, literal
from crmmigrate.spec.load import Project, check_columns
from crmmigrate.spec.model import EntityMapping, MappingSpec

__all__ = ["MapResult", "map_entities", "map_frame", "run_map"]


class _Writers:
    """One parquet writer per output file, all opened up front so every file exists."""

    def __init__(self, out: Path, source: str, entity: str):
        self.files = {
            "mapped": (out / "mapped" / entity / f"{source}.parquet", mapped_schema(entity)),
            "rejects": (out / "rejects" / entity / f"{source}.parquet", MAP_REJECTS),
            "skipped": (out / "skipped" / entity / f"{source}.parquet", DEFERRED),
            "nulled": (out / "nulled" / entity / f"{source}.parquet", MAP_NULLED),
            "changed": (out / "changed" / entity / f"{source}.parquet", MAP_CHANGED),
        }
        self.writers: dict[str, StreamWriter] = {}
        for name, (path, schema) in self.files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            codec = PARQUET_STREAM["compression"] if name == "rejects" else WORKING_CODEC  # people read rejects
            self.writers[name] = StreamWriter(path, schema, codec=codec)
        self.counts = dict.fromkeys(self.files, 0)
        # Which route mapped the rows: run.json says it per (source, entity), with why not DuckDB.
        self.route: dict[str, Any] = {"engine": "python", "reason": None}
        self.transformed: dict[str, int] = {}  # `field/transform` → mapped records whose value it changed

    def count_transformed(self, field: str, transform: str, n: int) -> None:
        if n:
            key = f"{field}/{transform}"
            self.transformed[key] = self.transformed.get(key, 0) + n

    def write(self, result: MapResult) -> None:
        for (field, transform), n in result.transformed.items():
            self.count_transformed(field, transform, n)
        for name, frame in (("mapped", result.mapped), ("rejects", result.rejects), ("skipped", result.skipped),
                            ("nulled", result.nulled), ("changed", result.changed)):
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
        _close_all(self.writers.values())


def _close_all(items: Iterable[Any]) -> None:
    """Close every one, so that no writing thread is left behind; then raise the first error."""
    errors = []
    for item in items:
        try:
            item.close()
        except Exception as exc:
            errors.append(exc)
    if errors:
        raise errors[0]


def map_entities(run: RunDir, project: Project, mapping: MappingSpec, ems: list[EntityMapping], out: Path,
                 compiled: bool = True) -> list[dict[str, int]]:
    """The entities *ems* of one source, each with its counts. DuckDB maps the rows its SQL is
    sure of, for every entity that compiles, in one pass over the extract (a pass reads and
    decodes every raw column, for the rejects' raw records: so once per source, not per entity);
    `map_frame` maps the rest (all rows of an entity that does not compile, or with
    *compiled=False*, the reference route in tests)."""
    source_id = mapping.source_id(ems[0].from_)
    assert all(mapping.source_id(em.from_) == source_id for em in ems)
    extracted_path = run.require("extract") / f"{source_id}.parquet"
    repeats_path = run.require("extract") / "repeats" / f"{source_id}.parquet"
    names = pq.read_schema(extracted_path).names
    # A raw column could be mistaken for one of the query's own, or for another (`ID`, `Id`).
    why_not = ("the reference route was asked for" if not compiled
               else f"a raw column is named like the query's own ({_OWN}…)" if any(c.lower().startswith(_OWN) for c in names)
               else "two raw columns differ only in case" if len({c.lower() for c in names}) != len(names)
               else None)
    writers: list[_Writers] = []
    totals: list[tuple[int, int]] = []
    try:
        for em in ems:
            writers.append(_Writers(out, source_id, em.entity))
        parts = []
        for k, (em, w) in enumerate(zip(ems, writers)):
            sql, why = compile_or_why(em, mapping, tag=f"e{k}_") if why_not is None else (None, why_not)
            if sql is None:
                w.route["reason"] = why
                totals.append(_map_frames(extracted_path, _repeated_rows(repeats_path), em, mapping, w,
                                          project.spec.chunk_rows))
            else:
                w.route = {"engine": "duckdb", "sure": 0, "certain_rejects": 0, "doubtful": 0,
                           "python_fields": dict(sql.python_fields)}
                parts.append(_Part(em, sql, w, f"{_OWN}e{k}_"))
        if parts:
            totals.append(_map_sql(extracted_path, repeats_path, parts, mapping))
    except BaseException:
        with contextlib.suppress(Exception):  # the error in flight says what went wrong first
            _close_all(writers)
        raise
    _close_all(writers)
    extracted, repeats = totals[0]
    results = []
    for em, w in zip(ems, writers):
        counts = w.counts
        if extracted != counts["mapped"] + counts["rejects"] + counts["skipped"] + repeats:
            raise CrmMigrateError(f"In mapping `{mapping.system}` ({em.entity} from {em.from_}): {extracted} rows in, "
                                  f"{counts['mapped']} mapped + {counts['rejects']} rejected + {counts['skipped']} "
                                  f"skipped + {repeats} repeated keys")
        results.append({"extracted": extracted, **counts, "repeats": repeats,
                        "transformed": dict(sorted(w.transformed.items())), "route": w.route})
    return results


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


SQL_MEMORY_MB = 128  # at least; more for wide rows (see _memory_limit)
# Peak memory follows the batch (raw and mapped columns travel together): in bench/map.py's pass
# for two entities, 16k rows per batch peaked at 433 MB, 8k at 390-412, 4k at 371, at no
# measurable cost in time. A pass mapping several entities reads batches this many rows divided by
# their number.
SQL_BATCH_ROWS = 8_192
_OWN = "__crm_"  # the prefix of the query's own columns (compile_entity refuses columns read by that name)


class _Part:
    """One entity inside the shared pass: its flags in the query are named *own*…; its columns
    are named in *shared* (expression → name), where entities share the columns they compute
    alike (lineage, a link to the row's own record, a NULL): each is converted to Arrow once."""

    def __init__(self, em: EntityMapping, sql: CompiledEntity, writers: _Writers, own: str):
        self.em, self.sql, self.writers, self.own = em, sql, writers, own
        self.fields = [f for f in em.fields if f in sql.fields_sure]
        self.aliases: dict[str, str] = {}
        self.reject_columns: list[str] = []
        self.doubtful: _Doubtful | None = None

    def name_columns(self, shared: dict[str, str]) -> None:
        self.aliases = {name: shared.setdefault(expr, f"{_OWN}c{len(shared)}") for name, expr in self.sql.columns.items()}
        own = self.own
        self.reject_columns = list(dict.fromkeys([*(self.aliases[n] for n in LINEAGE_NAMES), f"{own}reason",
                                                  f"{own}category", f"{own}message", f"{own}failures", f"{own}raw"]))

    def mapping_sql(self) -> list[str]:
        """The flags of the mapping (each field's work shared between its value and its flags)."""
        sql, own = self.sql, self.own
        pattern = " + ".join(f"CAST({sql.fields_sure[f]} AS BIGINT) * {1 << i}" for i, f in enumerate(self.fields)) or "0"
        return [f"{sql.sure} AS {own}sure", f"{sql.reject} AS {own}reject", f"{pattern} AS {own}pattern",
                *(f"{f.when} AS {own}f{i}" for i, f in enumerate(sql.failures)), *self.change_columns(with_sql=True)]

    def change_columns(self, with_sql: bool = False) -> list[str]:
        """The flags of the transform steps that changed a value (sql.changed_flag), by name."""
        return [f"{flag} AS {self.own}t{i}" if with_sql else f"{self.own}t{i}"
                for i, (_, _, flag) in enumerate(self.sql.changes)]

    def count_changes(self, table: pa.Table, rows: pa.ChunkedArray | pa.Array, fields: list[str] | None = None) -> None:
        """Count the changed values of *rows* (a mask of *table*'s), of every field or of *fields*."""
        for i, (name, transform, _) in enumerate(self.sql.changes):
            if fields is None or name in fields:
                n = pc.sum(pc.and_(table.column(f"{self.own}t{i}"), rows)).as_py()
                self.writers.count_transformed(name, transform, n or 0)

    def rows_sql(self, raw_columns: list[str]) -> list[str]:
        """What a reject needs, computed for rejects only: each failure's raw value (`v`N) and
        message (`m`N, never NULL where the failure is listed), which texts_sql() puts together."""
        sql, own = self.sql, self.own
        # The first failure that rejects names the reject (a lenient field's is listed, not naming).
        first = [(i, f.reason) for i, f in enumerate(sql.failures) if not f.lenient]
        reason = "CASE " + " ".join(f"WHEN {own}f{i} THEN {literal(str(r))}" for i, r in first) + " END" if first else "NULL"
        category = "CASE " + " ".join(f"WHEN {own}f{i} THEN {literal(r.category)}" for i, r in first) + " END" \
            if first else "NULL"
        listed = [f"CASE WHEN {own}reject AND {own}f{i} THEN {expr} END AS {own}{kind}{i}"
                  for i, f in enumerate(sql.failures) for kind, expr in (("v", f.value), ("m", f.message))]
        return [f"{own}sure", f"{own}reject", f"{own}pattern", *listed, *self.change_columns(),
                f"CASE WHEN {own}reject THEN {_raw_json(raw_columns)} END AS {own}raw",
                f"CASE WHEN {own}reject THEN {reason} END AS {own}reason",
                f"CASE WHEN {own}reject THEN {category} END AS {own}category"]

    def texts_sql(self) -> list[str]:
        """A reject's failures and message, from its failures' values and messages: flatten() skips
        NULL lists and concat_ws() NULL texts, where a lambda filtered each reject's list (and
        another joined its messages). Each message is computed once, for both."""
        sql, own = self.sql, self.own
        structs = [f"CASE WHEN {own}m{i} IS NOT NULL THEN [{f.struct(f'{own}v{i}', f'{own}m{i}')}] END"
                   for i, f in enumerate(sql.failures)]
        texts = [f"{literal(f.field + ': ')} || {own}m{i}" for i, f in enumerate(sql.failures)]
        failures = f"flatten([{', '.join(structs)}])" if structs else f"CAST(NULL AS {_FAILURES_SQL_TYPE})"
        message = f"concat_ws('; ', {', '.join(texts)})" if texts else "''"
        return [f"{own}sure", f"{own}reject", f"{own}pattern", f"{own}raw", f"{own}reason", f"{own}category",
                *self.change_columns(),
                f"CASE WHEN {own}reject THEN {failures} END AS {own}failures",
                f"CASE WHEN {own}reject THEN {message} END AS {own}message"]

    def write(self, table: pa.Table) -> None:
        """One batch: sure rows and certain rejects from Arrow, the rest gathered for map_frame."""
        # Each output's columns are selected before its rows are filtered: a filter copies every
        # column it is given, and the batch holds every entity's.
        own, aliases = self.own, self.aliases
        sure, reject = table.column(f"{own}sure"), table.column(f"{own}reject")
        all_sure = pc.all(sure).as_py()  # the common batch: no row to filter out, nothing copied
        self.count_changes(table, sure)
        route = self.writers.route
        sure_rows = table.num_rows if all_sure else pc.sum(sure).as_py() or 0
        rejected = 0 if all_sure else pc.sum(reject).as_py() or 0
        route["sure"] += sure_rows
        route["certain_rejects"] += rejected
        route["doubtful"] += table.num_rows - sure_rows - rejected
        mapped = _conform([table.column(c) for c in aliases.values()], self.writers.files["mapped"][1])
        self.writers.write_arrow("mapped", mapped if all_sure else mapped.filter(sure))
        if not all_sure:
            if self.sql.failures:
                self.writers.write_arrow("rejects", _certain_rejects(table.select(self.reject_columns).filter(reject), self))
            assert self.doubtful is not None
            self.doubtful.add(table.select(self.doubtful.keep).filter(pc.and_not(pc.invert(sure), reject)))


def _map_sql(path: Path, repeats_path: Path, parts: list[_Part], mapping: MappingSpec) -> tuple[int, int]:
    """One pass for every entity of the source: each batch's sure rows are written from Arrow,
    and so are the rows the SQL knows map_frame rejects (with the same failures, message and raw
    record). The other rows go to `map_frame` with the fields the SQL was sure of handed over as
    known (a row is usually in doubt about one field: a phone only `phonenumbers` reads, a date in
    a shape not compiled), so Python runs only the rules in doubt."""
    raw_names = pq.read_schema(path).names
    raw_columns = [c for c in raw_names if c not in LINEAGE_NAMES]
    # Three projections, each computed once: the mapping, what a reject needs, then its message.
    # Raw values are read once for all entities; they are not converted to Arrow for every row,
    # which costs more than looking up the few doubtful rows.
    shared: dict[str, str] = {}
    for part in parts:
        part.name_columns(shared)
    mapping_sql = ", ".join([*map(ident, raw_columns), *(f"{expr} AS {name}" for expr, name in shared.items()),
                             *(c for part in parts for c in part.mapping_sql())])
    rows_sql = ", ".join([*shared.values(), *(c for part in parts for c in part.rows_sql(raw_columns))])
    texts_sql = ", ".join([*shared.values(), *(c for part in parts for c in part.texts_sql())])
    con: duckdb.DuckDBPyConnection | None = None
    try:
        # Row order within the output does not matter: without it DuckDB need not buffer batches.
        limit = _memory_limit(path)
        con = duckdb.connect(config={"memory_limit": limit, "threads": 2, "preserve_insertion_order": False})
        for part in parts:
            part.doubtful = _Doubtful(path, raw_names, raw_columns, part, mapping, limit)
        params = {"rows": str(path)}
        extracted = pq.ParquetFile(path).metadata.num_rows
        repeats, source = 0, "read_parquet($rows)"
        if repeats_path.exists() and (repeats := len(_repeated_rows(repeats_path))):
            params["repeats"] = str(repeats_path)
            source = ("(SELECT * FROM read_parquet($rows) WHERE _row_number NOT IN "
                      "(SELECT _row_number FROM read_parquet($repeats)))")
        over = layered(source, [let for part in parts for let in part.sql.lets])
        query = f"SELECT {texts_sql} FROM (SELECT {rows_sql} FROM (SELECT {mapping_sql} FROM {over}))"
        for batch in con.sql(query, params=params).to_arrow_reader(max(SQL_BATCH_ROWS // len(parts), 1)):
            table = pa.Table.from_batches([batch])
            for part in parts:
                part.write(table)
        for part in parts:
            part.doubtful.flush()
    finally:
        if con is not None:
            con.close()
        for part in parts:
            if part.doubtful is not None:
                part.doubtful.close()
    return extracted, repeats


def _memory_limit(path: Path) -> str:
    """SQL_MEMORY_MB, or more for wide rows: DuckDB works on 2,048 rows at a time, whatever their
    width, and a pass holds about ten such chunks of the raw columns (rows of 4 KB fit 128 MB;
    rows of 15 KB needed 256 MB and ran out of memory under 128)."""
    meta = pq.ParquetFile(path).metadata
    per_row = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)) / max(meta.num_rows, 1)
    return f"{max(SQL_MEMORY_MB, math.ceil(per_row * 2048 * 10 / 2**20))}MB"


# schemas.FAILURE (every field text) as a DuckDB list type, for an entity with no failure the SQL is sure of.
assert all(f.type == pa.string() for f in FAILURE)
_FAILURES_SQL_TYPE = "STRUCT(" + ", ".join(f"{f.name} VARCHAR" for f in FAILURE) + ")[]"


def _raw_json(raw_columns: list[str], table: str = "") -> str:
    """A row's raw values as a JSON object (map_frame's `raw` for a reject): ~10x faster in DuckDB."""
    if not raw_columns:
        return "'{}'"
    return "to_json(struct_pack(" + ", ".join(f"{ident(c)} := {table}{ident(c)}" for c in raw_columns) + "))"


def _certain_rejects(rows: pa.Table, part: _Part) -> pa.Table:
    """Rows the SQL knows map_frame rejects, as map_frame writes them (schemas.MAP_REJECTS)."""
    n, own = rows.num_rows, part.own
    columns = [rows.column(part.aliases[name]) for name in LINEAGE_NAMES]
    columns += [pa.repeat(part.em.entity, n), *(rows.column(f"{own}{c}") for c in ("reason", "category", "message",
                                                                                 "failures", "raw"))]
    return _conform(columns, MAP_REJECTS)


def _conform(columns: list[pa.ChunkedArray], schema: pa.Schema) -> pa.Table:
    """*columns* (DuckDB's, in *schema*'s order) as a table of *schema*, casting only the columns
    whose type differs (DuckDB names its list items `l` and its UTC `Etc/UTC`): Table.cast()
    calls cast per column, ~10 µs each in Python, ~0.09 CPU-s per million rows of the main thread."""
    return pa.Table.from_arrays([c if c.type.equals(f.type) else c.cast(f.type) for c, f in zip(columns, schema)],
                                schema=schema)


class _Doubtful:
    """Rows the SQL is not sure of, gathered by row number with their sure fields, then read back
    with their raw values (one lookup per SQL_BATCH_ROWS of them) and mapped by `map_frame`."""

    def __init__(self, path: Path, raw_names: list[str], raw_columns: list[str], part: _Part, mapping: MappingSpec,
                 memory_limit: str):
        self.path, self.raw_names, self.raw_columns, self.fields = path, raw_names, raw_columns, part.fields
        self.aliases, self.em, self.mapping, self.writers = part.aliases, part.em, mapping, part.writers
        self.pattern = f"{part.own}pattern"
        self.part = part
        self.keep = list(dict.fromkeys([self.aliases[n] for n in self.fields] + [self.aliases["_row_number"], self.pattern]
                                       + part.change_columns()))
        self.pending: list[pa.Table] = []
        self.rows = 0
        self.memory_limit = memory_limit
        # Opened at the first lookup: most passes have no doubtful row, and a connection is a new
        # database (~20 ms of the main thread each, before the pass's first batch).
        self.con: duckdb.DuckDBPyConnection | None = None

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
        if self.con is None:
            self.con = duckdb.connect(config={"threads": 1, "memory_limit": self.memory_limit})
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
        patterns = rows.column(self.pattern).to_numpy()
        for pattern in np.unique(patterns):
            at = np.flatnonzero(patterns == pattern)
            subset = frame.iloc[at]
            # set_axis, not pd.Series(..., index=): that would realign by label and shuffle the values.
            known = {f: rows.column(self.aliases[f]).take(at).to_pandas().set_axis(subset.index)
                     for i, f in enumerate(self.fields) if int(pattern) >> i & 1}
            result = map_frame(subset, self.em, self.mapping, known, raw_json.iloc[at])
            self.writers.write(result)
            # map_frame counts the changes of the fields it mapped; the SQL's flags, those of the known ones.
            mapped = pa.array(subset["_row_number"].isin(result.mapped["_row_number"]).to_numpy())
            self.part.count_changes(rows.take(at), mapped, list(known))

    def close(self) -> None:
        if self.con is not None:
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
            by_source: dict[str, list[EntityMapping]] = {}
            for em in mapping.entities:
                by_source.setdefault(em.from_, []).append(em)
            for table, ems in by_source.items():
                for em, counts in zip(ems, map_entities(run, project, mapping, ems, out)):
                    per[f"{mapping.source_id(table)}/{em.entity}"] = counts
        result.counts = {
            "mapped": sum(c["mapped"] for c in per.values()),
            "rejected": sum(c["rejects"] for c in per.values()),
            "skipped": sum(c["skipped"] for c in per.values()),
            "nulled": sum(c["nulled"] for c in per.values()),
            "changed": sum(c["changed"] for c in per.values()),
            "by_source_entity": per,
        }
    return result
