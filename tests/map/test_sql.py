"""The DuckDB route (crmmigrate/map/duckdb/) against map_frame, the reference semantics.

Every check here can fail: a row the SQL marks sure must be one map_frame maps, with the same
values after casting to mapped_schema; and the SQL must mark most ordinary rows sure, or it
would pass trivially. Python/DuckDB differences (case tables, whitespace, strptime) are
checked by enumerating every character or shape the compiler relies on.
"""

from __future__ import annotations

import _strptime
import datetime as dt
import itertools
import random
import re
import sys
import unicodedata
from zoneinfo import ZoneInfo
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmmigrate.map import coerce
from crmmigrate.map.mapper import map_frame
from crmmigrate.map.duckdb import CompiledEntity, compile_entity, compile_or_why, sql_half
from crmmigrate.sqlpipe import CASED, UNCASED
from crmmigrate.sqltext import WHITESPACE, ident
from crmmigrate.map.coerce import sql_to_bool as to_bool, sql_to_date as to_date, sql_to_datetime as to_datetime
from crmmigrate.map.coerce import sql_to_decimal as to_decimal, sql_to_int as to_int
from crmmigrate.map.coerce.dates import _fixed_width
from crmmigrate.sqlpipe import _Pipe
from tests.map.test_mapper import spec
from crmmigrate.schemas import FAILURE, extract_schema, mapped_schema
from crmmigrate.spec.model import EntityMapping, MappingSpec
from crmmigrate import transforms
from crmmigrate.transforms import get_transform, register_transform

# --- harness -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


def extracted(columns: dict[str, list[str | None]]) -> pd.DataFrame:
    """Rows as the extract stage writes them: raw text columns (None = missing) plus lineage."""
    n = len(next(iter(columns.values())))
    frame = pd.DataFrame({"ID": [f"k{i}" for i in range(n)], **columns}, dtype=object)
    frame["_source"], frame["_department"] = "s.rows", "sales"
    frame["_source_key"] = frame["ID"]
    frame["_row_number"] = range(2, n + 2)
    frame["_row_hash"] = "hash"
    return frame


def run_sql(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame, compiled: CompiledEntity) -> pa.Table:
    raw = [c for c in frame.columns if not c.startswith("_")]
    table = pa.Table.from_pandas(frame, schema=extract_schema(raw), preserve_index=False)
    con.register("extract", table)
    try:
        select = ", ".join(f"{e} AS {ident(n)}" for n, e in compiled.columns.items())
        flags = "".join(f", {e} AS {ident('_sure_' + n)}" for n, e in compiled.fields_sure.items())
        # Each lenient failure the SQL claims, as the nulled row the map pass writes for a sure row.
        flags += "".join(f", CASE WHEN {f.when} THEN {f.struct()} END AS {ident(f'_dropped_{i}')}"
                         for i, f in enumerate(compiled.failures) if f.lenient)
        return con.sql(f"SELECT {select}, {compiled.sure} AS _sure{flags} FROM {compiled.over('extract')}").to_arrow_table()
    finally:
        con.unregister("extract")


def as_arrow(mapped: pd.DataFrame, schema: pa.Schema) -> list[dict[str, Any]]:
    """map_frame's mapped rows as the map stage writes them (crmmigrate/map/__init__.py), less the
    rows the writer cannot take (an int beyond BIGINT, a decimal beyond the column's precision)."""
    missing = {c: pd.Series(None, index=mapped.index, dtype=object) for c in schema.names if c not in mapped}
    frame = mapped.assign(**missing)[schema.names]
    try:
        return pa.Table.from_pandas(frame, schema=schema, preserve_index=False).to_pylist()
    except (pa.ArrowInvalid, OverflowError):
        pass  # find the rows the writer refuses
    rows = []
    for i in range(len(frame)):
        try:
            rows += pa.Table.from_pandas(frame.iloc[i:i + 1], schema=schema, preserve_index=False).to_pylist()
        except (pa.ArrowInvalid, OverflowError):
            continue
    return rows


def check(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame, mapping: MappingSpec, entity: int = 0) -> tuple[int, int]:
    """Assert every sure row is mapped by map_frame, with equal values and the values it drops
    (its nulled rows) claimed by the SQL; returns (sure, mapped)."""
    em = mapping.entities[entity]
    compiled = compile_entity(em, mapping)
    assert compiled is not None, f"{em.entity} did not compile"
    schema = mapped_schema(em.entity)
    assert list(compiled.columns) == schema.names
    result = map_frame(frame, em, mapping)
    out = run_sql(con, frame, compiled)
    assert out.num_rows == len(frame)
    assert out["_sure"].null_count == 0, "sure must never be NULL"
    assert set(compiled.fields_sure) == set(em.fields)
    flags = [f"_sure_{n}" for n in em.fields]
    for name in em.fields:
        check_field(frame, out, em, name, mapping)
    dropped = [c for c in out.column_names if c.startswith("_dropped_")]
    claimed = out.filter(out["_sure"]).select(["_row_number", *dropped]).to_pylist()
    nulled: dict[int, list[dict[str, Any]]] = {}
    for row in result.nulled.to_dict("records"):
        nulled.setdefault(row["_row_number"], []).append({f.name: row[f.name] for f in FAILURE})
    for row in claimed:
        number = row.pop("_row_number")
        assert [f for f in row.values() if f is not None] == nulled.get(number, []), \
            f"nulled values of {frame.loc[frame['_row_number'] == number].to_dict('records')}"
    sure = out.filter(out["_sure"]).drop_columns(["_sure", *flags, *dropped]).cast(schema).to_pylist()
    expected = {row["_row_number"]: row for row in as_arrow(result.mapped, schema)}
    not_mapped = set(result.rejects["_row_number"]) | set(frame.loc[result.skipped.index, "_row_number"])
    for row in sure:
        number = row["_row_number"]
        assert number not in not_mapped and number in expected, \
            f"sure but not mapped by map_frame: {frame.loc[frame['_row_number'] == number].to_dict('records')}"
        assert row == expected[number], f"raw row {frame.loc[frame['_row_number'] == number].to_dict('records')}"
    return len(sure), len(expected)


def check_field(frame: pd.DataFrame, out: pa.Table, em: EntityMapping, name: str, mapping: MappingSpec) -> None:
    """Where the field alone is sure, map_frame of that field alone maps the row to the same value."""
    flag = out[f"_sure_{name}"]
    assert flag.null_count == 0, f"fields_sure[{name}] must never be NULL"
    source = mapping.sources[em.from_].model_copy(update={"last_modified": None})
    alone = mapping.model_copy(update={"sources": {**mapping.sources, em.from_: source}})
    field_em = EntityMapping(entity=em.entity, from_=em.from_, fields={name: em.fields[name]})
    schema = mapped_schema(em.entity)
    expected = {r["_row_number"]: r[name] for r in as_arrow(map_frame(frame, field_em, alone).mapped, schema)}
    got = out.filter(flag).select(["_row_number", name]).cast(pa.schema([pa.field("_row_number", pa.int64()),
                                                                          schema.field(name)]))
    for number, value in zip(got["_row_number"].to_pylist(), got[name].to_pylist()):
        assert number in expected and expected[number] == value, \
            f"{name} sure but not {expected.get(number, 'mapped')}: {frame.loc[frame['_row_number'] == number].to_dict('records')}"


# --- hostile values ------------------------------------------------------------------------

