"""The Splink model that scores two records: its comparisons, its blocking, its training.

Comparisons are chosen from the columns the data holds, so a company whose systems know no
birth date gets a model without one rather than a comparison it can never train. Training
needs no labels: the prior from deterministic rules of a stated recall, u from random pairs
(fixed seed, stated budget), m by expectation maximisation on several blocks that together
leave no comparison untrained (a comparison cannot learn m from a block that fixes its own
columns). A level EM never saw in any block gets m = u (weight 0, reported), since Splink's
own placeholder for it (m = 1e-6) would count a rare agreement as strong evidence against.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pandas as pd

from crmmigrate.errors import CrmMigrateError

log = logging.getLogger(__name__)


class MatchError(CrmMigrateError):
    """The match model cannot be built or trained on this data."""


def _splink():
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    return cl, cll, DuckDBAPI, Linker, SettingsCreator, block_on


# Which feature columns each comparison reads; a comparison is built when any holds data.
CONTACT_COMPARISONS: dict[str, tuple[str, ...]] = {
    "first_name": ("first_name",),
    "last_name": ("last_name",),
    "birth_date": ("birth_date",),
    "email": ("email",),
    "phone": ("phone", "mobile"),
    "street": ("street_name",),
    "postcode": ("postcode",),
    "city": ("city",),
    "region": ("region",),
    "tax_id": ("tax_id",),
}
# A company's own fields only: the address on a legacy row that names a company is its
# contact's, which says nothing about whether two rows name the same company.
ACCOUNT_COMPARISONS: dict[str, tuple[str, ...]] = {"name": ("name",), "domain": ("domain",), "tax_id": ("tax_id",)}


def _split_differently() -> Any:
    _, cll, *_ = _splink()
    return cll.CustomLevel("full_name_l = full_name_r", label_for_charts="same name, split differently")


def _contact_comparison(name: str, present: set[str]) -> Any:
    cl, cll, *_ = _splink()
    swapped = "first_name" in present and "last_name" in present
    if name == "first_name":
        levels = [cll.NullLevel("first_name"), cll.ExactMatchLevel("first_name", term_frequency_adjustments=True)]
        if swapped:
            levels += [cll.ColumnsReversedLevel("first_name", "last_name").configure(
                label_for_charts="first and last name swapped"), _split_differently()]
        levels += [
            cll.CustomLevel("list_has_any(first_forms_l, first_forms_r)", label_for_charts="nickname of each other"),
            cll.JaroWinklerLevel("first_name", 0.92),
            cll.JaroWinklerLevel("first_name", 0.85),
            cll.CustomLevel("(length(first_name_l) = 1 OR length(first_name_r) = 1) "
                            "AND first_initial_l = first_initial_r", label_for_charts="initial agrees"),
            # A typo the levels above missed is still like the name; a family member's is not.
            cll.JaroWinklerLevel("first_name", 0.7),
            cll.ElseLevel(),
        ]
        return cl.CustomComparison(levels, output_column_name="first_name")
    if name == "last_name":
        levels = [cll.NullLevel("last_name"), cll.ExactMatchLevel("last_name", term_frequency_adjustments=True)]
        if swapped:
            levels += [cll.ColumnsReversedLevel("last_name", "first_name").configure(
                label_for_charts="first and last name swapped"), _split_differently()]
        # `Tanja` alone, read as a surname by one system, is the other's first name. Splink's swapped
        # level reads one direction only (l.last_name = r.first_name); this is the other, for a
        # record without a first name. (Both directions at once lost recall on the demo: 0.9889 → 0.9851.)
        if swapped:
            levels.append(cll.CustomLevel("(first_name_l IS NULL AND last_name_l = first_name_r) OR "
                                          "(first_name_r IS NULL AND last_name_r = first_name_l)",
                                          label_for_charts="one name only, the other's first name"))
        levels += [cll.JaroWinklerLevel("last_name", 0.92), cll.JaroWinklerLevel("last_name", 0.85),
                   cll.JaroWinklerLevel("last_name", 0.7), cll.ElseLevel()]
        return cl.CustomComparison(levels, output_column_name="last_name")
    if name == "birth_date":
        return cl.CustomComparison([
            cll.NullLevel("birth_date"),
            cll.ExactMatchLevel("birth_date"),
            cll.CustomLevel("birth_date_swapped_l = birth_date_r", label_for_charts="day and month swapped"),
            cll.DamerauLevenshteinLevel("birth_date", 1).configure(label_for_charts="one digit differs"),
            cll.CustomLevel("birth_year_l = birth_year_r", label_for_charts="same year"),
            cll.ElseLevel(),
        ], output_column_name="birth_date")
    if name == "email":  # the whole address, then its local part: never a form without its punctuation
        return cl.CustomComparison([
            cll.NullLevel("email"),
            cll.ExactMatchLevel("email"),
            # Namesakes write their names into their addresses: agreement there is the names'
            # own, counted once already (Splink takes comparisons as independent), so it weighs 0.
            cll.CustomLevel("email_local_named_l AND email_local_named_r AND "
                            "jaro_winkler_similarity(email_local_l, email_local_r) >= 0.88")
            .configure(m_probability=0.5, u_probability=0.5, fix_m_probability=True, fix_u_probability=True,
                       label_for_charts="local parts made of the name, other domain"),
            # Local parts are made of names (`j.mueller`): weighed by how common each is, so that
            # namesakes' addresses at two providers do not count as one person's.
            cll.ExactMatchLevel("email_local", term_frequency_adjustments=True).configure(
                label_for_charts="same local part, other domain"),
            cll.JaroWinklerLevel("email_local", 0.88).configure(label_for_charts="local part similar"),
            cll.ElseLevel(),
        ], output_column_name="email")
    if name == "phone":  # a landline in one system is often the mobile in another
        return cl.CustomComparison([
            cll.CustomLevel("(phone_l IS NULL AND mobile_l IS NULL) OR (phone_r IS NULL AND mobile_r IS NULL)")
            .configure(is_null_level=True, label_for_charts="no phone on one side"),
            cll.CustomLevel("phone_l = phone_r OR mobile_l = mobile_r OR phone_l = mobile_r OR mobile_l = phone_r",
                            label_for_charts="a phone agrees"),
            cll.ElseLevel(),
        ], output_column_name="phone")
    if name == "street":
        return cl.CustomComparison([
            cll.NullLevel("street_name"),
            cll.CustomLevel("street_number_l = street_number_r AND "
                            "jaro_winkler_similarity(street_name_l, street_name_r) >= 0.9",
                            label_for_charts="same number, similar street"),
            cll.JaroWinklerLevel("street_name", 0.9).configure(label_for_charts="similar street, other number"),
            cll.ElseLevel(),
        ], output_column_name="street")
    if name == "postcode":
        return cl.CustomComparison([cll.NullLevel("postcode"), cll.ExactMatchLevel("postcode"),
                                    cll.DamerauLevenshteinLevel("postcode", 1), cll.ElseLevel()],
                                   output_column_name="postcode")
    if name == "city":
        return cl.CustomComparison([cll.NullLevel("city"), cll.ExactMatchLevel("city", term_frequency_adjustments=True),
                                    cll.JaroWinklerLevel("city", 0.9), cll.ElseLevel()], output_column_name="city")
    if name in ("region", "tax_id"):
        return cl.ExactMatch(name)
    raise KeyError(name)


def _account_comparison(name: str, present: set[str]) -> Any:
    cl, cll, *_ = _splink()
    if name == "name":
        # No term-frequency adjustment: a company name is frequent because the company has many
        # records, which says nothing against two of them being one company.
        return cl.CustomComparison([cll.NullLevel("name"), cll.ExactMatchLevel("name"),
                                    cll.JaroWinklerLevel("name", 0.95), cll.JaroWinklerLevel("name", 0.88),
                                    cll.ElseLevel()], output_column_name="name")
    return cl.ExactMatch(name)


@dataclass(frozen=True)
class Design:
    """Per entity: comparisons, prediction blocking, training blocks and prior rules, as
    (feature columns it needs) → rule. A rule whose columns hold no data is left out."""

    comparisons: dict[str, tuple[str, ...]]
    build: Any
    blocking: list[tuple[tuple[str, ...], str]]
    training: list[tuple[tuple[str, ...], str]]
    prior: list[tuple[tuple[str, ...], str]]
    # Random pairs estimate u well only when few of them match. Companies have many records each
    # (a company's employees in every system): random pairs of one company agree on its name so
    # often that u swallows the evidence. There u is sampled from the distinct compared values,
    # where records of one company mostly collapse into one.
    u_from_distinct: bool = False


def _eq(*columns: str) -> tuple[tuple[str, ...], str]:
    return columns, " AND ".join(f"l.{c} = r.{c}" for c in columns)


CONTACT = Design(
    comparisons=CONTACT_COMPARISONS,
    build=_contact_comparison,
    blocking=[
        _eq("first_name", "last_name"),
        (("first_name", "last_name"), "l.first_name = r.last_name AND l.last_name = r.first_name"),
        _eq("last_name", "birth_date"),
        _eq("first_name", "birth_date"),
        _eq("birth_date", "postcode"),
        _eq("email"),
        _eq("phone"), _eq("mobile"),
        (("phone", "mobile"), "l.phone = r.mobile"),
        (("phone", "mobile"), "l.mobile = r.phone"),
        _eq("last_name", "postcode"),
        _eq("first_name", "postcode"),
        _eq("street_number", "street_name", "city"),
        _eq("tax_id"),
    ],
    # Each name comparison reads both name columns (its swapped level): only a block that fixes
    # neither name trains them, and data without e-mail or phone (FEBRL) has just this one.
    training=[
        _eq("last_name", "birth_date"),
        _eq("email"),
        _eq("first_name", "postcode"),
        _eq("phone"),
        _eq("first_name", "last_name"),
        _eq("birth_date", "postcode"),
    ],
    prior=[_eq("first_name", "last_name", "birth_date"), _eq("first_name", "last_name", "email"),
           _eq("first_name", "last_name", "phone")],
)
ACCOUNT = Design(
    comparisons=ACCOUNT_COMPARISONS, build=_account_comparison,
    blocking=[_eq("name"), _eq("domain"), _eq("tax_id")],
    training=[_eq("name"), _eq("domain"), _eq("tax_id")],
    prior=[_eq("name", "domain")],
    u_from_distinct=True,
)
DESIGNS = {"contact": CONTACT, "account": ACCOUNT}


@dataclass
class TrainingReport:
    comparisons: list[str]
    prior_rules: list[str]
    training_blocks: list[str]
    blocks_left_out: list[str] = field(default_factory=list)
    probability_two_random_records_match: float = 0.0
    levels_not_observed: list[str] = field(default_factory=list)
    u_max_pairs: int = 0
    seed: int = 0
    labelled_pairs: int = 0  # pairs decided "same" that m was also estimated from
    pinned_from: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def present_columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    """Feature columns holding a value in at least two records (one value cannot agree with anything)."""
    columns = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall() if r[0] != "unique_id"]
    counts = con.execute(f"SELECT {', '.join(f'count({c})' for c in columns)} FROM {table}").fetchall()[0]
    return {c for c, n in zip(columns, counts) if n >= 2}


def unused_comparisons(design: Design, present: set[str], model: dict[str, Any]) -> list[str]:
    """Comparisons the data could feed that *model* (a saved one) does not make."""
    made = {c["output_column_name"] for c in model.get("comparisons", [])}
    return [n for n, cols in design.comparisons.items() if n not in made and any(c in present for c in cols)]


def _usable(rules: list[tuple[tuple[str, ...], str]], present: set[str], any_of: bool = False) -> list[str]:
    test = any if any_of else all
    return [sql for columns, sql in rules if test(c in present for c in columns)]


def settings(design: Design, present: set[str]) -> tuple[Any, list[str]]:
    _, _, _, _, SettingsCreator, _ = _splink()
    names = [n for n, cols in design.comparisons.items() if any(c in present for c in cols)]
    if not names:
        raise MatchError("no column to compare holds data in two records or more")
    blocking = _usable(design.blocking, present) or ["1 = 1"]
    creator = SettingsCreator(
        unique_id_column_name="unique_id",
        link_type="dedupe_only",
        blocking_rules_to_generate_predictions=blocking,
        comparisons=[design.build(n, present) for n in names],
        retain_intermediate_calculation_columns=True,  # mw_<comparison>: the evidence of each pair
        retain_matching_columns=False,
    )
    return creator, names


def linker_for(con: duckdb.DuckDBPyConnection, table: str, model: Any) -> Any:
    """A Linker over *table* with *model*: a SettingsCreator, or a saved model's dict."""
    _, _, DuckDBAPI, Linker, _, _ = _splink()
    db_api = DuckDBAPI(connection=con)
    linker = Linker(db_api.register(table), model)
    # Splink narrates every step on stderr; what a run needs to know is in run.json's match counts.
    logging.getLogger("splink").setLevel(logging.ERROR)
    return linker


