"""crmmigrate/countries.py: what the `country` transform reads, and its SQL folding checked
character by character against Python's."""

from __future__ import annotations

import gettext

import duckdb
import pyarrow as pa
import pycountry
import pytest
from hypothesis import given, seed, settings
from hypothesis import strategies as st

from crmmigrate import countries
from crmmigrate.countries import (
    ALIASES, LANGUAGES, SQL_BLOCKS, SQL_ODD, alpha2, codes, fold, fold_sql, names, sql_foldable,
)
from crmmigrate.sqltext import ident

SEED = 20261207


@pytest.mark.parametrize(("text", "folded"), [
    ("Česká  Republika", "ceskarepublika"), ("U.K.", "uk"), ("STRASSE", "strasse"), ("Straße", "strasse"),
    ("Côte d'Ivoire", "cotedivoire"), ("Guinea-Bissau", "guineabissau"), ("  Österreich\t", "osterreich"),
    ("ﬁji", "fiji"), ("ＤＥ", "de"), ("e\u0301ire", "eire"), ("Κύπρος", "κυπροσ"), ("", ""), ("-/.", ""),
])
def test_fold(text: str, folded: str) -> None:
    assert fold(text) == folded


def test_every_language_has_a_catalog() -> None:
    assert all(gettext.find("iso3166-1", pycountry.LOCALES_DIR, languages=[lang]) for lang in LANGUAGES)


def test_every_country_reads_by_its_codes_and_english_names() -> None:
    wrong = []
    for country in pycountry.countries:
        texts = [country.alpha_2, country.alpha_3, country.alpha_2.lower(), f" {country.alpha_3.lower()} "]
        texts += [getattr(country, a) for a in ("name", "official_name", "common_name") if hasattr(country, a)]
        wrong += [(t, country.alpha_2, alpha2(t)) for t in texts if alpha2(t) != country.alpha_2]
    assert len(pycountry.countries) == 249 and wrong == []


def test_a_name_never_folds_to_another_countrys_code(monkeypatch: pytest.MonkeyPatch) -> None:
    assert len(codes()) == 2 * len(pycountry.countries)
    assert [k for k, code in names().items() if codes().get(k.upper(), code) != code] == []
    names.cache_clear()
    monkeypatch.setattr(countries, "LANGUAGES", ("vi",))  # Vietnamese: `Áo` is Austria, `AO` Angola
    try:
        assert countries._local()["ao"] == {"AT"} and "ao" not in names()
    finally:
        names.cache_clear()


@pytest.mark.parametrize("text", ["N/A", "n.a.", "D.E.", "d e", "de.", "ıt", "ＤＥ", "D-E-U"])
def test_a_code_is_read_only_as_written(text: str) -> None:
    assert alpha2(text) is None


def test_a_name_pycountrys_own_lookup_finds_is_read_as_the_same_country() -> None:
    for key, code in names().items():
        try:
            found = pycountry.countries.lookup(key)
        except LookupError:
            continue
        assert found.alpha_2 == code, key


def test_each_alias_is_needed_and_agrees_with_pycountry(monkeypatch: pytest.MonkeyPatch) -> None:
    with_aliases = dict(names())
    names.cache_clear()
    monkeypatch.setattr(countries, "ALIASES", {})
    try:
        without = names()
        assert [a for a in ALIASES if fold(a) in without] == []  # pycountry or a catalog reads it already
    finally:
        names.cache_clear()
    assert {a: with_aliases[fold(a)] for a in ALIASES} == ALIASES
    for alias, code in ALIASES.items():
        assert pycountry.countries.get(alpha_2=code) is not None, alias


