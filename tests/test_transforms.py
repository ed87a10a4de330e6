"""Every registered transform on literal values, including missing, blank and non-ASCII text."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from crmmigrate import transforms
from crmmigrate.map.mapper import map_frame
from crmmigrate.spec import load_mapping
from crmmigrate.spec.reasons import ReasonCode
from crmmigrate.transforms import get_transform, register_transform, transform_names

BUILT_IN = ["collapse_spaces", "country", "email", "lower", "nfc", "phone", "split_name", "title", "trim", "upper", "zfill"]


def s(*values: object) -> pd.Series:
    return pd.Series(list(values), dtype=object)


def out(values: pd.Series) -> list[object]:
    """Values as a list, every kind of missing shown as None."""
    return [None if v is None or v != v else v for v in values]


def call(name: str, values: pd.Series, **args: object) -> tuple[list[object], list[bool]]:
    result, bad = get_transform(name)(values, args, {"default_region": "DE"})
    assert list(result.index) == list(values.index)
    return out(result), [bool(b) for b in bad]


def test_the_built_in_transforms_are_registered() -> None:
    assert [n for n in transform_names() if n in BUILT_IN] == BUILT_IN


@pytest.mark.parametrize(("name", "args", "given", "expected"), [
    ("trim", {}, [" a ", "   ", "", None, " Jürgen\t"], ["a", None, None, None, "Jürgen"]),
    ("collapse_spaces", {}, [" a  b\t c ", "  ", None, "Ö  ö"], ["a b c", None, None, "Ö ö"]),
    ("lower", {}, ["ÄB", "Straße", None, ""], ["äb", "straße", None, ""]),
    ("upper", {}, ["straße", "äb", None], ["STRASSE", "ÄB", None]),
    ("title", {}, ["MÜLLER-LÜDENSCHEIDT", "o'neil", "anna maria", None], ["Müller-Lüdenscheidt", "O'Neil", "Anna Maria", None]),
    ("nfc", {}, ["u\u0308", "ü", None], ["ü", "ü", None]),
    ("zfill", {"width": 5}, ["1067", "01067", "ab1", "", None], ["01067", "01067", "ab1", "", None]),
])
def test_text_transforms(name: str, args: dict, given: list, expected: list) -> None:
    values, bad = call(name, s(*given), **args)
    assert values == expected
    assert bad == [False] * len(given)


@pytest.mark.parametrize("name", BUILT_IN)
def test_every_transform_accepts_an_empty_and_an_all_missing_series(name: str) -> None:
    args = {"width": 5} if name == "zfill" else {"part": "given"} if name == "split_name" else {}
    assert call(name, s(), **args) == ([], [])
    values, bad = call(name, s(None, None), **args)
    assert values == [None, None]
    assert bad == [False, False]


@pytest.mark.parametrize("raw", ["030 1234567", "+49 30 1234567", "(030) 123-4567", "0049301234567",
                                 "030/123 45 67", "030.1234567", " +4930 1234567 "])
def test_phone_to_e164(raw: str) -> None:
    assert call("phone", s(raw)) == (["+49301234567"], [False])


def test_phone_foreign_and_other_regions() -> None:
    values, bad = get_transform("phone")(s("+44 20 7946 0958", "020 7946 0958"), {}, {"default_region": "GB"})
    assert out(values) == ["+442079460958", "+442079460958"]
    assert not bad.any()


@pytest.mark.parametrize("junk", ["abc", "0", "12", "++49", "call me", "0049"])
def test_phone_refuses_junk(junk: str) -> None:
    assert call("phone", s(junk)) == ([None], [True])


def test_phone_missing_is_not_refused() -> None:
    assert call("phone", s(None, "", "   ")) == ([None, None, None], [False, False, False])
    assert get_transform("phone").reason is ReasonCode.INVALID_PHONE


def test_email() -> None:
    values, bad = call("email", s(" Ann.Lee@Example.DE ", "<script>alert(1)</script>", "<script>x</script>@x.de",
                                  "a@b", "a b@c.de", "", None, "jürgen@müller.de"))
    # Refused values come back as read (lower-cased); the mapper nulls them and rejects the record.
    assert values == ["ann.lee@example.de", "<script>alert(1)</script>", "<script>x</script>@x.de", "a@b",
                      "a b@c.de", None, None, "jürgen@müller.de"]
    assert bad == [False, True, True, True, True, False, False, False]
    assert get_transform("email").reason is ReasonCode.INVALID_EMAIL


@pytest.mark.parametrize(("order", "raw", "given", "surname"), [
    ("given_first", "Ann Marie Smith", "Ann Marie", "Smith"),
    ("given_first", "  Jürgen Müller ", "Jürgen", "Müller"),
    ("given_first", "Cher", None, "Cher"),
    ("given_first", "   ", None, None),
    ("given_first", None, None, None),
    ("surname_comma", "MÜLLER, Jürgen", "Jürgen", "MÜLLER"),
    ("surname_comma", "van der Berg,  Anna Maria", "Anna Maria", "van der Berg"),
    ("surname_comma", "Müller", None, "Müller"),
    ("surname_comma", "Lee, ", None, "Lee"),
    ("surname_comma", None, None, None),
])
def test_split_name(order: str, raw: str | None, given: str | None, surname: str | None) -> None:
    assert call("split_name", s(raw), part="given", order=order)[0] == [given]
    assert call("split_name", s(raw), part="surname", order=order)[0] == [surname]


def test_split_name_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="split_name"):
        call("split_name", s("A B"), part="middle")


def test_bind_problem() -> None:
    zfill = get_transform("zfill")
    assert zfill.bind_problem({"width": 5}, {"default_region": "DE"}) is None
    assert zfill.bind_problem({}, {}) == "bad arguments for transform 'zfill': missing a required argument: 'width'"
    # Context is passed only to functions that take it.
    assert get_transform("phone").bind_problem({}, {"default_region": "DE"}) is None


def test_suggest() -> None:
    assert transforms.suggest("lowr", ["lower", "upper"]) == " (did you mean 'lower'?); allowed: lower, upper"
    assert transforms.suggest("zzz", ["lower"]) == "; allowed: lower"


@pytest.fixture
def shout() -> Iterator[str]:
    @register_transform("shout_test", reason=ReasonCode.TRANSFORM_ERROR)
    def shout_fn(values: pd.Series, mark: str = "!") -> tuple[pd.Series, pd.Series]:
        return values.str.upper() + mark, values.str.contains("x", na=False)

    yield "shout_test"
    transforms._REGISTRY.pop("shout_test", None)


def test_a_registered_transform_is_usable_from_a_mapping(shout: str, tmp_path: Path) -> None:
    path = tmp_path / "m.yml"
    path.write_text(
        "spec_version: 1\nkind: mapping\nsystem: t\ndepartment: d\n"
        "sources:\n  p: {format: csv, path: p.csv, key: [ID]}\n"
        "entities:\n  - entity: contact\n    from: p\n"
        f"    fields:\n      last_name: {{column: N, transform: [{{{shout}: {{mark: '?'}}}}]}}\n"
    )
    spec, doc = load_mapping(path, "m.yml")
    assert doc.problems == []
    assert spec is not None
    frame = pd.DataFrame({"N": ["ann", "xena"], "_source": "t.p", "_department": "d", "_source_key": ["1", "2"],
                          "_row_number": [2, 3], "_row_hash": "h"}, dtype=object)
    result = map_frame(frame, spec.entities[0], spec)
    assert result.mapped["last_name"].tolist() == ["ANN?"]
    assert result.rejects["failures"].tolist() == [[{
        "field": "last_name", "rule": shout, "value": "xena", "reason_code": "transform_error",
        "category": "spec", "message": "'xena' refused by shout_test"}]]
    # Unregistered again, the same mapping is a spec error.
    del transforms._REGISTRY[shout]
    _, doc = load_mapping(path, "m.yml")
    assert [p.message.split(";")[0] for p in doc.problems] == [f"unknown transform '{shout}'"]


def test_split_takes_one_part_and_missing_parts_are_missing() -> None:
    from crmmigrate.transforms import split

    values = pd.Series(["4711/B", "12", None, "a/ b /c", "/x"], dtype=object)
    assert split(values, "/", 0).tolist() == ["4711", "12", None, "a", None]
    assert split(values, "/", -1).tolist() == ["B", "12", None, "c", "x"]
    assert split(values, "/", 2).tolist() == [None, None, None, "c", None]


# --- item 1 of issue 17: a phone is what phonenumbers makes of it, or refused ---------------

def _example_phone_texts() -> list[tuple[str, str, str]]:
    """(default region, text, E.164) for phonenumbers' own example numbers of every region, each
    written as people write them: national (trunk prefix), international, E.164, `00`, dashes,
    brackets, and the trunk prefix kept after the country code (`+44 020 …`). A text is kept only
    where phonenumbers itself reads it as the example number: the rule is the library's."""
    import phonenumbers as pn

    fmt = pn.PhoneNumberFormat
    cases = []
    for region in sorted(pn.SUPPORTED_REGIONS):
        meta = pn.PhoneMetadata.metadata_for_region(region)
        for kind in (pn.PhoneNumberType.FIXED_LINE, pn.PhoneNumberType.MOBILE):
            number = pn.example_number_for_type(region, kind)
            if number is None or not pn.is_valid_number(number):
                continue
            e164 = pn.format_number(number, fmt.E164)
            national = pn.format_number(number, fmt.NATIONAL)
            nsn = pn.national_significant_number(number)
            texts = [(region, national), (region, pn.format_number(number, fmt.INTERNATIONAL)), (region, e164),
                     (region, national.replace(" ", "-")), ("DE", f"00{number.country_code} {nsn}")]
            head, _, tail = national.partition(" ")
            if tail and not head.startswith("("):
                texts.append((region, f"({head}) {tail}"))
            if meta.national_prefix:
                texts.append(("DE", f"+{number.country_code} {meta.national_prefix}{nsn}"))
            for default, text in texts:
                try:
                    read = pn.parse(text, default)
                except pn.NumberParseException:
                    continue
                if pn.format_number(read, fmt.E164) == e164:
                    cases.append((default, text, e164))
    return cases