def train(linker: Any, design: Design, present: set[str], names: list[str], *, recall: float, max_pairs: int,
          seed: int, labels: Sequence[tuple[int, int]] = ()) -> TrainingReport:
    """Train *linker*'s model; *labels* are (unique_id, unique_id) pairs a consultant decided are one."""
    report = TrainingReport(comparisons=names, prior_rules=_usable(design.prior, present),
                            training_blocks=[], u_max_pairs=max_pairs, seed=seed)
    if report.prior_rules:
        linker.training.estimate_probability_two_random_records_match(report.prior_rules, recall=recall)
    report.probability_two_random_records_match = float(linker._settings_obj._probability_two_random_records_match)
    if design.u_from_distinct:
        _estimate_u_on_distinct(linker, max_pairs, seed)
    else:
        linker.training.estimate_u_using_random_sampling(max_pairs=max_pairs, seed=seed)
    for sql in _usable(design.training, present):
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(
                sql, estimate_without_term_frequencies=True)
        except Exception as exc:  # a block with no pair, or one where EM drove an m to 0: the coverage check decides
            if not any(text in str(exc) for text in _UNUSABLE_BLOCK):
                raise
            log.info("training block %s left out: %s", sql, exc)
            report.blocks_left_out.append(sql)
            continue
        report.training_blocks.append(sql)
    if labels:
        # Pairs known to match show m directly. Splink adds their estimate to EM's and keeps the
        # median of each level's estimates, so a few decisions refine m rather than replace it.
        table = pd.DataFrame(sorted(labels), columns=["unique_id_l", "unique_id_r"], dtype="int64")
        linker.table_management.register_table(table, "__crmmigrate_labels", overwrite=True)
        linker.training.estimate_m_from_pairwise_labels("__crmmigrate_labels")
        report.labelled_pairs = len(table)
    report.levels_not_observed = _settle_unestimated(linker, max_pairs)
    return report