HOSTILE: list[str | None] = [
    None, "", " ", "   ", "\t", "\n", "\u00a0", "\u3000x\u2003", "\x1c a \x1f", "\x85b\u2028", " Ann ", "ann", "ANN",
    "o'neil", "O’NEIL", "anne-marie", "1st", "mcdonald's", "van der berg", "ÉLODIE", "élodie", "Łukasz", "ØRSTED",
    "dvořák", "ß", "STRASSE", "straße", "İstanbul", "istanbul", "ıi", "I", "ǅemal", "ǆ", "ﬁne", "ŉ", "Σίσυφος", "ΣΑΣ",
    "ǰ", "\u212a", "ſ", "ſt", "ª", "µ", "ÿ", "Ÿ", "ĸ", "e\u0301", "😀", "👨‍👩‍👧", "x" * 201, "ab" * 160,
    "１２３", "١٢٣", "<script>alert(1)</script>", "=SUM(1)", "'; DROP TABLE x; --", '"quoted"', "back\\slash", "a\nb",
    # e-mail
    "Ann@Example.COM", " a.b@c.de ", "a@b", "a@b.c", "a b@c.de", "müller@x.de", "MÜLLER@X.DE", "İ@x.de", "a@@b.de",
    "<a@b.de>", "a@b.de\u00a0", "STRASSE@ß.de", "a@b.\u00e9\u00e9", "a\u2003b@c.de",
    # phone
    "030 1234567", "+49 30 1234567", "(030) 123-4567", "0049301234567", "1-839-417-0487", "(452) 116-5076",
    "+44 20 8537 9740", "728 419 0488", "452.116.5076", "+18394170487", "abc", "12", "++49", "+1 ２０２ 555 0100",
    "030\u00a01234567", "٠٣٠١٢٣٤٥٦٧", "0", "0049", "1 (555) 123-4567", "555-0100", "\t+49 30 1234567",
    # dates
    "2024-01-31", "31/01/2024", "31.01.2024", "20240131", "31 Jan 2024", "31 JAN 2024", "31 jan 2024", "5 Feb 2024",
    "05 feb  2024", "29/02/2023", "29/02/2024", "31/02/2024", "2024-1-5", "0000-01-01", "2024-01-31T00:00",
    " 2024-01-31 ", "２０２４-01-31", "2024-01-31x", "1/2/2024", " 1/2/2024", "31 ſep 2024", "31 \u212aan 2024",
    "2024013", "2024111", "15.01.2024 12:00", "2024-07-01T12:00:00+00:00", "31.03.2024 02:30",
    # numbers and flags
    "-7", "+5", "007", "1e3", "12.5", "12.345", "1,234.56", "1.234,56", "1 234", "1.234", "12,5", ",5", ".5", "12.",
    "NaN", "Infinity", "9223372036854775808", "-9223372036854775808", "1_000", "０", "true", "YES", "ja", "Nein",
    "x", "NEİN", "\u212a", "1250", "12.00", "-0", "99999999999999", "123456789012.34",
    # codes
    "AC", "XX", "ac", "PAID", "VOID",
]


def rotated(*names: str) -> dict[str, list[str | None]]:
    return {name: HOSTILE[7 * i:] + HOSTILE[:7 * i] for i, name in enumerate(names)}


CONTACT_WITH = {"entity": "contact", "from": "rows", "fields": {"last_name": {"constant": "X"}}}


def contact(transform: list[Any], **extra: Any) -> MappingSpec:
    em = {**CONTACT_WITH, "fields": {**CONTACT_WITH["fields"], "first_name": {"column": "V", "transform": transform}}}
    return spec([em], **extra)


TRANSFORM_CASES: list[Any] = [
    (["trim"], {}), (["collapse_spaces"], {}), (["lower"], {}), (["upper"], {}), (["title"], {}),
    (["trim", "title"], {}), (["collapse_spaces", "upper"], {}), (["nfc"], {}), ([{"zfill": {"width": 5}}], {}),
    ([{"split": {"sep": "-", "part": 0}}], {}), ([{"split": {"sep": " ", "part": -1}}], {}),
    ([{"split": {"sep": "@", "part": 3}}], {}), ([{"split_name": {"part": "given"}}], {}),
    ([{"split_name": {"part": "surname"}}], {}), ([{"split_name": {"part": "given", "order": "surname_comma"}}], {}),
    ([{"split_name": {"part": "surname", "order": "surname_comma"}}, "title"], {}), (["email"], {}),
    *((["phone"], extra) for extra in ({}, {"default_region": "US"}, {"default_region": "GB"}, {"default_region": "CA"})),
    (["country"], {}), (["trim", "country"], {}), ([], {}),
]


@pytest.mark.parametrize(("transform", "extra"), TRANSFORM_CASES, ids=lambda c: str(c))
def test_each_transform_on_hostile_values(con: duckdb.DuckDBPyConnection, transform: list[Any],
                                          extra: dict[str, Any]) -> None:
    sure, mapped = check(con, extracted({"V": HOSTILE}), contact(transform, **extra))
    assert sure >= 10, (sure, mapped)  # hostile values: many are rejects or library-read phones


def test_every_built_in_transform_has_an_sql_form() -> None:
    from crmmigrate.transforms import transform_names
    built_in = {"collapse_spaces", "country", "email", "lower", "nfc", "phone", "split", "split_name", "title", "trim",
                "upper", "zfill"}
    assert {n for n in transform_names() if sql_half(n)} == built_in


CONSENT = {"entity": "marketing_consent", "from": "rows", "links": {"contact": "self"},
           "fields": {"channel": {"constant": "email"}, "opted_in": {"constant": True}}}
BENCH_FORMATS = ["%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y", "%Y%m%d", "%d %b %Y"]


@pytest.mark.parametrize("formats", [BENCH_FORMATS, ["iso"], ["%d.%m.%Y", "iso", "%Y%m%d"], ["%y-%m-%d"],
                                     ["%B %d, %Y"], ["%d/%m/%Y %H:%M:%S"], ["%m/%d/%Y", "%d/%m/%Y"], None])
def test_dates_on_hostile_values(con: duckdb.DuckDBPyConnection, formats: list[str] | None) -> None:
    field = {"column": "V"} if formats is None else {"column": "V", "formats": formats}
    mapping = spec([{**CONSENT, "fields": {**CONSENT["fields"], "consented_on": field}}])
    check(con, extracted({"V": HOSTILE}), mapping)


