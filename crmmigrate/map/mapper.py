"""The pure mapper: one chunk of extracted rows → (mapped records, rejects, skipped), plus the
values dropped by lenient fields (nulled).

No I/O. Every row of the input lands in exactly one of the three outputs; a row with any
failed field rule is rejected with *all* its failures, not just the first. The one exception
is a lenient field (an optional one, unless it says `on_invalid: reject`): its failures alone do
not reject the record, which is mapped with that field empty and one ``nulled`` row per dropped
value (nulled rows are not records; they annotate mapped ones).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sqlalchemy import String

from crmmigrate.jsontext import json_objects
from crmmigrate.crm.models import ENTITIES, entity_fields
from crmmigrate.map import coerce
from crmmigrate.schemas import LINEAGE_NAMES, MAP_CHANGED, MAP_NULLED, link_fields
from crmmigrate.spec.model import EntityMapping, FieldSpec, MappingSpec
from crmmigrate.spec.reasons import ReasonCode
from crmmigrate.transforms import get_transform


def _no_nulled() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=object) for name in MAP_NULLED.names})


def _no_changed() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=object) for name in MAP_CHANGED.names})


@dataclass
class MapResult:
    mapped: pd.DataFrame
    rejects: pd.DataFrame
    skipped: pd.DataFrame
    # Columns of schemas.MAP_NULLED: one row per (mapped record, field) whose value a lenient field dropped.
    nulled: pd.DataFrame = field(default_factory=_no_nulled)
    # Columns of schemas.MAP_CHANGED: one row per (mapped record, field) whose value a rule placed.
    changed: pd.DataFrame = field(default_factory=_no_changed)
    # (field, transform) → mapped records whose value that transform changed (none: not listed)
    transformed: dict[tuple[str, str], int] = field(default_factory=dict)


@dataclass
class _Failures:
    """Failed rules per row label, in the order they were found.

    A failure of a lenient field (FieldSpec.lenient) is listed like any other but does not by
    itself reject its row: only rows in ``strict`` are rejected.
    """

    by_row: dict[object, list[dict[str, str | None]]] = field(default_factory=dict)
    strict: dict[object, dict[str, str | None]] = field(default_factory=dict)  # row → its first strict failure
    # (row, field, rule, raw text, value stored) of each value a rule placed (see coerce.read_datetimes)
    changes: list[tuple[object, str, str, object, object]] = field(default_factory=list)
    # ((field, transform), mask of the rows whose value that step changed), step by step
    transformed: list[tuple[tuple[str, str], pd.Series]] = field(default_factory=list)

    def changed(self, placed: pd.Series, inputs: pd.Series, values: pd.Series, field_name: str) -> None:
        for idx in placed.index[placed.notna().to_numpy()]:
            self.changes.append((idx, field_name, placed[idx], inputs[idx], values[idx]))

    def rows_failing(self, field_name: str) -> list[object]:
        return [i for i, fs in self.by_row.items() if any(f["field"] == field_name for f in fs)]

    def add(self, bad: pd.Series, inputs: pd.Series, field_name: str, rule: str, reason: ReasonCode,
            message: str, lenient: bool = False) -> None:
        mask = bad.to_numpy(dtype=bool)
        if not mask.any():
            return
        if not inputs.index.equals(bad.index):  # a user transform may hand back its rows reordered
            inputs = inputs.reindex(bad.index)
        # Positional, not inputs.get(label): a label lookup per refused value is a pandas call each.
        for idx, value in zip(bad.index[mask], inputs.to_numpy()[mask]):
            failure = {
                "field": field_name, "rule": rule, "value": None if value is None else str(value),
                "reason_code": str(reason), "category": reason.category,
                "message": message.replace("{value}", str(value)),
            }
            self.by_row.setdefault(idx, []).append(failure)
            if not lenient:
                self.strict.setdefault(idx, failure)


def changed_values(before: pd.Series, after: pd.Series, bad: pd.Series) -> pd.Series:
    """Where a transform step changed a value it did not refuse (a blank trimmed to nothing too):
    the CRM will hold something else than the legacy system did. The SQL route's flag is
    duckdb.compile.changed_flag; the two are held equal by the map stage's route tests."""
    after = after.reindex(before.index)
    held = before.notna() & (before != "")  # an empty text is no value, as the readers read it
    return held & ~bad.reindex(before.index, fill_value=False) & (after.isna() | (after != before))


