"""Map: extracted rows → canonical entity records, rejects with every reason, and skips.

Reads ``extract/<source>.parquet`` in chunks; writes ``map/mapped/<entity>/<source>.parquet``,
``map/rejects/<entity>/<source>.parquet`` and ``map/skipped/<entity>/<source>.parquet``.
Per (source, entity): rows extracted = mapped + rejected + skipped, checked every run.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from crmmigrate.errors import CrmMigrateError, MappingSpecError
from crmmigrate.map.mapper import MapResult, map_frame
from crmmigrate.rundir import RunDir, StageResult
from crmmigrate.schemas import DEFERRED, MAP_REJECTS, mapped_schema
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
        }
        self.writers: dict[str, pq.ParquetWriter] = {}
        for name, (path, schema) in self.files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            self.writers[name] = pq.ParquetWriter(path, schema, compression="zstd")
        self.counts = dict.fromkeys(self.files, 0)

    def write(self, result: MapResult) -> None:
        for name, frame in (("mapped", result.mapped), ("rejects", result.rejects), ("skipped", result.skipped)):
            schema = self.files[name][1]
            if len(frame):
                # Unmapped optional fields must arrive as nulls of no type: reindex would fill them
                # with float NaN, which Arrow refuses to cast to a date.
                missing = {c: pd.Series(None, index=frame.index, dtype=object) for c in schema.names if c not in frame}
                frame = frame.assign(**missing)[schema.names]
                table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
                self.writers[name].write_table(table)
                self.counts[name] += len(frame)

    def close(self) -> None:
        for w in self.writers.values():
            w.close()


def _repeated_rows(run: RunDir, source_id: str) -> set[int]:
    """Row numbers of repeats of an earlier key: mapped once, through their first occurrence."""
    path = run.require("extract") / "repeats" / f"{source_id}.parquet"
    if not path.exists():
        return set()
    return set(pq.read_table(path, columns=["_row_number"])["_row_number"].to_pylist())


def map_source(run: RunDir, project: Project, mapping: MappingSpec, em: EntityMapping, out: Path) -> dict[str, int]:
    source_id = mapping.source_id(em.from_)
    parquet = pq.ParquetFile(run.require("extract") / f"{source_id}.parquet")
    repeated = _repeated_rows(run, source_id)
    writers = _Writers(out, source_id, em.entity)
    extracted = repeats = 0
    try:
        for batch in parquet.iter_batches(batch_size=project.spec.chunk_rows):
            frame = batch.to_pandas()
            extracted += len(frame)
            if repeated:
                is_repeat = frame["_row_number"].isin(repeated)
                repeats += int(is_repeat.sum())
                frame = frame[~is_repeat]
            writers.write(map_frame(frame, em, mapping))
    finally:
        writers.close()
    counts = writers.counts
    if extracted != counts["mapped"] + counts["rejects"] + counts["skipped"] + repeats:
        raise CrmMigrateError(f"In mapping `{mapping.system}` ({em.entity} from {em.from_}): {extracted} rows in, "
                              f"{counts['mapped']} mapped + {counts['rejects']} rejected + {counts['skipped']} skipped"
                              f" + {repeats} repeated keys")
    return {"extracted": extracted, **counts, "repeats": repeats}


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
            "by_source_entity": per,
        }
    return result