def test_typed_fields_on_hostile_values(con: duckdb.DuckDBPyConnection) -> None:
    frame = extracted(rotated("A", "B", "C", "D", "E", "F"))
    mappings = [
        spec([{**CONSENT, "fields": {**CONSENT["fields"], "opted_in": {"column": "A"}}}]),
        spec([{"entity": "order_line", "from": "rows", "links": {"order": "self"},
               "fields": {"line_no": {"constant": 1}, "quantity": "A", "unit_price": "B", "sku": "C"}}]),
        spec([{"entity": "order_line", "from": "rows", "links": {"order": "self"},
               "fields": {"line_no": "D", "quantity": {"constant": "2"}, "unit_price": {"column": "A", "cents": True}}}]),
        spec([{"entity": "invoice", "from": "rows", "links": {"contact": "self"},
               "fields": {"invoice_number": "ID", "issued_on": {"constant": "2024-01-31"},
                          "amount": {"column": "A", "decimal_mark": ","}, "tax_rate": "B", "currency": {"constant": "EUR"},
                          "status": {"column": "C", "map": {"PAID": "paid", "VOID": "void", "AC": None, "x": "open"}}}}]),
        spec([{"entity": "invoice", "from": "rows", "links": {"contact": "self"},
               "fields": {"invoice_number": "ID", "issued_on": {"column": "E", "formats": ["%d.%m.%Y", "%Y%m%d"]},
                          "amount": {"column": "B", "cents": True, "decimal_mark": ","},
                          "currency": {"column": "D", "transform": ["trim", "upper"]}, "status": {"constant": "open"}}}]),
        spec([{"entity": "address", "from": "rows", "links": {"contact": "self"},
               "fields": {"kind": {"constant": "home"}, "country": "A", "street": {"columns": ["B", "C"], "sep": ", "},
                          "postcode": {"column": "D", "transform": [{"zfill": {"width": 5}}]}}}]),
        spec([{"entity": "marketing_consent", "from": "rows", "links": {"contact": "self"},
               "fields": {"channel": {"column": "C", "map": {"AC": "email", "XX": "phone"}},
                          "opted_in": {"column": "A", "map": {"true": True, "x": False, "ja": None}}}}]),
        spec([{"entity": "order_line", "from": "rows", "links": {"order": "self"},  # a map, then a coercion
               "fields": {"line_no": {"column": "C", "map": {"AC": "1", "XX": "x", "PAID": "+7"}},
                          "quantity": {"column": "A", "transform": ["trim"], "map": {"12": "12", "-7": "-7"}},
                          "unit_price": {"column": "D", "map": {"12.5": "12.50", "x": "1,5"}, "required": False}}}]),
        spec([{**CONTACT_WITH, "fields": {**CONTACT_WITH["fields"],  # a map on an optional field
                                          "owner_name": {"column": "C", "map": {"AC": "alice", "XX": None, "": "x"}}}}]),
        spec([{"entity": "order_line", "from": "rows", "links": {"order": {"source": "other", "column": "C"}},
               "fields": {"line_no": {"constant": 1}, "quantity": {"constant": 2}, "unit_price": {"constant": "1.5"},
                          "description": "D"}}]),
        spec([{"entity": "contact", "from": "rows", "links": {"account": {"source": "other", "column": "E"}},
               "when_present": ["A", "B"], "fields": {"last_name": {"column": "F", "required": False}}}]),
        spec([{"entity": "support_case", "from": "rows", "links": {"contact": "self"},
               "fields": {"case_number": "ID", "status": {"constant": "open"},
                          "opened_at": {"column": "E", "formats": ["%d.%m.%Y %H:%M", "iso"]}}}],
             source={"last_modified": {"column": "F", "formats": ["iso", "%d.%m.%Y %H:%M"]}}),
        spec([{"entity": "support_case", "from": "rows", "links": {"contact": "self"},
               "fields": {"case_number": "ID", "status": {"constant": "open"},
                          "opened_at": {"constant": "2024-07-01T12:00:00+02:00"}}}]),
    ]
    for mapping in mappings:
        for shift in range(3):  # the same rows with the columns' values moved on
            check(con, frame.assign(**{c: frame[c].tolist()[shift:] + frame[c].tolist()[:shift] for c in "ABCDEF"}), mapping)


def test_identifiers_and_literals_are_quoted(con: duckdb.DuckDBPyConnection) -> None:
    frame = extracted({'Na"me x': ["O'Brien", "a'b", None, "x"], "it's": ["1", "2", "3", None]})
    mapping = spec([{"entity": "marketing_consent", "from": "rows", "links": {"contact": {"source": "other", "column": "it's"}},
                     "fields": {"channel": {"column": 'Na"me x', "map": {"O'Brien": "o'b", "x": '"'}},
                                "opted_in": {"constant": "ja"}}}])
    assert check(con, frame, mapping) == (1, 1)  # the others: unmapped, missing channel, missing parent


def test_rows_skipped_by_when_present_are_not_sure(con: duckdb.DuckDBPyConnection) -> None:
    frame = extracted({"A": [None, "", None, "a", " \u3000", "\u200b"], "B": [None, None, "b", None, "\t", None],
                       "F": ["x", "y", "z", None, "w", "v"]})
    mapping = spec([{"entity": "contact", "from": "rows", "when_present": ["A", "B"],
                     "fields": {"last_name": {"column": "F", "required": False}}}])
    # Blank is missing (as `trim` has it): only 'b', 'a' and the zero-width space (not whitespace) are present.
    assert check(con, frame, mapping) == (3, 3)


# --- what does not compile -----------------------------------------------------------------

@pytest.fixture
def reverse_transform():
    """A user transform, registered only for the test that needs it (the registry feeds the docs)."""
    register_transform("test_sql_reverse")(lambda values: values.str[::-1])
    yield
    transforms._REGISTRY.pop("test_sql_reverse", None)


@pytest.mark.parametrize("field", [
    {"column": "V", "transform": ["test_sql_reverse"]},
    {"column": "V", "transform": ["trim", "no_such_transform"]},
    {"constant": "x", "transform": ["test_sql_reverse"]},
    {"column": "V", "transform": [{"zfill": {"width": "five"}}]},
    {"column": "V", "transform": [{"phone": {"default_region": "GB"}}]},
    {"column": "V", "transform": [{"trim": {"x": 1}}]},
    {"constant": 5},  # map_frame passes the int on to a text column
    {"column": "V", "map": {"a": True}},
])
def test_a_field_rule_without_an_exact_sql_form_leaves_that_field_to_map_frame(field: dict[str, Any],
                                                                              reverse_transform: None) -> None:
    mapping = spec([{**CONTACT_WITH, "fields": {**CONTACT_WITH["fields"], "first_name": field}}])
    compiled = compile_entity(mapping.entities[0], mapping)
    assert compiled is not None and list(compiled.python_fields) == ["first_name"]
    assert "false" in compiled.fields_sure["first_name"] and "last_name" not in compiled.python_fields


@pytest.mark.parametrize(("field", "extra"), [
    ({"column": "__crm_v0", "transform": ["trim"]}, {}),  # a column the SQL's lambda parameters would hide
    ({"column": "V"}, {"source": {"last_modified": {"column": "V", "formats": ["%d.%m.%Y %H:%M"]}},
                       "timezone": "Mars/Olympus_Mons"}),
    ({"column": "V"}, {"source": {"last_modified": {"column": "V", "formats": ["%d.%m.%Y %I %p"]}}}),
])
def test_what_the_entity_as_a_whole_cannot_compile_gives_none_and_why(field: dict[str, Any],
                                                                      extra: dict[str, Any]) -> None:
    mapping = spec([{**CONTACT_WITH, "fields": {**CONTACT_WITH["fields"], "first_name": field}}], **extra)
    compiled, why = compile_or_why(mapping.entities[0], mapping)
    assert compiled is None and why


@pytest.mark.parametrize("fmt", ["%j.%Y", "%d.%m", "%Y-%m-%d-%d", "%d/%m/%Y %z", "%d.%m.%Y %f", "%d年%m月%Y", "epoch"])
def test_unsupported_date_formats_leave_their_field_to_map_frame(fmt: str) -> None:
    mapping = spec([{**CONSENT, "fields": {**CONSENT["fields"], "consented_on": {"column": "V", "formats": [fmt]}}}])
    compiled = compile_entity(mapping.entities[0], mapping)
    assert compiled is not None and list(compiled.python_fields) == ["consented_on"]


def test_a_constant_that_map_frame_refuses_makes_no_row_sure(con: duckdb.DuckDBPyConnection) -> None:
    mapping = spec([{**CONSENT, "fields": {**CONSENT["fields"], "consented_on": {"constant": "31.02.2024", "on_invalid": "reject"}}}])
    assert check(con, extracted({"V": ["a", None]}), mapping) == (0, 0)


# --- Python and DuckDB agree on every character the compiler relies on ----------------------

ALL_CHARS = [chr(c) for c in range(1, 0x110000) if unicodedata.category(chr(c)) != "Cs"]


