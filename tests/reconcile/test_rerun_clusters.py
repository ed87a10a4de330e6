"""Re-runs whose clusters change between runs: a source missing one run and back the next
splits clusters and joins them again; the CRM must end with no row the crosswalk forgets."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from conftest import run_stages
from crmmigrate.crm.models import ENTITIES
from crmmigrate.errors import LedgerImbalance
from crmmigrate.match import record_decision
from crmmigrate.reconcile import run_reconcile
from crmmigrate.spec import load_project
from crmmigrate.target import resolve_target


def crm(project_dir: Path, sql: str) -> list[tuple]:
    engine = resolve_target(load_project(project_dir)).engine()
    try:
        with engine.connect() as con:
            return [tuple(r) for r in con.execute(sa.text(sql))]
    finally:
        engine.dispose()


def unmapped(project_dir: Path) -> dict[str, int]:
    counts = {entity: crm(project_dir, f"SELECT COUNT(*) FROM {model.__table__.name} WHERE id NOT IN "
                                       f"(SELECT crm_id FROM migration_crosswalk WHERE entity = '{entity}')")[0][0]
              for entity, model in ENTITIES.items()}
    return {entity: n for entity, n in counts.items() if n}


def add_bridge(project_dir: Path) -> None:
    """One person in three systems whom only the sales record ties together: billing knows their
    phone, support their e-mail, sales both (under three spellings of the name). Billing's and
    support's records share nothing but a surname, so the model's chaining guard would keep them
    apart: a consultant's decisions (each of them is the sales record) make the bridge."""
    import json
    import sqlite3

    demo = project_dir / "data" / "demo"
    with sqlite3.connect(demo / "billing" / "billing.sqlite") as con:
        con.execute("INSERT INTO CUSTOMERS (CUST_NO, NAME, EMAIL, PHONE, STREET, CITY, POSTCODE, COUNTRY, TAX_ID, "
                    "UPDATED_AT) VALUES (99001, 'BRIDGE ALPHA', NULL, '+49 30 9876543', 'Am Steg 1', 'Berlin', "
                    "'10115', 'DE', NULL, 1700000000)")
    con.close()
    tickets_path = demo / "support" / "tickets.json"
    tickets = json.loads(tickets_path.read_text())
    tickets.append({**tickets[0], "ticket_id": "T-99001", "requester": {
        "id": 99001, "name": "Beta Bridge", "email": "bridge@example.org", "phone": None}})
    tickets_path.write_text(json.dumps(tickets))
    for other in (("billing.customers", "99001"), ("support.tickets", "T-99001")):
        record_decision(project_dir, "contact", ("sales.contacts", "S-099001"), other, "same", by="test")
    contacts = demo / "sales" / "contacts.csv"
    contacts.write_bytes(contacts.read_bytes() + b"S-099001;GAMMA, Bridge;bridge@example.org;030 9876543;;;"
                         b"Am Steg 1;Berlin;10117;DE;01.01.2024 10:00;;;\r\n")


def test_a_source_missing_for_one_run_leaves_no_orphaned_crm_rows(demo_project: tuple[Path, dict]) -> None:
    project_dir, _ = demo_project
    add_bridge(project_dir)
    contacts = project_dir / "data" / "demo" / "sales" / "contacts.csv"
    full = contacts.read_bytes()
    run_stages(project_dir, "r1")
    people = crm(project_dir, "SELECT COUNT(*) FROM contact")[0][0]
    contacts.write_bytes(full.split(b"\r\n")[0] + b"\r\n")  # the header only: sales's records bridged clusters
    run_stages(project_dir, "r2")
    assert crm(project_dir, "SELECT COUNT(*) FROM contact")[0][0] > people  # split-off records got rows of their own
    contacts.write_bytes(full)
    run = run_stages(project_dir, "r3")  # raises LedgerImbalance if the read-back finds an orphan
    assert crm(project_dir, "SELECT COUNT(*) FROM contact")[0][0] == people and unmapped(project_dir) == {}
    superseded = crm(project_dir, "SELECT crm_id, superseded_by, removed_run_id FROM migration_superseded "
                                  "WHERE entity = 'contact'")
    # r3 joins again what r2 split. (r2 may supersede rows too: without the sales records, links
    # the chaining guard refused in r1 can hold. Each run removes what it supersedes.)
    assert superseded and all(r[2] for r in superseded)
    superseded = [r for r in superseded if r[2] == "r3"]
    assert superseded
    ledger = pd.read_parquet(run.path / "reconcile" / "ledger.parquet")
    noted = ledger[ledger["message"].fillna("").str.contains("superseded by")]
    assert set(noted["outcome"]) == {"merged"} and {old for old, _, _ in superseded} <= set(
        noted["message"].str.extract(r"was CRM contact (\S+),")[0])
    assert run.read_meta()["stages"]["reconcile"]["counts"]["crm_rows_superseded"] >= len(superseded)
    run_stages(project_dir, "r4")
    assert crm(project_dir, "SELECT COUNT(*) FROM contact")[0][0] == people


def test_a_crm_row_no_crosswalk_row_points_to_fails_verification(demo_project: tuple[Path, dict]) -> None:
    project_dir, _ = demo_project
    run = run_stages(project_dir, "r1")
    (orphan,) = crm(project_dir, "SELECT crm_id FROM migration_crosswalk WHERE entity = 'contact' "
                                 "ORDER BY crm_id LIMIT 1")[0]
    engine = resolve_target(load_project(project_dir)).engine()
    with engine.begin() as con:
        con.execute(sa.text("DELETE FROM migration_crosswalk WHERE entity = 'contact' AND crm_id = :c"), {"c": orphan})
    engine.dispose()
    project = load_project(project_dir)
    with pytest.raises(LedgerImbalance, match="contact: 1 CRM row.* no crosswalk row points to") as info:
        run_reconcile(run, project, resolve_target(project))
    assert info.value.exit_code == 1 and orphan in str(info.value)


def test_a_row_added_by_hand_in_the_new_crm_is_not_an_orphan(demo_project: tuple[Path, dict]) -> None:
    # During the parallel run people already work in the new CRM: only rows a run created must map.
    project_dir, _ = demo_project
    run_stages(project_dir, "r1")
    engine = resolve_target(load_project(project_dir)).engine()
    with engine.begin() as con:
        con.execute(sa.text("INSERT INTO contact (id, last_name) VALUES ('by-hand-1', 'Walk-in')"))
    engine.dispose()
    run = run_stages(project_dir, "r2")  # raises LedgerImbalance if the read-back counts it as an orphan
    assert run.read_meta()["verdict"] == "balanced"
    assert crm(project_dir, "SELECT last_name FROM contact WHERE id = 'by-hand-1'") == [("Walk-in",)]
