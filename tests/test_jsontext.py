"""Python's statement of DuckDB's to_json must give the same bytes: rejects' raw records are
written by either side, depending on the route a record took."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from crmmigrate.jsontext import json_objects

CHARS = [chr(c) for c in range(0x3000) if not 0xD800 <= c < 0xE000] + ["\U0001f600", 'a"b', "\\", "", "<x>"]


def test_json_objects_equal_duckdb_to_json() -> None:
    rows = pa.table({"a b": CHARS, 'q"\n': [None if i % 3 == 0 else c + "z" for i, c in enumerate(CHARS)]})
    got = duckdb.connect().execute(
        'SELECT to_json(struct_pack("a b" := "a b", "q""\n" := "q""\n")) FROM rows').fetchall()
    pairs = list(zip(rows["a b"].to_pylist(), rows['q"\n'].to_pylist()))
    assert [g[0] for g in got] == json_objects(["a b", 'q"\n'], pairs)