def test_whitespace_is_exactly_what_python_strips_and_matches_as_backslash_s() -> None:
    spaces = [c for c in ALL_CHARS if c.isspace()]
    assert list(WHITESPACE) == spaces
    assert [c for c in ALL_CHARS if re.fullmatch(r"\s", c)] == spaces


def _eval(con: duckdb.DuckDBPyConnection, values: list[str | None], p: _Pipe) -> list[tuple[object, bool]]:
    value, sure, _ = p.emit()
    con.register("v", pa.table({"V": pa.array(values, pa.string())}))
    try:
        return con.sql(f"SELECT {value}, {sure} FROM {p.over('v')}").fetchall()
    finally:
        con.unregister("v")


def _python(name: str, values: list[str | None], **args: Any) -> tuple[list[object], list[bool]]:
    out, bad = get_transform(name)(pd.Series(values, dtype=object), args, {"default_region": "US"})
    return [None if v is None or v != v else v for v in out], [bool(b) for b in bad]


def _transform(con: duckdb.DuckDBPyConnection, name: str, values: list[str | None], **args: Any) -> list[tuple[object, bool]]:
    p = _Pipe('"V"')
    sql_half(name)(p, args, spec([], default_region="US"))
    return _eval(con, values, p)


def _assert_agrees(con: duckdb.DuckDBPyConnection, name: str, values: list[str | None], **args: Any) -> int:
    """Sure values equal Python's and are not refused; returns how many were sure."""
    expected, bad = _python(name, values, **args)
    got = _transform(con, name, values, **args)
    for text, want, refused, (value, sure) in zip(values, expected, bad, got):
        if sure:
            assert (value, refused) == (want, False), f"{name}({text!r})"
    return sum(sure for _, sure in got)


def test_strip_removes_every_python_whitespace_and_only_it(con: duckdb.DuckDBPyConnection) -> None:
    values = [w + "a b" + w2 for w, w2 in itertools.product(WHITESPACE, WHITESPACE)]
    values += [w * 3 for w in WHITESPACE] + [" \u00a0x\t ", "\u200bx\u200b", "\ufeffx", "x\u180e", "a"]
    assert _assert_agrees(con, "trim", values) == len(values)
    assert _assert_agrees(con, "collapse_spaces", values + ["a \u2003\t b", "a\u200bb"]) == len(values) + 2


def test_strip_agrees_with_python_at_either_end(con: duckdb.DuckDBPyConnection) -> None:
    """The strip tests each end on its own: one-sided padding, runs of spaces around another
    whitespace, and last characters that only look like whitespace by their bytes."""
    lookalikes = ["\x01", "\x7f", "\x80", "\x84", "\u00e9", "\u180e", "\u200b", "\ufeff", "\U0001f600", "a", "."]
    values = ["", " ", "   ", "a", "  a", "a  ", "  a  "]
    for w in WHITESPACE:
        values += [w + "a b", "a b" + w, "  " + w + "a", "a" + w + "  ", " " + w + " a", "a " + w + " ", w, w + w]
    for x in lookalikes:
        values += [x, "  " + x, x + "  ", "a" + x, x + "a", " a" + x, x + "a "]
    rng = random.Random(20261126)  # and random texts over the same alphabet (the seed is fixed)
    alphabet = list(WHITESPACE) + lookalikes + list("ab ")
    values += ["".join(rng.choices(alphabet, k=rng.randint(1, 6))) for _ in range(3000)]
    assert _assert_agrees(con, "trim", values) == len(values)


def _class_members(con: duckdb.DuckDBPyConnection, body: str) -> list[str]:
    con.register("c", pa.table({"c": ALL_CHARS}))
    try:
        return [r[0] for r in con.sql(f"SELECT c FROM c WHERE regexp_full_match(c, '[{body}]')").fetchall()]
    finally:
        con.unregister("c")


def _duck_case(con: duckdb.DuckDBPyConnection, chars: list[str]) -> dict[str, tuple[str, str]]:
    con.register("c", pa.table({"c": chars}))
    try:
        return {c: (lo, up) for c, lo, up in con.sql("SELECT c, lower(c), upper(c) FROM c").fetchall()}
    finally:
        con.unregister("c")


def _python_cased(c: str) -> bool:
    return (c + "a").title()[-1] == "a"  # title() lower-cases a letter after a cased character


def test_cased_letters_map_alike_in_python_and_duckdb(con: duckdb.DuckDBPyConnection) -> None:
    cased = _class_members(con, CASED)
    assert len(cased) > 200 and "ä" in cased and "ß" not in cased and "İ" not in cased
    duck = _duck_case(con, cased)
    for c in cased:
        lo, up = duck[c]
        assert (lo, up) == (c.lower(), c.upper()), f"{c!r} U+{ord(c):04X}"
        # title(lower(x)) is upper(x[0]) + lower(x[1:]) on a run of these (the fast path of sql_title)
        assert _python_cased(c) and c.title() == up and lo.title() == up and lo.lower() == lo, c
        assert lo in cased and len(up) == 1, c  # the lower-cased text has its runs where the text has them


def test_uncased_characters_are_left_alone_by_both(con: duckdb.DuckDBPyConnection) -> None:
    uncased = _class_members(con, UNCASED)
    assert {"'", "-", " ", "’", "\u00a0", "1"} <= set(uncased) and "a" not in uncased
    assert not set(uncased) & set(_class_members(con, CASED))
    duck = _duck_case(con, uncased)
    for c in uncased:
        assert duck[c] == (c, c) == (c.lower(), c.upper()) and c.title() == c and not _python_cased(c), \
            f"{c!r} U+{ord(c):04X}"


@settings(derandomize=True, max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.text(alphabet=st.sampled_from("aZäÖß İıi'’-. 1\u00a0ſĸǅ\u212aΣσςễ\u0301"), max_size=12), max_size=40))
def test_case_transforms_on_random_mixtures(values: list[str]) -> None:
    with duckdb.connect() as c:
        for name in ("lower", "upper", "title"):
            _assert_agrees(c, name, values)


def test_ascii_text_is_case_safe_and_agrees_with_python(con: duckdb.DuckDBPyConnection) -> None:
    """ASCII text, the common case, is always sure for the case transforms: every ASCII character
    but NUL, alone, after a letter and before one, maps alike in both."""
    chars = [chr(c) for c in range(1, 128)]
    values = chars + [f"a{c}b" for c in chars] + [f"{c}Ab" for c in chars] + ["o'NEIL-smith 2nd", "\tMiXeD\x1f"]
    for name in ("lower", "upper", "title"):
        assert _assert_agrees(con, name, values) == len(values), name
    assert _assert_agrees(con, "title", ["a\x00b"]) == 0  # NUL is not in the classes: not sure


def test_title_of_names(con: duckdb.DuckDBPyConnection) -> None:
    values = ["o'neil", "ANNE-MARIE", "1st", "mcdonald's", "van der BERG", "ÉLODIE", "łukasz", "  ann  ", "o’neil",
              "jean-\u00a0luc", "", "dvořák-ŽIŽKA", "ıSIL", "WEIß", "straße", "nguyễn", "e\u0301a", "ǅemal"]
    assert _assert_agrees(con, "title", values) == len(values) - 1  # ǅ is title case already: not sure
    assert _assert_agrees(con, "title", ["ßa", "a ßb", "a-ßb", "ẞ"]) == 0  # ß starting a word: `Ss` in Python
    assert _assert_agrees(con, "lower", ["STRAßE", "ẞ", "ß"]) == 2 and _assert_agrees(con, "upper", ["ß", "ẞ"]) == 0
    assert [v for v, _ in _transform(con, "title", values[:3])] == ["O'Neil", "Anne-Marie", "1St"]


