"""Clustering in order of confidence: decisions and unique keys first, then links by score,
never across a cannot-link; anchors (and so ids) do not depend on row order."""

from __future__ import annotations

import numpy as np
import pandas as pd

from crmmigrate.match.cluster import anchors, cluster


def links(*rows: tuple[int, int, float]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["a", "b", "score"])


def groups(labels: np.ndarray) -> list[set[int]]:
    out: dict[int, set[int]] = {}
    for i, root in enumerate(labels):
        out.setdefault(int(root), set()).add(i)
    return sorted(out.values(), key=min)


def test_links_join_transitively() -> None:
    result = cluster(4, [], links((0, 1, 0.99), (1, 2, 0.97)))
    assert groups(result.labels) == [{0, 1, 2}, {3}]
    assert result.refused == [] and result.contradictions == []


def test_a_cannot_link_holds_and_the_weakest_link_is_refused() -> None:
    # 0-1 strong, 1-2 weaker; 0 and 2 must not be together: the weaker link is the one refused.
    result = cluster(3, [], links((1, 2, 0.96), (0, 1, 0.999)), cannot=[(0, 2)])
    assert groups(result.labels) == [{0, 1}, {2}]
    assert result.refused == [(1, 2, 0, 2)]  # the link, then the cannot-link that stopped it (a's side, b's)


def test_decided_same_joins_before_any_link_and_different_blocks_a_strong_link() -> None:
    # 0 = 3 decided; 1 ≠ 3 decided: the model's strongest link (0-1) cannot bring 1 in.
    result = cluster(4, [(0, 3)], links((0, 1, 0.999), (2, 3, 0.98)), cannot=[(1, 3)])
    assert groups(result.labels) == [{0, 2, 3}, {1}]
    assert [(a, b) for a, b, *_ in result.refused] == [(0, 1)]


def test_contradicting_decisions_are_reported_not_resolved() -> None:
    # A = B and B = C decided, A ≠ C decided: the same-decisions hold them together, and it is said.
    result = cluster(3, [(0, 1), (1, 2)], links(), cannot=[(0, 2)])
    assert groups(result.labels) == [{0, 1, 2}]
    assert result.contradictions == [(0, 2)]


def test_order_of_links_does_not_change_clusters() -> None:
    rows = [(0, 1, 0.97), (1, 2, 0.97), (2, 3, 0.99), (3, 4, 0.96)]
    one = cluster(5, [], links(*rows), cannot=[(0, 4)])
    two = cluster(5, [], links(*reversed(rows)), cannot=[(4, 0)])
    assert groups(one.labels) == groups(two.labels) == [{0, 1, 2, 3}, {4}]


def test_anchor_is_the_best_ranked_member_whatever_the_row_order() -> None:
    labels = np.array([0, 0, 0, 3])
    keys = pd.DataFrame({"_rank": [1, 0, 0, 2], "_source": ["s", "b", "a", "z"], "_source_key": ["9", "5", "7", "1"]})
    assert anchors(labels, keys).tolist() == [2, 2, 2, 3]  # rank 0 twice: source 'a' before 'b'