def test_phone_is_phonenumbers_e164_for_every_region() -> None:
    cases = _example_phone_texts()
    assert len(cases) > 2000  # every region, in most of its shapes
    by_region: dict[str, list[tuple[str, str]]] = {}
    for region, text, e164 in cases:
        by_region.setdefault(region, []).append((text, e164))
    wrong = []
    for region, pairs in by_region.items():
        values, bad = get_transform("phone")(s(*(t for t, _ in pairs)), {}, {"default_region": region})
        wrong += [(region, t, want, got) for (t, want), got, b in zip(pairs, out(values), bad) if got != want or b]
    assert wrong == []


@pytest.mark.parametrize(("region", "raw", "expected"), [
    ("DE", "+44 020 7707 0707", "+442077070707"), ("GB", "+44 (0)20 7707 0707", "+442077070707"),
    ("DE", "+49 (0)30 1234567", "+49301234567"), ("FR", "+33 01 42 68 53 00", "+33142685300"),
    ("DE", "0049 030 1234567", "+49301234567"),
])
def test_phone_drops_the_trunk_prefix(region: str, raw: str, expected: str) -> None:
    values, bad = get_transform("phone")(s(raw), {}, {"default_region": region})
    assert (out(values), list(bad)) == ([expected], [False])


@pytest.mark.parametrize("raw", ["+453 3331 9991", "+1 555 000 0000", "030 12", "0151 1234567"])
def test_an_invalid_phone_is_refused_never_stored(raw: str) -> None:
    assert call("phone", s(raw)) == ([None], [True])


