"""Edge cases found in review: empty sources, all rows rejected, unused sources, braces in data."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from conftest import run_stages
from crmmigrate.errors import MappingSpecError
from crmmigrate.spec import load_project

SETTINGS = "spec_version: 1\nkind: project\nname: t\n"
MAPPING = """\
spec_version: 1
kind: mapping
system: s
department: sales
sources:
  c: {format: csv, path: c.csv, key: [ID]}
entities:
  - entity: contact
    from: c
    fields:
      last_name: NAME
      email: {column: MAIL, transform: [email]}
  - entity: support_case
    from: c
    links: {contact: self}
    fields:
      case_number: ID
      status: {column: ST, map: {"{open}": open, "c}": closed}}
"""


def project(tmp_path: Path, csv: str, mapping: str = MAPPING) -> Path:
    (tmp_path / "mappings").mkdir(parents=True)
    (tmp_path / "crmmigrate.yml").write_text(SETTINGS)
    (tmp_path / "mappings" / "s.yml").write_text(mapping)
    (tmp_path / "c.csv").write_text(csv)
    return tmp_path


def run_all(folder: Path) -> pd.DataFrame:
    run = run_stages(folder)
    assert run.read_meta()["verdict"] == "balanced"
    return pd.read_parquet(run.path / "reconcile" / "ledger.parquet")


def test_every_row_rejected_still_runs_to_a_balanced_ledger(tmp_path: Path) -> None:
    ledger = run_all(project(tmp_path, "ID,NAME,MAIL,ST\n1,,a@b.de,{open}\n2,,x,q\n"))
    assert len(ledger) == 4
    assert set(ledger["outcome"]) == {"rejected", "deferred"}


def test_a_header_only_source_runs_to_an_empty_balanced_ledger(tmp_path: Path) -> None:
    assert run_all(project(tmp_path, "ID,NAME,MAIL,ST\n")).empty


def test_braces_in_value_maps_and_values_are_plain_text(tmp_path: Path) -> None:
    ledger = run_all(project(tmp_path, "ID,NAME,MAIL,ST\n1,Ann,a@b.de,{open}\n2,Bo,b@b.de,{x}\n"))
    cases = ledger[ledger["entity"] == "support_case"].set_index("_source_key")
    assert cases.at["1", "outcome"] == "created" and cases.at["2", "reason_code"] == "unmapped_value"
    assert "'{x}' is not in the value map ({open}, c})" in cases.at["2", "message"]


def test_a_source_no_entity_reads_is_a_spec_error(tmp_path: Path) -> None:
    mapping = MAPPING.replace("  c: {format: csv", "  extra: {format: csv, path: e.csv, key: [ID]}\n  c: {format: csv")
    folder = project(tmp_path, "ID,NAME,MAIL,ST\n", mapping)
    with pytest.raises(MappingSpecError, match=r"mappings/s.yml:6 sources.extra: source 'extra' is not read by any"):
        load_project(folder)


def test_a_child_of_a_rejected_optional_parent_is_deferred_not_unlinked(tmp_path: Path) -> None:
    mapping = MAPPING.replace("entities:\n", """entities:
  - entity: account
    from: c
    when_present: [CO]
    fields:
      name: {column: CO, transform: [email]}
""").replace("    fields:\n      last_name: NAME\n", "    links: {account: self}\n    fields:\n      last_name: NAME\n", 1)
    # Row 1's company is refused (not an e-mail: a stand-in for any failed rule), row 2 has none.
    folder = project(tmp_path, "ID,NAME,MAIL,ST,CO\n1,Ann,a@b.de,{open},ACME\n2,Bo,b@b.de,{open},\n", mapping)
    ledger = run_all(folder).set_index(["entity", "_source_key"])
    assert ledger.loc[("account", "1"), "outcome"] == "rejected"
    assert ledger.loc[("contact", "1"), ["outcome", "reason_code"]].tolist() == ["deferred", "missing_parent"]
    assert ledger.loc[("account", "2"), "outcome"] == "skipped"
    assert ledger.loc[("contact", "2"), "outcome"] == "created"
    assert ledger.loc[("support_case", "1"), "outcome"] == "deferred"


def test_a_value_dropped_by_on_invalid_null_is_counted_and_shown_not_lost(tmp_path: Path) -> None:
    mapping = MAPPING.replace("email: {column: MAIL, transform: [email]}",
                              "email: {column: MAIL, transform: [email], on_invalid: 'null'}")
    folder = project(tmp_path, "ID,NAME,MAIL,ST\n1,Ann,a@b.de,{open}\n2,Bo,<script>x</script>,c}\n", mapping)
    ledger = run_all(folder)
    contacts = ledger[ledger["entity"] == "contact"].set_index("_source_key")
    assert contacts.at["2", "outcome"] == "created"
    run = next((folder / "runs").iterdir())
    nulled = pd.read_parquet(run / "map" / "nulled" / "contact" / "s.c.parquet")
    assert nulled[["_source_key", "field", "value", "reason_code"]].values.tolist() == [
        ["2", "email", "<script>x</script>", "invalid_email"]]
    assert run_meta_counts(run)["reconcile"]["values_nulled"] == 1
    report = (run / "reconcile" / "report.html").read_text()
    assert "Values left empty by a lenient field" in report and "&lt;script&gt;x&lt;/script&gt;" in report
    assert "<script>x" not in report


def run_meta_counts(run: Path) -> dict:
    meta = json.loads((run / "run.json").read_text())
    return {name: stage.get("counts", {}) for name, stage in meta["stages"].items()}


def test_a_password_in_a_source_url_query_reaches_no_file_of_the_run(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # SQLite URIs and libpq take a password in the query too (`?password=`, `sslpassword=`).
    folder = project(tmp_path, "ID,NAME,MAIL,ST\n")
    with sqlite3.connect(folder / "legacy.sqlite") as con:
        con.execute("CREATE TABLE c (ID TEXT, NAME TEXT, MAIL TEXT, ST TEXT)")
        con.execute("INSERT INTO c VALUES ('1', 'Ann', 'a@b.de', '{open}')")
    con.close()
    url = f"sqlite:///file:{folder / 'legacy.sqlite'}?mode=ro&uri=true&password=Hunter2x&sslpassword=Hunter3y"
    monkeypatch.setenv("LEGACY_URL", url)
    mapping = MAPPING.replace("c: {format: csv, path: c.csv, key: [ID]}",
                              "c: {format: sql, url_env: LEGACY_URL, table: c, key: [ID]}")
    (folder / "mappings" / "s.yml").write_text(mapping)
    ledger = run_all(folder)
    assert (ledger["outcome"] == "created").sum() == 2
    leaks = [str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()
             and (b"Hunter2x" in p.read_bytes() or b"Hunter3y" in p.read_bytes())]
    assert leaks == []
    report = next((folder / "runs").glob("*/reconcile/report.html")).read_text()
    assert "password=***" in report and "sslpassword=***" in report
