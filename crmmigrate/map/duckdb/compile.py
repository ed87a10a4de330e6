"""DuckDB SQL for the map stage: one entity mapping → SQL expressions, plus a per-row `sure` flag.

`map_frame` (mapper.py) stays the reference semantics. The SQL need only be exact on the rows
it marks sure; every other row (a possible reject or skip, a shape the SQL does not read
exactly) is mapped by `map_frame`. So every rule compiles to a value and a condition under
which that value is *provably* the one `map_frame` gives and `map_frame` does not refuse it.
Python and DuckDB differ in subtle places (Unicode case mapping and whitespace, `\\d` and
`\\s`, strptime), so each condition keeps to inputs where they are known to agree;
tests/map/test_sql.py checks each of them by enumeration against the Python code.

A field rule with no exact SQL form (a user transform, a strptime directive not checked here, a
time zone whose rules DuckDB and Python's zoneinfo do not share…) makes that field never sure
(`CompiledEntity.python_fields` says why): map_frame maps it, with the other fields handed over.
What the entity as a whole cannot compile (a source's change time in such a zone, a link without
a column) makes `compile_entity` return None: the caller then maps the entity with `map_frame`
alone. Either way run.json says which route each (source, entity) took, and why.

Read the columns, `sure` (and any `fields_sure`) from `CompiledEntity.over(table)`: a value a
rule reads more than once is computed once per row, as a column of its own in a projection
layered over the table (`SELECT *, … AS __crm_0_v1 FROM (SELECT *, … AS __crm_0_v0 FROM …)`).
DuckDB shares no subexpression inside CASE, AND or OR (see crmmigrate/sqlpipe.py).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa
from sqlalchemy import String

from crmmigrate.crm.models import ENTITIES, entity_fields
from crmmigrate.map import coerce
from crmmigrate.map.mapper import map_frame
from crmmigrate.schemas import LINEAGE_NAMES, link_fields, mapped_schema
from crmmigrate.spec.model import EntityMapping, FieldSpec, MappingSpec
from crmmigrate.spec.reasons import ReasonCode
from crmmigrate.sqlpipe import (
    _LAMBDA, _WS, _NoSql, _Pipe, _full, _one_of, _strip, layered, quote_str,
)
from crmmigrate.sqltext import ident
from crmmigrate.transforms import get_transform, transform_names


def sql_half(name: str) -> Any:
    """The DuckDB half registered beside transform *name*'s Python half, or None (no such
    transform, or one without SQL)."""
    return get_transform(name).sql if name in transform_names() else None


@dataclass(frozen=True)
class CompiledEntity:
    """DuckDB expressions over the columns of ``extract/<source>.parquet``."""

    columns: dict[str, str]  # every name of mapped_schema(entity), in its order → expression
    sure: str                # never NULL; TRUE where the row's values equal map_frame's and it maps the row
    # Field of em.fields → never NULL; TRUE where that field's value equals map_frame's and passes
    # every rule of the field (map_frame may take it as known and run only the other fields' rules).
    fields_sure: dict[str, str] = field(default_factory=dict)
    # Never NULL; TRUE where map_frame certainly rejects the row with exactly the failures below.
    reject: str = "false"
    # The failures map_frame lists for a `reject` row, in its order: where the condition holds,
    # the failure struct (schemas.FAILURE's fields) is one of them.
    failures: list[Failure] = field(default_factory=list)
    # (layer, name, expression): the bound values the expressions above read (see `over`).
    lets: list[tuple[int, str, str]] = field(default_factory=list)
    # (field, transform, flag): where that step changed the field's value (read on sure fields only).
    changes: list[tuple[str, str, str]] = field(default_factory=list)
    # Field → why a rule of it has no SQL form: never sure, so map_frame maps it on every row
    # (with the entity's other fields handed over as known).
    python_fields: dict[str, str] = field(default_factory=dict)

    def over(self, table: str) -> str:
        """*table* (an SQL table expression) with the bound values as columns: the FROM of the
        expressions above."""
        return layered(table, self.lets)


@dataclass(frozen=True)
class Failure:
    """One failed rule map_frame certainly reports: *when* (never NULL) and what, as mapper._Failures.add
    writes it (`struct`), for the raw input *value* and the text of *message* (both SQL)."""

    field: str
    when: str
    rule: str
    reason: ReasonCode
    value: str
    message: str
    lenient: bool = False  # an `on_invalid: null` field's: listed, but it rejects nothing by itself

    def struct(self, value: str | None = None, message: str | None = None) -> str:
        """A schemas.FAILURE struct; *value* and *message*, where given, name them already computed."""
        return (f"{{'field': {quote_str(self.field)}, 'rule': {quote_str(self.rule)}, 'value': {value or self.value}, "
                f"'reason_code': {quote_str(str(self.reason))}, 'category': {quote_str(self.reason.category)}, "
                f"'message': {message or self.message}}}")


def compile_entity(em: EntityMapping, mapping: MappingSpec, tag: str = "") -> CompiledEntity | None:
    """None when *em* as a whole has no SQL form (the caller then maps the entity with map_frame).

    *tag* goes into the names of the bound values, so that several entities' expressions can
    share one query."""
    return compile_or_why(em, mapping, tag)[0]


def compile_or_why(em: EntityMapping, mapping: MappingSpec, tag: str = "") -> tuple[CompiledEntity | None, str | None]:
    """(the compiled entity, None), or (None, why it has no SQL form): the route is never silent."""
    try:
        return _compile(em, mapping, tag), None
    except _NoSql as exc:
        return None, str(exc)




# --- value map -----------------------------------------------------------------------------

def _value_map(p: _Pipe, table: dict[str, str | bool | None], python_type: type) -> bool:
    """Map the value; a value outside the map is a reject. Returns whether it is already typed."""
    targets = list(table.values())
    if all(t is None or isinstance(t, str) for t in targets):
        typed = False
    elif python_type is bool and all(t is None or type(t) is bool for t in targets):
        typed = True  # map_frame keeps a bool from the map as it is, without coercion
    else:
        raise _NoSql(f"value map {table} mixes types")

    def target(t: str | bool | None) -> str:
        return "NULL" if t is None else str(t).lower() if isinstance(t, bool) else quote_str(t)

    x = p.bind()
    keys = _one_of(x, [quote_str(k) for k in table])
    # Every rule before the map passed and the value is present but not a key: map_frame's
    # `unmapped_value`, and nothing after it fails (the value is then missing, not invalid).
    p.refuse("map", f"{x} IS NOT NULL AND NOT {keys}")
    p.require(f"{x} IS NULL OR {keys}")
    cases = " ".join(f"WHEN {quote_str(k)} THEN {target(t)}" for k, t in table.items())
    p.value = f"CAST(CASE {x} {cases} END AS {'BOOLEAN' if typed else 'VARCHAR'})" if table else \
        f"CAST(NULL AS {'BOOLEAN' if typed else 'VARCHAR'})"
    return typed


# --- fields, links, entity -----------------------------------------------------------------

def _sql_type(arrow: pa.DataType) -> str:
    if pa.types.is_decimal(arrow):
        return f"DECIMAL({arrow.precision},{arrow.scale})"
    if pa.types.is_timestamp(arrow):
        return "TIMESTAMPTZ"
    return {pa.string(): "VARCHAR", pa.bool_(): "BOOLEAN", pa.int64(): "BIGINT", pa.date32(): "DATE"}[arrow]


def _literal(value: object, python_type: type, arrow: pa.DataType) -> str:
    """A value map_frame produced, as an SQL literal of the column's type."""
    if value is None:
        return f"CAST(NULL AS {_sql_type(arrow)})"
    if type(value) is not python_type:  # e.g. a constant 5 for a text column: map_frame passes the int on
        raise _NoSql(f"constant {value!r} is not a {python_type.__name__}")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        naive = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return f"timezone('UTC', CAST({quote_str(naive.isoformat(sep=' '))} AS TIMESTAMP))"
    return f"CAST({quote_str(str(value))} AS {_sql_type(arrow)})"


