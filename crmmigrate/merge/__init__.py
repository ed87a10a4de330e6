"""Merge: clusters → one golden record per cluster, with per-field provenance and conflicts.

Reads ``map/mapped/`` and ``match/clusters.parquet``; writes ``merge/<entity>.parquet``,
``merge/conflicts.parquet`` and ``merge/deferred.parquet`` (records whose parent record did
not make it: kept and counted, never silently dropped).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from crmmigrate.crm.models import ENTITIES, entity_fields
from crmmigrate.merge.survivorship import survive
from crmmigrate.rundir import RunDir, StageResult, read_table, read_tables, stack, write_table
from crmmigrate.schemas import CONFLICTS, DEFERRED, golden_schema, link_fields
from crmmigrate.spec.load import Project
from crmmigrate.spec.reasons import ReasonCode

__all__ = ["run_merge", "survive"]


def resolve_links(records: pd.DataFrame, entity: str, parent_clusters: dict[str, pd.Series],
                  not_applicable: dict[str, pd.MultiIndex] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Replace each record's parent (source, key) with the parent's cluster id.

    A record whose parent did not make it (rejected, deferred, or never there) is returned as
    deferred, whether or not the link is required. Only a parent the mapping says does not
    exist for that record (skipped by `when_present`, in *not_applicable*) leaves an optional
    link empty.
    """
    not_applicable = not_applicable or {}
    missing = pd.Series(False, index=records.index)
    messages = pd.Series("", index=records.index)
    table = ENTITIES[entity].__table__
    for parent in link_fields(entity):
        src, key = records[f"_link_{parent}_source"], records[f"_link_{parent}_key"]
        lookup = parent_clusters.get(parent, pd.Series(dtype=object))
        index = pd.MultiIndex.from_arrays([src.fillna(""), key.fillna("")])
        records[f"_link_{parent}"] = lookup.reindex(index).to_numpy()
        gone = records[f"_link_{parent}"].isna()
        if table.columns[f"{parent}_id"].nullable:
            declared = src.notna() & key.notna()
            skipped = index.isin(not_applicable.get(parent, pd.MultiIndex.from_arrays([[], []])))
            gone &= declared & ~pd.Series(skipped, index=records.index)
        missing |= gone
        messages[gone] = f"{parent} " + src[gone].fillna("?") + ":" + key[gone].fillna("?") + " was not loaded"
    deferred = pd.DataFrame({
        "entity": entity, "_source": records.loc[missing, "_source"], "_source_key": records.loc[missing, "_source_key"],
        "reason_code": str(ReasonCode.MISSING_PARENT), "message": messages[missing],
    })
    return records[~missing], deferred


def _not_applicable(map_dir: Path) -> dict[str, pd.MultiIndex]:
    """Per entity, the records the mapping said have no such entity (`when_present`)."""
    out = {}
    for entity in ENTITIES:
        skipped = read_tables(map_dir / "skipped" / entity)
        if not skipped.empty:
            out[entity] = pd.MultiIndex.from_frame(skipped[["_source", "_source_key"]])
    return out


def run_merge(run: RunDir, project: Project) -> StageResult:
    mapped = run.require("map") / "mapped"
    clusters = read_table(run.require("match") / "clusters.parquet")
    with run.stage("merge") as (out, result):
        parent_clusters: dict[str, pd.Series] = {}
        not_applicable = _not_applicable(run.stage_dir("map"))
        conflicts, deferred = [], []
        for entity in ENTITIES:  # parents first: a deferred parent defers its children
            records = read_tables(mapped / entity)
            members = clusters[clusters["entity"] == entity]
            if records.empty:
                write_table(out / f"{entity}.parquet", pd.DataFrame(), golden_schema(entity))
                continue
            records = records.merge(members[["_source", "_source_key", "cluster_id"]], on=["_source", "_source_key"],
                                    how="left", validate="many_to_one")
            records, held = resolve_links(records, entity, parent_clusters, not_applicable)
            deferred.append(held)
            if records.empty:  # every record waits for a parent that did not make it
                write_table(out / f"{entity}.parquet", pd.DataFrame(), golden_schema(entity))
                result.counts[entity] = {"golden": 0, "conflicts": 0, "deferred": len(held)}
                continue
            records["_rank"] = project.department_rank(records["_department"])
            links = [f"_link_{p}" for p in link_fields(entity)]
            golden, found = survive(records, list(entity_fields(entity)), links)
            if not found.empty:
                conflicts.append(found.assign(entity=entity))
            write_table(out / f"{entity}.parquet", golden, golden_schema(entity))
            parent_clusters[entity] = records.set_index(["_source", "_source_key"])["cluster_id"]
            result.counts[entity] = {"golden": len(golden), "conflicts": len(found), "deferred": len(held)}
        write_table(out / "conflicts.parquet", stack(conflicts, CONFLICTS.names),
                    CONFLICTS)
        write_table(out / "deferred.parquet", stack(deferred, DEFERRED.names), DEFERRED)
    return result
