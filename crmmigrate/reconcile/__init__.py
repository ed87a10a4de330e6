"""Reconcile: the ledger, its balance, the CRM read back, and the report.

Writes ``reconcile/ledger.parquet``, ``reconcile/balance.parquet`` and
``reconcile/report.html``, and the ledger into the CRM's ``migration_ledger``. Raises
``LedgerImbalance`` (exit 1) after writing them when a record is unaccounted for, the
CRM's counts disagree with what the ledger says was created (less the superseded rows the
load removed), or a CRM row has no crosswalk row pointing to it.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import sqlalchemy as sa

from crmmigrate.crm.dbio import count_rows, upsert
from crmmigrate.crm.models import ENTITIES, Contact, Crosswalk, LedgerEntry, MigrationRun, Superseded
from crmmigrate.crm.schema import ensure_schema
from crmmigrate.errors import LedgerImbalance
from crmmigrate.reconcile.ledger import Balance, balance, build_ledger
from crmmigrate.reconcile.report import changed_groups, nulled_groups, reject_groups, render, transformed_rows
from crmmigrate.rundir import RunDir, StageResult, read_table, read_tables, utc_now, write_table
from crmmigrate.schemas import LEDGER
from crmmigrate.spec.load import Project
from crmmigrate.spec.reasons import OUTCOMES
from crmmigrate.target import Target, upgrade_command

__all__ = ["build_ledger", "run_reconcile"]


def verify(engine: sa.Engine, run: RunDir, ledger: pd.DataFrame) -> tuple[list[dict], list[str]]:
    """Read the CRM back: per entity, rows now == rows before + created − superseded rows this
    run removed; every id the ledger names exists; and every CRM row a run created is one the
    crosswalk points to (a row nothing maps to is a duplicate no later run would ever update)."""
    counts = read_table(run.require("load") / "target_counts.parquet").set_index("entity")
    removed = _removed(engine, run.run_id)
    crosswalk, created_by_us = Crosswalk.__table__, LedgerEntry.__table__
    rows, problems = [], []
    for entity, model in ENTITIES.items():
        table = model.__table__
        created = ledger.loc[(ledger["entity"] == entity) & (ledger["outcome"] == "created"), "crm_id"].nunique()
        before = int(counts.at[entity, "before"]) if entity in counts.index else 0
        superseded = removed.get(entity, 0)
        actual = count_rows(engine, table)
        expected = before + created - superseded
        rows.append({"entity": entity, "before": before, "created": created, "superseded": superseded,
                     "expected": expected, "actual": actual, "ok": actual == expected})
        ids = ledger.loc[(ledger["entity"] == entity) & ledger["crm_id"].notna(), "crm_id"].unique().tolist()
        with engine.connect() as con:
            found = {r[0] for i in range(0, len(ids), 1000)
                     for r in con.execute(sa.select(table.c.id).where(table.c.id.in_(ids[i:i + 1000])))}
            # Only rows the migration created: people may already add records in the new CRM by hand.
            unmapped = sa.and_(
                ~sa.exists().where(crosswalk.c.entity == entity, crosswalk.c.crm_id == table.c.id),
                sa.exists().where(created_by_us.c.entity == entity, created_by_us.c.crm_id == table.c.id,
                                  created_by_us.c.outcome == "created"))
            orphans, example = con.execute(sa.select(sa.func.count(), sa.func.min(table.c.id)).where(unmapped)).one()
        if missing := sorted(set(ids) - found):
            problems.append(f"{entity}: {len(missing)} CRM id(s) in the ledger are not in the CRM, e.g. {missing[0]}")
        if orphans:
            problems.append(f"{entity}: {orphans} CRM row(s) that no crosswalk row points to (no legacy record "
                            f"maps to them, so no run will update them), e.g. {example}")
    problems += [f"{r['entity']}: the CRM holds {r['actual']} rows, the ledger says {r['expected']}"
                 for r in rows if not r["ok"]]
    return rows, problems


def _removed(engine: sa.Engine, run_id: str) -> dict[str, int]:
    """Per entity, the superseded CRM rows this run's load removed."""
    tombs = Superseded.__table__
    with engine.connect() as con:
        return dict(con.execute(sa.select(tombs.c.entity, sa.func.count()).where(tombs.c.removed_run_id == run_id)
                                .group_by(tombs.c.entity)).all())


