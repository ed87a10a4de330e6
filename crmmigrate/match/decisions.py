"""A consultant's decisions on uncertain pairs: `matching/decisions.jsonl` in the project folder.

One JSON object a line, appended, never rewritten: the file is the history of who decided
what, when, on which values. Pairs are keyed by (source, source key) on both sides, so a
decision survives re-runs, new data and a retrained model; the latest line for a pair wins.
Decisions that contradict each other (A = B, B = C, A ≠ C) are reported, never resolved.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
from pathlib import Path
from typing import Any

import pandas as pd

from crmmigrate.errors import SettingsError

DECISIONS = ("same", "different", "skip")
COLUMNS = ["entity", "left_source", "left_key", "right_source", "right_key", "decision", "by", "at"]


def decisions_path(project_root: Path) -> Path:
    return project_root / "matching" / "decisions.jsonl"


def _ordered(left: tuple[str, str], right: tuple[str, str]) -> tuple[tuple[str, str], tuple[str, str]]:
    return (left, right) if left <= right else (right, left)


def record_decision(project_root: Path, entity: str, left: tuple[str, str], right: tuple[str, str], decision: str,
                    *, by: str | None = None, seen: dict[str, Any] | None = None,
                    score: float | None = None) -> dict[str, Any]:
    """Append one decision; *seen* holds the values the decider was shown."""
    if decision not in DECISIONS:
        raise ValueError(f"decision must be one of {', '.join(DECISIONS)}, not {decision!r}")
    if tuple(left) == tuple(right):
        raise ValueError(f"a record cannot be decided against itself: {left}")
    (ls, lk), (rs, rk) = _ordered(tuple(left), tuple(right))  # type: ignore[arg-type]
    entry = {"entity": entity, "left_source": ls, "left_key": lk, "right_source": rs, "right_key": rk,
             "decision": decision, "by": by or getpass.getuser(),
             "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
             "score": score, "seen": seen or {}}
    path = decisions_path(project_root)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")
    return entry


def read_decisions(project_root: Path, entity: str | None = None) -> pd.DataFrame:
    """The latest decision per pair (skips included: a skip withdraws an earlier decision)."""
    path = decisions_path(project_root)
    rows = []
    if path.exists():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                row = {c: entry[c] for c in COLUMNS}
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise SettingsError(f"{path}:{number}: not a decision line ({type(exc).__name__}: {exc})") from None
            if row["decision"] not in DECISIONS:
                raise SettingsError(f"{path}:{number}: decision {row['decision']!r} is not one of "
                                    f"{', '.join(DECISIONS)}")
            rows.append(row)
    frame = pd.DataFrame(rows, columns=COLUMNS, dtype=object)
    if entity is not None:
        frame = frame[frame["entity"] == entity]
    keys = ["entity", "left_source", "left_key", "right_source", "right_key"]
    return frame.drop_duplicates(keys, keep="last").reset_index(drop=True)


def contradictions(decisions: pd.DataFrame) -> pd.DataFrame:
    """Pairs decided "different" whose records decisions of "same" join (A = B, B = C, A ≠ C).

    *decisions* as `read_decisions` gives them (the latest per pair). A run reports such pairs
    only when all their records meet in it; the file shows them as soon as they are written.
    Each comes with the chain of "same" decisions that joins its two records; which decision is
    wrong only a consultant can say, so nothing is resolved here.
    """
    rows = []
    for entity, group in decisions.groupby("entity", sort=True):
        joined = _SameGroups()
        for row in group[group["decision"] == "same"].itertuples():
            joined.join((row.left_source, row.left_key), (row.right_source, row.right_key))
        for row in group[group["decision"] == "different"].itertuples():
            left, right = (row.left_source, row.left_key), (row.right_source, row.right_key)
            chain = joined.chain(left, right)
            if chain:
                rows.append({"entity": entity, "left_source": left[0], "left_key": left[1], "right_source": right[0],
                             "right_key": right[1], "message": f"decided different (by {row.by}, {row.at}), but "
                             "decided same through " + " = ".join(f"{s} {k}" for s, k in chain)})
    return pd.DataFrame(rows, columns=[*COLUMNS[:5], "message"], dtype=object)


class _SameGroups:
    """Records joined by "same" decisions: union-find for the groups, the decisions themselves
    for the chain that joins two records."""

    def __init__(self) -> None:
        self.parent: dict[tuple[str, str], tuple[str, str]] = {}
        self.edges: dict[tuple[str, str], list[tuple[str, str]]] = {}

    def find(self, node: tuple[str, str]) -> tuple[str, str]:
        root = node
        while self.parent.get(root, root) != root:
            root = self.parent[root]
        while node != root:
            self.parent[node], node = root, self.parent.get(node, root)
        return root

    def join(self, a: tuple[str, str], b: tuple[str, str]) -> None:
        self.edges.setdefault(a, []).append(b)
        self.edges.setdefault(b, []).append(a)
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def chain(self, a: tuple[str, str], b: tuple[str, str]) -> list[tuple[str, str]]:
        """The shortest chain of "same" decisions from *a* to *b*; empty when none joins them."""
        if a == b or self.find(a) != self.find(b):
            return []
        came_from = {a: a}
        frontier = [a]
        while b not in came_from:  # breadth first: same group, so b is reached
            reached = []
            for node in frontier:
                for other in sorted(self.edges[node]):
                    if other not in came_from:
                        came_from[other] = node
                        reached.append(other)
            frontier = reached
        path = [b]
        while path[-1] != a:
            path.append(came_from[path[-1]])
        return path[::-1]
