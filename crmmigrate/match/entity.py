"""One entity's records → scored pairs → clusters, review pairs and contradictions."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from crmmigrate.match import features
from crmmigrate.match import model as models
from crmmigrate.match.cluster import anchors, cluster
from crmmigrate.match.keys import cluster_uuid
from crmmigrate.spec.model import MatchSpec

SIDES = ["left_source", "left_key", "right_source", "right_key"]
# Comparisons that say who someone is; the others (address, e-mail, phone) change over a life.
IDENTITY = ("first_name", "last_name", "birth_date", "tax_id", "name")


@dataclass
class Matched:
    clusters: pd.DataFrame
    pairs: pd.DataFrame
    review: pd.DataFrame
    contradictions: pd.DataFrame
    model: dict[str, Any]
    report: dict[str, Any] = field(default_factory=dict)


def match_entity(entity: str, records: pd.DataFrame, spec: MatchSpec, rank: pd.Series, *,
                 addresses: pd.DataFrame | None = None, contacts: pd.DataFrame | None = None,
                 decisions: pd.DataFrame | None = None,
                 pinned: dict[str, Any] | None = None) -> Matched:
    """Cluster *records* (mapped rows of *entity*); *rank* is each record's department rank
    (lower is more trusted), aligned with *records*; *pinned* a saved model to reuse."""
    con = duckdb.connect()
    try:
        return _match(con, entity, records.assign(_rank=rank.to_numpy()), spec, addresses, contacts, decisions,
                      pinned)
    finally:
        con.close()


def _match(con: duckdb.DuckDBPyConnection, entity: str, records: pd.DataFrame, spec: MatchSpec,
           addresses: pd.DataFrame | None, contacts: pd.DataFrame | None, decisions: pd.DataFrame | None,
           pinned: dict[str, Any] | None) -> Matched:
    design = models.DESIGNS[entity]
    addresses = addresses if addresses is not None else pd.DataFrame()
    if entity == "contact":
        index = features.contact_features(con, records, addresses)
    else:
        index = features.account_features(con, records, contacts if contacts is not None else pd.DataFrame())
    index = index.merge(records[["_source", "_source_key", "_rank"]], on=["_source", "_source_key"], how="left")
    keys = pd.MultiIndex.from_frame(index[["_source", "_source_key"]])
    n = len(index)
    present = models.present_columns(con, "features")
    same, different = _decided(decisions, keys)
    if pinned is None and n < spec.training.min_records:
        pinned = models.default_model(entity)
        report = {"model": f"default ({n:,} records, fewer than training.min_records {spec.training.min_records:,})"}
    else:
        report = {"model": "pinned by the project" if pinned is not None else "trained by this run"}
    if pinned is not None:
        linker = models.linker_for(con, "features", pinned)
        if unused := models.unused_comparisons(design, present, pinned):
            # The data gained a field the model never learned: said, since retraining is a choice.
            report["not_in_model"] = unused
            report["hint"] = "these now hold data but the model does not compare them: crmmigrate match retrain"
    else:
        creator, names = models.settings(design, present)
        linker = models.linker_for(con, "features", creator)
        trained = models.train(linker, design, present, names, recall=spec.training.recall,
                               max_pairs=spec.training.max_pairs, seed=spec.training.seed, labels=same)
        report.update(trained.as_dict())
    labels = _level_labels(linker)
    predictions = linker.inference.predict(threshold_match_probability=spec.review)
    columns = {c.strip('"') for c in predictions.columns_escaped}
    # Names that disagree, unless a birth date or tax id vouches for the pair (a typo the fuzzy
    # levels missed): a household's members differ in name and in birth date. A birth date alone
    # that disagrees is left to the score (a slip of two digits is common, a namesake scores low).
    unlike = _else_weights(linker)  # a name at its comparison's last level: not even like the other
    against = " OR ".join(f"round(mw_{c}, 6) = {unlike[c]!r}" for c in ("first_name", "last_name", "name")
                          if f"mw_{c}" in columns and c in unlike)
    vouch = " OR ".join(f"mw_{c} > 3" for c in ("birth_date", "tax_id") if f"mw_{c}" in columns)
    shared = " OR ".join(f"mw_{c} > 0" for c in ("email", "phone", "street") if f"mw_{c}" in columns)
    if against and shared:  # the household's signature: a shared home, mailbox or line under another name
        against = f"({against}) AND ({shared})" + (f" AND NOT coalesce({vouch}, false)" if vouch else "")
    else:
        against = "false"
    scored = con.execute(f"""
        SELECT unique_id_l AS a, unique_id_r AS b, match_probability AS score, match_weight AS weight,
               coalesce({against}, false) AS identity_disagrees,
               {_evidence_sql(labels, predictions.columns_escaped)} AS evidence
        FROM {predictions.physical_name}""").df()
    must = same + _shared_unique(con, spec.unique, present)
    # However well the rest agrees, two records whose names disagree are not linked unseen: a
    # household shares its address, phone and e-mail.
    links = scored[(scored["score"] >= spec.link) & ~scored["identity_disagrees"]]
    first = cluster(n, must, links, different)
    guard = _guard(linker, con, first.labels, spec)
    final = cluster(n, must, links, different + [(a, b) for a, b, _ in guard]) if guard else first
    name = (index["_source"] + ":" + index["_source_key"]).to_numpy()
    guard_reason = {(min(a, b), max(a, b)): f"{name[a]} and {name[b]} {why}" for a, b, why in guard}

    review = _review(scored, final, guard_reason, spec, same, different)
    waiting = np.zeros(n, dtype=bool)
    waiting[review["a"].to_numpy(dtype=np.int64)] = True
    waiting[review["b"].to_numpy(dtype=np.int64)] = True

    anchor = anchors(final.labels, index[["_rank", "_source", "_source_key"]])
    ids = [cluster_uuid(entity, s, k) for s, k in zip(index["_source"].to_numpy()[anchor],
                                                       index["_source_key"].to_numpy()[anchor])]
    clusters = pd.DataFrame({"entity": entity, "_source": index["_source"], "_source_key": index["_source_key"],
                             "cluster_id": ids, "review": waiting})
    used = links[final.labels[links["a"].to_numpy()] == final.labels[links["b"].to_numpy()]]
    pairs = pd.concat([frame for frame in (
        _sides(entity, used, index).assign(link="model"),
        _sides(entity, _plain(same), index).assign(link="same"),
        _sides(entity, _plain(must[len(same):]), index).assign(link="unique"),
    ) if len(frame)], ignore_index=True) if len(used) or must else pd.DataFrame()
    decided_apart = set(different)
    contradictions = _sides(entity, _plain([p for p in final.contradictions if p in decided_apart]), index)[SIDES].assign(
        entity=entity, message="decided different, but decisions of 'same' join them through other records")
    report.update(records=n, clusters=int(len(set(ids))), pairs_scored=len(scored), links=len(used),
                  review=len(review), chaining_guard=len(guard), contradictions=len(contradictions),
                  decisions_applied=len(same) + len(different))
    review_out = _sides(entity, review, index)
    return Matched(clusters, pairs, review_out, contradictions, models.save(linker), report)


def _plain(pairs: list[tuple[int, int]]) -> pd.DataFrame:
    return pd.DataFrame(pairs, columns=["a", "b"], dtype=np.int64)


def _sides(entity: str, frame: pd.DataFrame, index: pd.DataFrame) -> pd.DataFrame:
    a, b = frame["a"].to_numpy(dtype=np.int64), frame["b"].to_numpy(dtype=np.int64)
    out = pd.DataFrame({"entity": entity,
                        "left_source": index["_source"].to_numpy()[a], "left_key": index["_source_key"].to_numpy()[a],
                        "right_source": index["_source"].to_numpy()[b],
                        "right_key": index["_source_key"].to_numpy()[b]})
    for column in ("score", "weight", "evidence", "reason"):
        if column in frame:
            out["match_weight" if column == "weight" else column] = frame[column].to_numpy()
    return out


def _decided(decisions: pd.DataFrame | None, keys: pd.MultiIndex) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Decisions on records present in this run, as (a, b) record numbers: same, different."""
    if decisions is None or decisions.empty:
        return [], []
    lookup = pd.Series(np.arange(len(keys)), index=keys)
    left = lookup.reindex(pd.MultiIndex.from_frame(decisions[["left_source", "left_key"]])).to_numpy()
    right = lookup.reindex(pd.MultiIndex.from_frame(decisions[["right_source", "right_key"]])).to_numpy()
    here = ~(np.isnan(left) | np.isnan(right))
    out: dict[str, list[tuple[int, int]]] = {"same": [], "different": []}
    for a, b, decision in zip(left[here], right[here], decisions["decision"].to_numpy()[here]):
        if decision in out:
            out[decision].append((int(min(a, b)), int(max(a, b))))
    return sorted(out["same"]), sorted(out["different"])