def _none(values: pd.Series) -> pd.Series:
    values = values.astype(object)
    return values.where(values.notna(), None)


def _input(frame: pd.DataFrame, fs: FieldSpec) -> pd.Series:
    if fs.column is not None:
        return _none(frame[fs.column])
    if fs.columns is not None:
        parts = frame[list(fs.columns)].astype(object)
        joined = parts.apply(lambda row: fs.sep.join(str(v) for v in row if v is not None and v == v), axis=1)
        return _none(joined.where(joined.str.len() > 0, None)) if len(frame) else pd.Series(dtype=object)
    return pd.Series([fs.constant] * len(frame), index=frame.index, dtype=object)


def _max_length(entity: str, name: str) -> int | None:
    column_type = ENTITIES[entity].__table__.columns[name].type
    return column_type.length if isinstance(column_type, String) else None


def map_field(frame: pd.DataFrame, entity: str, name: str, fs: FieldSpec, mapping: MappingSpec,
              failures: _Failures, dst: tuple[str, str] = ("shift_forward", "first")) -> pd.Series:
    target = entity_fields(entity)[name]
    required = fs.required if fs.required is not None else target.required
    # A required field is never lenient, whatever a spec built around the loader's checks says.
    lenient = fs.lenient(required)
    raw = _input(frame, fs)
    values = raw
    context = {"default_region": mapping.default_region}
    for call in fs.transform:
        transform = get_transform(call.name)
        text = values.where(values.isna(), values.astype(str)) if fs.constant is not None else values
        try:
            values, bad = transform(text, call.args, context)
        except Exception as exc:  # a registered function's bug: every row in the chunk fails, none is lost
            bad = pd.Series(True, index=frame.index)  # a bug, not an invalid value: strict even when lenient
            failures.add(bad, raw, name, call.name, ReasonCode.TRANSFORM_ERROR, f"transform raised {exc!r}")
            return pd.Series(None, index=frame.index, dtype=object)
        values = _none(values)
        failures.add(bad, raw, name, call.name, transform.reason, f"'{{value}}' refused by {call.name}", lenient)
        values = values.where(~bad, None)
        if fs.constant is None:  # a constant is the mapping's value, not one the legacy system held
            failures.transformed.append(((name, call.name), changed_values(text, values, bad)))
    if fs.map is not None:
        present = values.notna()
        unmapped = present & ~values.isin(list(fs.map))
        mapped = values.map(fs.map).astype(object)
        failures.add(unmapped, raw, name, "map", ReasonCode.UNMAPPED_VALUE,
                     f"'{{value}}' is not in the value map ({', '.join(map(str, fs.map))})", lenient)
        values = _none(mapped.where(~unmapped, None))
    values = _coerce(values, raw, entity, name, target.python_type, fs, mapping, failures, lenient, dst)
    if lenient:  # every refusal above already left None; made explicit, as the nulled rows promise it
        values = values.where(~frame.index.isin(failures.rows_failing(name)), None)
    if required:
        # A value refused above is already a failure of this field: only report true absences.
        missing = values.isna() & ~frame.index.isin(failures.rows_failing(name))
        failures.add(missing, raw, name, "required", ReasonCode.MISSING_REQUIRED, "a value is required")
    return values


