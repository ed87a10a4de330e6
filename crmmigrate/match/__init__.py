"""Match: mapped records of each entity → clusters of records that are the same thing.

Reads ``map/mapped/<entity>/*.parquet``; writes ``match/clusters.parquet`` (every mapped
record → cluster id) and ``match/pairs.parquet`` (the evidence: which rule linked whom).
Entities without match rules get one cluster per record.
"""

from __future__ import annotations

import pandas as pd

from crmmigrate.crm.models import ENTITIES
from crmmigrate.match.rules import cluster_uuid, fold, match_records
from crmmigrate.rundir import RunDir, StageResult, read_tables, stack, write_table
from crmmigrate.schemas import CLUSTERS, PAIRS
from crmmigrate.spec.load import Project

__all__ = ["cluster_uuid", "fold", "match_records", "run_match"]


def _with_related(run: RunDir, entity: str, records: pd.DataFrame, rules: tuple[tuple[str, ...], ...]) -> pd.DataFrame:
    """Add `other.field` columns read from records mapped from the same source record."""
    for other in {f.split(".")[0] for rule in rules for f in rule if "." in f}:
        related = read_tables(run.stage_dir("map") / "mapped" / other)
        link_src, link_key = f"_link_{entity}_source", f"_link_{entity}_key"
        if related.empty or link_src not in related:
            continue
        same = related[(related[link_src] == related["_source"]) & (related[link_key] == related["_source_key"])]
        same = same.drop_duplicates(["_source", "_source_key"]).set_index(["_source", "_source_key"])
        index = pd.MultiIndex.from_frame(records[["_source", "_source_key"]])
        for column in same.columns:
            if not column.startswith("_"):
                records[f"{other}.{column}"] = same[column].reindex(index).to_numpy()
    return records


def run_match(run: RunDir, project: Project) -> StageResult:
    mapped = run.require("map") / "mapped"
    with run.stage("match") as (out, result):
        all_clusters, all_pairs = [], []
        for entity in ENTITIES:
            records = read_tables(mapped / entity)
            if records.empty:
                continue
            spec = project.spec.match.get(entity)  # type: ignore[call-overload]
            rank = project.department_rank(records["_department"])
            if spec is None:
                clusters = pd.DataFrame({"entity": entity, "_source": records["_source"],
                                         "_source_key": records["_source_key"]})
                clusters["cluster_id"] = [cluster_uuid(entity, s, k) for s, k in
                                          zip(records["_source"], records["_source_key"])]
                pairs = pd.DataFrame()
            else:
                records = _with_related(run, entity, records, spec.rules)
                clusters, pairs = match_records(records, spec.rules, entity, rank)
            all_clusters.append(clusters)
            all_pairs.append(pairs)
            result.counts[entity] = {"records": len(clusters), "clusters": int(clusters["cluster_id"].nunique()),
                                     "pairs": len(pairs)}
        write_table(out / "clusters.parquet", stack(all_clusters, CLUSTERS.names), CLUSTERS)
        write_table(out / "pairs.parquet", stack(all_pairs, PAIRS.names), PAIRS)
    return result
