"""A key repeated inside one source: identical repeats are counted once, differing ones are listed."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from conftest import run_stages
from crmmigrate.rundir import RunDir


def run_all(project_dir: Path) -> tuple[RunDir, pd.DataFrame]:
    run = run_stages(project_dir)
    return run, pd.read_parquet(run.path / "reconcile" / "ledger.parquet")


def add_repeats(project_dir: Path) -> tuple[str, str]:
    """Append an identical copy of the first data line and a changed copy of the second."""
    path = project_dir / "data" / "demo" / "sales" / "contacts.csv"
    lines = path.read_bytes().split(b"\r\n")
    second = lines[2].split(b";")
    second[2] = b"changed@example.org"
    path.write_bytes(b"\r\n".join(lines[:-1] + [lines[1], b";".join(second), b""]))
    return lines[1].split(b";")[0].decode(), lines[2].split(b";")[0].decode()


def test_repeated_keys_each_get_a_ledger_row_and_the_run_balances(demo_project: tuple[Path, dict]) -> None:
    project_dir, truth = demo_project
    same_key, changed_key = add_repeats(project_dir)
    run, ledger = run_all(project_dir)
    n = truth["counts"]["sales.contacts"]
    contacts = ledger[(ledger["_source"] == "sales.contacts") & (ledger["entity"] == "contact")]
    assert len(contacts) == n + 2
    by_key = contacts.set_index("_source_key")
    same = by_key.loc[f"{same_key} (row {n + 2})"]
    assert same["outcome"] == "merged" and same["crm_id"] == by_key.loc[same_key, "crm_id"]
    assert "same values" in same["message"]
    changed = by_key.loc[f"{changed_key} (row {n + 3})"]
    assert changed["outcome"] == "rejected" and changed["reason_code"] == "duplicate_key"
    balance = pd.read_parquet(run.path / "reconcile" / "balance.parquet")
    assert balance["balanced"].all()
    sources = pd.read_parquet(run.path / "extract" / "sources.parquet").set_index("source")
    assert (sources.at["sales.contacts", "repeats_identical"], sources.at["sales.contacts", "repeats_differing"]) == (1, 1)


def test_keep_first_folds_differing_repeats_into_the_first(demo_project: tuple[Path, dict]) -> None:
    project_dir, _ = demo_project
    mapping = project_dir / "mappings" / "sales.yml"
    mapping.write_text(mapping.read_text().replace("    key: [CONTACT_ID]\n",
                                                   "    key: [CONTACT_ID]\n    duplicate_keys: keep_first\n"))
    _, changed_key = add_repeats(project_dir)
    _, ledger = run_all(project_dir)
    repeat = ledger[ledger["_source_key"].str.startswith(f"{changed_key} (row")]
    assert set(repeat["outcome"]) <= {"merged", "skipped"}
    assert "different values" in repeat.set_index("entity").at["contact", "message"]  # EMAIL: the contact's only


def test_a_repeat_is_judged_per_entity_on_the_columns_it_reads(demo_project: tuple[Path, dict]) -> None:
    """A helpdesk repeats the requester on every ticket: a repeat whose only difference is a
    column one entity reads is a `duplicate_key` of that entity alone."""
    project_dir, truth = demo_project
    same_key, changed_key = add_repeats(project_dir)  # the changed copy differs in EMAIL only
    run, ledger = run_all(project_dir)
    n = truth["counts"]["sales.contacts"]
    repeat = ledger[ledger["_source_key"] == f"{changed_key} (row {n + 3})"].set_index("entity")
    assert repeat.at["contact", "outcome"] == "rejected" and repeat.at["contact", "reason_code"] == "duplicate_key"
    first = ledger[ledger["_source_key"] == changed_key].set_index("entity")
    for entity in ("account", "address"):  # neither reads EMAIL: the same record of theirs, merged as such
        assert repeat.at[entity, "outcome"] == ("merged" if first.at[entity, "outcome"] in ("created", "updated", "merged")
                                                else first.at[entity, "outcome"])
        assert repeat.at[entity, "reason_code"] != "duplicate_key"
        assert "same values" in repeat.at[entity, "message"]
    repeats = pd.read_parquet(run.path / "extract" / "repeats" / "sales.contacts.parquet")
    assert sorted(repeats.loc[~repeats["identical"], "entity"]) == ["contact"]