# --- the `country` transform: ISO 3166-1 alpha-2 through pycountry, or refused ----------------

def test_country_reads_every_pycountry_country_by_its_codes_and_english_names() -> None:
    import pycountry

    texts, expected = [], []
    for country in pycountry.countries:
        names = [getattr(country, a) for a in ("name", "official_name", "common_name") if hasattr(country, a)]
        for text in [country.alpha_2, country.alpha_3, country.alpha_3.lower(), *names, *(n.upper() for n in names)]:
            texts.append(text)
            expected.append(country.alpha_2)
    values, bad = call("country", s(*texts))
    assert len(texts) > 1500
    assert [(t, w, g) for t, w, g in zip(texts, expected, values) if g != w] == []
    assert not any(bad)


@pytest.mark.parametrize(("raw", "code"), [
    ("Deutschland", "DE"), (" deutschland ", "DE"), ("Österreich", "AT"), ("OSTERREICH", "AT"), ("Schweiz", "CH"),
    ("Suisse", "CH"), ("Svizzera", "CH"), ("España", "ES"), ("Nederland", "NL"), ("België", "BE"),
    ("Belgique", "BE"), ("Polska", "PL"), ("Česko", "CZ"), ("Česká republika", "CZ"), ("Sverige", "SE"),
    ("Danmark", "DK"), ("Italia", "IT"), ("Magyarország", "HU"), ("U.K.", "GB"), ("Great Britain", "GB"),
    ("u.s.a.", "US"), ("United States of America", "US"), ("Holland", "NL"), ("Korea, Republic of", "KR"),
    ("Côte d’Ivoire", "CI"),
])
def test_country_reads_local_names_and_aliases(raw: str, code: str) -> None:
    assert call("country", s(raw)) == ([code], [False])