def _coerce(values: pd.Series, raw: pd.Series, entity: str, name: str, python_type: type, fs: FieldSpec,
            mapping: MappingSpec, failures: _Failures, lenient: bool, dst: tuple[str, str]) -> pd.Series:
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        text = values  # the common case, without a Python call per value
    else:
        text = values.map(lambda v: v if v is None or isinstance(v, str) else None)
    already = values.notna() & text.isna()  # a value map already produced the typed value
    if python_type is str:
        limit = _max_length(entity, name)
        if limit:
            too_long = values.notna() & (values.astype(str).str.len() > limit)
            failures.add(too_long, raw, name, "length", ReasonCode.TOO_LONG, f"longer than {limit} characters",
                         lenient)
            values = values.where(~too_long, None)
        return values
    coercion = coerce.COERCIONS[python_type]
    column_type = ENTITIES[entity].__table__.columns[name].type
    out, bad, placed = coercion.read(text, coerce.target_for(column_type, fs, mapping, dst))
    if placed is not None:
        failures.changed(placed, raw, out, name)
    failures.add(bad, raw, name, "type", coercion.reason, f"'{{value}}' is not a valid {python_type.__name__}"
                 + (f" (formats: {', '.join(fs.formats)})" if fs.formats else ""), lenient)
    return out.where(~already, values)


def map_frame(frame: pd.DataFrame, em: EntityMapping, mapping: MappingSpec,
              known: dict[str, pd.Series] | None = None, raw_json: pd.Series | None = None) -> MapResult:
    """Map one chunk of ``extract/<source>.parquet`` rows to *em*'s entity.

    *known* holds fields already mapped for these rows (by the compiled SQL, which only hands
    over values that passed every rule of their field): they are taken as they are. *raw_json*,
    each row's raw values as JSON, saves writing them again for the rejects.
    """
    failures = _Failures()
    out = frame[LINEAGE_NAMES].copy()
    source = mapping.sources[em.from_]
    dst = (source.nonexistent, source.ambiguous)
    for name, fs in em.fields.items():
        out[name] = known[name] if known and name in known else map_field(frame, em.entity, name, fs, mapping, failures,
                                                                          dst)
    if source.last_modified is not None:
        lm = source.last_modified
        raw = _none(frame[lm.column])
        values, bad, placed = coerce.read_datetimes(raw, lm.formats, mapping.timezone, *dst)
        failures.add(bad, raw, "_last_modified", "last_modified", ReasonCode.INVALID_DATETIME,
                     f"'{{value}}' is not a valid timestamp (formats: {', '.join(lm.formats)})")
        failures.changed(placed, raw, values, "_last_modified")
        out["_last_modified"] = values
    else:
        out["_last_modified"] = None
    for parent in link_fields(em.entity):
        link = em.links.get(parent)
        if link is None:
            out[f"_link_{parent}_source"], out[f"_link_{parent}_key"] = None, None
        elif link.source == "self":
            out[f"_link_{parent}_source"], out[f"_link_{parent}_key"] = frame["_source"], frame["_source_key"]
        else:
            keys = _none(frame[link.column].str.strip())
            out[f"_link_{parent}_source"] = mapping.source_id(link.source)
            out[f"_link_{parent}_key"] = keys
            if not ENTITIES[em.entity].__table__.columns[f"{parent}_id"].nullable:
                failures.add(keys.isna(), keys, f"{parent}_id", "link", ReasonCode.MISSING_PARENT,
                             f"no {parent} key in column {link.column}")
    skip = pd.Series(False, index=frame.index)
    if em.when_present:  # a blank value is no value: `trim` makes it missing too
        present = [_none(frame[c]).map(lambda v: v is not None and v.strip() != "") for c in em.when_present]
        skip = ~pd.concat(present, axis=1).any(axis=1) if len(frame) else skip
    rejected = pd.Series(frame.index.isin(list(failures.strict)), index=frame.index) & ~skip
    mapped = ~rejected & ~skip
    return MapResult(out[mapped], _rejects(frame, em, failures, rejected, raw_json), _skipped(frame, em, skip),
                     _nulled(frame, em, failures, mapped), _changed(frame, em, failures, mapped),
                     _transformed(failures, mapped))


