"""Scored pairs → clusters, honouring decisions and refusing to chain different people.

Connected components at a threshold let one wrong link fold two people together, and let
a chain of plausible links (Ann Lee – A. Lee – Anna Lee at another postcode …) gather people
who share nothing. Here joins happen in order of confidence: decided "same" pairs and shared
unique keys first, then links in descending score. A join never crosses a cannot-link (a
"different" decision, two different values of a key declared unique, or a pair the model
scores below no-link). The links a cannot-link refused are returned, for review.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass
class Clustering:
    labels: np.ndarray  # record index → root record index of its cluster
    refused: list[tuple[int, int, int, int]] = field(default_factory=list)  # (a, b, blocker x, blocker y)
    contradictions: list[tuple[int, int]] = field(default_factory=list)  # cannot-links inside a "same" group


class _Components:
    def __init__(self, n: int, cannot: Iterable[tuple[int, int]]):
        self.parent = np.arange(n)
        self.members: dict[int, list[int]] = {}
        self.cannot: dict[int, dict[int, int]] = {}  # root → {record it may not join: member that forbids it}
        for a, b in cannot:
            self.cannot.setdefault(a, {})[b] = a
            self.cannot.setdefault(b, {})[a] = b

    def find(self, i: int) -> int:
        parent = self.parent
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:
            parent[i], i = root, parent[i]
        return int(root)

    def _members(self, root: int) -> list[int]:
        return self.members.get(root, [root])

    def blocker(self, ra: int, rb: int) -> tuple[int, int] | None:
        """A cannot-link between the two components, if any: (member of a, member of b)."""
        ca, cb = self.cannot.get(ra, {}), self.cannot.get(rb, {})
        if not ca and not cb:
            return None
        if len(ca) <= len(cb):
            for other, own in ca.items():
                if self.find(other) == rb:
                    return own, other
        else:
            for other, own in cb.items():
                if self.find(other) == ra:
                    return other, own
        return None

    def union(self, ra: int, rb: int) -> int:
        if len(self._members(ra)) < len(self._members(rb)):
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.members[ra] = self._members(ra) + self._members(rb)
        self.members.pop(rb, None)
        if rb in self.cannot:
            merged = self.cannot.setdefault(ra, {})
            for other, own in self.cannot.pop(rb).items():
                merged.setdefault(other, own)
        return ra


def cluster(n: int, must: Iterable[tuple[int, int]], links: pd.DataFrame,
            cannot: Iterable[tuple[int, int]] = ()) -> Clustering:
    """Cluster records 0..n-1.

    *must*: pairs joined first, whatever else says (decided "same", a shared unique key).
    *links*: columns a, b, score; joined in descending score, ties by (a, b), unless a
    cannot-link separates the two clusters. *cannot*: pairs never in one cluster.
    """
    cannot = list(cannot)
    comps = _Components(n, cannot)
    for a, b in must:
        ra, rb = comps.find(a), comps.find(b)
        if ra != rb:
            comps.union(ra, rb)
    result = Clustering(labels=np.empty(0, dtype=np.int64))
    result.contradictions = sorted({(min(a, b), max(a, b)) for a, b in cannot if comps.find(a) == comps.find(b)})
    if result.contradictions:  # a must-link already holds them together: reported, not resolved
        inside = set(result.contradictions)
        comps.cannot = {}
        for a, b in cannot:
            if (min(a, b), max(a, b)) not in inside:
                comps.cannot.setdefault(comps.find(a), {})[b] = a
                comps.cannot.setdefault(comps.find(b), {})[a] = b
    if len(links):
        lo = np.minimum(links["a"].to_numpy(), links["b"].to_numpy())
        hi = np.maximum(links["a"].to_numpy(), links["b"].to_numpy())
        order = np.lexsort((hi, lo, -links["score"].to_numpy()))
        for a, b in zip(lo[order].tolist(), hi[order].tolist()):
            ra, rb = comps.find(a), comps.find(b)
            if ra == rb:
                continue
            blocked = comps.blocker(ra, rb)
            if blocked is not None:
                result.refused.append((a, b, *blocked))
                continue
            comps.union(ra, rb)
    result.labels = np.fromiter((comps.find(i) for i in range(n)), dtype=np.int64, count=n)
    return result


def anchors(labels: np.ndarray, order_keys: pd.DataFrame) -> np.ndarray:
    """Per record, the index of its cluster's anchor: the first member by *order_keys*' columns
    (department rank, then source and key), so the anchor, and the id derived from it, does not
    depend on row order or on which links were found first."""
    frame = order_keys.reset_index(drop=True).assign(_root=labels, _i=np.arange(len(labels)))
    first = frame.sort_values([*order_keys.columns, "_i"], kind="stable").drop_duplicates("_root")
    anchor_of_root = pd.Series(first["_i"].to_numpy(), index=first["_root"].to_numpy())
    return anchor_of_root.reindex(labels).to_numpy()
