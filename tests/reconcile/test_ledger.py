"""Reconcile: the ledger is built from stage outputs, so a record that fell through shows up."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from crmmigrate.errors import LedgerImbalance
from crmmigrate.extract import run_extract
from crmmigrate.load import run_load
from crmmigrate.map import run_map
from crmmigrate.match import run_match
from crmmigrate.merge import run_merge
from crmmigrate.reconcile import run_reconcile
from crmmigrate.rundir import RunDir
from crmmigrate.spec import load_project
from crmmigrate.target import resolve_target


@pytest.fixture
def loaded(demo_project: tuple[Path, dict]) -> tuple:
    project_dir, truth = demo_project
    project = load_project(project_dir)
    run = RunDir(project_dir / "runs" / "r")
    target = resolve_target(project)
    for stage in (run_extract, run_map, run_match, run_merge):
        stage(run, project)
    run_load(run, project, target)
    return project, run, target, truth


def test_balanced_run_writes_ledger_report_and_records_it_in_the_crm(loaded: tuple) -> None:
    project, run, target, truth = loaded
    result = run_reconcile(run, project, target)
    assert result.counts["balanced"] is True
    ledger = pd.read_parquet(run.path / "reconcile" / "ledger.parquet")
    # one ledger row per (record, entity): billing customers and support tickets name a company
    # (an account) besides the contact and its address or case
    assert len(ledger) == sum(truth["counts"][s] * n for s, n in
                              {"sales.contacts": 3, "billing.customers": 3, "billing.invoices": 1,
                               "support.tickets": 3, "shipping.orders": 3, "shipping.order_lines": 1,
                               "shipping.shipments": 1, "marketing.subscribers": 3}.items())
    engine = target.engine()
    with engine.connect() as con:
        stored = pd.read_sql("SELECT COUNT(*) AS n FROM migration_ledger", con)["n"][0]
    engine.dispose()
    assert stored == len(ledger)


def test_a_record_missing_from_every_stage_output_is_named(loaded: tuple) -> None:
    project, run, target, _ = loaded
    outcomes = pd.read_parquet(run.path / "load" / "outcomes.parquet")
    gone = outcomes[(outcomes["entity"] == "invoice")].iloc[0]
    outcomes.drop(index=gone.name).to_parquet(run.path / "load" / "outcomes.parquet", index=False)
    with pytest.raises(LedgerImbalance) as info:
        run_reconcile(run, project, target)
    (imbalance,) = info.value.imbalances
    assert (imbalance.source, imbalance.entity) == ("billing.invoices", "invoice")
    assert imbalance.records_in - imbalance.ledger_rows == 1 and imbalance.missing_keys == [gone["_source_key"]]
    assert info.value.exit_code == 1
    assert RunDir(run.path).read_meta()["verdict"] == "unbalanced"


def test_a_lost_record_hidden_by_a_record_counted_twice_is_named(loaded: tuple) -> None:
    """The counts balance (one row gone, another doubled); the keys do not."""
    project, run, target, _ = loaded
    outcomes = pd.read_parquet(run.path / "load" / "outcomes.parquet")
    invoices = outcomes[outcomes["entity"] == "invoice"]
    gone, twice = invoices.iloc[0], invoices.iloc[1]
    pd.concat([outcomes.drop(index=gone.name), invoices.iloc[[1]]]).to_parquet(
        run.path / "load" / "outcomes.parquet", index=False)
    with pytest.raises(LedgerImbalance, match="keys with two outcomes") as info:
        run_reconcile(run, project, target)
    (imbalance,) = info.value.imbalances
    assert imbalance.records_in == imbalance.ledger_rows
    assert imbalance.missing_keys == [gone["_source_key"]] and imbalance.doubled_keys == [twice["_source_key"]]
    report = (run.path / "reconcile" / "report.html").read_text()
    assert "Keys with two outcomes" in report and twice["_source_key"] in report


def test_a_crm_row_deleted_behind_our_back_fails_verification(loaded: tuple) -> None:
    project, run, target, _ = loaded
    engine = target.engine()
    with engine.begin() as con:
        con.exec_driver_sql("PRAGMA foreign_keys=OFF")
        con.exec_driver_sql("DELETE FROM shipment WHERE id IN (SELECT id FROM shipment LIMIT 1)")
    engine.dispose()
    with pytest.raises(LedgerImbalance, match="shipment: the CRM holds"):
        run_reconcile(run, project, target)
    assert (run.path / "reconcile" / "report.html").exists()
