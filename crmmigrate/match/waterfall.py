"""A pair's match-weight waterfall, scored by Splink with the model its run saved.

The run's comparison columns are built again from its mapped records (the whole entity's, so
that term frequencies are the ones the run weighed names by), the saved model is loaded into a
Linker on the same DuckDB connection, and Splink scores the pair (`score_pair`) and lays out
its waterfall (the records behind `waterfall_chart`, which needs altair, not installed here).
Nothing is scored here: only the running sum is added, so the last row is the very score the
run gave the pair.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np
import pandas as pd

from crmmigrate.errors import SettingsError
from crmmigrate.match import features
from crmmigrate.match import model as models
from crmmigrate.rundir import read_tables

# How two values met in a comparison: its best level, a level in between (a typo, a nickname,
# names swapped), its last level, or its null level (a value missing on one side).
Status = Literal["agree", "partly", "differ", "missing"]
WATERFALL_COLUMNS = ["step", "label", "status", "left", "right", "match_weight", "cumulative_weight", "probability"]

Key = tuple[str, str]


class Scorer:
    """A run's records of one entity and the model the run saved, ready to score any pair."""

    def __init__(self, run_path: Path, entity: str) -> None:
        model_path = run_path / "match" / f"model-{entity}.json"
        if not model_path.exists():
            raise SettingsError(f"In run {run_path}: no match/{model_path.name}; run the match stage first")
        mapped = run_path / "map" / "mapped"
        self.con = duckdb.connect()
        records = read_tables(mapped / entity)
        if entity == "contact":
            index = features.contact_features(self.con, records, read_tables(mapped / "address"))
        else:
            index = features.account_features(self.con, records, read_tables(mapped / "contact"))
        self.ids = pd.Series(index["unique_id"].to_numpy(),
                             index=pd.MultiIndex.from_frame(index[["_source", "_source_key"]]))
        self.linker = models.linker_for(self.con, "features", json.loads(model_path.read_text(encoding="utf-8")))
        self._top = {c.output_column_name: max(level.comparison_vector_value
                                               for level in c._comparison_levels_excluding_null)
                     for c in self.linker._settings_obj.comparisons}

    def close(self) -> None:
        self.con.close()

    def comparisons(self) -> list[str]:
        return list(self._top)

    def _side(self, name: str, key: Key) -> Any:
        from splink import DuckDBAPI

        try:
            unique_id = int(self.ids[tuple(key)])
        except KeyError:
            raise SettingsError(f"Record {key[0]} {key[1]} is not among the run's mapped records") from None
        self.con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM features WHERE unique_id = ?", [unique_id])
        return DuckDBAPI(connection=self.con).register(name)

    def score(self, left: Key, right: Key) -> dict[str, Any]:
        """Splink's prediction for the pair, with every comparison's level (`gamma_`) and weight (`mw_`)."""
        scored = self.linker.inference.score_pair(self._side("_review_left", left), self._side("_review_right", right))
        return scored.as_record_list()[0]

    def waterfall(self, left: Key, right: Key) -> pd.DataFrame:
        """From the prior, per comparison the level the pair fell in and its match weight (and
        the term-frequency adjustment of a common or rare value), with the running sum and the
        probability it stands for; the last row is Splink's final score."""
        from splink.internals.waterfall_chart import records_to_waterfall_data

        record = self.score(left, right)
        data = pd.DataFrame(records_to_waterfall_data([record], self.linker._settings_obj, False))
        adjustment = data["term_frequency_adjustment"].eq(True)
        data = data[~adjustment | (data["log2_bayes_factor"] != 0)]  # a value's frequency that moved nothing
        steps = data["column_name"].map({"Prior": "prior", "Final score": "final"}).fillna(data["column_name"])
        weights = data["log2_bayes_factor"].astype(float).to_numpy()
        final = (steps == "final").to_numpy()
        cumulative = np.where(final, float(record["match_weight"]), np.cumsum(np.where(final, 0.0, weights)))
        probability = 2.0 ** cumulative / (1.0 + 2.0 ** cumulative)
        probability[final] = float(record["match_probability"])
        out = pd.DataFrame({
            "step": steps.to_numpy(), "label": data["label_for_charts"].to_numpy(),
            "status": [self._status(step, record) for step in steps],
            "left": data["value_l"].to_numpy(), "right": data["value_r"].to_numpy(),
            "match_weight": weights, "cumulative_weight": cumulative, "probability": probability,
        })
        return out[WATERFALL_COLUMNS]

    def _status(self, step: str, record: dict[str, Any]) -> str:
        name = step.removeprefix("tf_") if step.removeprefix("tf_") in self._top else step
        if name not in self._top:
            return ""
        gamma = int(record[f"gamma_{name}"])
        if gamma < 0:
            return "missing"
        return "agree" if gamma == self._top[name] else "differ" if gamma == 0 else "partly"