def _estimate_u_on_distinct(linker: Any, max_pairs: int, seed: int) -> None:
    """u sampled from the table's distinct rows (ids aside), then given to *linker*'s levels."""
    con = linker._db_api._con
    table = linker._input_tables_dict[next(iter(linker._input_tables_dict))].physical_name
    columns = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall() if r[0] != "unique_id"]
    con.execute(f"CREATE OR REPLACE TABLE {table}_distinct AS SELECT min(unique_id) AS unique_id, "
                f"{', '.join(columns)} FROM {table} GROUP BY ALL")
    other = linker_for(con, f"{table}_distinct", linker.misc.save_model_to_json())
    other.training.estimate_u_using_random_sampling(max_pairs=max_pairs, seed=seed)
    learned = {c.output_column_name: c for c in other._settings_obj.comparisons}
    for comparison in linker._settings_obj.comparisons:
        source = learned[comparison.output_column_name]
        for level in comparison._comparison_levels_excluding_null:
            twin = source._get_comparison_level_by_comparison_vector_value(level.comparison_vector_value)
            for entry in twin._trained_u_probabilities:
                level._add_trained_u_probability(entry["probability"], entry["description"] + " (distinct rows)")


_UNUSABLE_BLOCK = ("No comparisons", "no rows", "below the minimum allowed value")


