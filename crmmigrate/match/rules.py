"""Deterministic matching: records that agree exactly on every field of one rule, after
normalisation, belong to the same entity. Clusters are the connected components."""

from __future__ import annotations

import re
import unicodedata
import uuid

import pandas as pd

# Cluster ids double as the CRM id of a golden record that is new to the CRM, so they are
# derived from the cluster's anchor record and stay the same on every run.
NAMESPACE = uuid.UUID("6f1c2a51-8a0e-4c1b-9d83-2f6b1e3c7a10")
_NOT_LETTER = re.compile(r"[^0-9a-z]+")
# Letters NFKD cannot split into base + accent; without this `Søren` would fold to `sren`.
_UNSPLITTABLE = str.maketrans({"ß": "ss", "ø": "o", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "æ": "ae",
                               "œ": "oe", "ı": "i", "ħ": "h", "ŧ": "t"})


def cluster_uuid(entity: str, source: str, key: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{entity}\x1f{source}\x1f{key}"))


def fold(value: object) -> str | None:
    """Case, accents, punctuation and spacing removed: `Jürgen-Ö.` → `jurgeno`; ß → ss, ø → o."""
    if value is None or value != value:
        return None
    text = unicodedata.normalize("NFKD", str(value).casefold().translate(_UNSPLITTABLE))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = _NOT_LETTER.sub("", text)
    return text or None


class UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def match_records(records: pd.DataFrame, rules: tuple[tuple[str, ...], ...], entity: str,
                  rank: pd.Series) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cluster *records* (one row per source record, rule fields as columns).

    *rank* orders records for choosing each cluster's anchor (lower first). Returns
    (clusters, pairs); pairs are the links that joined records, one per rule hit.
    """
    records = records.reset_index(drop=True)
    uf = UnionFind(len(records))
    pairs = []
    for rule in rules:
        keys = pd.DataFrame({f: records[f].map(fold) for f in rule})
        usable = keys.notna().all(axis=1)
        if not usable.any():
            continue
        grouped = keys[usable].astype(str).agg("\x1f".join, axis=1)
        for _, members in grouped.groupby(grouped).groups.items():
            members = sorted(members)
            for other in members[1:]:
                uf.union(members[0], other)
                pairs.append((members[0], other, "+".join(rule)))
    roots = pd.Series([uf.find(i) for i in range(len(records))])
    order = pd.DataFrame({"root": roots, "rank": rank.reset_index(drop=True),
                          "_source": records["_source"], "_source_key": records["_source_key"]})
    anchors = order.sort_values(["rank", "_source", "_source_key"]).drop_duplicates("root").set_index("root")
    cluster_ids = {root: cluster_uuid(entity, a["_source"], a["_source_key"]) for root, a in anchors.iterrows()}
    clusters = pd.DataFrame({"entity": entity, "_source": records["_source"],
                             "_source_key": records["_source_key"], "cluster_id": roots.map(cluster_ids)})
    pair_frame = pd.DataFrame(
        [{"entity": entity, "left_source": records.at[a, "_source"], "left_key": records.at[a, "_source_key"],
          "right_source": records.at[b, "_source"], "right_key": records.at[b, "_source_key"],
          "score": 1.0, "rule": rule} for a, b, rule in pairs],
        columns=["entity", "left_source", "left_key", "right_source", "right_key", "score", "rule"],
    )
    return clusters, pair_frame