def test_email_and_phone_shapes(con: duckdb.DuckDBPyConnection) -> None:
    emails = ["Ann@Example.COM", " a.b@c.de ", "thaddäus.guilbert3@orange.fr", "Ä@Ö.DE", "a@b.c", "a b@c.de", ""]
    assert _assert_agrees(con, "email", emails) == 5  # the two refused are not sure
    phones = ["1-839-417-0487", "(212) 316-5076", "+44 20 8537 9740", "728 419 0488", "212.316.5076", "+18394170487",
              " +1 (212) 555-0100 ", "011 49 30 1234567", "", None]
    assert _assert_agrees(con, "phone", phones) == len(phones)
    assert [v for v, _ in _transform(con, "phone", phones[:3])] == ["+18394170487", "+12123165076", "+442085379740"]
    # Refused by phonenumbers in the US (not valid there, too short, German with the German
    # international prefix), read from letters or other digits: never sure.
    assert _assert_agrees(con, "phone", ["452.116.5076", "0049 30 1234567", "030 1234567", "555-0100", "12",
                                         "+1 (800) FLOWERS", "１２３４５６７８９０", "+1 212 555 0100 ext 5", "++1 212 555 0100"]) == 0


# --- dates and numbers, shape by shape ------------------------------------------------------

DAYS = ["1", "01", "9", "09", "10", "29", "30", "31", "32", "0", "00", " 5", "5 ", "011"]
NUMERIC_MONTHS = ["1", "01", "2", "02", "9", "10", "12", "13", "0", "00", " 1", "011"]
NAMED_MONTHS = ["jan", "Jan", "JAN", "feb", "FEB", "dec", "sep", "sept", "september", "September", "may", "MAY",
                "mAy", "june", "Jun", "mär", "Kan"]
YEARS = ["2024", "2023", "1900", "2000", "0000", "0001", "9999", "202", "24"]
SHORT_YEARS = ["24", "68", "69", "99", "00", "2024", "5"]


def _fill(fmt: str, rng: random.Random, count: int) -> list[str]:
    """Texts shaped like *fmt*, most of them with values from the lists above."""
    pools = {"d": DAYS, "m": NUMERIC_MONTHS, "b": NAMED_MONTHS, "B": NAMED_MONTHS, "Y": YEARS, "y": SHORT_YEARS,
             "H": ["0", "00", "9", "23", "24"], "M": ["0", "00", "59", "60"], "S": ["0", "59", "60", "61"]}
    texts = []
    for _ in range(count):
        text = re.sub(r"%(.)", lambda m: rng.choice(pools.get(m.group(1), ["?"])), fmt)
        if rng.random() < 0.1:
            text = text.replace(" ", rng.choice(["  ", "\t", " \u00a0"]))
        if rng.random() < 0.05:
            text += rng.choice(["x", " ", "0", "1"])
        texts.append(text)
    return texts


def _coerced(con: duckdb.DuckDBPyConnection, values: list[str | None], compile_step: Any,
             python: Any) -> tuple[int, list[tuple[str | None, object, bool, bool]]]:
    """(sure count, [(text, Python value, refused, sure)]) asserting sure values equal Python's."""
    p = _Pipe('"V"')
    compile_step(p)
    got = _eval(con, values, p)
    expected, bad = python(pd.Series(values, dtype=object))
    rows = []
    for text, want, refused, (value, sure) in zip(values, expected, bad, got):
        if sure:
            assert (value, bool(refused)) == (want, False), f"{text!r}"
        rows.append((text, want, bool(refused), bool(sure)))
    return sum(r[3] for r in rows), rows


@pytest.mark.parametrize("formats", [
    BENCH_FORMATS, ["%d/%m/%y"], ["%m/%d/%Y", "%d/%m/%Y"], ["%Y%m%d", "%Y-%m-%d"], ["%d %B %Y", "%d %b %Y"],
    ["%d.%m.%Y %H:%M:%S"], ["%Y%m%d%H%M"], ["%y%m%d"], ["%m%d%Y"], ["%d%m%y"], ["%b %d %Y"], ["%B %d, %y"],
])
def test_strptime_formats_agree_with_python_both_ways(con: duckdb.DuckDBPyConnection, formats: list[str]) -> None:
    """Without `iso`, every printable ASCII text is decided: sure exactly where Python reads it."""
    rng = random.Random(" ".join(formats))
    values: list[str | None] = [t for f in formats for t in _fill(f, rng, 3000)] + [None, "", " ", "x"]
    values += ["29/02/2024", "29/02/2023", "29 Feb 2024", "29 feb 2100", "20240229", "20230229", "2024111", "2024013"]
    _, rows = _coerced(con, values, lambda p: to_date(p, tuple(formats)),
                       lambda s: coerce.to_date(s, tuple(formats)))
    for text, _, refused, sure in rows:
        printable = text is None or (text.isascii() and text.isprintable())
        if printable:
            assert sure == (not refused), f"{text!r}: Python {'refuses' if refused else 'reads'} it"
    assert sum(not r[2] for r in rows) > 0.05 * len(rows)  # the texts are not all junk
    # The certain refusal (a reject written by SQL): exactly the printable texts Python refuses.
    p = _Pipe('"V"')
    to_date(p, tuple(formats))
    _, _, refused = p.emit()
    con.register("v", pa.table({"V": pa.array(values + ["1\t2", "é"], pa.string())}))
    try:
        claimed = [r[0] for r in con.sql(f"SELECT {refused['type']} FROM {p.over('v')}").fetchall()]
    finally:
        con.unregister("v")
    for (text, _, python_refuses, _), claim in zip(rows, claimed):
        stripped = None if text is None else text.strip()  # what map_frame's coercion reads
        printable = bool(stripped) and stripped.isascii() and stripped.isprintable()
        assert claim == (printable and python_refuses), f"{text!r}"
    assert claimed[-2:] == [False, False] and sum(claimed) > 0.05 * len(rows)


@pytest.mark.parametrize("fmt,with_time", [(f, False) for f in BENCH_FORMATS + ["%y%m%d", "%b %d, %Y"]]
                         + [("%d.%m.%Y %H:%M:%S", True), ("%Y%m%d%H%M", True)])
def test_fixed_width_dates_are_pythons_without_the_regex_groups(con: duckdb.DuckDBPyConnection, fmt: str,
                                                                 with_time: bool) -> None:
    """The fixed-width branch alone (no regexp_extract behind it): on texts of its shape it gives
    Python's value, NULL where Python refuses (31 April, year 0); other texts it leaves."""
    fixed, gate = _fixed_width('"V"', fmt, with_time)
    assert fixed.startswith("WHEN ") and gate.endswith(" AND ")
    rng = random.Random(fmt)
    values = _fill(fmt, rng, 3000) + [re.sub(r"%(.)", lambda m: {"Y": "0000", "y": "24", "b": "Apr", "d": "31"}
                                              .get(m.group(1), "04"), fmt)]
    expression = f"CASE {fixed.replace(' THEN ', ' THEN CAST(', 1)} AS VARCHAR) ELSE 'other' END"
    con.register("v", pa.table({"V": pa.array(values, pa.string())}))
    try:
        got = [r[0] for r in con.sql(f"SELECT {expression} FROM v").fetchall()]
    finally:
        con.unregister("v")
    taken = refused = 0
    for text, value in zip(values, got):
        if value == "other":
            continue
        taken, refused = taken + 1, refused + (value is None)
        try:
            parsed = dt.datetime.strptime(text, fmt)
            want: str | None = str(parsed if with_time else parsed.date())
        except ValueError:
            want = None
        assert value == want, f"{text!r}"
    assert taken > 10 and refused > 0  # texts of the shape were read, refusals among them
    assert _fixed_width('"V"', "%d %B %Y", False)[0] == ""  # month names of different lengths