def _shared_unique(con: duckdb.DuckDBPyConnection, unique: tuple[str, ...], present: set[str]) -> list[tuple[int, int]]:
    """Records sharing a value of a key declared unique per entity are one, before any model."""
    out: list[tuple[int, int]] = []
    for column in unique:
        if column not in present:
            continue
        out += con.execute(f"""
            SELECT first_value(unique_id) OVER w, unique_id FROM features WHERE {column} IS NOT NULL
            WINDOW w AS (PARTITION BY {column} ORDER BY unique_id)
            QUALIFY row_number() OVER w > 1""").fetchall()
    return sorted(out)


def _guard(linker: Any, con: duckdb.DuckDBPyConnection, labels: np.ndarray, spec: MatchSpec) -> list[tuple[int, int, str]]:
    """Pairs inside a first-pass cluster that must not stay together: scored below no-link, or
    holding two different values of a key declared unique."""
    sizes = np.bincount(labels, minlength=len(labels))
    grouped = np.flatnonzero(sizes[labels] > 1)
    if not len(grouped):
        return []
    con.register("_grouped", pd.DataFrame({"unique_id": grouped, "_cluster": labels[grouped]}))
    con.execute("CREATE OR REPLACE TABLE features_grouped AS SELECT f.*, g._cluster FROM features f "
                "JOIN _grouped g USING (unique_id)")
    con.unregister("_grouped")
    out: list[tuple[int, int, str]] = []
    for column in spec.unique:
        rows = con.execute(f"""SELECT l.unique_id, r.unique_id FROM features_grouped l JOIN features_grouped r
                              ON l._cluster = r._cluster AND l.unique_id < r.unique_id
                              WHERE l.{column} <> r.{column}""").fetchall()
        out += [(a, b, f"different {column}") for a, b in rows]
    sdf = linker._db_api.register("features_grouped")
    for column in _tf_columns(linker):
        linker.table_management.compute_tf_table(column)
    within = linker.inference.predict_within(
        sdf, blocking_rules_to_generate_predictions=["l._cluster = r._cluster"], warning_mode="never",
    ).as_pandas_dataframe()
    # A pair below no-link whose identities disagree (names or birth dates that differ, two tax
    # ids: an identity comparison weighing below zero). Two records of one person that merely
    # share too little to tell (a mailing list's entry and an invoice address) score below no-link
    # as well, near the prior; and one person's old address, second e-mail or other phone is no
    # sign of a chain either: refusing those split real people.
    weights = [f"mw_{c}" for c in IDENTITY if f"mw_{c}" in within.columns]
    against = (within[weights] < -1.0).any(axis=1) if weights else pd.Series(False, index=within.index)
    low = within[(within["match_probability"] < spec.review) & against]
    for row in low.itertuples(index=False):
        values = row._asdict()
        disagree = ", ".join(f"{c[3:]} {values[c]:+.1f}" for c in weights if values[c] < -1.0)
        out.append((int(values["unique_id_l"]), int(values["unique_id_r"]),
                    f"scored {values['match_probability']:.3f}, below no-link; they disagree on {disagree}"))
    return out


