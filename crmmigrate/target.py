"""The target CRM's connection: resolved from settings, a URL or an environment variable.

A URL that carries a password is only ever read from the environment; everything that is
written (run.json, logs, notebooks) sees the masked form.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url

from crmmigrate.errors import SECRET_PARAMETERS, SettingsError, TargetError, mask_secrets
from crmmigrate.spec.load import Project

if TYPE_CHECKING:  # Alembic is imported where a schema is read: a stage kernel that never does spares it
    from crmmigrate.crm.schema import SchemaState, Upgrade


@dataclass(frozen=True)
class Target:
    url: URL

    @property
    def display(self) -> str:
        return mask_secrets(self.url.render_as_string(hide_password=True))

    def engine(self) -> Engine:
        url = self.url
        if url.drivername.startswith("sqlite"):  # SQLite has no users; its driver refuses credentials
            url = URL.create(url.drivername, database=url.database, query=url.query)
            if url.database not in (None, "", ":memory:"):
                Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        return sa.create_engine(url)


def resolve_target(project: Project, url: str | None = None, env: str | None = None) -> Target:
    """The target from (in order) the env var *env*, *url*, the settings' `target_env`, the settings' `target`."""
    env = env or (None if url else project.spec.target_env)
    if env:
        text = os.environ.get(env)
        if not text:
            raise SettingsError(f"Target: environment variable {env} is not set (it should hold the CRM's URL)")
    else:
        text = url or project.spec.target
    try:
        parsed = make_url(text)
    except sa.exc.ArgumentError:
        raise SettingsError(f"Target: not an SQLAlchemy URL: {text if not env else '(from ' + env + ')'}") from None
    secret_query = any(k.lower() in SECRET_PARAMETERS for k in parsed.query)
    if (parsed.password or secret_query) and not env:
        raise SettingsError("Target: the URL carries a password; put it in an environment variable and pass "
                            "--target-env NAME (or set `target_env` in crmmigrate.yml)")
    if parsed.drivername.startswith("sqlite") and parsed.database and parsed.database != ":memory:":
        path = Path(parsed.database)
        if not path.is_absolute():
            parsed = parsed.set(database=str(project.root / path))
    return Target(parsed)


def check_target(target: Target) -> SchemaState:
    """Connect once, so a wrong URL, a missing driver or an unwritable path fails before any row moves.
    Returns where the CRM's schema stands (read only; whether that will do is the caller's call)."""
    from crmmigrate.crm.schema import read_state

    database = target.url.database if target.url.drivername.startswith("sqlite") else None
    made = database not in (None, "", ":memory:") and not Path(database).exists()  # type: ignore[arg-type]
    try:
        engine = target.engine()
    except (OSError, ImportError, sa.exc.ArgumentError) as exc:
        raise TargetError(target.display, f"cannot use this target: {exc}") from None
    try:
        with engine.connect() as con:
            if engine.dialect.name == "sqlite":
                # SQLite opens any file lazily and `SELECT 1` reads no page of it: a corrupt CRM file
                # would pass here and fail in load. quick_check reads every page (not the indexes'
                # agreement with their tables, which integrity_check would, at many times the cost).
                found = [row[0] for row in con.execute(sa.text("PRAGMA quick_check"))]
                if found != ["ok"]:
                    raise TargetError(target.display, "the database file is corrupt (PRAGMA quick_check: "
                                      f"{'; '.join(map(str, found[:3]))}); restore it from a backup")
            else:
                con.execute(sa.text("SELECT 1"))
            return read_state(con)
    except sa.exc.SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        raise TargetError(target.display, f"cannot connect: {type(cause).__name__}: {cause}") from None
    finally:
        engine.dispose()
        if made:  # connecting made an empty CRM file: a check leaves none behind (load makes its own)
            Path(database).unlink(missing_ok=True)  # type: ignore[arg-type]


def upgrade_schema(target: Target) -> Upgrade:
    """Bring the CRM's schema to this crmmigrate's latest revision (`crmmigrate db upgrade`)."""
    from crmmigrate.crm.schema import upgrade

    check_target(target)
    # Without the load's foreign-key enforcement on SQLite: batch mode alters a table by copying
    # it and dropping the original, which enforced keys refuse while other tables' rows refer to it.
    engine = target.engine()
    try:
        return upgrade(engine, target.display)
    except sa.exc.SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        raise TargetError(target.display, f"the schema upgrade failed: {type(cause).__name__}: {cause}") from None
    finally:
        engine.dispose()


def upgrade_command(project: str | os.PathLike[str], url: str | None = None, env: str | None = None) -> str:
    """The `crmmigrate db upgrade` line for the same project and target, for a message to show."""
    words = ["crmmigrate", "db", "upgrade", "--project", str(project)]
    if env:
        words += ["--target-env", env]
    elif url:
        words += ["--target", url]  # (resolve_target refuses a URL with a password: none to leak)
    return shlex.join(words)
