"""The hand-over of the rows the SQL is not sure of: gathered by row number with the fields the SQL
was sure of, read back with their raw values, and mapped by map_frame (`hand_over`), which runs
only the rules in doubt."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from crmmigrate.map.mapper import map_frame
from crmmigrate.spec.model import MappingSpec
from crmmigrate.sqlpipe import _LAMBDA as _OWN
from crmmigrate.sqltext import ident

if TYPE_CHECKING:
    from crmmigrate.map.duckdb.passes import Part

# Peak memory follows the batch (raw and mapped columns travel together), and bench/map.py's peak
# RSS limit holds at this size while a smaller batch bought no time. A pass mapping several
# entities reads batches this many rows divided by their number.
SQL_BATCH_ROWS = 8_192


def raw_json_sql(raw_columns: list[str], table: str = "") -> str:
    """A row's raw values as a JSON object (map_frame's `raw` for a reject), by DuckDB: Python would
    build it value by value."""
    if not raw_columns:
        return "'{}'"
    return "to_json(struct_pack(" + ", ".join(f"{ident(c)} := {table}{ident(c)}" for c in raw_columns) + "))"


class Doubtful:
    """Rows the SQL is not sure of, gathered by row number with their sure fields, then read back
    with their raw values (one lookup per SQL_BATCH_ROWS of them) and mapped by `map_frame`."""

    def __init__(self, path: Path, raw_names: list[str], raw_columns: list[str], part: Part, mapping: MappingSpec,
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
        # database, opened on the main thread before the pass's first batch.
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
            f"SELECT r.*, p.* EXCLUDE ({number}), {raw_json_sql(self.raw_columns, 'r.')} AS {_OWN}raw "
            f"FROM read_parquet($rows) r JOIN pending p ON r._row_number = p.{number} "
            f"WHERE r._row_number BETWEEN $low AND $high",
            params={"rows": str(self.path), "low": low.as_py(), "high": high.as_py()}).to_arrow_table()
        hand_over(rows, self.part, self.raw_names, self.pattern, self.mapping)

    def close(self) -> None:
        if self.con is not None:
            self.con.close()


def hand_over(rows: pa.Table, part: Part, raw_names: list[str], pattern_column: str, mapping: MappingSpec) -> None:
    """Map doubtful *rows* (raw columns, the raw record as JSON, the fields the SQL was sure of,
    and a bit pattern of which) with map_frame, one group per pattern: each group's sure fields are
    handed over as known, so Python runs only the rules in doubt. Writes to *part*'s writers."""
    frame = rows.select(raw_names).to_pandas()
    raw_json = rows.column(f"{_OWN}raw").to_pandas().set_axis(frame.index)
    patterns = rows.column(pattern_column).to_numpy()
    for pattern in np.unique(patterns):
        at = np.flatnonzero(patterns == pattern)
        subset = frame.iloc[at]
        # set_axis, not pd.Series(..., index=): that would realign by label and shuffle the values.
        known = {f: rows.column(part.aliases[f]).take(at).to_pandas().set_axis(subset.index)
                 for i, f in enumerate(part.fields) if int(pattern) >> i & 1}
        result = map_frame(subset, part.em, mapping, known, raw_json.iloc[at])
        part.writers.write(result)
        # map_frame counts the changes of the fields it mapped; the SQL's flags, those of the known ones.
        mapped = pa.array(subset["_row_number"].isin(result.mapped["_row_number"]).to_numpy())
        part.count_changes(rows.take(at), mapped, list(known))
