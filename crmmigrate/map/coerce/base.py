"""What every coercion shares: each distinct text parsed once (Python half), the stripped text
(DuckDB half). Blank text is missing, not an invalid value (nor `False`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from crmmigrate.sqlpipe import _Pipe, _strip


def _per_value(values: pd.Series, parse: Callable[[str], object]) -> tuple[pd.Series, pd.Series]:
    """Blank text is missing (as the CSV reader already reads it), not an invalid value nor `False`.

    Each distinct text is parsed once per chunk (`pd.factorize`), then spread back to its rows:
    a legacy column repeats its values (codes, dates, flags), and *parse* is plain Python.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    parsed = np.empty(len(uniques) + 1, dtype=object)  # the last slot is for missing (-1)
    refused = np.zeros(len(uniques) + 1, dtype=bool)
    for pos, raw in enumerate(uniques):
        text = raw.strip()
        if not text:
            continue
        try:
            parsed[pos] = parse(text)
        except (ValueError, ArithmeticError, TypeError):
            refused[pos] = True
    return (pd.Series(parsed[codes], index=values.index, dtype=object),
            pd.Series(refused[codes], index=values.index))


def _stripped(p: _Pipe) -> str:
    """The text as _per_value hands it to a parser: Python's str.strip() (blank: '')."""
    return p.let(_strip(p.bind()))