def _constant(em: EntityMapping, name: str, fs: FieldSpec, mapping: MappingSpec) -> tuple[str, str]:
    """A constant is the same on every row: map_frame itself computes it, once, on a one-row frame."""
    for call in fs.transform:
        if sql_half(call.name) is None:
            raise _NoSql(f"{em.entity}.{name}: transform {call.name} has no SQL form")
    alone = EntityMapping(entity=em.entity, from_=em.from_, fields={name: fs})
    lm = mapping.sources[em.from_].last_modified
    raw = [lm.column if lm is not None else "raw"]  # map_frame's rejects need a raw column
    frame = pd.DataFrame({c: pd.Series([0 if c == "_row_number" else None if c in raw else "c"], dtype=object)
                          for c in raw + LINEAGE_NAMES})
    result = map_frame(frame, alone, mapping)
    arrow = mapped_schema(em.entity).field(name).type
    if result.mapped.empty:  # refused: every row is a reject
        return f"CAST(NULL AS {_sql_type(arrow)})", "false"
    return _literal(result.mapped[name].iloc[0], entity_fields(em.entity)[name].python_type, arrow), "true"


def _input(fs: FieldSpec) -> str:
    if fs.column is not None:
        return ident(fs.column)
    assert fs.columns is not None
    # Python joins the present parts (an empty string is present); DuckDB's concat_ws skips NULLs.
    return f"nullif(concat_ws({quote_str(fs.sep)}, {', '.join(map(ident, fs.columns))}), '')"


