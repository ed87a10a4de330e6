"""A run's review queue, as a consultant works through it (notebook `35-review-matches`).

Each pair the match stage was unsure of (`match/review.parquet`) is shown with both records'
mapped values side by side (a contact with the address mapped from its own source record, as
the model compared it), whether each compared field agrees, partly agrees, differs or is
missing on one side (the level Splink found, not a second opinion), and the pair's match-weight
waterfall (`waterfall.py`). A decision goes to the project's decisions file with who took it,
when, and the values they saw; the next run of match applies it. Contradicting decisions are
shown from the file itself, before any run meets them, and as the last run reported them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crmmigrate.errors import SettingsError
from crmmigrate.match import decisions as decided
from crmmigrate.match import features
from crmmigrate.match import model as models
from crmmigrate.match.waterfall import Scorer
from crmmigrate.rundir import read_tables
from crmmigrate.spec.model import MATCHED_ENTITIES

SIDE_BY_SIDE_COLUMNS = ["field", "left", "right", "compared_as", "status", "level"]
# Light enough to read black text on; the same in the side-by-side table and the waterfall.
COLOURS = {"agree": "#d7f0d7", "partly": "#fbf0c0", "differ": "#f7d0d0", "missing": "#ececec"}
PAIR = ["left_source", "left_key", "right_source", "right_key"]
Key = tuple[str, str]
# A pair of the queue by its number, or any two records of the run by (source, source key).
Which = int | tuple[Key, Key]


class Review:
    """The review queue of one *entity* in the run at *run_path*, decisions going to the
    decisions file of the project at *project_root* in the name of *reviewer* (default: the
    OS user)."""

    def __init__(self, project_root: Path, run_path: Path, entity: str = "contact", reviewer: str = "") -> None:
        if entity not in MATCHED_ENTITIES:
            raise SettingsError(f"Review: entity must be one of {', '.join(MATCHED_ENTITIES)}, not {entity!r}")
        path = run_path / "match" / "review.parquet"
        if not path.exists():
            raise SettingsError(f"Run {run_path} has no match/review.parquet: run the match stage first")
        self.project_root, self.run_path, self.entity, self.reviewer = Path(project_root), Path(run_path), entity, reviewer
        queue = pd.read_parquet(path)
        self.queue = queue[queue["entity"] == entity].reset_index(drop=True)
        self.queue["decision"] = self._latest_decisions()
        self._scorer: Scorer | None = None
        self._records: pd.DataFrame | None = None

    def __enter__(self) -> Review:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._scorer is not None:
            self._scorer.close()

    @property
    def scorer(self) -> Scorer:
        if self._scorer is None:  # the comparison columns of every record: built once, when first needed
            self._scorer = Scorer(self.run_path, self.entity)
        return self._scorer

    def _latest_decisions(self) -> list[str | None]:
        latest = decided.read_decisions(self.project_root, self.entity)
        by_pair = {_ordered(*row[:4]): row[4] for row in latest[[*PAIR, "decision"]].itertuples(index=False)}
        return [by_pair.get(_ordered(*row)) for row in self.queue[PAIR].itertuples(index=False)]

    def summary(self) -> pd.DataFrame:
        """Pairs waiting per reason (the chaining guard's per-pair figures set aside), and how
        many a decision taken since the run already settles."""
        kind = self.queue["reason"].str.split(":").str[0]
        frame = self.queue.assign(reason=kind, decided=self.queue["decision"].notna())
        out = frame.groupby("reason", sort=True).agg(pairs=("reason", "size"), decided=("decided", "sum")).reset_index()
        total = pd.DataFrame([{"reason": "all", "pairs": len(frame), "decided": int(frame["decided"].sum())}])
        return pd.concat([out, total], ignore_index=True) if len(out) else total

    def listing(self, limit: int = 20, start: int = 0) -> pd.DataFrame:
        """The queue from pair *start*, *limit* pairs (the index is what `record` takes)."""
        columns = [*PAIR, "score", "match_weight", "reason", "decision"]
        return self.queue[columns].iloc[start:start + limit]

    def pair(self, index: int) -> pd.Series:
        if not 0 <= index < len(self.queue):
            raise SettingsError(f"Review: no pair {index}; the {self.entity} queue of run {self.run_path.name} "
                                f"holds {len(self.queue)} (0 to {len(self.queue) - 1})")
        return self.queue.iloc[index]

    def describe(self, index: int) -> str:
        p = self.pair(index)
        return (f"Pair {index} of the {len(self.queue)} in the {self.entity} queue (numbered from 0): "
                f"{p['left_source']} {p['left_key']} and "
                f"{p['right_source']} {p['right_key']}; probability {p['score']:.3f}, match weight "
                f"{p['match_weight']:+.2f}; {p['reason']}; decided: {p['decision'] or 'not yet'}")

    def _sides(self, which: Which) -> tuple[Key, Key]:
        if isinstance(which, (int, np.integer)):
            p = self.pair(int(which))
            return (p["left_source"], p["left_key"]), (p["right_source"], p["right_key"])
        left, right = which
        return (str(left[0]), str(left[1])), (str(right[0]), str(right[1]))

    def waterfall(self, which: Which) -> pd.DataFrame:
        """Splink's waterfall of a queue pair, or of any two records (a link to question, say)."""
        return self.scorer.waterfall(*self._sides(which))

    def records(self) -> pd.DataFrame:
        """The entity's mapped records by (source, key), a contact with its own address's fields."""
        if self._records is None:
            mapped = self.run_path / "map" / "mapped"
            records = read_tables(mapped / self.entity).reset_index(drop=True)
            shown = [c for c in records.columns if not c.startswith("_")]
            if self.entity == "contact":
                home = features._own_address(records, read_tables(mapped / "address"))
                for column in features.ADDRESS_FIELDS:
                    records[column] = home[column].to_numpy() if column in home else None
                shown += [c for c in features.ADDRESS_FIELDS if c not in shown]
            self._records = records.set_index(["_source", "_source_key"])[shown]
        return self._records

    def side_by_side(self, which: Which) -> pd.DataFrame:
        """Both records' values per field: the comparison that weighed it and how they met
        there; a field no comparison reads says only whether the two values are equal."""
        left, right = self._sides(which)
        steps = self.waterfall(which).set_index("step")  # first: it names a record the run does not hold
        values = self.records().loc[[left, right]].T
        reads = _fields_read(self.entity, self.scorer.comparisons())
        rows = []
        for field, (a, b) in zip(values.index, values.itertuples(index=False)):
            a, b = _plain(a), _plain(b)
            comparison = next((c for c, fields in reads.items() if field in fields), "")
            if comparison:
                rows.append([field, a, b, comparison, steps.at[comparison, "status"], steps.at[comparison, "label"]])
            else:
                status = "missing" if a is None or b is None else "agree" if a == b else "differ"
                rows.append([field, a, b, "", status, "not compared"])
        for comparison in (c for c, fields in reads.items() if not fields):  # compared on a derived value only
            step = steps.loc[comparison]
            rows.append([comparison, step["left"], step["right"], comparison, step["status"], step["label"]])
        return pd.DataFrame(rows, columns=SIDE_BY_SIDE_COLUMNS)

    def record(self, which: Which, decision: str, by: str = "") -> dict[str, Any]:
        """Write *decision* (same, different, skip) on a pair to the decisions file, with the
        values the side-by-side table shows and the model's probability; the next run of match
        applies it."""
        left, right = self._sides(which)
        seen = {row.field: [row.left, row.right] for row in self.side_by_side(which).itertuples(index=False)}
        score = float(self.waterfall(which)["probability"].iloc[-1])
        entry = decided.record_decision(self.project_root, self.entity, left, right, decision,
                                        by=by or self.reviewer or None, seen=seen, score=score)
        here = [_ordered(*row) == _ordered(*left, *right) for row in self.queue[PAIR].itertuples(index=False)]
        self.queue.loc[here, "decision"] = decision
        return entry

    def contradictions(self) -> pd.DataFrame:
        """Decisions that contradict each other: found in the decisions file as it is now, and
        reported by this run (where a shared unique key may take a "same" decision's part)."""
        in_file = decided.contradictions(decided.read_decisions(self.project_root, self.entity))
        found = [in_file.assign(found_in="decisions file")]
        path = self.run_path / "match" / "contradictions.parquet"
        if path.exists():
            in_run = pd.read_parquet(path)
            found.append(in_run[in_run["entity"] == self.entity].assign(found_in=f"run {self.run_path.name}"))
        found = [f for f in found if len(f)]
        if not found:
            return pd.DataFrame(columns=[*PAIR, "message", "found_in"])
        return (pd.concat(found, ignore_index=True).groupby(PAIR, sort=True)
                .agg(message=("message", "first"), found_in=("found_in", ", ".join)).reset_index())

    def styled_side_by_side(self, which: Which) -> Any:
        return _coloured(self.side_by_side(which).style.format(escape="html")).hide(axis="index")

    def styled_waterfall(self, which: Which) -> Any:
        """The waterfall as a table whose running sums are drawn as one: each step a bar from the
        sum before it to the sum after it (green for, red against), the final score from zero."""
        frame = self.waterfall(which)
        style = frame.style.format(escape="html").format(
            {"match_weight": "{:+.2f}", "cumulative_weight": "{:+.2f}", "probability": "{:.4f}"})
        style = style.apply(lambda _: _waterfall_bars(frame), subset=["cumulative_weight"], axis=0)
        return _coloured(style, subset=["status"]).hide(axis="index")


def _coloured(style: Any, subset: list[str] | None = None) -> Any:
    def colour(row: pd.Series) -> list[str]:
        return [f"background-color: {COLOURS[row['status']]}" if row["status"] in COLOURS else ""] * len(row)

    if subset is None:
        return style.apply(colour, axis=1)
    return style.apply(lambda column: [f"background-color: {COLOURS.get(v, 'transparent')}" for v in column],
                       subset=subset)


def _waterfall_bars(frame: pd.DataFrame) -> list[str]:
    """CSS drawing each row's step of the running sum on one scale (no chart library needed)."""
    after = frame["cumulative_weight"].to_numpy(dtype=float)
    final = (frame["step"] == "final").to_numpy()
    before = np.where(final, 0.0, np.concatenate([[0.0], after[:-1]]))
    low, high = min(0.0, *after), max(0.0, *after)
    span = (high - low) or 1.0
    out = []
    for start, end, last in zip(before, after, final):
        a, b = sorted(((start - low) / span * 100, (end - low) / span * 100))
        if b - a < 0.5:  # a step that moved nothing is a tick where the sum stands
            a, b = max(0.0, a - 0.25), min(100.0, b + 0.25)
        colour = "#9ab" if last else "#8c8" if end >= start else "#e88"
        out.append(f"width: 16em; background: linear-gradient(90deg, transparent {a:.1f}%, {colour} {a:.1f}%, "
                   f"{colour} {b:.1f}%, transparent {b:.1f}%)")
    return out


def _fields_read(entity: str, comparisons: list[str]) -> dict[str, set[str]]:
    """Comparison → the mapped fields it reads, by name (`phone` reads phone and mobile, `street`
    the street); one that reads none, an account's mail domain, is shown by its compared values."""
    design = models.DESIGNS[entity].comparisons
    shown = {"street_name": "street"}
    return {c: ({c} | {shown.get(col, col) for col in design.get(c, ())}) & _field_names(entity) for c in comparisons}


def _field_names(entity: str) -> set[str]:
    if entity == "contact":
        return set(features.CONTACT_FIELDS) | set(features.ADDRESS_FIELDS)
    return {"name"}


def _plain(value: Any) -> Any:
    """A value as JSON keeps it: no NaN, no NaT, dates as ISO text."""
    if value is None or (not isinstance(value, (list, tuple)) and pd.isna(value)):
        return None
    return value.isoformat() if hasattr(value, "isoformat") else value


def _ordered(ls: str, lk: str, rs: str, rk: str) -> tuple[tuple[str, str], tuple[str, str]]:
    left, right = (ls, lk), (rs, rk)
    return (left, right) if left <= right else (right, left)