def test_fixed_width_month_names_only_in_english(monkeypatch: pytest.MonkeyPatch) -> None:
    """DuckDB's strptime reads English month names only: under another locale's names (which
    _strptime takes from LC_TIME) a `%b` text is left to the general branch, which reads them."""
    assert _fixed_width('"V"', "%d %b %Y", False)[0].startswith("WHEN ")
    german = ["", "Jan", "Feb", "Mär", "Apr", "Mai", "Jun", "Jul", "Aug", "Sep", "Okt", "Nov", "Dez"]
    monkeypatch.setattr(_strptime._TimeRE_cache.locale_time, "a_month", german)
    assert _fixed_width('"V"', "%d %b %Y", False)[0] == ""
    assert _fixed_width('"V"', "%d/%m/%Y", False)[0].startswith("WHEN ")  # numeric months are not affected


def test_iso_dates_are_sure_only_in_the_plain_shape(con: duckdb.DuckDBPyConnection) -> None:
    values = ["2024-01-31", "2024-02-29", "2023-02-29", "0000-01-01", "0001-01-01", "9999-12-31", "20240131",
              "2024-W05-3", "2024-01-31T00:00", "2024-01-31T10:00", "2024-1-31", "2024-13-01", "x"]
    count, _ = _coerced(con, values, lambda p: to_date(p, ("iso",)), lambda s: coerce.to_date(s, ("iso",)))
    assert count == 4
    formats = ("%d.%m.%Y", "iso", "%Y%m%d")  # a text iso does not decide is never sure: Python may read it
    count, rows = _coerced(con, ["31.01.2024", "2024-01-31", "20240131", "2024013"], lambda p: to_date(p, formats),
                           lambda s: coerce.to_date(s, formats))
    assert [r[3] for r in rows] == [True, True, False, False]


def test_datetimes_in_utc(con: duckdb.DuckDBPyConnection) -> None:
    formats = ("%d.%m.%Y %H:%M", "%Y%m%d%H%M%S", "iso")
    rng = random.Random(1)
    values: list[str | None] = _fill("%d.%m.%Y %H:%M", rng, 500) + _fill("%Y%m%d%H%M%S", rng, 500) + [
        "2024-07-01T12:00", "2024-07-01T12:00:30", "2024-07-01", "2024-07-01T24:00", "2024-07-01 12:00",
        "2024-07-01T12:00:00+02:00", "2024-07-01T12:00Z", None, ""]
    count, rows = _coerced(con, values, lambda p: to_datetime(p, formats, "UTC"),
                           lambda s: coerce.to_datetime(s, formats, "UTC"))
    assert count > 0.2 * len(values)
    assert {r[0]: r[3] for r in rows}["2024-07-01T12:00:30"]


@pytest.mark.parametrize("zone", ["Europe/Berlin", "Europe/London", "America/New_York", "Australia/Lord_Howe"])
def test_datetimes_in_a_zone_with_daylight_saving(con: duckdb.DuckDBPyConnection, zone: str) -> None:
    """Wall times every 10 minutes around each change of 2023-2025 and at random: sure ones equal
    Python's instant; ambiguous and skipped ones are never sure; a day away from a change all are."""
    formats = ("%d.%m.%Y %H:%M", "iso")
    zone_info = ZoneInfo(zone)
    changes = [day for day in (dt.date(2023, 1, 1) + dt.timedelta(days=n) for n in range(3 * 366))
               if dt.datetime.combine(day, dt.time(0), zone_info).utcoffset()
               != dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), zone_info).utcoffset()]
    assert len(changes) >= 6
    walls = [dt.datetime.combine(day, dt.time(0)) + dt.timedelta(minutes=10 * k)
             for day in changes for k in range(-6 * 24, 12 * 24)]
    rng = random.Random(zone)
    walls += [dt.datetime(1970, 1, 1) + dt.timedelta(minutes=rng.randrange(60 * 24 * 365 * 140)) for _ in range(3000)]
    values: list[str | None] = [w.strftime("%d.%m.%Y %H:%M") if i % 2 else w.isoformat(timespec="minutes")
                                for i, w in enumerate(walls)] + ["2024-07-01T12:00:00+02:00", None]
    count, rows = _coerced(con, values, lambda p: to_datetime(p, formats, zone),
                           lambda s: coerce.to_datetime(s, formats, zone))
    assert count > 0.5 * len(values)  # most walls here are within a day of a change
    for wall, (text, _, refused, sure) in zip(walls, rows):
        near = ((wall - dt.timedelta(days=2)).replace(tzinfo=zone_info).utcoffset()
                != (wall + dt.timedelta(days=2)).replace(tzinfo=zone_info).utcoffset())
        if not near and 1970 < wall.year < 2099:
            assert sure and not refused, text


def test_epoch_timestamps(con: duckdb.DuckDBPyConnection) -> None:
    values = ["0", "-1", "+5", "1700000000", "253402300799", "253402300800", "-62135596800", "-62135596801",
              "1_000", "١٢", "1e3", "12.5", "", None, "99999999999999999999"]
    for zone in ("UTC", "Europe/Berlin"):
        count, rows = _coerced(con, values, lambda p, z=zone: to_datetime(p, ("epoch", "%d.%m.%Y"), z),
                               lambda s, z=zone: coerce.to_datetime(s, ("epoch", "%d.%m.%Y"), z))
        # In a zone with daylight saving only 1970-2099 is sure (where DuckDB's zone rules were checked).
        expected = values[:5] + values[6:7] if zone == "UTC" else ["1700000000"]
        assert [text for text, _, _, sure in rows if sure] == expected + ["", None], zone


NUMBERS = ["0", "7", "-7", "+7", "12", "12.5", "12.50", "12.500", "12.505", "12.", ".5", "-.5", "+.5", "-0", "007",
           "1,234", "1,234.5", "12,34", "1,234,567.89", "1.234", "1.234,5", "1.234.567,89", "12,5", "12,", ",5",
           "1 234", "1 234,56", "1,2,3", "1e3", "1E-3", "1_000", "NaN", "-", "+", ".", "", " 12 ", "١٢", "12.00",
           "99999999999.99", "999999999999.99", "9999999999999.99", "1250", "-1250", "12,00", "0.001", "0,001"]


@pytest.mark.parametrize(("cents", "mark", "precision", "scale"),
                         [(False, ".", 14, 2), (False, ",", 14, 2), (True, ".", 14, 2), (True, ",", 14, 2),
                          (False, ".", 5, 2), (True, ".", 5, 2)])
def test_decimals(con: duckdb.DuckDBPyConnection, cents: bool, mark: str, precision: int, scale: int) -> None:
    rng = random.Random(f"{cents}{mark}")
    values: list[str | None] = NUMBERS + ["".join(rng.choice("0123456789.,- ") for _ in range(rng.randint(1, 9)))
                                          for _ in range(3000)] + [None]
    _, rows = _coerced(con, values, lambda p: to_decimal(p, precision, scale, cents, mark),
                       lambda s: coerce.to_decimal(s, scale, cents, mark))
    for text, value, refused, sure in rows:
        # Sure must cover the plain shapes that fit the column: anything Python reads without an exponent.
        if not refused and value is not None and "e" not in text.lower() and abs(value) < 10 ** (precision - scale):
            assert sure, f"{text!r} → {value} is not sure"