def _record_in_crm(engine: sa.Engine, run: RunDir, ledger: pd.DataFrame, counts: dict) -> None:
    rows = ledger.rename(columns={"_source": "source", "_source_key": "source_key"})
    rows = rows[["run_id", "source", "entity", "source_key", "outcome", "crm_id", "reason_code"]]
    upsert(engine, LedgerEntry.__table__, [{k: (None if v != v else v) for k, v in r.items()}
                                           for r in rows.to_dict("records")])
    upsert(engine, MigrationRun.__table__, [{"run_id": run.run_id, "loaded_at": dt.datetime.now(dt.timezone.utc),
                                             "counts": counts}])


def run_reconcile(run: RunDir, project: Project, target: Target) -> StageResult:
    ledger = build_ledger(run, project)
    checked: Balance = balance(run, project, ledger)
    engine = target.engine()
    try:
        ensure_schema(engine, target.display, upgrade_command(project.root))
        verification, problems = verify(engine, run, ledger)
        persons = count_rows(engine, Contact.__table__)
        balanced = not checked.imbalances and not problems
        with run.stage("reconcile") as (out, result):
            write_table(out / "ledger.parquet", ledger, LEDGER)
            table = checked.table.copy()
            for outcome in OUTCOMES:
                if outcome not in table:
                    table[outcome] = 0
            table.to_parquet(out / "balance.parquet", index=False)
            conflicts = read_table(run.require("merge") / "conflicts.parquet")
            by_field = (conflicts.groupby(["entity", "field"]).size().reset_index(name="count").to_dict("records")
                        if not conflicts.empty else [])
            nulled = read_tables(run.require("map") / "nulled", "*/*.parquet")
            # (A run folder mapped before values were recorded as changed has no such folder: none recorded.)
            changed = read_tables(run.require("map") / "changed", "*/*.parquet")
            transformed = transformed_rows(run.read_meta().get("stages", {}).get("map", {}).get("counts", {}))
            review = read_table(run.require("match") / "review.parquet")
            review_groups = (review.assign(reason=review["reason"].str.split(":").str[0])
                             .groupby(["entity", "reason"]).size().reset_index(name="count").to_dict("records")
                             if not review.empty else [])
            summary = {
                "review_pairs": len(review),
                "records_in": int(read_table(run.require("extract") / "sources.parquet")["records_in"].sum()),
                "persons": persons,
                **{o: int((ledger["outcome"] == o).sum()) for o in OUTCOMES},
                "conflicts": len(conflicts),
                "values_nulled": len(nulled),
                "values_changed": len(changed),
                "values_transformed": sum(r["count"] for r in transformed),
                "crm_rows_superseded": sum(r["superseded"] for r in verification),
                "persons_created": int(ledger.loc[(ledger["entity"] == "contact") & (ledger["outcome"] == "created"),
                                                  "crm_id"].nunique()),
            }
            render(out / "report.html", {
                "run_id": run.run_id, "project": project.spec.name, "target": target.display,
                "generated_at": utc_now(), "balanced": balanced, "summary": summary,
                "outcomes": list(OUTCOMES), "balance": table.to_dict("records"),
                "sources": read_table(run.require("extract") / "sources.parquet").to_dict("records"),
                "imbalances": checked.imbalances, "verification": verification, "problems": problems,
                "rejects": reject_groups(ledger), "conflicts": by_field, "nulled": nulled_groups(nulled),
                "changed": changed_groups(changed), "transformed": transformed, "review": review_groups,
            })
            result.counts = {**summary, "balanced": balanced, "report": str(out.parent / "reconcile" / "report.html")}
            _record_in_crm(engine, run, ledger, summary)
    finally:
        engine.dispose()
    run.update_meta(verdict="balanced" if balanced else "unbalanced")
    if not balanced:
        raise LedgerImbalance(checked.imbalances, problems)
    return result
