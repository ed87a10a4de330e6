"""One conformance test over the whole registry of rules: every transform and every coercion
that has an SQL half is held to its Python half (the reference) on enumerated edge cases and on
Hypothesis-drawn text (recorded seed): wherever the SQL says it is sure, its value is Python's
and Python does not refuse it. A rule added to the registry gets this test without writing one;
a rule with no SQL half must say why the route left it to Python."""

from __future__ import annotations

import itertools
from typing import Any

import duckdb
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from crmmigrate.map import coerce
from crmmigrate.map.coerce import sql_to_bool as to_bool, sql_to_date as to_date, sql_to_datetime as to_datetime
from crmmigrate.map.coerce import sql_to_decimal as to_decimal, sql_to_int as to_int
from crmmigrate.map.duckdb import compile_entity
from crmmigrate.sqlpipe import _Pipe
from crmmigrate.sqltext import WHITESPACE
from crmmigrate.transforms import transform_names
from tests.map.test_sql import HOSTILE, _eval, _python, _transform, sql_half, spec

SEED = 20261207  # Hypothesis draws the same texts on every run: a failure replays

# Edge cases every rule meets: each whitespace at each end, case pairs Python and DuckDB map
# differently, digits of other scripts, and the shapes the built-in rules read.
EDGES: list[str | None] = HOSTILE + [w + "x" + w for w in WHITESPACE] + [
    "".join(p) for p in itertools.product(["", " "], ["a", "Ä", "ß", "İ", "1", "-"], ["", "\t"])] + [
    "2024-02-29", "29.02.2023", "31/04/2024", "1.234,56", "1,234.56", "-0", "+12", "1e3", "ja", "NEİN", "Y", "x"]

ARGS: dict[str, dict[str, Any]] = {  # the arguments a transform needs to be called at all
    "zfill": {"width": 5}, "split": {"sep": "-", "part": 0}, "split_name": {"part": "surname"},
}

TEXTS = st.lists(st.one_of(st.none(), st.text(max_size=16), st.text(alphabet=" \t\u00a0aAßİ0159+-.,/@()", max_size=16)),
                 max_size=40)


def on_drawn_texts(check: Any) -> None:
    """*check* on lists of texts Hypothesis draws, the same ones every run (SEED)."""

    @seed(SEED)
    @settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(TEXTS)
    def drawn(values: list[str | None]) -> None:
        check(values)

    drawn()


def _agrees(con: duckdb.DuckDBPyConnection, name: str, values: list[str | None]) -> int:
    expected, bad = _python(name, values, **ARGS.get(name, {}))
    got = _transform(con, name, values, **ARGS.get(name, {}))
    for text, want, refused, (value, sure) in zip(values, expected, bad, got):
        if sure:
            assert (value, refused) == (want, False), f"{name}({text!r})"
    return sum(sure for _, sure in got)


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


@pytest.mark.parametrize("name", [n for n in transform_names() if sql_half(n) is not None])
def test_every_transform_with_an_sql_half_agrees_with_python(con: duckdb.DuckDBPyConnection, name: str) -> None:
    assert _agrees(con, name, EDGES) > 0  # and it is sure of something, or it would pass trivially
    on_drawn_texts(lambda values: _agrees(con, name, values))


def test_every_transform_without_an_sql_half_is_named_in_the_route() -> None:
    """A user's transform (one is registered here) and any built-in one without SQL: the compiled
    entity keeps its other fields in DuckDB and says which field went to Python, and why."""
    from crmmigrate.transforms import _REGISTRY, register_transform

    register_transform("python_only_for_test")(lambda values: values)
    try:
        names = [n for n in transform_names() if sql_half(n) is None]
        assert "python_only_for_test" in names
        for name in names:
            call = {name: ARGS[name]} if name in ARGS else name
            mapping = spec([{"entity": "contact", "from": "rows", "fields": {
                "last_name": "NAME", "first_name": {"column": "V", "transform": [call]}}}])
            compiled = compile_entity(mapping.entities[0], mapping)
            assert compiled is not None and name in compiled.python_fields["first_name"], name
            assert "last_name" not in compiled.python_fields
    finally:
        del _REGISTRY["python_only_for_test"]


COERCIONS = {
    "date": (lambda p: to_date(p, ("%d.%m.%Y", "iso")), lambda s: coerce.to_date(s, ("%d.%m.%Y", "iso"))),
    "datetime": (lambda p: to_datetime(p, ("%d.%m.%Y %H:%M", "iso"), "Europe/Berlin"),
                 lambda s: coerce.to_datetime(s, ("%d.%m.%Y %H:%M", "iso"), "Europe/Berlin")),
    "decimal": (lambda p: to_decimal(p, 12, 2, False, ","), lambda s: coerce.to_decimal(s, 2, False, ",", 12)),
    "int": (lambda p: to_int(p, 32), lambda s: coerce.to_int(s, 32)),
    "bool": (to_bool, coerce.to_bool),
}


def _coerces(con: duckdb.DuckDBPyConnection, kind: str, values: list[str | None]) -> int:
    compile_step, python = COERCIONS[kind]
    p = _Pipe('"V"')
    compile_step(p)
    got = _eval(con, values, p)
    expected, bad = python(pd.Series(values, dtype=object))
    for text, want, refused, (value, sure) in zip(values, expected, bad, got):
        if sure:
            assert (value, bool(refused)) == (want, False), f"{kind}({text!r})"
    return sum(sure for _, sure in got)


@pytest.mark.parametrize("kind", list(COERCIONS))
def test_every_coercion_agrees_with_python(con: duckdb.DuckDBPyConnection, kind: str) -> None:
    assert _coerces(con, kind, EDGES) > 0
    on_drawn_texts(lambda values: _coerces(con, kind, values))