def _decided(con: duckdb.DuckDBPyConnection, values: list[str | None], compile_step: Any,
             python: Any) -> list[tuple[str | None, bool, bool, bool]]:
    """[(text, Python refuses, SQL sure, SQL claims Python refuses)], asserting sure values equal Python's."""
    p = _Pipe('"V"')
    compile_step(p)
    value, sure, refused = p.emit()
    expected, bad = python(pd.Series(values, dtype=object))
    con.register("v", pa.table({"V": pa.array(values, pa.string())}))
    try:
        got = con.sql(f"SELECT {value}, {sure}, {refused['type']} FROM {p.over('v')}").fetchall()
    finally:
        con.unregister("v")
    rows = []
    for text, want, python_refuses, (v, is_sure, claim) in zip(values, expected, bad, got):
        if is_sure:
            assert (v, bool(python_refuses)) == (want, False), f"{text!r}"
        rows.append((text, bool(python_refuses), is_sure, claim))
    return rows


def test_a_literal_that_looks_like_a_bound_name_is_only_a_literal(con: duckdb.DuckDBPyConnection) -> None:
    """Bound names are found in the expression text, and so is a value-map key spelled like one."""
    em = EntityMapping.model_validate({"entity": "support_case", "from": "rows", "fields": {
        "case_number": "ID", "status": {"column": "A", "transform": ["trim"],
                                        "map": {"__crm_2_v9": "open", "__crm_2_v0": "closed", "o": "open"}}}})
    mapping = spec([em.model_dump(by_alias=True)])
    frame = extracted({"A": [" __crm_2_v9 ", "__crm_2_v0", "o", "x", None]})  # status is field 2: __crm_2_v…
    sure, mapped = check(con, frame, mapping)
    assert (sure, mapped) == (3, 3)


INTS = ["0", "+5", "-0", "007", "0" * 30 + "1", "-" + "0" * 30, "2147483647", "2147483648", "-2147483648",
        "-2147483649", "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
        "1" * 40, "1_000", "١٢", "１２", "12.0", "1e3", "+", "-", "+-1", "--1", " 12 ", "\u00a012\u3000", "0x1F", "1 2"]


@pytest.mark.parametrize("bits", [32, 64])
def test_ints_are_sure_or_refused_exactly_as_python_reads_them(con: duckdb.DuckDBPyConnection, bits: int) -> None:
    """Every text is decided: the value where coerce.to_int reads it, a certain refusal where not."""
    rows = _decided(con, INTS + NUMBERS + HOSTILE, lambda p: to_int(p, bits), lambda s: coerce.to_int(s, bits))
    for text, python_refuses, sure, claim in rows:
        assert claim == python_refuses, f"{text!r}: Python {'refuses' if python_refuses else 'reads'} it"
        assert sure != claim, f"{text!r} is not decided"
    assert sum(r[3] for r in rows) > 100 and sum(r[2] for r in rows) > 20


def test_booleans_are_refused_where_ascii_text_is_no_flag(con: duckdb.DuckDBPyConnection) -> None:
    flags = sorted(coerce.TRUE | coerce.FALSE)
    values = HOSTILE + flags + [f.upper() for f in flags] + [f" {f.title()}\t" for f in flags] + [
        "NEİN", "ja\u0307", "\u212a", "yes!", "tru", "oui", "2", "-1", "on", "off"]
    rows = _decided(con, values, to_bool, coerce.to_bool)
    for text, python_refuses, sure, claim in rows:
        stripped = None if text is None else text.strip()
        if claim:
            assert python_refuses, f"{text!r}"
        if stripped and stripped.isascii():  # ASCII lower-cases alike: every such text is decided
            assert claim == python_refuses and sure != claim, f"{text!r}"
    assert sum(r[3] for r in rows) > 100


@pytest.mark.parametrize(("cents", "mark"), [(False, "."), (True, ","), (False, ",")])
def test_decimals_without_a_digit_are_certainly_refused(con: duckdb.DuckDBPyConnection, cents: bool, mark: str) -> None:
    rng = random.Random(f"refuse{cents}{mark}")
    values = NUMBERS + HOSTILE + ["".join(rng.choice("0123456789.,-+ eE_١") for _ in range(rng.randint(1, 6)))
                                  for _ in range(3000)]
    rows = _decided(con, values, lambda p: to_decimal(p, 14, 2, cents, mark),
                    lambda s: coerce.to_decimal(s, 2, cents, mark, 14))
    for text, python_refuses, _, claim in rows:
        stripped = None if text is None else text.strip()
        assert claim == bool(stripped and not re.search("[0-9]", stripped)), f"{text!r}"
        if claim:
            assert python_refuses, f"{text!r}"
    assert sum(r[3] for r in rows) > 100


# --- hypothesis: any text ------------------------------------------------------------------

MAPPINGS = [
    spec([{"entity": "contact", "from": "rows", "fields": {
        "first_name": {"column": "A", "transform": [{"split_name": {"part": "given", "order": "surname_comma"}}, "title"]},
        "last_name": {"column": "A", "transform": [{"split_name": {"part": "surname", "order": "surname_comma"}}]},
        "email": {"column": "B", "transform": ["email"]}, "phone": {"column": "C", "transform": ["phone"]},
        "owner_name": {"column": "D", "transform": ["collapse_spaces", "upper"]}}}], default_region="US"),
    spec([{"entity": "invoice", "from": "rows", "links": {"contact": {"source": "other", "column": "D"}}, "fields": {
        "invoice_number": "ID", "issued_on": {"column": "A", "formats": ["%Y-%m-%d", "%d.%m.%Y", "%d %b %y"]},
        "amount": {"column": "B", "cents": True}, "tax_rate": {"column": "C", "decimal_mark": ","},
        "currency": {"constant": "EUR"}, "status": {"column": "D", "transform": ["trim", "lower"],
                                                   "map": {"p": "paid", "o": "open"}}}}]),
    spec([{"entity": "marketing_consent", "from": "rows", "links": {"contact": "self"}, "when_present": ["B", "C"],
           "fields": {"channel": {"column": "A", "transform": ["trim"], "map": {"AC": "email", "x": "post"}},
                      "opted_in": "B", "consented_on": {"column": "C", "formats": ["iso", "%d/%m/%Y"]}}}],
         source={"last_modified": {"column": "D", "formats": ["%d.%m.%Y %H:%M", "iso"]}}, timezone="Europe/Berlin"),
    spec([{"entity": "address", "from": "rows", "links": {"contact": "self"}, "fields": {
        "kind": {"constant": "home"}, "street": {"columns": ["A", "B"], "transform": ["collapse_spaces", "title"]},
        "postcode": {"column": "C", "transform": ["nfc", {"zfill": {"width": 5}}]}, "country": "D",
        "city": {"column": "D", "transform": [{"split": {"sep": "-", "part": -1}}]}}}]),
]
TEXT = st.one_of(st.none(), st.text(max_size=14), st.sampled_from([h for h in HOSTILE if h is None or len(h) < 40]))


@settings(derandomize=True, max_examples=30, deadline=None, print_blob=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.fixed_dictionaries({c: TEXT for c in "ABCD"}), min_size=1, max_size=40))
def test_any_text_sure_rows_equal_map_frame(rows: list[dict[str, str | None]]) -> None:
    frame = extracted({c: [r[c] for r in rows] for c in "ABCD"})
    with duckdb.connect() as c:
        for mapping in MAPPINGS:
            check(c, frame, mapping)


# --- the bench mapping on realistic dirty contacts -------------------------------------------

