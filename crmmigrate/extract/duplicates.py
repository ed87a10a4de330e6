"""Repeated source keys inside one source.

Records with the same key in one source are the same source record. An identical repeat
(same raw values) is counted once: only the first occurrence is mapped, and each repeat
keeps its own ledger row pointing at it. A differing repeat is listed, never dropped: the
mapping's ``duplicate_keys`` setting says whether it is rejected or folded into the first.
Keys are grouped by DuckDB under a memory limit, so this stays small at millions of rows.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pandas as pd

from crmmigrate.schemas import REPEATS



_REPEATS_SQL = """
WITH d AS (
    SELECT _source, _source_key, _row_number, _row_hash FROM read_parquet($path)
    WHERE _source_key IN (SELECT _source_key FROM read_parquet($path) GROUP BY 1 HAVING count(*) > 1)
)
SELECT _source, _source_key, _row_number,
       first_value(_row_number) OVER w AS first_row_number,
       _row_hash = first_value(_row_hash) OVER w AS identical
FROM d
WINDOW w AS (PARTITION BY _source_key ORDER BY _row_number)
QUALIFY row_number() OVER w > 1
ORDER BY _source_key, _row_number
"""


def find_repeats(extracted: Path, memory_limit: str = "64MB") -> pd.DataFrame:
    """Every occurrence after the first of a key that appears more than once.

    DuckDB groups the keys under a fixed memory limit and spills to a folder beside the
    table beyond it: counting keys in Arrow held them all (measured: 277 MB at 1M rows,
    514 MB at 3M; DuckDB: 157 and 174 MB). Two threads: 0.18 -> 0.11 s per million rows, under
    the same limit.
    """
    spill = extracted.parent / f".{extracted.stem}.spill"
    con = duckdb.connect(config={"memory_limit": memory_limit, "threads": 2,
                                 "temp_directory": str(spill), "preserve_insertion_order": False})
    try:
        repeats = con.execute(_REPEATS_SQL, {"path": str(extracted)}).df()
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)
    return repeats.astype({"_row_number": "int64", "first_row_number": "int64", "identical": "bool"})[REPEATS.names]
