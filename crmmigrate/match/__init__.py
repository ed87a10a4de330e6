"""Match: mapped records of each entity → clusters of records that are the same thing.

Contacts and accounts are matched by a probabilistic model (Splink on DuckDB, see
`model.py`); other entities get one cluster per record (they follow their person). Reads
``map/mapped/<entity>/*.parquet`` and the consultant's decisions
(``<project>/matching/decisions.jsonl``); writes ``match/clusters.parquet`` (every mapped
record → cluster id, and whether it waits for review), ``match/pairs.parquet`` (the links that
made the clusters and their evidence), ``match/review.parquet`` (pairs to decide),
``match/contradictions.parquet`` and ``match/model-<entity>.json`` (the trained model).

A project pins a model once a run that trained it is accepted (succeeds with a balanced
ledger): ``<project>/matching/model-<entity>.json``. Later runs reuse it, so the same records
keep scoring the same; ``crmmigrate match retrain`` unpins it and the next run trains anew.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd

from crmmigrate.crm.models import ENTITIES
from crmmigrate.match.decisions import read_decisions, record_decision
from crmmigrate.match.entity import Matched, load_model, match_entity
from crmmigrate.match.keys import cluster_uuid, fold
from crmmigrate.rundir import RunDir, StageResult, read_tables, stack, write_table
from crmmigrate.schemas import CLUSTERS, CONTRADICTIONS, PAIRS, REVIEW
from crmmigrate.spec.load import Project
from crmmigrate.spec.model import MATCHED_ENTITIES, MatchSpec

__all__ = ["Matched", "cluster_uuid", "fold", "match_entity", "pin_models", "pinned_model_path", "read_decisions",
           "record_decision", "retrain", "run_match"]


def pinned_model_path(project: Project, entity: str) -> Path:
    return project.root / "matching" / f"model-{entity}.json"


def run_match(run: RunDir, project: Project) -> StageResult:
    mapped = run.require("map") / "mapped"
    decisions = read_decisions(project.root)
    with run.stage("match") as (out, result):
        outputs: dict[str, list[pd.DataFrame]] = {"clusters": [], "pairs": [], "review": [], "contradictions": []}
        for entity in ENTITIES:
            records = read_tables(mapped / entity)
            if records.empty:
                continue
            if entity in MATCHED_ENTITIES:
                spec = project.spec.match.get(entity, MatchSpec())  # type: ignore[call-overload]
                rank = project.department_rank(records["_department"])
                matched = match_entity(entity, records, spec, rank, addresses=read_tables(mapped / "address"),
                                       contacts=read_tables(mapped / "contact") if entity == "account" else None,
                                       decisions=decisions[decisions["entity"] == entity],
                                       pinned=load_model(pinned_model_path(project, entity)))
                (out / f"model-{entity}.json").write_text(json.dumps(matched.model, indent=1, default=str),
                                                           encoding="utf-8")
                for name in outputs:
                    outputs[name].append(getattr(matched, name))
                result.counts[entity] = matched.report
            else:
                outputs["clusters"].append(pd.DataFrame({
                    "entity": entity, "_source": records["_source"], "_source_key": records["_source_key"],
                    "cluster_id": [cluster_uuid(entity, s, k) for s, k in zip(records["_source"], records["_source_key"])],
                    "review": False}))
                result.counts[entity] = {"records": len(records), "clusters": len(records)}
        write_table(out / "clusters.parquet", stack(outputs["clusters"], CLUSTERS.names), CLUSTERS)
        write_table(out / "pairs.parquet", stack(outputs["pairs"], PAIRS.names), PAIRS)
        write_table(out / "review.parquet", stack(outputs["review"], REVIEW.names), REVIEW)
        write_table(out / "contradictions.parquet", stack(outputs["contradictions"], CONTRADICTIONS.names),
                    CONTRADICTIONS)
    return result


def pin_models(run: RunDir, project: Project) -> list[str]:
    """Pin the models an accepted run trained, where the project has none yet; returns what was pinned."""
    pinned = []
    for entity in MATCHED_ENTITIES:
        made = run.stage_dir("match") / f"model-{entity}.json"
        target = pinned_model_path(project, entity)
        if made.exists() and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            model = json.loads(made.read_text(encoding="utf-8"))
            model["crmmigrate_pinned_from_run"] = run.run_id
            target.write_text(json.dumps(model, indent=1, default=str), encoding="utf-8")
            pinned.append(entity)
    return pinned


def retrain(project: Project) -> list[Path]:
    """Unpin every model (kept under matching/retired/), so the next run trains anew."""
    moved = []
    for entity in MATCHED_ENTITIES:
        path = pinned_model_path(project, entity)
        if path.exists():
            retired = path.parent / "retired"
            retired.mkdir(exist_ok=True)
            stamp = json.loads(path.read_text(encoding="utf-8")).get("crmmigrate_pinned_from_run", "unknown")
            destination = retired / f"model-{entity}-{stamp}.json"
            shutil.move(str(path), destination)
            moved.append(destination)
    return moved
