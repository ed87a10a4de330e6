"""Reading and writing the CRM: batched upserts keyed by primary key in the target's own
dialect, read-back queries, and value normalisation shared by load and reconcile.

One ``INSERT … ON CONFLICT DO UPDATE`` per batch (executemany), never row-by-row ORM merges.
A batch the target refuses is retried row by row so one bad row cannot sink its batch.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any, TypeVar

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from crmmigrate.errors import TargetError

BATCH_ROWS = 1000
T = TypeVar("T")


def insert_for(con: Connection):
    name = con.dialect.name
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        raise TargetError(str(con.engine.url), f"no upsert support for {name} yet (SQLite and PostgreSQL are supported)")
    return insert


def enforce_foreign_keys(engine: Engine) -> None:
    """SQLite ignores foreign keys unless asked on every connection."""
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _fk_on(dbapi_connection, _record) -> None:  # noqa: ANN001
            dbapi_connection.execute("PRAGMA foreign_keys=ON")


def batches(rows: list[T], size: int = BATCH_ROWS) -> Iterator[list[T]]:
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


def upsert(engine: Engine, table: sa.Table, rows: list[dict[str, Any]], do_nothing: bool = False) -> list[tuple[dict[str, Any], str]]:
    """Upsert *rows*; returns the rows the target refused, each with the target's message."""
    refused: list[tuple[dict[str, Any], str]] = []
    keys = [c.name for c in table.primary_key.columns]
    for batch in batches(rows):
        try:
            with engine.begin() as con:
                con.execute(_statement(con, table, keys, do_nothing), batch)
        except sa.exc.DBAPIError:
            for row in batch:
                try:
                    with engine.begin() as con:
                        con.execute(_statement(con, table, keys, do_nothing), [row])
                except sa.exc.DBAPIError as exc:
                    refused.append((row, f"{type(exc.orig).__name__}: {exc.orig}"))
    return refused


def _statement(con: Connection, table: sa.Table, keys: list[str], do_nothing: bool):
    stmt = insert_for(con)(table)
    if do_nothing:
        return stmt.on_conflict_do_nothing(index_elements=keys)
    updates = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
    return stmt.on_conflict_do_update(index_elements=keys, set_=updates)


def plain(value: Any) -> Any:
    """A run-folder value as the plain Python value a DB-API driver takes."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if hasattr(value, "item") and not isinstance(value, (Decimal, str)):
        return value.item()
    return value


def comparable(value: Any) -> Any:
    """Equal values compare equal whatever the driver returned (naive UTC, float vs Decimal)."""
    value = plain(value)
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)
    if isinstance(value, Decimal):
        return value.normalize()
    return value


def fetch_existing(engine: Engine, table: sa.Table, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    ids = list(ids)
    found: dict[str, dict[str, Any]] = {}
    with engine.connect() as con:
        for start in range(0, len(ids), BATCH_ROWS):
            chunk = ids[start:start + BATCH_ROWS]
            for row in con.execute(sa.select(table).where(table.c.id.in_(chunk))).mappings():
                found[row["id"]] = dict(row)
    return found


def count_rows(engine: Engine, table: sa.Table) -> int:
    with engine.connect() as con:
        return int(con.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def fetch_rows(con: Connection, table: sa.Table, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Id → the row's values, for *ids* (in batches)."""
    out: dict[str, dict[str, Any]] = {}
    for batch in batches(ids):
        for row in con.execute(sa.select(table).where(table.c.id.in_(batch))).mappings():
            out[row["id"]] = dict(row)
    return out


def retire_rows(con: Connection, table: sa.Table, pairs: list[tuple[str, str]], metadata: sa.MetaData) -> None:
    """Delete rows of *table* by id, first re-pointing every foreign key in *metadata* that
    references one of them to its successor: *pairs* are (old id, successor id)."""
    references = [(fk.parent.table, fk.parent) for t in metadata.sorted_tables for fk in t.foreign_keys
                  if fk.column is table.c.id]
    for batch in batches(pairs):
        successor = dict(batch)
        for child, column in references:  # one statement per child table and batch, not per row
            con.execute(child.update().where(column.in_(list(successor)))
                        .values({column.name: sa.case(successor, value=column)}))
        con.execute(table.delete().where(table.c.id.in_(list(successor))))
