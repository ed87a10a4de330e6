"""The CRM's schema under Alembic: which revision a database is at, and bringing it to head.

Every change to ``models.py`` is a revision written by hand in ``migrations/versions/``; a
test holds the models to the head revision. Alembic is driven from here with the migrations'
folder set in code, so an installed crmmigrate needs no ``alembic.ini``.

A database is, for crmmigrate, one of: ``empty`` (none of its tables: the load brings it to
head by itself), ``current``, ``behind`` (``crmmigrate db upgrade`` brings it to head),
``ahead`` (a revision this crmmigrate does not know: a newer one upgraded it), or
``unversioned``: a CRM made with ``create_all`` before Alembic. ``db upgrade`` recognises the
latter by its tables and columns, stamps the revision they are, and upgrades it from there.

A change to the models starts with ``draft_revision("what changed")``, whose draft is then
read and finished by hand (a type the models define, such as Money, written out as 0001 does).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from crmmigrate.crm.models import Base
from crmmigrate.errors import SchemaOutOfDate, TargetError

MIGRATIONS = Path(__file__).resolve().with_name("migrations")
# The schemas create_all made before Alembic, newest first. 537730e's is the baseline, 0001;
# 1b92f65 added the matching fields while create_all was still in charge, so a CRM it made is at 0002.
UNVERSIONED = ("0002", "0001")
Status = Literal["empty", "current", "behind", "ahead", "unversioned"]


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for the CRM migrations; env.py runs them on *connection*."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@functools.cache
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    """The newest revision this crmmigrate knows: the schema of its models."""
    return _script().get_current_head()  # type: ignore[return-value]


def revisions() -> list[str]:
    """Every revision, oldest first."""
    return [s.revision for s in reversed(list(_script().walk_revisions()))]


@dataclass(frozen=True)
class SchemaState:
    revision: str | None  # alembic_version's, None where there is none
    tables: frozenset[str]  # crmmigrate's tables the database holds

    @property
    def head(self) -> str:
        return head()

    @property
    def status(self) -> Status:
        if self.revision is None:
            return "unversioned" if self.tables else "empty"
        if self.revision not in revisions():
            return "ahead"
        return "current" if self.revision == self.head else "behind"

    def describe(self) -> str:
        """One phrase for the terminal: the revision and how it stands to this crmmigrate's."""
        return {
            "empty": f"no CRM tables yet (the load creates them at revision {self.head})",
            "current": f"schema at revision {self.revision}, the latest",
            "behind": f"schema at revision {self.revision}, behind this crmmigrate's {self.head}",
            "ahead": f"schema at revision {self.revision}, which this crmmigrate does not know (its latest is "
                     f"{self.head})",
            "unversioned": "schema made before crmmigrate versioned it (no alembic_version table)",
        }[self.status]


def read_state(connection: Connection) -> SchemaState:
    """Where *connection*'s database stands; reads only."""
    revision = MigrationContext.configure(connection).get_current_revision()
    tables = frozenset(set(sa.inspect(connection).get_table_names()) & set(Base.metadata.tables))
    return SchemaState(revision, tables)


def require_current(state: SchemaState, display: str, upgrade_command: str) -> None:
    """Raise SchemaOutOfDate (exit 2, naming *upgrade_command*) unless the CRM is empty or at head."""
    if state.status == "behind":
        raise SchemaOutOfDate(display, f"the CRM's schema is at revision {state.revision} and this crmmigrate "
                                       f"needs {state.head}; run `{upgrade_command}` first", state.revision)
    if state.status == "unversioned":
        raise SchemaOutOfDate(display, "the CRM was made before crmmigrate versioned its schema (it has no "
                                       f"alembic_version table); run `{upgrade_command}` first, which recognises "
                                       "it and brings it to the latest revision", None)
    if state.status == "ahead":
        raise _ahead(display, state)


def _ahead(display: str, state: SchemaState) -> SchemaOutOfDate:
    return SchemaOutOfDate(display, f"the CRM's schema is at revision {state.revision}, which this crmmigrate does "
                                    f"not know (its latest is {state.head}): a newer crmmigrate upgraded it; "
                                    "use that version", state.revision)


@dataclass(frozen=True)
class Upgrade:
    before: str | None  # the revision the CRM was at (or recognised as); None: it was empty
    after: str
    stamped: str | None  # the revision a pre-Alembic CRM was recognised as and stamped

    def describe(self) -> str:
        if self.stamped:
            recognised = f"made before Alembic, recognised by its tables as revision {self.stamped} and stamped"
            return recognised + ("; it is the latest" if self.stamped == self.after
                                 else f"; schema upgraded from revision {self.stamped} to {self.after}")
        if self.before is None:
            return f"schema created at revision {self.after} (the database had no CRM tables)"
        if self.before == self.after:
            return f"schema already at revision {self.after}, the latest; nothing to do"
        return f"schema upgraded from revision {self.before} to {self.after}"


def upgrade(engine: Engine, display: str) -> Upgrade:
    """Bring *engine*'s CRM to head, recognising and stamping a CRM made before Alembic first.
    One transaction where the database has transactional DDL (PostgreSQL): all or nothing."""
    with engine.begin() as con:
        state = read_state(con)
        if state.status == "ahead":
            raise _ahead(display, state)
        stamped = None
        if state.status == "unversioned":
            stamped = _recognise(con, display)
            command.stamp(alembic_config(con), stamped)
        command.upgrade(alembic_config(con), "head")
    return Upgrade(state.revision or stamped, head(), stamped)


