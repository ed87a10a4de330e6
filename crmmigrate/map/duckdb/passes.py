"""One DuckDB pass over a source's extract for all its entities that compile: each batch's sure
rows, and the rows the SQL knows map_frame rejects, are written from Arrow; the rows in doubt are
handed over to map_frame (doubtful.py)."""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from crmmigrate.map.duckdb import doubtful
from crmmigrate.map.duckdb.compile import CompiledEntity
from crmmigrate.map.duckdb.doubtful import Doubtful, raw_json_sql
from crmmigrate.map.repeats import repeated_rows
from crmmigrate.map.writers import Writers
from crmmigrate.schemas import FAILURE, LINEAGE_NAMES, MAP_NULLED, MAP_REJECTS
from crmmigrate.spec.model import EntityMapping, MappingSpec
from crmmigrate.sqlpipe import _LAMBDA as _OWN, layered
from crmmigrate.sqltext import ident, literal


SQL_MEMORY_MB = 128  # at least; more for wide rows (see _memory_limit)


class Part:
    """One entity inside the shared pass: its flags in the query are named *own*…; its columns
    are named in *shared* (expression → name), where entities share the columns they compute
    alike (lineage, a link to the row's own record, a NULL): each is converted to Arrow once."""

    def __init__(self, em: EntityMapping, sql: CompiledEntity, writers: Writers, own: str):
        self.em, self.sql, self.writers, self.own = em, sql, writers, own
        self.fields = [f for f in em.fields if f in sql.fields_sure]
        self.aliases: dict[str, str] = {}
        self.reject_columns: list[str] = []
        self.doubtful: Doubtful | None = None

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
        """The flags of the transform steps that changed a value (compile.changed_flag), by name."""
        return [f"{flag} AS {self.own}t{i}" if with_sql else f"{self.own}t{i}"
                for i, (_, _, flag) in enumerate(self.sql.changes)]

    def count_changes(self, table: pa.Table, rows: pa.ChunkedArray | pa.Array, fields: list[str] | None = None) -> None:
        """Count the changed values of *rows* (a mask of *table*'s), of every field or of *fields*:
        each field only where it is sure itself (a sure row may have a lenient field's value
        certainly dropped, which is no change: map_frame counts refused values as failures)."""
        pattern = table.column(f"{self.own}pattern")
        for i, (name, transform, _) in enumerate(self.sql.changes):
            if fields is None or name in fields:
                field_sure = pc.not_equal(pc.bit_wise_and(pattern, 1 << self.fields.index(name)), 0)
                n = pc.sum(pc.and_(pc.and_(table.column(f"{self.own}t{i}"), rows), field_sure)).as_py()
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
        # A lenient failure on a sure row is a nulled row (a strict one is never on a sure row).
        listed = [f"CASE WHEN {f'({own}reject OR {own}sure)' if f.lenient else f'{own}reject'} AND {own}f{i} "
                  f"THEN {expr} END AS {own}{kind}{i}"
                  for i, f in enumerate(sql.failures) for kind, expr in (("v", f.value), ("m", f.message))]
        return [f"{own}sure", f"{own}reject", f"{own}pattern", *listed, *self.change_columns(),
                f"CASE WHEN {own}reject THEN {raw_json_sql(raw_columns)} END AS {own}raw",
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
        # A lenient failure's value and message on a sure row make its nulled row (_certain_nulled).
        dropped = [f"{own}{kind}{i}" for i, f in enumerate(sql.failures) if f.lenient for kind in "vm"]
        return [f"{own}sure", f"{own}reject", f"{own}pattern", f"{own}raw", f"{own}reason", f"{own}category",
                *self.change_columns(),
                f"CASE WHEN {own}reject THEN {failures} END AS {own}failures",
                f"CASE WHEN {own}reject THEN {message} END AS {own}message", *dropped]

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
        if any(f.lenient for f in self.sql.failures):
            self.writers.write_arrow("nulled", _certain_nulled(table, self))
        if not all_sure:
            if self.sql.failures:
                self.writers.write_arrow("rejects", _certain_rejects(table.select(self.reject_columns).filter(reject), self))
            assert self.doubtful is not None
            self.doubtful.add(table.select(self.doubtful.keep).filter(pc.and_not(pc.invert(sure), reject)))


def map_sql(path: Path, repeats_path: Path, parts: list[Part], mapping: MappingSpec) -> tuple[int, int]:
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
            part.doubtful = Doubtful(path, raw_names, raw_columns, part, mapping, limit)
        params = {"rows": str(path)}
        extracted = pq.ParquetFile(path).metadata.num_rows
        repeats, source = 0, "read_parquet($rows)"
        if repeats_path.exists() and (repeats := len(repeated_rows(repeats_path))):
            params["repeats"] = str(repeats_path)
            source = ("(SELECT * FROM read_parquet($rows) WHERE _row_number NOT IN "
                      "(SELECT _row_number FROM read_parquet($repeats)))")
        over = layered(source, [let for part in parts for let in part.sql.lets])
        query = f"SELECT {texts_sql} FROM (SELECT {rows_sql} FROM (SELECT {mapping_sql} FROM {over}))"
        for batch in con.sql(query, params=params).to_arrow_reader(max(doubtful.SQL_BATCH_ROWS // len(parts), 1)):
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


def _certain_rejects(rows: pa.Table, part: Part) -> pa.Table:
    """Rows the SQL knows map_frame rejects, as map_frame writes them (schemas.MAP_REJECTS)."""
    n, own = rows.num_rows, part.own
    columns = [rows.column(part.aliases[name]) for name in LINEAGE_NAMES]
    columns += [pa.repeat(part.em.entity, n), *(rows.column(f"{own}{c}") for c in ("reason", "category", "message",
                                                                                 "failures", "raw"))]
    return _conform(columns, MAP_REJECTS)


def _certain_nulled(table: pa.Table, part: Part) -> pa.Table:
    """The values lenient fields dropped from the batch's sure rows, as map_frame writes them
    (schemas.MAP_NULLED): one row per dropped value, field by field (the order of rows in an
    output does not matter). Only the value and message are per row; the rest is the failure's,
    repeated, rather than a list of failure structs built per row and flattened here."""
    own, sure = part.own, table.column(f"{part.own}sure")
    lineage = [part.aliases[name] for name in LINEAGE_NAMES]
    tables = []
    for i, f in enumerate(part.sql.failures):
        if not f.lenient:
            continue
        # On a sure row the message is there exactly where the failure holds (never NULL then).
        rows = table.select([*lineage, f"{own}v{i}", f"{own}m{i}"]).filter(pc.and_(sure, pc.is_valid(
            table.column(f"{own}m{i}"))))
        if n := rows.num_rows:
            columns = [rows.column(c) for c in lineage] + [pa.repeat(part.em.entity, n), pa.repeat(f.field, n),
                                                           pa.repeat(f.rule, n), rows.column(f"{own}v{i}"),
                                                           pa.repeat(str(f.reason), n), pa.repeat(f.reason.category, n),
                                                           rows.column(f"{own}m{i}")]
            tables.append(_conform(columns, MAP_NULLED))
    return pa.concat_tables(tables) if tables else MAP_NULLED.empty_table()


def _conform(columns: list[pa.ChunkedArray], schema: pa.Schema) -> pa.Table:
    """*columns* (DuckDB's, in *schema*'s order) as a table of *schema*, casting only the columns
    whose type differs (DuckDB names its list items `l` and its UTC `Etc/UTC`): Table.cast()
    calls cast on every column, in Python, on the main thread that also drives DuckDB."""
    return pa.Table.from_arrays([c if c.type.equals(f.type) else c.cast(f.type) for c, f in zip(columns, schema)],
                                schema=schema)
