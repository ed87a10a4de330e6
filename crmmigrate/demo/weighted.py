"""Weighted draws for the demo generator."""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Iterable, Sequence


class Weighted:
    """Draws from *pool* with *weights*, as ``rng.choices`` does, without summing the weights
    again on every draw (a million people make tens of millions of draws)."""

    def __init__(self, pool: Sequence, weights: Iterable[float]):
        self.pool = pool
        self.cum = list(itertools.accumulate(weights))

    @classmethod
    def zipf(cls, pool: Sequence, exponent: float) -> Weighted:
        """A pool listed most common first: its k-th item has weight k**-exponent."""
        return cls(pool, [(k + 1) ** -exponent for k in range(len(pool))])

    def draw(self, rng: random.Random):
        return self.pool[bisect.bisect(self.cum, rng.random() * self.cum[-1])]
