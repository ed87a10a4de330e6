"""Source keys and row hashes, defined once as DuckDB SQL for every reader.

Both the DuckDB CSV route and the per-record Python readers compute `_source_key` and
`_row_hash` with these expressions, so the same record gets the same key and hash whichever
route read it. `source_key` is the key's pure-Python statement (a test holds it equal to the
SQL); the per-record routes hash their batches with DuckDB (`row_hashes`).
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import numpy as np
import pyarrow as pa

from crmmigrate.extract.base import RawRecord
from crmmigrate.sqltext import WHITESPACE, ident, literal, may_end_with_whitespace, may_start_with_whitespace
from crmmigrate.spec.reasons import ReasonCode


def row_hash_sql(columns: Sequence[str]) -> str:
    """DuckDB's 64-bit hash of the raw values in header order, in hex.

    Each value is hashed alone and the hashes are combined in order: a null hashes unlike '',
    and no value's text can imitate a column boundary. The hash tells a changed record from an
    unchanged one *with the same key* (a repeat within a source; a record in one run against
    the next), so only pairs are ever compared, and a collision is a 2^-64 chance per pair.
    MD5 of the values as JSON cost 0.6 CPU-s per million rows on the one thread that parses a
    CSV. DuckDB may hash differently in another version (it is pinned): the run folder keeps
    the raw values, so runs compared across versions are hashed again, never compared digest
    to digest. Not padded to 16 digits: lpad() cost 0.16 s per million rows on that thread."""
    if not columns:
        return literal(_NO_COLUMNS)
    return _hex(", ".join(ident(c) for c in columns))


_NO_COLUMNS = "0"  # the row hash of a source without columns (JSON records `{}`): every row alike


def _hex(values: str) -> str:
    return f"to_hex(hash({values}))"


def row_hashes(columns: Sequence[pa.Array | pa.ChunkedArray], rows: int,
               con: duckdb.DuckDBPyConnection | None = None) -> pa.Array:
    """`row_hash_sql` of each of *rows* rows of the raw *columns* (text, in header order; there
    may be none), as the per-record routes write them: computed by DuckDB, which the fast
    route's hashes come from. DuckDB is handed one list column of the rows' values (it hashes a
    list as it hashes the same values as arguments): binding hash() with one argument per column
    cost 0.41 s a batch at 5,000 columns, where a batch is a few dozen rows that wide."""
    if not columns:
        return pa.array([_NO_COLUMNS] * rows, pa.string())
    width = len(columns)
    by_column = pa.concat_arrays([(c.combine_chunks() if isinstance(c, pa.ChunkedArray) else c).cast(pa.string())
                                  for c in columns])
    by_row = by_column.take(pa.array((np.arange(rows)[:, None] + np.arange(width) * rows).ravel()))
    lists = pa.ListArray.from_arrays(pa.array(np.arange(0, rows * width + 1, width, dtype=np.int32)), by_row)
    own = con or duckdb.connect(config={"threads": 1})
    try:
        own.register("__crm_rows", pa.table({"r": lists}))
        try:
            hashes = own.sql(f"SELECT {_hex('r')} FROM __crm_rows").to_arrow_table().column(0)
        finally:
            own.unregister("__crm_rows")
        return hashes.combine_chunks().cast(pa.string())
    finally:
        if con is None:
            own.close()


def row_hash(values: Sequence[str | None]) -> str:
    """`row_hash_sql` of one record."""
    return str(row_hashes([pa.array([v], pa.string()) for v in values], 1)[0])


def _edge_sql(column: str) -> str:
    """Whether *column* may begin or end with `WHITESPACE` (never false where it does). trim()
    with a character set costs ~1 s per million values; most keys have none to strip, which the
    first and last characters tell much faster."""
    return f"{may_start_with_whitespace(column)} OR {may_end_with_whitespace(column)}"


def _stripped_sql(column: str, blank_is_null: bool = False) -> str:
    """*column* stripped of `WHITESPACE` (and NULL where that leaves '', with *blank_is_null*).
    nullif() goes inside each branch: it is a macro that repeats its argument, and given the
    whole CASE it ran it twice."""
    def out(value: str) -> str:
        return f"nullif({value}, '')" if blank_is_null else value
    return f"CASE WHEN {_edge_sql(column)} THEN {out(f'trim({column}, {literal(WHITESPACE)})')} ELSE {out(column)} END"


def key_sql(key: Sequence[str]) -> str:
    """The source key: the key columns stripped and joined with `|`; NULL when any is blank."""
    if len(key) == 1:  # (the blank test and concat_ws cost 0.07 s per million rows more)
        return _stripped_sql(ident(key[0]), blank_is_null=True)
    parts = [_stripped_sql(ident(k)) for k in key]
    blank = " OR ".join(f"coalesce({p}, '') = ''" for p in parts)
    return f"CASE WHEN {blank} THEN NULL ELSE concat_ws('|', {', '.join(parts)}) END"


def source_key(values: dict[str, str | None], key: Sequence[str]) -> str | None:
    """`key_sql` in Python."""
    parts = [values.get(k) for k in key]
    if any(p is None or p.strip(WHITESPACE) == "" for p in parts):
        return None
    return "|".join(p.strip(WHITESPACE) for p in parts)  # type: ignore[union-attr]


def lineage_of(rec: RawRecord, header: list[str], key: Sequence[str] | str, source: str,
               department: str) -> dict[str, object]:
    """One record read in Python: its values with lineage but the row hash (a batch's hashes are
    one query: `row_hashes`), or an extract reject (with `reason_code`)."""
    base = {"_source": source, "_department": department, "_row_number": rec.row_number}
    if rec.values is None:
        return {**base, "raw": rec.raw, "reason_code": str(rec.reason), "message": rec.message}
    values = dict(zip(header, rec.values))
    key_value = str(rec.row_number) if key == "row_number" else source_key(values, key)
    if key_value is None:
        return {**base, "raw": rec.raw, "reason_code": str(ReasonCode.MISSING_KEY),
                "message": f"key column(s) {', '.join(key)} empty"}
    return {**values, **base, "_source_key": key_value}


__all__ = ["key_sql", "lineage_of", "row_hash", "row_hash_sql", "row_hashes", "source_key"]
