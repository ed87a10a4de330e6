"""Pairwise precision and recall of clusters against a known truth (the demo generator's, a
benchmark's): every pair of records in one cluster is a predicted link."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class PairScores:
    predicted: int
    true: int
    correct: int

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        return self.correct / self.true if self.true else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def __str__(self) -> str:
        return (f"precision {self.precision:.4f}, recall {self.recall:.4f}, F1 {self.f1:.4f} "
                f"({self.correct:,} of {self.predicted:,} predicted pairs right; {self.true:,} true pairs)")


def _pairs(sizes: pd.Series) -> int:
    return int((sizes * (sizes - 1) // 2).sum())


def pair_scores(cluster: pd.Series, truth: pd.Series) -> PairScores:
    """*cluster* and *truth*: per record (aligned), the predicted and the true entity."""
    frame = pd.DataFrame({"c": cluster.to_numpy(), "t": truth.to_numpy()})
    return PairScores(predicted=_pairs(frame.groupby("c").size()), true=_pairs(frame.groupby("t").size()),
                      correct=_pairs(frame.groupby(["c", "t"]).size()))
