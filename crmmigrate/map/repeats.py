"""Records that repeat an earlier key of their source (extract/repeats/): mapped once, through
their first occurrence; the ledger gives each repeat its own row."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq


def repeated_rows(path: Path) -> set[int]:
    """Row numbers of repeats of an earlier key: mapped once, through their first occurrence."""
    if not path.exists():
        return set()
    return set(pq.read_table(path, columns=["_row_number"])["_row_number"].to_pylist())