@pytest.mark.parametrize("junk", ["Atlantis", "XX", "Germnay", "Korea", "276", "-", "n/a", "D", "日本国x"])
def test_country_refuses_what_it_cannot_read(junk: str) -> None:
    assert call("country", s(junk)) == ([None], [True])
    assert get_transform("country").reason is ReasonCode.INVALID_COUNTRY


def test_country_missing_is_not_refused() -> None:
    assert call("country", s(None, "", " \t")) == ([None, None, None], [False, False, False])


def test_country_reads_each_distinct_value_once(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    read = transforms.alpha2.__wrapped__  # uncached: every call here is a read

    def counting(text: str) -> str | None:
        seen.append(text)
        return read(text)

    monkeypatch.setattr(transforms, "alpha2", counting)
    values, bad = call("country", s(*["DE", " DE", "Deutschland", "Atlantis", None] * 200))
    assert sorted(seen) == ["Atlantis", "DE", "Deutschland"]  # stripped first: " DE" is "DE"
    assert values[:5] == ["DE", "DE", "DE", None, None] and bad[:5] == [False, False, False, True, False]


ADDRESS = {"entity": "address", "from": "rows", "links": {"contact": "self"},
           "fields": {"kind": {"constant": "home"}, "country": {"column": "LAND", "transform": ["country"]}}}


def _address(*lands: str | None, **field: object) -> pd.DataFrame:
    from tests.map.test_mapper import spec, table

    em = {**ADDRESS, "fields": {**ADDRESS["fields"], "country": {**ADDRESS["fields"]["country"], **field}}}
    mapping = spec([em])
    return map_frame(table(["ID", "LAND"], *([str(i), land] for i, land in enumerate(lands))), mapping.entities[0],
                     mapping)


def test_an_unreadable_country_is_a_reject_or_a_dropped_value_naming_it() -> None:
    strict = _address("Deutschland", "Atlantis", on_invalid="reject")
    assert strict.mapped["country"].tolist() == ["DE"]
    assert strict.rejects["failures"].tolist() == [[{
        "field": "country", "rule": "country", "value": "Atlantis", "reason_code": "invalid_country",
        "category": "data", "message": "'Atlantis' refused by country"}]]
    lenient = _address("Deutschland", "Atlantis")  # an optional field: dropped, recorded, the address kept
    assert lenient.mapped["country"].tolist() == ["DE", None] and lenient.rejects.empty
    assert lenient.nulled[["field", "value", "reason_code", "message"]].values.tolist() == [
        ["country", "Atlantis", "invalid_country", "'Atlantis' refused by country"]]


def test_country_counts_the_values_it_changed_and_the_report_words_them() -> None:
    from crmmigrate.reconcile.report import transformed_rows

    result = _address("DE", "de", " DE", "Deutschland", "Atlantis", None, "")
    # `DE` is kept as it was; a refused, missing or empty value is no change.
    assert result.transformed == {("country", "country"): 3}
    rows = transformed_rows({"by_source_entity": {"s.rows/address": {"transformed": {"country/country": 3}}}})
    assert [r["words"] for r in rows] == ["3 values written as ISO 3166-1 alpha-2"]
