"""Deterministic matching: folding, transitive clusters, anchors by rank, missing never matches."""

from __future__ import annotations

import uuid

import pandas as pd
import pytest

from crmmigrate.match.rules import cluster_uuid, fold, match_records


@pytest.mark.parametrize(("value", "folded"), [
    ("Jürgen-Ö.", "jurgeno"),
    ("Straße", "strasse"),
    ("STRASSE", "strasse"),
    ("  Ann.Lee@Example.DE ", "annleeexamplede"),
    ("Renée Lefèvre", "reneelefevre"),
    ("ﬁ", "fi"),
    ("10115", "10115"),
    ("--", None),
    ("", None),
    (None, None),
    (float("nan"), None),
])
def test_fold(value: object, folded: str | None) -> None:
    assert fold(value) == folded


def records(*rows: tuple[str, str, str | None, str | None, str | None]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["_source", "_source_key", "email", "phone", "last_name"], dtype=object)


def clusters_of(frame: pd.DataFrame, rules, rank: list[int] | None = None) -> tuple[list[set[str]], pd.DataFrame, pd.DataFrame]:
    clusters, pairs = match_records(frame, rules, "contact", pd.Series(rank or [0] * len(frame)))
    assert len(clusters) == len(frame)
    groups = clusters.groupby("cluster_id")["_source_key"].agg(lambda k: frozenset(k))
    return sorted((set(g) for g in groups), key=sorted), clusters, pairs


RULES = (("email",), ("phone",))


def test_transitive_clusters_across_rules() -> None:
    frame = records(
        ("a", "1", "ann@x.de", None, "Lee"),
        ("b", "2", "ANN@X.DE", "+491", "Lee"),      # 1 by email
        ("c", "3", None, "+491", "Lee"),            # 2 by phone, so 1 transitively
        ("c", "4", "bob@x.de", "+492", "Bo"),
    )
    groups, clusters, pairs = clusters_of(frame, RULES)
    assert groups == [{"1", "2", "3"}, {"4"}]
    assert pairs[["left_key", "right_key", "rule"]].values.tolist() == [["1", "2", "email"], ["2", "3", "phone"]]
    assert set(pairs["score"]) == {1.0}


def test_missing_fields_never_match() -> None:
    frame = records(("a", "1", None, None, "Lee"), ("b", "2", None, None, "Lee"), ("c", "3", "", "  ", "Lee"))
    groups, _, pairs = clusters_of(frame, RULES)
    assert groups == [{"1"}, {"2"}, {"3"}]
    assert pairs.empty
    assert list(pairs.columns) == ["entity", "left_source", "left_key", "right_source", "right_key", "score", "rule"]


def test_every_field_of_a_rule_must_agree_and_be_present() -> None:
    frame = records(("a", "1", "ann@x.de", None, "Lee"), ("b", "2", "ann@x.de", None, None),
                    ("c", "3", "ann@x.de", None, "lee"), ("d", "4", "ann@x.de", None, "Li"))
    groups, _, _ = clusters_of(frame, (("email", "last_name"),))
    assert groups == [{"1", "3"}, {"2"}, {"4"}]


def test_anchor_is_the_best_ranked_record() -> None:
    frame = records(("sales", "9", "ann@x.de", None, None), ("billing", "5", "ann@x.de", None, None),
                    ("marketing", "1", "ann@x.de", None, None))
    _, clusters, _ = clusters_of(frame, RULES, rank=[1, 0, 4])
    assert set(clusters["cluster_id"]) == {cluster_uuid("contact", "billing", "5")}
    # Equal rank: the lowest (source, key) anchors, so the id does not depend on row order.
    _, clusters, _ = clusters_of(frame, RULES, rank=[2, 2, 2])
    assert set(clusters["cluster_id"]) == {cluster_uuid("contact", "billing", "5")}
    shuffled = frame.iloc[[2, 0, 1]].reset_index(drop=True)
    _, again, _ = clusters_of(shuffled, RULES, rank=[2, 2, 2])
    assert set(again["cluster_id"]) == set(clusters["cluster_id"])


def test_singletons_keep_their_own_stable_id() -> None:
    frame = records(("a", "1", None, None, None))
    _, clusters, _ = clusters_of(frame, RULES)
    assert clusters.to_dict("records") == [{"entity": "contact", "_source": "a", "_source_key": "1",
                                            "cluster_id": cluster_uuid("contact", "a", "1")}]
    assert cluster_uuid("contact", "a", "1") != cluster_uuid("account", "a", "1")
    # Derived, not random: the same record gets the same id on every run (it becomes the CRM id).
    assert cluster_uuid("contact", "a", "1") == str(uuid.uuid5(uuid.UUID("6f1c2a51-8a0e-4c1b-9d83-2f6b1e3c7a10"),
                                                               "contact\x1fa\x1f1"))


def test_index_of_the_input_does_not_matter() -> None:
    frame = records(("a", "1", "x@y.de", None, None), ("b", "2", "x@y.de", None, None))
    frame.index = [10, 20]
    groups, _, _ = clusters_of(frame, RULES)
    assert groups == [{"1", "2"}]


def test_fold_keeps_letters_that_have_no_decomposition() -> None:
    assert fold("Søren") == fold("Soren") == "soren"
    assert fold("Łukasz") == "lukasz" and fold("Đorđe") == "dorde" and fold("Weiß") == fold("WEISS")
