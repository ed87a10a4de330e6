"""Load: created, then unchanged, then updated; a row the target refuses is rejected, not lost."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from crmmigrate.crm.dbio import enforce_foreign_keys
from crmmigrate.crm.models import Base
from crmmigrate.load import EntityLoad


@pytest.fixture
def engine(tmp_path: Path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'crm.sqlite'}")
    enforce_foreign_keys(engine)
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


def golden(names: list[str | None]) -> pd.DataFrame:
    return pd.DataFrame({
        "cluster_id": [f"c{i}" for i in range(len(names))], "_anchor_source": "s.t",
        "_anchor_key": [f"k{i}" for i in range(len(names))], "_members": 1, "name": names,
        "_last_modified": pd.Timestamp("2024-01-01", tz="UTC"),
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