def _settle_unestimated(linker: Any, max_pairs: int) -> list[str]:
    """Fail on a level no training block could estimate; neutralise levels EM never observed.
    A level no random pair showed (two equal tax ids) is rarer than one in *max_pairs*: its u
    says so, instead of Splink's default."""
    untrained, not_observed = [], []
    for comparison in linker._settings_obj.comparisons:
        for level in comparison._comparison_levels_excluding_null:
            label = f"{comparison.output_column_name}: {level.label_for_charts}"
            if not level._u_is_trained:
                level.u_probability = 1.0 / max_pairs
            estimates = [e["probability"] for e in level._trained_m_probabilities]
            if not estimates:
                untrained.append(label)
            elif not any(isinstance(p, (int, float)) for p in estimates):
                level.m_probability = max(level.u_probability or 0.0, 1e-6) if level._u_is_trained else 1e-6
                not_observed.append(label)
    if untrained:
        raise MatchError("the model could not estimate m for " + "; ".join(untrained)
                         + ": every training block fixes these comparisons' own columns")
    return not_observed


DEFAULTS = Path(__file__).parent / "defaults"


def default_model(entity: str) -> dict[str, Any]:
    """The model shipped with crmmigrate, for data too small to train on (`python -m
    crmmigrate.defaultmodels` trains it anew on the generated demo systems)."""
    model = json.loads((DEFAULTS / f"model-{entity}.json").read_text(encoding="utf-8"))
    model.pop("crmmigrate_trained_on", None)
    # A name's frequency in a few hundred records says little about how common it is: the
    # default model weighs an exact name by the frequency it learned, not by this data's.
    for comparison in model["comparisons"]:
        for level in comparison["comparison_levels"]:
            # (removed, not weighted 0: Splink saves a weight of 0 as its default, 1)
            level.pop("tf_adjustment_column", None)
            level.pop("tf_adjustment_weight", None)
    return model


def save(linker: Any) -> dict[str, Any]:
    model = linker.misc.save_model_to_json()
    model.pop("linker_uid", None)  # a random name per Linker: the same training gives the same model
    return model


def dumps(model: dict[str, Any]) -> str:
    return json.dumps(model, indent=1, sort_keys=True, default=str)
