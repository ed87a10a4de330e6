"""The map stage's outputs of one (source, entity): one parquet writer per file, and its counts."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from crmmigrate.map.mapper import MapResult
from crmmigrate.rundir import PARQUET_STREAM, WORKING_CODEC, StreamWriter
from crmmigrate.schemas import DEFERRED, MAP_CHANGED, MAP_NULLED, MAP_REJECTS, mapped_schema


class Writers:
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
        close_all(self.writers.values())


def close_all(items: Iterable[Any]) -> None:
    """Close every one, so that no writing thread is left behind; then raise the first error."""
    errors = []
    for item in items:
        try:
            item.close()
        except Exception as exc:
            errors.append(exc)
    if errors:
        raise errors[0]