@pytest.mark.parametrize(("text", "code"), [
    ("Deutschland", "DE"), ("Bundesrepublik Deutschland", "DE"), ("Österreich", "AT"), ("OESTERREICH", None),
    ("Osterreich", "AT"), ("Schweiz", "CH"), ("Suisse", "CH"), ("Svizzera", "CH"),
    ("Schweizerische Eidgenossenschaft", "CH"), ("España", "ES"), ("Espana", "ES"), ("Nederland", "NL"),
    ("Niederlande", "NL"), ("Pays-Bas", "NL"), ("Holland", "NL"), ("België", "BE"), ("Belgique", "BE"),
    ("Belgien", "BE"), ("Polska", "PL"), ("Česko", "CZ"), ("Česká republika", "CZ"), ("Tschechien", "CZ"),
    ("Czech Republic", "CZ"), ("Sverige", "SE"), ("Danmark", "DK"), ("Dänemark", "DK"), ("Italia", "IT"),
    ("Italien", "IT"), ("Magyarország", "HU"), ("Suomi", "FI"), ("Norge", "NO"), ("Ísland", "IS"), ("Éire", "IE"),
    ("Eesti", "EE"), ("Latvija", "LV"), ("Lietuva", "LT"), ("Slovensko", "SK"), ("Slovenija", "SI"),
    ("Hrvatska", "HR"), ("România", "RO"), ("България", "BG"), ("Ελλάδα", "GR"), ("Κύπρος", "CY"),
    ("Türkiye", "TR"), ("Türkei", "TR"), ("Turquie", "TR"), ("Luxemburg", "LU"), ("Frankreich", "FR"),
    ("Vereinigtes Königreich", "GB"), ("Royaume-Uni", "GB"), ("Reino Unido", "GB"),
    ("Vereinigte Staaten von Amerika", "US"), ("États-Unis", "US"), ("Estados Unidos", "US"), ("USA", "US"),
    ("U.S.A.", "US"), ("United States of America", "US"), ("Russland", "RU"), ("Südkorea", "KR"),
    ("Brasil", "BR"), ("México", "MX"),
    # ALIASES
    ("UK", "GB"), ("U.K.", "GB"), ("Great Britain", "GB"), ("Großbritannien", "GB"), ("GROSSBRITANNIEN", "GB"),
    ("England", "GB"), ("Turkey", "TR"), ("Ivory Coast", "CI"), ("Slovenská republika", "SK"),
    # not read: ambiguous, historic, numeric, misspelt, a shared catalog name
    ("Korea", None), ("Congo", "CG"), ("Macedonia", None), ("Czechoslovakia", None), ("276", None),
    ("Germnay", None), ("Kosovo", None), ("República de Zambia", None), ("Europe", None),
])
def test_local_names_and_aliases(text: str, code: str | None) -> None:
    assert alpha2(text) == code


def _sql_fold(con: duckdb.DuckDBPyConnection, texts: list[str]) -> list[tuple[str, bool]]:
    con.register("t", pa.table({"V": pa.array(texts, pa.string())}))
    try:
        return con.sql(f"SELECT {fold_sql(ident('V'))}, {sql_foldable(ident('V'))} FROM t").fetchall()
    finally:
        con.unregister("t")


FOLDABLE = [chr(c) for lo, hi in SQL_BLOCKS for c in range(lo, hi + 1) if chr(c) not in SQL_ODD]
PIECES = ["\u0301", "\u0308", "\u030c", "ß", "ẞ", "ς", "Σ", "A", "e", "I", "ı", "İ", " ", "-"]  # drawn often


def test_sql_folds_every_character_of_its_blocks_as_python_but_the_odd_ones() -> None:
    con = duckdb.connect()
    chars = [chr(c) for lo, hi in SQL_BLOCKS for c in range(lo, hi + 1)]
    differ = [c for c, (folded, _) in zip(chars, _sql_fold(con, chars)) if folded != fold(c)]
    assert differ == list(SQL_ODD)  # exactly: none is left out, and none is given to Python needlessly
    assert [c for c, (_, foldable) in zip(chars, _sql_fold(con, chars)) if not foldable] == list(SQL_ODD)


def test_sql_leaves_other_scripts_to_python() -> None:
    assert [f for _, f in _sql_fold(duckdb.connect(), ["日本", "ＤＥ", "ﬁji", "µ", "Deutschland", ""])] == [
        False, False, False, False, True, True]


@seed(SEED)
@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(st.lists(st.one_of(st.sampled_from(FOLDABLE), st.sampled_from(PIECES)), max_size=12).map("".join),
                min_size=1, max_size=30))
def test_sql_folds_foldable_text_as_python(texts: list[str]) -> None:
    """Folding is per character on both sides: combinations (an accent after any letter, ß, final
    sigma) fold alike too."""
    assert [f for f, _ in _sql_fold(duckdb.connect(), texts)] == [fold(t) for t in texts]


def test_the_sql_half_is_sure_of_every_spelling_it_can_fold_and_reads_it_as_python() -> None:
    """Every code and name in pycountry and the catalogs of LANGUAGES (upper-cased too) through
    the transform's two halves: wherever DuckDB folds the text alike, the SQL is sure of Python's
    reading, or certain of its refusal (a name two countries share)."""
    from tests.map.test_conformance import _sql
    from tests.map.test_sql import _python

    texts = set(ALIASES)
    for country in pycountry.countries:
        english = countries._english(country)
        texts |= {country.alpha_2, country.alpha_3.lower(), *english}
        for language in LANGUAGES:
            catalog = gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[language])
            texts |= {catalog.gettext(e) for e in english}
    values = sorted(texts) + [t.upper() for t in sorted(texts)]
    expected, _ = _python("country", values)
    got = _sql(duckdb.connect(), "country", values)
    foldable = [bool(f) for _, f in _sql_fold(duckdb.connect(), values)]
    assert len(values) > 15_000 and sum(foldable) > 0.99 * len(values)
    wrong = [(t, v, w) for t, (v, sure, refused), w, f in zip(values, got, expected, foldable)
             if f and ((v, sure, refused) != (w, True, False) if w else (sure, refused) != (False, True))]
    assert wrong == []
    assert 0 < sum(w is None for w in expected) < 100  # the few names two countries share
