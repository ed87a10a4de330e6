"""Survivorship: one golden record per cluster, each field from the most recent non-null
value (by the source's last-modified time, in UTC), ties broken by department priority.
Every field keeps its provenance: the source, the record key and the rule that chose it."""

from __future__ import annotations

import pandas as pd

MOST_RECENT = "most_recent"
PRIORITY = "department_priority"
ONLY = "only_value"


def _as_text(value: object) -> str:
    return str(value)


def survive(records: pd.DataFrame, fields: list[str], links: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Golden records and conflicts for one entity.

    *records* has ``cluster_id``, ``_rank`` (department priority, lower wins), lineage,
    ``_last_modified`` and the canonical *fields*; *links* are parent-cluster columns that
    survive like fields. Returns (golden, conflicts).
    """
    ordered = records.assign(_lm_missing=records["_last_modified"].isna()).sort_values(
        ["cluster_id", "_lm_missing", "_last_modified", "_rank", "_source", "_source_key"],
        ascending=[True, True, False, True, True, True], kind="mergesort",
    )
    anchors = records.sort_values(["cluster_id", "_rank", "_source", "_source_key"]).drop_duplicates("cluster_id")
    golden = pd.DataFrame({
        "cluster_id": anchors["cluster_id"].to_numpy(),
        "_anchor_source": anchors["_source"].to_numpy(),
        "_anchor_key": anchors["_source_key"].to_numpy(),
    }).set_index("cluster_id", drop=False)
    golden["_members"] = records.groupby("cluster_id").size()
    golden["_last_modified"] = records.groupby("cluster_id")["_last_modified"].max()
    conflicts = []
    for name in fields + links:
        present = ordered[ordered[name].notna()]
        first = present.drop_duplicates("cluster_id").set_index("cluster_id")
        golden[name] = first[name].reindex(golden.index)
        if name in links:
            continue
        distinct = present.assign(_text=present[name].map(_as_text)).groupby("cluster_id")["_text"].nunique()
        tie = _tied_on_time(present, first, name)
        rules = pd.Series(MOST_RECENT, index=first.index)
        rules[distinct.reindex(first.index) == 1] = ONLY
        rules[tie & (distinct.reindex(first.index) > 1)] = PRIORITY
        golden[f"_from_{name}"] = [
            {"source": s, "key": k, "rule": r} if isinstance(s, str) else None
            for s, k, r in zip(first["_source"].reindex(golden.index), first["_source_key"].reindex(golden.index),
                               rules.reindex(golden.index))
        ]
        disputed = distinct[distinct > 1].index
        if len(disputed):
            conflicts.append(_conflicts(present[present["cluster_id"].isin(disputed)], first, name))
    conflict_frame = pd.concat(conflicts, ignore_index=True) if conflicts else pd.DataFrame()
    return golden.reset_index(drop=True), conflict_frame


def _tied_on_time(present: pd.DataFrame, first: pd.DataFrame, name: str) -> pd.Series:
    """Clusters where a *different* value has the winner's exact last-modified time."""
    winner_time = present["cluster_id"].map(first["_last_modified"])
    same = present[(present["_last_modified"] == winner_time) | (present["_last_modified"].isna() & winner_time.isna())]
    values = same.assign(_text=same[name].map(_as_text)).groupby("cluster_id")["_text"].nunique()
    return values.reindex(first.index, fill_value=0) > 1


def _conflicts(rows: pd.DataFrame, first: pd.DataFrame, name: str) -> pd.DataFrame:
    grouped = rows.groupby("cluster_id")
    return pd.DataFrame({
        "cluster_id": list(grouped.groups),
        "field": name,
        "chosen": [_as_text(first.at[c, name]) for c in grouped.groups],
        "chosen_source": [first.at[c, "_source"] for c in grouped.groups],
        "values": [
            [{"source": s, "key": k, "value": _as_text(v)} for s, k, v in zip(g["_source"], g["_source_key"], g[name])]
            for _, g in grouped
        ],
    })
