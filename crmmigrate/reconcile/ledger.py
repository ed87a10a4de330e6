"""The ledger: one row per (source record, entity) with the one outcome it ended in.

Built from what each stage wrote (extract rejects, map rejects and skips, merge deferrals,
load outcomes), never from the extract itself, so a record that fell through a crack is
missing from the ledger and the balance check catches it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from crmmigrate.errors import Imbalance
from crmmigrate.rundir import RunDir, read_table, read_tables, stack
from crmmigrate.spec.load import Project


def source_entities(project: Project) -> pd.DataFrame:
    """Every (source, department, entity) a mapping declares."""
    rows = [{"_source": m.source_id(em.from_), "_department": m.department, "entity": em.entity}
            for m in project.mappings.values() for em in m.entities]
    return pd.DataFrame(rows, columns=["_source", "_department", "entity"])


def build_ledger(run: RunDir, project: Project) -> pd.DataFrame:
    pairs = source_entities(project)
    department = dict(zip(pairs["_source"], pairs["_department"]))
    parts = []
    extract_rejects = read_tables(run.require("extract") / "rejects")
    if not extract_rejects.empty:
        expanded = extract_rejects.merge(pairs[["_source", "entity"]], on="_source")
        parts.append(pd.DataFrame({
            "_source": expanded["_source"], "entity": expanded["entity"],
            "_source_key": "line:" + expanded["_row_number"].astype(str),
            "outcome": "rejected", "reason_code": expanded["reason_code"], "message": expanded["message"],
        }))
    map_dir = run.require("map")
    rejects = read_tables(map_dir / "rejects", "*/*.parquet")
    if not rejects.empty:
        parts.append(rejects[["_source", "entity", "_source_key", "reason_code", "message"]].assign(outcome="rejected"))
    for frame, outcome in ((read_tables(map_dir / "skipped", "*/*.parquet"), "skipped"),
                           (read_table(run.require("merge") / "deferred.parquet"), "deferred")):
        if not frame.empty:
            parts.append(frame[["_source", "entity", "_source_key", "reason_code", "message"]].assign(outcome=outcome))
    outcomes = read_table(run.require("load") / "outcomes.parquet")
    parts.append(outcomes[["_source", "entity", "_source_key", "outcome", "crm_id", "reason_code", "message"]])
    columns = ["_source", "entity", "_source_key", "outcome", "crm_id", "reason_code", "message"]
    ledger = stack(parts, columns)
    ledger = ledger.assign(**{c: None for c in columns if c not in ledger})  # e.g. nothing reached the load
    repeats = repeat_rows(run, project, ledger, pairs)
    if not repeats.empty:
        ledger = stack([ledger, repeats])
    ledger["_department"] = ledger["_source"].map(department)
    ledger["run_id"] = run.run_id
    return ledger.sort_values(["_source", "entity", "_source_key"], kind="mergesort").reset_index(drop=True)


LOADED = ("created", "updated", "merged")


def repeat_rows(run: RunDir, project: Project, ledger: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """Ledger rows for records that repeat an earlier key of their source.

    Each repeat follows its first occurrence: merged into the same CRM record (or unchanged,
    rejected, deferred, skipped with it). A repeat whose values differ in the columns an entity
    reads is rejected for that entity as `duplicate_key`, unless its source says
    `duplicate_keys: keep_first`.
    """
    repeats = read_tables(run.require("extract") / "repeats")
    if repeats.empty:
        return pd.DataFrame()
    policy = {m.source_id(t): spec.duplicate_keys for m in project.mappings.values() for t, spec in m.sources.items()}
    rows = repeats.merge(pairs[["_source", "entity"]], on=["_source", "entity"])
    first = ledger.set_index(["_source", "entity", "_source_key"])
    index = pd.MultiIndex.from_frame(rows[["_source", "entity", "_source_key"]])
    base = first.reindex(index)
    outcome = base["outcome"].where(~base["outcome"].isin(LOADED), "merged").to_numpy()
    differing = (~rows["identical"].astype(bool) & (rows["_source"].map(policy) == "reject")).to_numpy()
    what = ["repeats row " + str(n) + (" with the same values" if same else " with different values")
            for n, same in zip(rows["first_row_number"], rows["identical"])]
    out = pd.DataFrame({
        "_source": rows["_source"], "entity": rows["entity"],
        "_source_key": rows["_source_key"] + " (row " + rows["_row_number"].astype(str) + ")",
        "outcome": outcome, "crm_id": base["crm_id"].to_numpy(),
        "reason_code": base["reason_code"].to_numpy(), "message": what,
    })
    out.loc[differing, ["outcome", "crm_id", "reason_code"]] = ["rejected", None, "duplicate_key"]
    return out


@dataclass
class Balance:
    table: pd.DataFrame  # one row per (source, entity): records_in, one column per outcome, ledger_rows, balanced
    imbalances: list[Imbalance]


def balance(run: RunDir, project: Project, ledger: pd.DataFrame) -> Balance:
    """Per (source, entity): as many ledger rows as records read, and by key, not only by count:
    every key read has an outcome and none has two (a record lost while another is counted
    twice would balance the counts alone)."""
    sources = read_table(run.require("extract") / "sources.parquet")
    pairs = source_entities(project).merge(
        sources[["source", "records_in"]].rename(columns={"source": "_source"}), on="_source", how="left")
    counts = ledger.groupby(["_source", "entity", "outcome"]).size().unstack(fill_value=0)
    table = pairs.merge(counts.reset_index(), on=["_source", "entity"], how="left").fillna(0)
    outcome_columns = [c for c in counts.columns]
    table["ledger_rows"] = table[outcome_columns].sum(axis=1).astype(int) if outcome_columns else 0
    table["records_in"] = table["records_in"].astype(int)
    # In Arrow: 3.0 s and +62 MB for a million records in three entities (a Python set per pair took
    # 5.2 s and +310 MB; counts alone, 0.6 s). Writing those 3M ledger rows into the CRM takes far longer.
    doubled = ledger.loc[ledger.duplicated(["_source", "entity", "_source_key"]), ["_source", "entity", "_source_key"]]
    imbalances, balanced = [], []
    for source, rows in table.groupby("_source", sort=False):
        keys = pc.unique(pq.read_table(run.stage_dir("extract") / f"{source}.parquet", columns=["_source_key"])
                         .column("_source_key"))
        of_source = ledger.loc[ledger["_source"] == source, ["entity", "_source_key"]]
        for row in rows.itertuples():
            recorded = pa.array(of_source.loc[of_source["entity"] == row.entity, "_source_key"], type=pa.string())
            missing = sorted(keys.filter(pc.invert(pc.is_in(keys, value_set=recorded))).to_pylist())
            twice = sorted(set(doubled.loc[(doubled["_source"] == source) & (doubled["entity"] == row.entity),
                                           "_source_key"]))
            ok = row.records_in == row.ledger_rows and not missing and not twice
            balanced.append((row.Index, ok))
            if not ok:
                imbalances.append((row.Index, Imbalance(source, row.entity, int(row.records_in), int(row.ledger_rows),
                                                        missing[:20], twice[:20])))
    table["balanced"] = pd.Series(dict(balanced), dtype=bool)
    return Balance(table, [i for _, i in sorted(imbalances, key=lambda pair: pair[0])])  # in the table's order