def _rejects(frame: pd.DataFrame, em: EntityMapping, failures: _Failures, rejected: pd.Series,
             raw_json: pd.Series | None = None) -> pd.DataFrame:
    rows = frame[rejected]
    raw_columns = [c for c in frame.columns if c not in LINEAGE_NAMES]
    out = rows[LINEAGE_NAMES].copy()
    out["entity"] = em.entity
    firsts = [failures.strict[i] for i in rows.index]  # the first failure that rejects the row names it
    out["reason_code"] = [f["reason_code"] for f in firsts]
    out["category"] = [f["category"] for f in firsts]
    out["message"] = ["; ".join(f"{x['field']}: {x['message']}" for x in failures.by_row[i]) for i in rows.index]
    out["failures"] = [failures.by_row[i] for i in rows.index]
    out["raw"] = raw_json[rejected].tolist() if raw_json is not None else _raw_json_rows(rows, raw_columns)
    return out


def _raw_json_rows(rows: pd.DataFrame, columns: list[str]) -> list[str]:
    """Each row's raw values as a JSON object, as DuckDB's to_json writes it (the compiled route
    hands these over from DuckDB); read column-wise, since a `.loc` per row is a pandas call each."""
    if not columns:  # a source without columns: zip(*[]) would yield no rows at all
        return ["{}"] * len(rows)
    values = [[None if v is None or v != v else v for v in rows[c].tolist()] for c in columns]
    return json_objects(columns, zip(*values))


def _nulled(frame: pd.DataFrame, em: EntityMapping, failures: _Failures, mapped: pd.Series) -> pd.DataFrame:
    """The dropped values of mapped rows: only lenient failures are left on those."""
    if not failures.by_row:
        return _no_nulled()
    rows = frame[mapped & frame.index.isin(list(failures.by_row))]
    dropped = [failures.by_row[i] for i in rows.index]
    out = rows[LINEAGE_NAMES].iloc[np.repeat(np.arange(len(rows)), [len(d) for d in dropped])]
    out = out.reset_index(drop=True)
    out["entity"] = em.entity
    flat = [f for d in dropped for f in d]
    for key in ("field", "rule", "value", "reason_code", "category", "message"):
        out[key] = pd.Series([f[key] for f in flat], dtype=object)
    return out[MAP_NULLED.names]


def _transformed(failures: _Failures, mapped: pd.Series) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for key, mask in failures.transformed:
        if n := int((mask & mapped).sum()):
            counts[key] = counts.get(key, 0) + n
    return counts


def _changed(frame: pd.DataFrame, em: EntityMapping, failures: _Failures, mapped: pd.Series) -> pd.DataFrame:
    """The values of mapped rows a rule placed (a rejected or skipped row stores none)."""
    kept = [c for c in failures.changes if mapped[c[0]]]
    if not kept:
        return _no_changed()
    position = {label: i for i, label in enumerate(frame.index)}
    kept.sort(key=lambda c: position[c[0]])  # record by record, each in field order (a stable sort)
    out = frame.loc[[c[0] for c in kept], LINEAGE_NAMES].reset_index(drop=True)
    out["entity"] = em.entity
    out["field"], out["rule"] = [c[1] for c in kept], [c[2] for c in kept]
    out["before"] = [None if c[3] is None else str(c[3]) for c in kept]
    out["after"] = [None if c[4] is None else str(c[4]) for c in kept]
    return out[MAP_CHANGED.names]


def _skipped(frame: pd.DataFrame, em: EntityMapping, skip: pd.Series) -> pd.DataFrame:
    rows = frame[skip]
    return pd.DataFrame({
        "entity": em.entity, "_source": rows["_source"], "_source_key": rows["_source_key"],
        "reason_code": str(ReasonCode.NOT_APPLICABLE),
        "message": f"{', '.join(em.when_present)} empty: no {em.entity} in this record",
    })