def _failure(name: str, when: str, rule: str, reason: ReasonCode, message: str, raw: str,
             lenient: bool = False) -> Failure:
    """The failure of rule *rule* of field *name* where *when* holds, for the raw input *raw*."""
    text = f"CAST({raw} AS VARCHAR)"
    return Failure(name, when, rule, reason, text, f"replace({quote_str(message)}, '{{value}}', coalesce({text}, 'None'))",
                   lenient)


def changed_flag(before: str, after: str) -> str:
    """mapper.changed_values in SQL, for two bound names: a held value a step changed. Read only
    where the field is sure, so no step refused it, and each step's value is Python's."""
    return f"coalesce({before} IS NOT NULL AND {before} <> '' AND ({after} IS NULL OR {after} <> {before}), false)"


def _field(em: EntityMapping, name: str, fs: FieldSpec, mapping: MappingSpec, prefix: str,
           changes: list[tuple[str, str, str]] | None = None
           ) -> tuple[str, list[str], str, list[Failure], list[tuple[int, str, str]]]:
    """(value, [sure conditions], settled, [certain failures], bound values named *prefix*N) of one
    field; each transform step's `changed_flag` is appended to *changes* as (field, transform, flag).
    The conditions hold where the value passes every rule of the field; *settled* also where a
    lenient field certainly drops it (the value is then NULL, and the row is mapped with one
    nulled row for the field)."""
    if fs.constant is not None:
        value, sure = _constant(em, name, fs, mapping)
        return value, [sure], sure, [], []
    target = entity_fields(em.entity)[name]
    column_type = ENTITIES[em.entity].__table__.columns[name].type
    p = _Pipe(_input(fs), prefix)
    for call in fs.transform:
        compiler = sql_half(call.name)
        if compiler is None:
            raise _NoSql(f"{em.entity}.{name}: transform {call.name} has no SQL form")
        before = p.bind()
        compiler(p, call.args, mapping)
        if changes is not None:
            changes.append((name, call.name, p.let(changed_flag(before, p.bind()))))
    typed = _value_map(p, fs.map, target.python_type) if fs.map is not None else False
    if typed or target.python_type is str:
        pass  # text is checked for its length below
    elif (coercion := coerce.COERCIONS.get(target.python_type)) is not None:
        coercion.sql(p, coerce.target_for(column_type, fs, mapping))
    else:
        raise _NoSql(f"{em.entity}.{name}: no SQL coercion to {target.python_type.__name__}")
    value, sure, refused = p.emit()
    conditions = [sure]
    limit = column_type.length if isinstance(column_type, String) else None
    if target.python_type is str and limit:  # Python's len() and DuckDB's length() both count code points
        # Text of no more bytes than the limit has no more characters: strlen() reads a stored
        # size, length() the whole text. A CASE, since OR in a projection evaluates both sides.
        conditions.append(f"CASE WHEN strlen({value}) <= {limit} THEN true ELSE coalesce(length({value}) <= {limit}, true) END")
    required = fs.required if fs.required is not None else target.required
    lenient = fs.lenient(required)
    failures = []
    for rule, when in refused.items():
        if rule not in ("map", "type"):  # a transform's, as map_field words it
            failures.append(_failure(name, when, rule, get_transform(rule).reason, f"'{{value}}' refused by {rule}",
                                     _input(fs), lenient))
    if "map" in refused:
        assert fs.map is not None
        keys = ", ".join(map(str, fs.map))
        failures.append(_failure(name, refused["map"], "map", ReasonCode.UNMAPPED_VALUE,
                                 f"'{{value}}' is not in the value map ({keys})", _input(fs), lenient))
    if "type" in refused:  # as mapper._coerce words it
        reason = coerce.REASON_FOR_TYPE[target.python_type]
        message = f"'{{value}}' is not a valid {target.python_type.__name__}" + (
            f" (formats: {', '.join(fs.formats)})" if fs.formats else "")
        failures.append(_failure(name, refused["type"], "type", reason, message, _input(fs), lenient))
    if required:
        conditions.append(f"({value} IS NOT NULL)")
        # Every rule passed and left nothing: map_frame's only failure of the field is the absence.
        failures.append(_failure(name, f"least({sure}, {value} IS NULL)", "required", ReasonCode.MISSING_REQUIRED,
                                 "a value is required", _input(fs)))
    settled = _all(conditions)
    if lenient and refused:
        # A refusal is the field's only failure (every rule before it passed, and it leaves None for
        # the rules after it): map_frame maps the row without the value. A value the refusing rule
        # leaves behind (phone's is NULL, a coercion's too) is not relied on.
        dropped = f"greatest({', '.join(refused.values())})"
        settled = f"greatest({settled}, {dropped})"
        value = f"CASE WHEN {dropped} THEN NULL ELSE {value} END"
    return value, conditions, settled, failures, p.lets