STATUS = {"AC": "active", "IN": "inactive", "PR": "prospect", "LD": "lead", "CL": "closed"}
BENCH = MappingSpec.model_validate({
    "spec_version": 1, "kind": "mapping", "system": "legacy", "department": "sales", "default_region": "US",
    "sources": {"contacts": {"format": "csv", "path": "contacts.csv", "key": ["id"]}},
    "entities": [
        {"entity": "contact", "from": "contacts", "fields": {
            "first_name": {"column": "first_name", "transform": ["trim", "title"]},
            "last_name": {"column": "last_name", "transform": ["trim", "title"]},
            "email": {"column": "email", "transform": ["email"]},
            "phone": {"column": "phone", "transform": ["phone"]}}},
        {"entity": "marketing_consent", "from": "contacts", "links": {"contact": "self"}, "fields": {
            "channel": {"column": "status", "map": STATUS}, "opted_in": {"constant": True},
            "consented_on": {"column": "birth_date", "formats": BENCH_FORMATS}}},
    ],
})
FIRST = ["sydney", "Sierra", "thaddäus", "Zoë", "José", "François", "Anne-Marie", "Łukasz", "Jürgen", "Mary Ann",
         "Renée", "Björn", "Chloé", "Søren", "Ines", "Hans-Peter", "Noël", "Ángel", "Grégoire", "Dörte"]
LAST = ["powers", "Margraf", "Guilbert", "O'Neil", "Müller", "van der Berg", "Dvořák", "Ørsted", "Brandt", "Le Gall",
        "Smith-Jones", "Kowalczyk", "Lefèvre", "Krüger", "Straße", "Nguyễn", "Ó Briain", "Weiß", "Zimmermann", "Roux"]
MONTHS_SHORT = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def dirty_contacts(n: int, seed: int = 1) -> pd.DataFrame:
    """Like /work/shared/anchors/gen_contacts.py's dirty_contacts (no Faker): padded mixed-case names,
    mixed-case e-mails, phones in six shapes, birth dates in five formats, status codes incl. `XX`."""
    rng = random.Random(seed)
    rows: dict[str, list[str | None]] = {c: [] for c in ("first_name", "last_name", "email", "phone", "birth_date", "status")}
    for i in range(1, n + 1):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        pad, case = rng.randrange(3), rng.randrange(3)

        def messy(s: str, p: int) -> str:
            s = s.upper() if case == 0 else s.lower() if case == 1 else s
            return " " * p + s + " " * (2 - p)

        rows["first_name"].append(messy(first, pad))
        rows["last_name"].append(messy(last, 2 - pad))
        email = f"{first.lower().replace(' ', '')}.{last.lower().replace(' ', '')}{i}@" + \
            rng.choice(["gmail.com", "yahoo.com", "web.de", "orange.fr", "example.org"])
        rows["email"].append(email.upper() if case == 0 else " " + email)
        s = str(rng.randrange(2_000_000_000, 9_999_999_999))
        rows["phone"].append([f"+1{s}", f"({s[:3]}) {s[3:6]}-{s[6:]}", f"{s[:3]}.{s[3:6]}.{s[6:]}",
                              f"1-{s[:3]}-{s[3:6]}-{s[6:]}", f"{s[:3]} {s[3:6]} {s[6:]}",
                              f"+44 20 {s[2:6]} {s[6:]}"][rng.randrange(6)])
        day = dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(365 * 65))
        y, m, d = day.year, day.month, day.day
        rows["birth_date"].append([f"{y:04d}-{m:02d}-{d:02d}", f"{d:02d}/{m:02d}/{y:04d}", f"{d:02d}.{m:02d}.{y:04d}",
                                   f"{y:04d}{m:02d}{d:02d}", f"{d:02d} {MONTHS_SHORT[m - 1]} {y:04d}"][rng.randrange(5)])
        rows["status"].append(rng.choice(["AC", "IN", "PR", "LD", "CL", "XX"]))
    frame = pd.DataFrame({"id": [str(i) for i in range(1, n + 1)], **rows}, dtype=object)
    frame["_source"], frame["_department"] = "legacy.contacts", "sales"
    frame["_source_key"] = frame["id"]
    frame["_row_number"] = range(2, n + 2)
    frame["_row_hash"] = "hash"
    return frame


# Random NANP digits are a valid number less than half the time (an area code or exchange not
# in use), the +44 20 ones three times in five. The phone is optional, so a contact with an
# invalid one is mapped without it: the SQL claims those certain refusals (sure, phone NULL).
@pytest.mark.parametrize(("entity", "least"), [(0, 1500), (1, 1500)], ids=["contact", "marketing_consent"])
def test_bench_mapping_is_mostly_sure_and_exact(con: duckdb.DuckDBPyConnection, entity: int, least: int) -> None:
    sure, mapped = check(con, dirty_contacts(2000), BENCH, entity)
    print(f"{BENCH.entities[entity].entity}: {sure} of {mapped} mapped rows sure ({sure / mapped:.1%})",
          file=sys.stderr)
    assert mapped > least and sure > 0.95 * mapped


def test_strptime_regexes_are_the_ones_the_compiler_read() -> None:
    # The compiler reads Python's own strptime regexes; this pins the ones the tests above exercise.
    pattern = _strptime._TimeRE_cache.pattern("%d %b %Y")
    assert "(?P<b>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)" in pattern


def test_entity_mapping_with_every_field_unmapped_is_sure_everywhere(con: duckdb.DuckDBPyConnection) -> None:
    mapping = spec([{"entity": "account", "from": "rows", "fields": {}}])
    em = EntityMapping.model_validate({"entity": "account", "from": "rows", "fields": {"name": "V"}})
    assert check(con, extracted({"V": ["a", None, ""]}), mapping) == (3, 3)
    assert compile_entity(em, mapping) is not None


def test_integer_columns_are_sure_only_within_32_bits(con: duckdb.DuckDBPyConnection) -> None:
    values = ["2147483647", "2147483648", "-2147483648", "-2147483649", "9223372036854775807", "7"]
    frame = extracted({"A": values, "B": ["1.00"] * len(values), "C": ["sku"] * len(values)})
    mapping = spec([{"entity": "order_line", "from": "rows", "links": {"order": {"source": "other", "column": "ID"}},
                     "fields": {"line_no": {"constant": 1}, "quantity": "A", "unit_price": "B", "sku": "C"}}])
    assert check(con, frame, mapping) == (3, 3)  # the three beyond 32 bits are rejects, never sure


@pytest.mark.parametrize("formats", [["%d.%m.%Y %H:%M:%S"], ["%Y%m%d%H%M"], ["%d.%m.%Y %H:%M", "%Y-%m-%d %H:%M"],
                                     BENCH_FORMATS])
@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin"])
def test_datetime_formats_agree_with_python_both_ways(con: duckdb.DuckDBPyConnection, formats: list[str],
                                                      zone: str) -> None:
    """As for dates: on printable ASCII a text no format reads is refused by Python too (a time
    daylight saving skips or repeats is refused by Python only, and is never claimed here)."""
    rng = random.Random(" ".join(formats))
    values: list[str | None] = [t for f in formats for t in _fill(f, rng, 2000)] + [None, "", " ", "x"]
    values += ["31.03.2024 02:30:00", "27.10.2024 02:30:00", "202403310230", "2024-03-31 02:30"]
    rows = _decided(con, values, lambda p: to_datetime(p, tuple(formats), zone),
                    lambda s: coerce.to_datetime(s, tuple(formats), zone))
    claimed = [r[3] for r in rows]
    for text, python_refuses, _, claim in rows:
        stripped = None if text is None else text.strip()
        printable = bool(stripped) and stripped.isascii() and stripped.isprintable()
        if zone == "UTC":  # no time is skipped nor repeated: every refusal of a printable text is claimed
            assert claim == (printable and python_refuses), f"{text!r}"
        elif claim:
            assert printable and python_refuses, f"{text!r}"
    assert sum(claimed) > 0.05 * len(rows)
