"""The decisions file: appended, latest per pair wins, keyed by source keys, errors name the line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crmmigrate.errors import SettingsError
from crmmigrate.match.decisions import contradictions, decisions_path, read_decisions, record_decision


def test_latest_decision_per_pair_wins_whatever_the_side(tmp_path: Path) -> None:
    record_decision(tmp_path, "contact", ("sales", "1"), ("billing", "7"), "same", by="ann", seen={"email": ["a", "a"]})
    record_decision(tmp_path, "contact", ("billing", "7"), ("sales", "1"), "different", by="bob")
    record_decision(tmp_path, "contact", ("sales", "2"), ("sales", "3"), "skip", by="bob")
    found = read_decisions(tmp_path, "contact")
    assert found[["left_source", "left_key", "right_source", "right_key", "decision", "by"]].values.tolist() == [
        ["billing", "7", "sales", "1", "different", "bob"], ["sales", "2", "sales", "3", "skip", "bob"]]
    history = [json.loads(line) for line in decisions_path(tmp_path).read_text().splitlines()]
    assert len(history) == 3 and history[0]["seen"] == {"email": ["a", "a"]} and history[0]["at"]


def test_a_bad_line_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    record_decision(tmp_path, "contact", ("a", "1"), ("b", "2"), "same", by="x")
    with decisions_path(tmp_path).open("a") as fh:
        fh.write('{"entity": "contact"}\n')
    with pytest.raises(SettingsError, match=r"decisions.jsonl:2: not a decision line"):
        read_decisions(tmp_path)


def test_a_decision_must_be_one_of_three_and_between_two_records(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="same, different, skip"):
        record_decision(tmp_path, "contact", ("a", "1"), ("b", "2"), "maybe")
    with pytest.raises(ValueError, match="against itself"):
        record_decision(tmp_path, "contact", ("a", "1"), ("a", "1"), "same")


def test_contradictions_are_found_in_the_file_with_the_chain_that_joins_them(tmp_path: Path) -> None:
    for left, right, decision in [("a", "b", "same"), ("b", "c", "same"), ("c", "d", "same"), ("a", "d", "different"),
                                  ("x", "y", "same"), ("x", "z", "different"),  # x, z never joined: no contradiction
                                  ("e", "f", "same"), ("e", "f", "skip"), ("f", "g", "same"),
                                  ("e", "g", "different")]:  # the skip withdrew e = f
        record_decision(tmp_path, "contact", ("s", left), ("s", right), decision, by="ann")
    record_decision(tmp_path, "account", ("s", "a"), ("s", "d"), "different", by="ann")  # another entity's records
    found = contradictions(read_decisions(tmp_path))
    assert found[["entity", "left_key", "right_key"]].values.tolist() == [["contact", "a", "d"]]
    assert found["message"].iloc[0].startswith("decided different (by ann, ")
    assert found["message"].iloc[0].endswith("decided same through s a = s b = s c = s d")


def test_no_decisions_no_contradictions(tmp_path: Path) -> None:
    found = contradictions(read_decisions(tmp_path))
    assert found.empty and list(found.columns) == ["entity", "left_source", "left_key", "right_source", "right_key",
                                                   "message"]
