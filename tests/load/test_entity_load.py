"""Load: created, then unchanged, then updated; a row the target refuses is rejected, not lost."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from crmmigrate.crm.dbio import enforce_foreign_keys
from crmmigrate.crm.schema import upgrade
from crmmigrate.load import EntityLoad, retire_superseded


@pytest.fixture
def engine(tmp_path: Path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'crm.sqlite'}")
    enforce_foreign_keys(engine)
    upgrade(engine, "test CRM")
    yield engine
    engine.dispose()


def golden(names: list[str | None]) -> pd.DataFrame:
    return pd.DataFrame({
        "cluster_id": [f"c{i}" for i in range(len(names))], "_anchor_source": "s.t",
        "_anchor_key": [f"k{i}" for i in range(len(names))], "_members": 1, "name": names,
        "website": None, "tax_id": None, "_last_modified": pd.Timestamp("2024-01-01", tz="UTC"),
    })


def members(n: int, extra: list[tuple[str, str]] = ()) -> pd.DataFrame:  # type: ignore[assignment]
    rows = [("s.t", f"k{i}", f"c{i}") for i in range(n)] + [(s, k, "c0") for s, k in extra]
    return pd.DataFrame(rows, columns=["_source", "_source_key", "cluster_id"]).assign(entity="account")


def crosswalk(engine: sa.Engine) -> pd.DataFrame:
    with engine.connect() as con:
        return pd.read_sql(sa.text("SELECT * FROM migration_crosswalk"), con)


def test_created_then_unchanged_then_updated(engine: sa.Engine) -> None:
    outcomes, errors, tally = EntityLoad(engine, "account", golden(["Acme", "Beta"]), members(2, [("u.v", "x")]),
                                         crosswalk(engine), {}).load("run1")
    assert tally == {"created": 2, "updated": 0, "unchanged": 0} and errors.empty
    assert sorted(outcomes["outcome"]) == ["created", "created", "merged"]
    outcomes, _, tally = EntityLoad(engine, "account", golden(["Acme", "Beta"]), members(2, [("u.v", "x")]),
                                    crosswalk(engine), {}).load("run2")
    assert tally == {"created": 0, "updated": 0, "unchanged": 2}
    assert set(outcomes["outcome"]) == {"unchanged"}
    _, _, tally = EntityLoad(engine, "account", golden(["Acme Ltd", "Beta"]), members(2), crosswalk(engine), {}).load("run3")
    assert tally == {"created": 0, "updated": 1, "unchanged": 1}
    with engine.connect() as con:
        assert sorted(r[0] for r in con.execute(sa.text("SELECT name FROM account"))) == ["Acme Ltd", "Beta"]


def test_the_crosswalk_keeps_ids_stable_when_the_anchor_changes(engine: sa.Engine) -> None:
    EntityLoad(engine, "account", golden(["Acme"]), members(1), crosswalk(engine), {}).load("run1")
    moved = golden(["Acme"]).assign(cluster_id="new-cluster", _anchor_source="a.b", _anchor_key="z")
    m = pd.DataFrame({"_source": ["a.b", "s.t"], "_source_key": ["z", "k0"], "cluster_id": "new-cluster",
                      "entity": "account"})
    outcomes, _, tally = EntityLoad(engine, "account", moved, m, crosswalk(engine), {}).load("run2")
    assert tally["created"] == 0 and set(outcomes["crm_id"]) == {"c0"}
    assert dict(zip(outcomes["_source_key"], outcomes["outcome"])) == {"z": "merged", "k0": "unchanged"}


def test_a_refused_row_is_rejected_with_the_targets_reason(engine: sa.Engine) -> None:
    outcomes, errors, tally = EntityLoad(engine, "account", golden(["Acme", None]), members(2),
                                         crosswalk(engine), {}).load("run1")
    assert tally["created"] == 1 and len(errors) == 1 and "NOT NULL" in errors["message"].iloc[0]
    refused = outcomes[outcomes["_source_key"] == "k1"].iloc[0]
    assert refused["outcome"] == "rejected" and refused["reason_code"] == "load_error" and refused["crm_id"] is None
    assert len(crosswalk(engine)) == 1


def test_a_cluster_that_splits_off_gets_its_own_row_instead_of_overwriting(engine: sa.Engine) -> None:
    together = golden(["Alpha"])
    EntityLoad(engine, "account", together, members(1, [("b.c", "1")]), crosswalk(engine), {}).load("run1")
    apart = pd.concat([golden(["Alpha"]), golden(["Beta"]).assign(cluster_id="c9", _anchor_source="b.c",
                                                                  _anchor_key="1")], ignore_index=True)
    m = pd.DataFrame({"_source": ["s.t", "b.c"], "_source_key": ["k0", "1"], "cluster_id": ["c0", "c9"],
                      "entity": "account"})
    for run in ("run2", "run3"):
        outcomes, _, tally = EntityLoad(engine, "account", apart, m, crosswalk(engine), {}).load(run)
        with engine.connect() as con:
            names = sorted(r[0] for r in con.execute(sa.text("SELECT name FROM account")))
        assert names == ["Alpha", "Beta"]
    assert tally == {"created": 0, "updated": 0, "unchanged": 2}
    assert dict(zip(outcomes["_source_key"], outcomes["crm_id"])) == {"k0": "c0", "1": "c9"}


def crm(engine: sa.Engine, sql: str) -> list[tuple]:
    with engine.connect() as con:
        return [tuple(r) for r in con.execute(sa.text(sql))]


def unmapped(engine: sa.Engine, table: str = "account", entity: str = "account") -> list[str]:
    """CRM rows no crosswalk row points to: duplicates no later run would ever touch."""
    return [r[0] for r in crm(engine, f"SELECT id FROM {table} WHERE id NOT IN "
                                      f"(SELECT crm_id FROM migration_crosswalk WHERE entity = '{entity}')")]


def load(engine: sa.Engine, gold: pd.DataFrame, m: pd.DataFrame, run: str, retire: bool = True) -> pd.DataFrame:
    outcomes, _, _ = EntityLoad(engine, "account", gold, m, crosswalk(engine), {}).load(run)
    if retire:
        assert retire_superseded(engine, run).empty
    return outcomes


def two(clusters: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"_source": ["s.t", "b.c"], "_source_key": ["k0", "1"], "cluster_id": clusters,
                         "entity": "account"})


SPLIT = pd.concat([golden(["Alpha"]), golden(["Beta"]).assign(cluster_id="c9", _anchor_source="b.c", _anchor_key="1")],
                  ignore_index=True)


def test_a_cluster_that_splits_and_rejoins_leaves_no_crm_row_without_crosswalk_rows(engine: sa.Engine) -> None:
    load(engine, golden(["Alpha"]), two(["c0", "c0"]), "run1")
    load(engine, SPLIT, two(["c0", "c9"]), "run2")  # b.c:1 no longer matches: a row of its own
    assert sorted(crm(engine, "SELECT id FROM account")) == [("c0",), ("c9",)]
    outcomes = load(engine, golden(["Alpha"]), two(["c0", "c0"]), "run3")  # it matches again
    assert crm(engine, "SELECT id, name FROM account") == [("c0", "Alpha")] and unmapped(engine) == []
    assert crm(engine, "SELECT crm_id, superseded_by, run_id, removed_run_id FROM migration_superseded") == [
        ("c9", "c0", "run3", "run3")]
    # The removed row's last values are kept (a hand edit in the CRM included): removed, not lost.
    (kept,) = crm(engine, "SELECT removed_values FROM migration_superseded")[0]
    assert json.loads(kept)["name"] == "Beta" and json.loads(kept)["id"] == "c9"
    moved = outcomes.set_index("_source_key").loc["1"]
    assert moved["outcome"] == "merged" and moved["crm_id"] == "c0"
    assert "was CRM account c9" in moved["message"] and "superseded by c0" in moved["message"]
    load(engine, golden(["Alpha"]), two(["c0", "c0"]), "run4")
    assert len(crm(engine, "SELECT id FROM account")) == 1
    # Split once more: c9 is in use again, so it is nobody's superseded id and is not removed.
    load(engine, SPLIT, two(["c0", "c9"]), "run5")
    assert sorted(crm(engine, "SELECT id FROM account")) == [("c0",), ("c9",)] and unmapped(engine) == []
    # The removal of run3 stays on record, with the values it removed; nothing is pending.
    assert crm(engine, "SELECT crm_id, run_id, removed_run_id FROM migration_superseded") == [("c9", "run3", "run3")]
    # Rejoined once more: c9 goes again, and both removals are on record.
    load(engine, golden(["Alpha"]), two(["c0", "c0"]), "run6")
    assert crm(engine, "SELECT id FROM account") == [("c0",)] and unmapped(engine) == []
    assert crm(engine, "SELECT crm_id, run_id, removed_run_id FROM migration_superseded ORDER BY run_id") == [
        ("c9", "run3", "run3"), ("c9", "run6", "run6")]


def test_a_record_split_off_does_not_take_over_the_row_its_former_partners_keep(engine: sa.Engine) -> None:
    # cX holds a0; cY holds y1, y2, y3 and b1. Then a0 joins y1-y3, and b1 splits off alone: the
    # big cluster keeps cY (most of its records have it), b1 gets a row of its own, cX is superseded.
    rows = pd.DataFrame({"_source": "s.t", "_source_key": ["a0", "y1", "y2", "y3", "b1"],
                         "cluster_id": ["cX", "cY", "cY", "cY", "cY"], "entity": "account"})
    load(engine, golden(["Ann", "Yves"]).assign(cluster_id=["cX", "cY"], _anchor_key=["a0", "y1"]), rows, "run1")
    with engine.begin() as con:  # cX is the older row; and a hand edit in the CRM
        con.execute(sa.text("INSERT INTO migration_ledger VALUES (:r, 's.t', 'account', :k, 'created', :c, NULL)"),
                    [{"r": "20240101T000000Z-a", "k": "a0", "c": "cX"}, {"r": "20240201T000000Z-b", "k": "y1", "c": "cY"}])
        con.execute(sa.text("UPDATE account SET name = 'Yves VIP' WHERE id = 'cY'"))
    gold = golden(["Yves VIP", "Bob"]).assign(cluster_id=["cA", "cB"], _anchor_key=["y1", "b1"])
    outcomes = load(engine, gold, rows.assign(cluster_id=["cA", "cA", "cA", "cA", "cB"]), "run2")
    ids = dict(zip(outcomes["_source_key"], outcomes["crm_id"]))
    assert ids == {"a0": "cY", "y1": "cY", "y2": "cY", "y3": "cY", "b1": "cB"}
    assert crm(engine, "SELECT id, name FROM account ORDER BY id") == [("cB", "Bob"), ("cY", "Yves VIP")]
    assert crm(engine, "SELECT crm_id, superseded_by FROM migration_superseded") == [("cX", "cY")]
    assert unmapped(engine) == []


def test_a_superseded_rows_children_are_re_pointed_before_it_goes(engine: sa.Engine) -> None:
    load(engine, golden(["Acme", "Acme Ltd"]), members(2), "run1")
    with engine.begin() as con:  # a contact of the second account, from a source this run does not read
        con.execute(sa.text("INSERT INTO contact (id, account_id, last_name) VALUES ('p1', 'c1', 'Ng')"))
        con.execute(sa.text("INSERT INTO migration_crosswalk VALUES ('contact', 'x.y', '7', 'p1', 'run1', 'run1')"))
    load(engine, golden(["Acme"]), members(2).assign(cluster_id="c0"), "run2")
    assert crm(engine, "SELECT id FROM account") == [("c0",)]
    assert crm(engine, "SELECT id, account_id FROM contact") == [("p1", "c0")]


def test_a_load_killed_before_removing_a_superseded_row_is_finished_by_the_next(engine: sa.Engine) -> None:
    load(engine, golden(["Alpha"]), two(["c0", "c0"]), "run1")
    load(engine, SPLIT, two(["c0", "c9"]), "run2")
    load(engine, golden(["Alpha"]), two(["c0", "c0"]), "run3", retire=False)  # killed right after the crosswalk
    assert crm(engine, "SELECT crm_id, removed_run_id FROM migration_superseded") == [("c9", None)]
    assert retire_superseded(engine, "run4").empty
    assert crm(engine, "SELECT id FROM account") == [("c0",)]
    assert crm(engine, "SELECT crm_id, removed_run_id FROM migration_superseded") == [("c9", "run4")]


def test_a_superseded_row_the_target_will_not_let_go_holds_back_no_other(engine: sa.Engine) -> None:
    load(engine, golden(["Acme", "Acme Ltd", "ACME"]), members(3), "run1")
    with engine.begin() as con:  # a table of the CRM's own, unknown to crmmigrate, refers to c1
        con.execute(sa.text("CREATE TABLE note (id TEXT PRIMARY KEY, account_id TEXT REFERENCES account(id))"))
        con.execute(sa.text("INSERT INTO note VALUES ('n1', 'c1')"))
    load(engine, golden(["Acme"]), members(3).assign(cluster_id="c0"), "run2", retire=False)
    errors = retire_superseded(engine, "run2")
    assert errors[["crm_id"]].values.tolist() == [["c1"]]
    assert errors["message"].str.startswith("superseded by c0 but could not be removed: IntegrityError").all()
    assert crm(engine, "SELECT id FROM account ORDER BY id") == [("c0",), ("c1",)]  # c2 is gone, c1 stays
    assert crm(engine, "SELECT crm_id, removed_run_id FROM migration_superseded ORDER BY crm_id") == [
        ("c1", None), ("c2", "run2")]
