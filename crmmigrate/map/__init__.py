"""Map: extracted rows → canonical entity records, rejects with every reason, and skips.

Reads ``extract/<source>.parquet``; writes ``map/mapped/<entity>/<source>.parquet``,
``map/rejects/<entity>/<source>.parquet``, ``map/skipped/<entity>/<source>.parquet`` and
``map/changed/<entity>/<source>.parquet`` (values a rule placed: a wall time daylight saving
skips or repeats) and ``map/nulled/<entity>/<source>.parquet`` (values a lenient field dropped: the record
is mapped, the value is not silently lost). Per (source, entity): rows extracted = mapped +
rejected + skipped, checked every run.

DuckDB maps the rows the entity's compiled SQL is sure of (map/duckdb/); `map_frame`, the
reference semantics (map/mapper.py), maps every other row. Each rule's two halves are registered
side by side: transforms in crmmigrate/transforms.py, coercions in map/coerce/.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pyarrow.parquet as pq

from crmmigrate.errors import CrmMigrateError, MappingSpecError
from crmmigrate.map.duckdb import OWN, Part, compile_or_why, map_sql
from crmmigrate.map.mapper import MapResult, map_frame
from crmmigrate.map.repeats import repeated_rows
from crmmigrate.map.writers import Writers, close_all
from crmmigrate.rundir import RunDir, StageResult
from crmmigrate.spec.load import Project, check_columns
from crmmigrate.spec.model import EntityMapping, MappingSpec

__all__ = ["MapResult", "map_entities", "map_frame", "run_map"]


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
               else f"a raw column is named like the query's own ({OWN}…)" if any(c.lower().startswith(OWN) for c in names)
               else "two raw columns differ only in case" if len({c.lower() for c in names}) != len(names)
               else None)
    writers: list[Writers] = []
    totals: list[tuple[int, int]] = []
    try:
        for em in ems:
            writers.append(Writers(out, source_id, em.entity))
        parts = []
        for k, (em, w) in enumerate(zip(ems, writers)):
            sql, why = compile_or_why(em, mapping, tag=f"e{k}_") if why_not is None else (None, why_not)
            if sql is None:
                w.route["reason"] = why
                totals.append(_map_frames(extracted_path, repeated_rows(repeats_path), em, mapping, w,
                                          project.spec.chunk_rows))
            else:
                w.route = {"engine": "duckdb", "sure": 0, "certain_rejects": 0, "doubtful": 0,
                           "python_fields": dict(sql.python_fields)}
                parts.append(Part(em, sql, w, f"{OWN}e{k}_"))
        if parts:
            totals.append(map_sql(extracted_path, repeats_path, parts, mapping))
    except BaseException:
        with contextlib.suppress(Exception):  # the error in flight says what went wrong first
            close_all(writers)
        raise
    close_all(writers)
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


def _map_frames(path: Path, repeated: set[int], em: EntityMapping, mapping: MappingSpec, writers: Writers,
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