def _tf_columns(linker: Any) -> list[str]:
    return sorted({level._tf_adjustment_input_column.unquote().name
                   for c in linker._settings_obj.comparisons for level in c.comparison_levels
                   if level._has_tf_adjustments})


def _review(scored: pd.DataFrame, final: Any, guard_reason: dict[tuple[int, int], str], spec: MatchSpec,
            same: list[tuple[int, int]], different: list[tuple[int, int]]) -> pd.DataFrame:
    labels = final.labels
    decided = set(same) | set(different)
    lo = np.minimum(scored["a"], scored["b"])
    hi = np.maximum(scored["a"], scored["b"])
    apart = labels[lo.to_numpy()] != labels[hi.to_numpy()]
    undecided = np.array([(a, b) not in decided for a, b in zip(lo, hi)], dtype=bool)
    band = scored[apart & undecided & (scored["score"] < spec.link)].assign(reason="uncertain")
    vetoed = scored[apart & undecided & (scored["score"] >= spec.link) & scored["identity_disagrees"]].assign(
        reason="names disagree: much else agrees (a household shares address, phone and e-mail)")
    refused = {(a, b): guard_reason.get((min(x, y), max(x, y))) for a, b, x, y in final.refused}
    refused = {k: v for k, v in refused.items() if v is not None}  # a "different" decision is no question
    guarded = scored.assign(_k=list(zip(lo, hi)))
    guarded = guarded[guarded["_k"].isin(refused.keys())]
    guarded = guarded.assign(reason=["chaining guard: " + str(refused[k]) for k in guarded["_k"]]).drop(columns="_k")
    out = pd.concat([frame for frame in (band, vetoed, guarded) if len(frame)], ignore_index=True) if (
        len(band) or len(vetoed) or len(guarded)) else band
    out["a"], out["b"] = np.minimum(out["a"], out["b"]), np.maximum(out["a"], out["b"])
    return out.sort_values(["a", "b"], kind="stable").reset_index(drop=True)