def _compile(em: EntityMapping, mapping: MappingSpec, tag: str) -> CompiledEntity:
    lm = mapping.sources[em.from_].last_modified
    read = em.read_columns() + ([lm.column] if lm else [])
    if clash := sorted(c for c in read if c.lower().startswith(_LAMBDA)):
        raise _NoSql(f"columns {clash} would be hidden by the SQL's lambda parameters")
    schema = mapped_schema(em.entity)
    columns = {n: ident(n) for n in LINEAGE_NAMES}
    sure: list[str] = []
    lets: list[tuple[int, str, str]] = []
    if (lm := mapping.sources[em.from_].last_modified) is not None:  # first: a constant runs map_frame
        p = _Pipe(ident(lm.column), f"{_LAMBDA}{tag}lm_v")
        coerce.sql_to_datetime(p, lm.formats, mapping.timezone)
        columns["_last_modified"], lm_sure, _ = p.emit()
        sure.append(lm_sure)
        lets += p.lets
    else:
        columns["_last_modified"] = "CAST(NULL AS TIMESTAMPTZ)"
    fields_sure: dict[str, str] = {}
    failures: dict[str, list[Failure]] = {}
    changes: list[tuple[str, str, str]] = []
    python_fields: dict[str, str] = {}
    rest = list(sure)  # the row's conditions outside its fields
    for i, name in enumerate(entity_fields(em.entity)):
        if name in em.fields:
            field_changes: list[tuple[str, str, str]] = []
            try:
                columns[name], conditions, settled, failures[name], bound = _field(
                    em, name, em.fields[name], mapping, f"{_LAMBDA}{tag}{i}_v", field_changes)
            except _NoSql as exc:
                # One rule without SQL costs its field, not its entity: the other fields stay sure.
                python_fields[name] = str(exc)
                columns[name] = f"CAST(NULL AS {_sql_type(schema.field(name).type)})"
                conditions, settled, failures[name], bound, field_changes = ["false"], "false", [], [], []
            changes += field_changes
            lets += bound
            sure.append(settled)
            fields_sure[name] = _all(conditions)
        else:
            columns[name] = f"CAST(NULL AS {_sql_type(schema.field(name).type)})"
    for parent in link_fields(em.entity):
        link = em.links.get(parent)
        source, key = f"_link_{parent}_source", f"_link_{parent}_key"
        if link is None:
            columns[source] = columns[key] = "CAST(NULL AS VARCHAR)"
        elif link.source == "self":
            columns[source], columns[key] = ident("_source"), ident("_source_key")
        elif link.column is None:
            raise _NoSql(f"link {parent} from {link.source} without a column")
        else:
            columns[source] = f"CAST({quote_str(mapping.source_id(link.source))} AS VARCHAR)"
            columns[key] = _strip(ident(link.column))  # mapper.py keeps a blank key: it is not missing
            if not ENTITIES[em.entity].__table__.columns[f"{parent}_id"].nullable:
                sure.append(f"({ident(link.column)} IS NOT NULL)")
                rest.append(sure[-1])
    if em.when_present:  # skipped when every one of them is missing or blank
        present = [f"coalesce(NOT {_full(ident(c), f'[{_WS}]*')}, false)" for c in em.when_present]
        sure.append(f"greatest({', '.join(present)})")
        rest.append(sure[-1])
    # In map_frame's order: field by field as em.fields lists them.
    ordered = [f for name in em.fields for f in failures.get(name, [])]
    reject = "false"
    if strict := [f.when for f in ordered if not f.lenient]:
        # Each field sure or certainly failed, the rest of the row sure, and one failure that rejects.
        per_field = [f"greatest({fields_sure[n]}, {', '.join(f.when for f in failures[n])})" if failures.get(n)
                     else fields_sure[n] for n in em.fields]
        reject = _all(rest + per_field + [f"greatest({', '.join(strict)})"])
    return CompiledEntity({n: columns[n] for n in schema.names}, _all(sure), fields_sure, reject, ordered, lets,
                          changes, python_fields)


def _all(conditions: list[str]) -> str:
    """Never-NULL conditions (mostly bound flags), all true."""
    return f"least({', '.join([c for c in conditions if c != 'true'] + ['true'])})"


__all__ = ["CompiledEntity", "Failure", "compile_entity", "compile_or_why", "sql_half"]
