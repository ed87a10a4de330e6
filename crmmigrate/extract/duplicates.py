"""Repeated source keys inside one source.

Records with the same key in one source are the same source record. An identical repeat
(same raw values) is counted once: only the first occurrence is mapped, and each repeat
keeps its own ledger row pointing at it. A differing repeat is listed, never dropped: the
mapping's ``duplicate_keys`` setting says whether it is rejected or folded into the first.
Only the key column is held in memory (as Arrow), so this stays small at millions of rows.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

REPEATS = pa.schema([
    pa.field("_source", pa.string(), nullable=False),
    pa.field("_source_key", pa.string(), nullable=False),
    pa.field("_row_number", pa.int64(), nullable=False),
    pa.field("first_row_number", pa.int64(), nullable=False),
    pa.field("identical", pa.bool_(), nullable=False),
])


def find_repeats(extracted: Path) -> pd.DataFrame:
    """Every occurrence after the first of a key that appears more than once."""
    keys = pq.read_table(extracted, columns=["_source_key"])["_source_key"]
    counts = pc.value_counts(keys)
    repeated = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
    if len(repeated) == 0:
        return pd.DataFrame(columns=REPEATS.names)
    rows = ds.dataset(extracted).to_table(
        columns=["_source", "_source_key", "_row_number", "_row_hash"],
        filter=pc.field("_source_key").isin(repeated),
    ).to_pandas().sort_values(["_source_key", "_row_number"])
    first = rows.drop_duplicates("_source_key").set_index("_source_key")
    repeats = rows[rows.duplicated("_source_key")].copy()
    repeats["first_row_number"] = repeats["_source_key"].map(first["_row_number"])
    repeats["identical"] = repeats["_row_hash"] == repeats["_source_key"].map(first["_row_hash"])
    return repeats[REPEATS.names].reset_index(drop=True)