def _else_weights(linker: Any) -> dict[str, float]:
    return {c.output_column_name: round(float(c._comparison_levels_excluding_null[-1]._match_weight), 6)
            for c in linker._settings_obj.comparisons if c._comparison_levels_excluding_null}


def _level_labels(linker: Any) -> dict[str, dict[float, str]]:
    """Per comparison, each level's match weight → its label (Splink reports a pair's weight per
    comparison, `mw_<name>`, not the level; the weights of one comparison's levels differ)."""
    out = {}
    for comparison in linker._settings_obj.comparisons:
        out[comparison.output_column_name] = {round(float(level._match_weight), 6): level.label_for_charts
                                              for level in comparison._comparison_levels_excluding_null}
    return out


def _evidence_sql(labels: dict[str, dict[float, str]], columns: list[str]) -> str:
    """`first_name: Exact match on first_name (+6.1); email: All other comparisons (-4.2)`: each
    comparison that moved the score, with its weight (a null or neutral one moves nothing).
    Written in SQL: a run can score millions of pairs."""
    present = {c.strip('"') for c in columns}
    parts = []
    for name, levels in labels.items():
        column = f"mw_{name}"
        if column not in present:
            continue
        label = "CASE round({c}, 6) " + " ".join(
            f"WHEN {weight!r} THEN {_sql_text(text)}" for weight, text in levels.items()) + " ELSE '?' END"
        parts.append(f"CASE WHEN abs({column}) > 1e-9 THEN {_sql_text(name + ': ')} || "
                     f"{label.format(c=column)} || printf(' (%+.1f)', {column}) END")
    return f"concat_ws('; ', {', '.join(parts)})" if parts else "NULL::VARCHAR"


def _sql_text(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def load_model(path: Path) -> dict[str, Any] | None:
    """A pinned model as Splink reads it (our own note of its run removed)."""
    if not path.exists():
        return None
    model = json.loads(path.read_text(encoding="utf-8"))
    model.pop("crmmigrate_pinned_from_run", None)
    return model
