"""Survivorship: per field the most recent non-null value wins, ties go to department priority,
every field keeps its provenance, and every disagreement is listed with all its values."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from crmmigrate.merge.survivorship import MOST_RECENT, ONLY, PRIORITY, survive

UTC = dt.timezone.utc
T1 = pd.Timestamp(dt.datetime(2024, 1, 1, tzinfo=UTC))
T2 = pd.Timestamp(dt.datetime(2024, 6, 1, tzinfo=UTC))
COLUMNS = ["cluster_id", "_source", "_source_key", "_department", "_rank", "_last_modified", "email", "phone", "_link_account"]


def records(*rows: tuple) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["_last_modified"] = pd.to_datetime(frame["_last_modified"], utc=True)
    return frame.astype({c: object for c in ("email", "phone", "_link_account")})


def golden_of(frame: pd.DataFrame) -> tuple[dict[str, dict], pd.DataFrame]:
    golden, conflicts = survive(frame, ["email", "phone"], ["_link_account"])
    assert golden["cluster_id"].is_unique
    assert set(golden["cluster_id"]) == set(frame["cluster_id"])
    return {row["cluster_id"]: row for row in golden.to_dict("records")}, conflicts


def test_most_recent_value_wins_and_null_never_wins() -> None:
    golden, conflicts = golden_of(records(
        ("c1", "billing", "B1", "billing", 0, T1, "old@x.de", "+491", "acc1"),
        ("c1", "sales", "S1", "sales", 1, T2, "new@x.de", None, None),
    ))
    row = golden["c1"]
    assert (row["email"], row["phone"], row["_link_account"]) == ("new@x.de", "+491", "acc1")
    assert row["_from_email"] == {"source": "sales", "key": "S1", "rule": MOST_RECENT}
    assert row["_from_phone"] == {"source": "billing", "key": "B1", "rule": ONLY}
    assert (row["_members"], row["_last_modified"]) == (2, T2)
    # The anchor is the best-ranked record, not the most recent one.
    assert (row["_anchor_source"], row["_anchor_key"]) == ("billing", "B1")
    assert conflicts.to_dict("records") == [{
        "cluster_id": "c1", "field": "email", "chosen": "new@x.de", "chosen_source": "sales",
        "values": [{"source": "sales", "key": "S1", "value": "new@x.de"},
                   {"source": "billing", "key": "B1", "value": "old@x.de"}],
    }]


def test_a_tie_on_time_goes_to_department_priority() -> None:
    golden, conflicts = golden_of(records(
        ("c1", "sales", "S1", "sales", 1, T2, "sales@x.de", None, None),
        ("c1", "billing", "B1", "billing", 0, T2, "billing@x.de", None, None),
        ("c1", "support", "T1", "support", 3, T1, "support@x.de", None, None),
    ))
    row = golden["c1"]
    assert row["email"] == "billing@x.de"
    assert row["_from_email"] == {"source": "billing", "key": "B1", "rule": PRIORITY}
    assert conflicts["values"].tolist() == [[
        {"source": "billing", "key": "B1", "value": "billing@x.de"},
        {"source": "sales", "key": "S1", "value": "sales@x.de"},
        {"source": "support", "key": "T1", "value": "support@x.de"},
    ]]


def test_a_missing_time_loses_to_any_known_time() -> None:
    golden, _ = golden_of(records(
        ("c1", "billing", "B1", "billing", 0, None, "undated@x.de", None, None),
        ("c1", "sales", "S1", "sales", 4, T1, "dated@x.de", None, None),
    ))
    assert golden["c1"]["email"] == "dated@x.de"
    assert golden["c1"]["_from_email"]["rule"] == MOST_RECENT


def test_no_times_at_all_fall_back_to_priority() -> None:
    golden, _ = golden_of(records(
        ("c1", "sales", "S1", "sales", 1, None, "sales@x.de", None, None),
        ("c1", "billing", "B1", "billing", 0, None, "billing@x.de", None, None),
    ))
    assert golden["c1"]["_from_email"] == {"source": "billing", "key": "B1", "rule": PRIORITY}


def test_the_same_value_everywhere_is_no_conflict() -> None:
    golden, conflicts = golden_of(records(
        ("c1", "sales", "S1", "sales", 1, T2, "ann@x.de", None, None),
        ("c1", "billing", "B1", "billing", 0, T2, "ann@x.de", None, None),
    ))
    assert golden["c1"]["_from_email"] == {"source": "billing", "key": "B1", "rule": ONLY}
    assert conflicts.empty


def test_all_null_field_has_no_provenance() -> None:
    golden, conflicts = golden_of(records(("c1", "sales", "S1", "sales", 1, T1, None, None, None)))
    row = golden["c1"]
    assert pd.isna(row["email"])
    assert row["_from_email"] is None
    assert row["_members"] == 1
    assert conflicts.empty


def test_clusters_do_not_leak_into_each_other() -> None:
    golden, conflicts = golden_of(records(
        ("c1", "sales", "S1", "sales", 1, T1, "a@x.de", None, None),
        ("c2", "billing", "B1", "billing", 0, T2, "b@x.de", "+492", None),
        ("c2", "sales", "S2", "sales", 1, T1, None, "+493", None),
    ))
    assert golden["c1"]["email"] == "a@x.de"
    assert pd.isna(golden["c1"]["phone"]) and golden["c1"]["_from_phone"] is None
    assert (golden["c2"]["email"], golden["c2"]["phone"]) == ("b@x.de", "+492")
    assert conflicts[["cluster_id", "field", "chosen"]].values.tolist() == [["c2", "phone", "+492"]]


def test_equal_values_at_the_winning_time_are_decided_by_time_not_priority() -> None:
    golden, conflicts = golden_of(records(
        ("c1", "sales", "S1", "sales", 1, T2, "new@x.de", None, None),
        ("c1", "billing", "B1", "billing", 0, T2, "new@x.de", None, None),
        ("c1", "support", "T1", "support", 3, T1, "old@x.de", None, None),
    ))
    assert golden["c1"]["_from_email"] == {"source": "billing", "key": "B1", "rule": MOST_RECENT}
    assert conflicts["chosen"].tolist() == ["new@x.de"]