def ensure_schema(engine: Engine, display: str, upgrade_command: str) -> Upgrade | None:
    """The load's (and reconcile's) gate: an empty database is brought to head, a CRM at head
    is used as it is, and any other raises SchemaOutOfDate naming *upgrade_command*: changing
    the schema of a CRM that holds data is a step someone takes on purpose."""
    with engine.connect() as con:
        state = read_state(con)
    if state.status == "empty":
        return upgrade(engine, display)
    require_current(state, display, upgrade_command)
    return None


def draft_revision(message: str) -> Path:
    """Write the next revision's draft into ``migrations/versions/``: what autogenerate finds
    between the models and a scratch database at head. For developers; returns the file."""
    number = f"{int(head()) + 1:04d}"
    engine = sa.create_engine("sqlite://")
    try:
        with engine.begin() as con:
            command.upgrade(alembic_config(con), "head")
            made = command.revision(alembic_config(con), message, autogenerate=True, rev_id=number)
    finally:
        engine.dispose()
    _script.cache_clear()
    return Path(made.path)  # type: ignore[union-attr]


# -- A CRM made before Alembic --------------------------------------------------------------

Shape = tuple[dict[str, tuple[frozenset[tuple[str, bool]], tuple[str, ...]]], dict[str, dict[str, tuple[str, ...]]]]


def _shape(con: Connection, tables: set[str] | None = None) -> Shape:
    """Per table, its (column, nullable) pairs and primary key; and per table, its indexes.
    Types are left out: they are named differently by each dialect, and create_all made them
    from the same models as the columns."""
    inspector = sa.inspect(con)
    names = [t for t in inspector.get_table_names() if tables is None or t in tables]
    columns = {t: (frozenset((c["name"], bool(c["nullable"])) for c in inspector.get_columns(t)),
                   tuple(inspector.get_pk_constraint(t)["constrained_columns"])) for t in names}
    indexes = {t: {i["name"]: tuple(i["column_names"]) for i in inspector.get_indexes(t) if i.get("name")}
               for t in names}
    return columns, indexes


@functools.cache
def _shape_at(revision: str) -> Shape:
    """The shape a database has at *revision*, read from a scratch in-memory SQLite database."""
    engine = sa.create_engine("sqlite://")
    try:
        with engine.begin() as con:
            command.upgrade(alembic_config(con), revision)
            columns, indexes = _shape(con)
    finally:
        engine.dispose()
    columns.pop("alembic_version", None)
    indexes.pop("alembic_version", None)
    return columns, indexes


def _differences(expected: Shape, found: Shape) -> list[str]:
    want, have = expected[0], found[0]
    out = [f"no table {t}" for t in sorted(set(want) - set(have))]
    out += [f"an unexpected table {t}" for t in sorted(set(have) - set(want))]
    for table in sorted(set(want) & set(have)):
        (w_cols, w_pk), (h_cols, h_pk) = want[table], have[table]
        w_names, h_names = {c for c, _ in w_cols}, {c for c, _ in h_cols}
        out += [f"{table} lacks column {c}" for c in sorted(w_names - h_names)]
        out += [f"{table} has an unexpected column {c}" for c in sorted(h_names - w_names)]
        out += [f"{table}.{c} is {'nullable' if n else 'NOT NULL'} here" for c, n in sorted(h_cols - w_cols)
                if c in w_names]
        if w_pk != h_pk:
            out.append(f"{table}'s primary key is ({', '.join(h_pk)}), not ({', '.join(w_pk)})")
    return out


def _recognise(con: Connection, display: str) -> str:
    """The revision whose tables and columns a CRM made before Alembic has. Indexes an older
    crmmigrate did not make yet (it added them at load) are added here."""
    found = _shape(con, set(Base.metadata.tables) | {t for r in UNVERSIONED for t in _shape_at(r)[0]})
    nearest: tuple[int, str, list[str]] | None = None
    for revision in UNVERSIONED:
        expected = _shape_at(revision)
        differences = _differences(expected, found)
        if not differences:
            _add_missing_indexes(con, expected, found)
            return revision
        if nearest is None or len(differences) < nearest[0]:
            nearest = (len(differences), revision, differences)
    assert nearest is not None
    _, revision, differences = nearest
    raise TargetError(display, "the CRM has crmmigrate's tables but no alembic_version table, and they are not "
                               f"those of any crmmigrate before Alembic (nearest: revision {revision}, from which "
                               f"it differs: {'; '.join(differences[:4])}"
                               f"{f'; and {len(differences) - 4} more' if len(differences) > 4 else ''}); "
                               "nothing was changed")


def _add_missing_indexes(con: Connection, expected: Shape, found: Shape) -> None:
    for table, indexes in expected[1].items():
        have = set(found[1].get(table, {}).values())
        for name, columns in sorted(indexes.items()):
            if columns not in have:
                stub = sa.Table(table, sa.MetaData(), *(sa.Column(c) for c in columns))
                sa.Index(name, *(stub.c[c] for c in columns)).create(con)
