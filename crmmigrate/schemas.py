"""Declared pyarrow schemas of every run-folder table.

Writing through a declared schema means a chunk whose column is all null keeps its type,
and a reader in another stage (or a consultant with pandas) sees the same columns each run.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
from crmmigrate.crm.models import ENTITIES

UTC_TS = pa.timestamp("us", tz="UTC")

LINEAGE = [
    pa.field("_source", pa.string(), nullable=False),
    pa.field("_department", pa.string(), nullable=False),
    pa.field("_source_key", pa.string(), nullable=False),
    pa.field("_row_number", pa.int64(), nullable=False),
    pa.field("_row_hash", pa.string(), nullable=False),
]
LINEAGE_NAMES = [f.name for f in LINEAGE]


def extract_schema(raw_columns: list[str]) -> pa.Schema:
    """Raw columns, all text, then lineage."""
    return pa.schema([pa.field(c, pa.string()) for c in raw_columns] + LINEAGE)


SOURCES = pa.schema([
    ("source", pa.string()), ("system", pa.string()), ("department", pa.string()), ("table", pa.string()),
    ("format", pa.string()), ("path", pa.string()), ("records_in", pa.int64()),
    ("extracted", pa.int64()), ("rejected", pa.int64()), ("snapshot", pa.string()),
    ("fallback_decoded", pa.int64()), ("repeats_identical", pa.int64()), ("repeats_differing", pa.int64()),
])

REPEATS = pa.schema([
    pa.field("_source", pa.string(), nullable=False),
    pa.field("_source_key", pa.string(), nullable=False),
    pa.field("_row_number", pa.int64(), nullable=False),
    pa.field("first_row_number", pa.int64(), nullable=False),
    pa.field("entity", pa.string(), nullable=False),
    pa.field("identical", pa.bool_(), nullable=False),  # in the columns this entity reads
])

EXTRACT_REJECTS = pa.schema([
    pa.field("_source", pa.string(), nullable=False),
    pa.field("_department", pa.string(), nullable=False),
    pa.field("_row_number", pa.int64(), nullable=False),
    pa.field("raw", pa.string()),
    pa.field("reason_code", pa.string(), nullable=False),
    pa.field("message", pa.string(), nullable=False),
])

FAILURE = pa.struct([
    ("field", pa.string()), ("rule", pa.string()), ("value", pa.string()),
    ("reason_code", pa.string()), ("category", pa.string()), ("message", pa.string()),
])

MAP_REJECTS = pa.schema(LINEAGE + [
    pa.field("entity", pa.string(), nullable=False),
    pa.field("reason_code", pa.string(), nullable=False),
    pa.field("category", pa.string(), nullable=False),
    pa.field("message", pa.string(), nullable=False),
    pa.field("failures", pa.list_(FAILURE)),
    pa.field("raw", pa.string(), nullable=False),
])

# One row per (mapped record, field) whose invalid value a lenient field dropped (FieldSpec.lenient).
MAP_NULLED = pa.schema(LINEAGE + [
    pa.field("entity", pa.string(), nullable=False),
    pa.field("field", pa.string(), nullable=False),
    pa.field("rule", pa.string(), nullable=False),
    pa.field("value", pa.string()),  # the raw input text
    pa.field("reason_code", pa.string(), nullable=False),
    pa.field("category", pa.string(), nullable=False),
    pa.field("message", pa.string(), nullable=False),
])


# One row per (mapped record, field) whose value a rule changed beyond reading it (a wall time
# daylight saving skips or repeats, placed by the source's policy): never changed unrecorded.
MAP_CHANGED = pa.schema(LINEAGE + [
    pa.field("entity", pa.string(), nullable=False),
    pa.field("field", pa.string(), nullable=False),
    pa.field("rule", pa.string(), nullable=False),
    pa.field("before", pa.string()),  # the raw input text
    pa.field("after", pa.string()),   # the value stored, as text
])


def arrow_type(column) -> pa.DataType:
    """Arrow type of a CRM model column."""
    python_type = column.type.python_type
    if python_type is Decimal:
        return pa.decimal128(column.type.precision, column.type.scale)
    return {
        str: pa.string(), int: pa.int64(), bool: pa.bool_(),
        dt.date: pa.date32(), dt.datetime: UTC_TS,
    }[python_type]


def field_types(entity: str) -> dict[str, pa.DataType]:
    table = ENTITIES[entity].__table__
    return {c.name: arrow_type(c) for c in table.columns if c.info.get("field")}


def link_fields(entity: str) -> list[str]:
    table = ENTITIES[entity].__table__
    return [c.info["link"] for c in table.columns if "link" in c.info]


def mapped_schema(entity: str) -> pa.Schema:
    """Canonical fields, lineage, the record's last-modified time and its parents' keys."""
    links = []
    for parent in link_fields(entity):
        links += [pa.field(f"_link_{parent}_source", pa.string()), pa.field(f"_link_{parent}_key", pa.string())]
    fields = [pa.field(n, t) for n, t in field_types(entity).items()]
    return pa.schema(fields + LINEAGE + [pa.field("_last_modified", UTC_TS)] + links)


CLUSTERS = pa.schema([
    pa.field("entity", pa.string(), nullable=False),
    pa.field("_source", pa.string(), nullable=False),
    pa.field("_source_key", pa.string(), nullable=False),
    pa.field("cluster_id", pa.string(), nullable=False),
    # The record has an undecided pair in match/review.parquet: it stands alone until decided.
    pa.field("review", pa.bool_(), nullable=False),
])

_PAIR = [
    pa.field("entity", pa.string(), nullable=False),
    pa.field("left_source", pa.string(), nullable=False),
    pa.field("left_key", pa.string(), nullable=False),
    pa.field("right_source", pa.string(), nullable=False),
    pa.field("right_key", pa.string(), nullable=False),
    pa.field("score", pa.float64()),  # match probability; empty for a link no model scored
    pa.field("match_weight", pa.float64()),
]
# The links that made the clusters: `link` says why (model, same: a decision, unique: a shared unique key).
PAIRS = pa.schema([*_PAIR, pa.field("link", pa.string(), nullable=False), pa.field("evidence", pa.string())])
# Pairs a consultant should decide: `reason` says why each is here.
REVIEW = pa.schema([*_PAIR, pa.field("reason", pa.string(), nullable=False), pa.field("evidence", pa.string())])
# Decisions that contradict each other (A = B, B = C, A ≠ C): reported, not resolved.
CONTRADICTIONS = pa.schema([*_PAIR[:5], pa.field("message", pa.string(), nullable=False)])

PROVENANCE = pa.struct([("source", pa.string()), ("key", pa.string()), ("rule", pa.string())])


def golden_schema(entity: str) -> pa.Schema:
    fields = [pa.field(n, t) for n, t in field_types(entity).items()]
    provenance = [pa.field(f"_from_{n}", PROVENANCE) for n in field_types(entity)]
    links = [pa.field(f"_link_{p}", pa.string()) for p in link_fields(entity)]
    return pa.schema(
        [pa.field("cluster_id", pa.string(), nullable=False),
         pa.field("_anchor_source", pa.string(), nullable=False),
         pa.field("_anchor_key", pa.string(), nullable=False),
         pa.field("_members", pa.int64(), nullable=False)]
        + fields + [pa.field("_last_modified", UTC_TS)] + links + provenance
    )


CONFLICTS = pa.schema([
    pa.field("entity", pa.string(), nullable=False),
    pa.field("cluster_id", pa.string(), nullable=False),
    pa.field("field", pa.string(), nullable=False),
    pa.field("chosen", pa.string()),
    pa.field("chosen_source", pa.string()),
    pa.field("values", pa.list_(pa.struct([("source", pa.string()), ("key", pa.string()), ("value", pa.string())]))),
])

DEFERRED = pa.schema([
    pa.field("entity", pa.string(), nullable=False),
    pa.field("_source", pa.string(), nullable=False),
    pa.field("_source_key", pa.string(), nullable=False),
    pa.field("reason_code", pa.string(), nullable=False),
    pa.field("message", pa.string(), nullable=False),
])

OUTCOMES = pa.schema([
    pa.field("entity", pa.string(), nullable=False),
    pa.field("_source", pa.string(), nullable=False),
    pa.field("_source_key", pa.string(), nullable=False),
    pa.field("cluster_id", pa.string(), nullable=False),
    pa.field("outcome", pa.string(), nullable=False),
    pa.field("crm_id", pa.string()),
    pa.field("reason_code", pa.string()),
    pa.field("message", pa.string()),
])

TARGET_COUNTS = pa.schema([("entity", pa.string()), ("before", pa.int64()), ("after", pa.int64()),
                           ("created", pa.int64()), ("updated", pa.int64()), ("unchanged", pa.int64())])

LOAD_ERRORS = pa.schema([
    pa.field("entity", pa.string(), nullable=False),
    pa.field("cluster_id", pa.string(), nullable=False),
    pa.field("crm_id", pa.string()),
    pa.field("message", pa.string(), nullable=False),
])

LEDGER = pa.schema([
    pa.field("run_id", pa.string(), nullable=False),
    pa.field("_source", pa.string(), nullable=False),
    pa.field("_department", pa.string(), nullable=False),
    pa.field("entity", pa.string(), nullable=False),
    pa.field("_source_key", pa.string(), nullable=False),
    pa.field("outcome", pa.string(), nullable=False),
    pa.field("crm_id", pa.string()),
    pa.field("reason_code", pa.string()),
    pa.field("message", pa.string()),
])
