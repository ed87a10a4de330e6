"""The CRM schema under Alembic: the models are the head revision, upgrades keep rows, a CRM made
before Alembic is recognised, and a CRM at another revision stops a run before any stage."""

from __future__ import annotations

import re
import tomllib
import uuid
from decimal import Decimal
from pathlib import Path, PurePosixPath

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from conftest import REPO
from crmmigrate.cli import main
from crmmigrate.crm import schema
from crmmigrate.crm.models import Base
from crmmigrate.errors import SchemaOutOfDate

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "crm"
HEAD = schema.head()  # 0002 today; the tests below hold for every later revision too
SETTINGS = "spec_version: 1\nkind: project\nname: t\ntarget: sqlite:///crm.sqlite\n"


@pytest.fixture(params=["sqlite", "postgresql"])
def crm_url(request: pytest.FixtureRequest, tmp_path: Path):
    """An empty CRM database: a SQLite file, or a schema of its own on the test PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'crm.sqlite'}"
        return
    url, server = request.getfixturevalue("pg_url"), request.getfixturevalue("pg_engine")
    name = f"crm_{uuid.uuid4().hex[:10]}"
    with server.begin() as con:
        con.exec_driver_sql(f'CREATE SCHEMA "{name}"')
    yield sa.engine.make_url(url).update_query_dict({"options": f"-csearch_path={name}"}).render_as_string(False)
    with server.begin() as con:
        con.exec_driver_sql(f'DROP SCHEMA "{name}" CASCADE')


@pytest.fixture
def engine(crm_url: str):
    engine = sa.create_engine(crm_url)
    yield engine
    engine.dispose()


def project(folder: Path) -> Path:
    """A project whose settings name a SQLite CRM (commands here pass --target anyway)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "crmmigrate.yml").write_text(SETTINGS)
    (folder / "mappings").mkdir(exist_ok=True)
    return folder


def diffs(engine: sa.Engine, metadata: sa.MetaData = Base.metadata) -> list:
    with engine.connect() as con:
        return compare_metadata(MigrationContext.configure(con, opts={"compare_type": True}), metadata)


def revision(engine: sa.Engine) -> str | None:
    with engine.connect() as con:
        return MigrationContext.configure(con).get_current_revision()


def upgrade_to(engine: sa.Engine, rev: str) -> None:
    with engine.begin() as con:
        command.upgrade(schema.alembic_config(con), rev)


def create_literal(engine: sa.Engine, name: str) -> None:
    """A CRM as create_all made it before Alembic, from the literal DDL in tests/fixtures/crm."""
    text = (FIXTURES / f"{name}.{engine.dialect.name}.sql").read_text()
    statements = "\n".join(line for line in text.splitlines() if not line.startswith("--")).split(";\n")
    with engine.begin() as con:
        for statement in filter(str.strip, statements):
            con.exec_driver_sql(statement)


def insert_rows(engine: sa.Engine) -> None:
    with engine.begin() as con:
        con.execute(sa.text("INSERT INTO account (id, name) VALUES ('a1', 'Acme')"))
        con.execute(sa.text("INSERT INTO contact (id, account_id, first_name, last_name, email) "
                            "VALUES ('c1', 'a1', 'Ann', 'Lee', 'ann@example.com')"))
        con.execute(sa.text("INSERT INTO address (id, contact_id, kind, city) VALUES ('ad1', 'c1', 'home', 'Bern')"))
        con.execute(sa.text("INSERT INTO sales_order (id, contact_id, order_number, ordered_on, total) "
                            "VALUES ('o1', 'c1', 'N-1', '2024-05-01', '12.30')"))


def assert_rows_kept(engine: sa.Engine) -> None:
    with engine.connect() as con:
        assert con.execute(sa.text("SELECT id, first_name, last_name, email, middle_name, birth_date, mobile "
                                   "FROM contact")).all() == [("c1", "Ann", "Lee", "ann@example.com", None, None, None)]
        assert con.execute(sa.text("SELECT id, city, region FROM address")).all() == [("ad1", "Bern", None)]
        assert con.execute(sa.text("SELECT id FROM account")).all() == [("a1",)]
        total = con.execute(sa.text("SELECT total FROM sales_order")).scalar_one()
        assert Decimal(str(total)) == Decimal("12.30")


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, list[str]]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, [line for line in captured.err.splitlines() if " INFO " not in line]


# -- The models are the head of the migrations ------------------------------------------------

def test_the_models_are_the_head_of_the_migrations(engine: sa.Engine) -> None:
    assert schema.revisions()[:2] == ["0001", "0002"] and schema.revisions()[-1] == HEAD
    made = schema.upgrade(engine, "t")
    assert (made.before, made.after, made.stamped) == (None, HEAD, None)
    assert diffs(engine) == []


def test_the_baseline_is_the_schema_create_all_made_before_alembic(engine: sa.Engine, tmp_path: Path) -> None:
    """Revision 0001 made on an empty database equals, table for table, type for type, index for
    index, the CRM that commit 537730e's create_all made."""
    upgrade_to(engine, "0001")
    baseline = sa.MetaData()
    baseline.reflect(engine)
    baseline.remove(baseline.tables["alembic_version"])
    other = sa.create_engine(f"sqlite:///{tmp_path / 'old.sqlite'}") if engine.dialect.name == "sqlite" else None
    if other is None:  # on PostgreSQL: the literal made beside it, in a schema of its own
        with engine.begin() as con:
            con.exec_driver_sql("CREATE SCHEMA old_crm")
        other = sa.create_engine(engine.url.update_query_dict({"options": "-csearch_path=old_crm"}))
    try:
        create_literal(other, "537730e")
        assert diffs(other, baseline) == []
    finally:
        other.dispose()
        if engine.dialect.name == "postgresql":
            with engine.begin() as con:
                con.exec_driver_sql("DROP SCHEMA old_crm CASCADE")


def test_each_revision_goes_down_and_up_again(engine: sa.Engine) -> None:
    schema.upgrade(engine, "t")
    with engine.begin() as con:
        command.downgrade(schema.alembic_config(con), "base")
    assert set(sa.inspect(engine).get_table_names()) == {"alembic_version"}
    schema.upgrade(engine, "t")
    assert diffs(engine) == []


# -- Upgrades keep what the CRM holds -------------------------------------------------------

def test_upgrading_a_0001_crm_keeps_its_rows_and_adds_the_columns(engine: sa.Engine) -> None:
    upgrade_to(engine, "0001")
    insert_rows(engine)
    made = schema.upgrade(engine, "t")
    assert (made.before, made.after, made.stamped) == ("0001", HEAD, None)
    assert made.describe() == f"schema upgraded from revision 0001 to {HEAD}"
    assert_rows_kept(engine)
    assert diffs(engine) == []
    with engine.begin() as con:  # the new columns take values
        con.execute(sa.text("UPDATE contact SET middle_name = 'Marie', birth_date = '1980-02-29', mobile = '+41791234567'"))


def test_a_crm_made_before_alembic_is_stamped_and_upgraded(crm_url: str, engine: sa.Engine, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    create_literal(engine, "537730e")
    insert_rows(engine)
    with engine.connect() as con:
        assert schema.read_state(con).status == "unversioned"
    folder = project(tmp_path / "p")
    code, out, err = cli(capsys, "db", "upgrade", "--project", str(folder), "--target", crm_url)
    assert code == 0, err
    assert "made before Alembic, recognised by its tables as revision 0001 and stamped; " \
           f"schema upgraded from revision 0001 to {HEAD}" in out
    assert revision(engine) == HEAD
    assert_rows_kept(engine)
    assert diffs(engine) == []


def test_db_upgrade_twice_is_a_no_op(crm_url: str, engine: sa.Engine, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    folder = project(tmp_path / "p")
    code, out, _ = cli(capsys, "db", "upgrade", "--project", str(folder), "--target", crm_url)
    assert code == 0 and f"schema created at revision {HEAD} (the database had no CRM tables)" in out
    insert_rows(engine)
    before = sa.MetaData()
    before.reflect(engine)
    code, out, _ = cli(capsys, "db", "upgrade", "--project", str(folder), "--target", crm_url)
    assert code == 0 and out.rstrip().endswith(f"schema already at revision {HEAD}, the latest; nothing to do")
    assert diffs(engine, before) == [] and revision(engine) == HEAD
    code, out, _ = cli(capsys, "db", "current", "--project", str(folder), "--target", crm_url)
    assert code == 0 and out.rstrip().endswith(f"schema at revision {HEAD}, the latest")


def test_a_crm_made_before_alembic_without_its_indexes_gets_them(tmp_path: Path) -> None:
    """A CRM an older crmmigrate made had no index on its foreign keys (the load added them):
    recognising it adds those its revision has."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.sqlite'}")
    create_literal(engine, "537730e")
    with engine.begin() as con:
        names = con.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'ix_%'").all()
        for name, in names:
            con.exec_driver_sql(f"DROP INDEX {name}")
    assert not sa.inspect(engine).get_indexes("address")
    assert schema.upgrade(engine, "t").stamped == "0001"
    inspector = sa.inspect(engine)
    assert [i["column_names"] for i in inspector.get_indexes("address")] == [["contact_id"]]
    assert diffs(engine) == []
    engine.dispose()


def test_a_crm_made_at_the_last_commit_before_alembic_is_stamped_at_its_revision(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.sqlite'}")
    create_literal(engine, "1b92f65")
    made = schema.upgrade(engine, "t")
    assert (made.before, made.after, made.stamped) == ("0002", HEAD, "0002")
    assert made.describe().startswith("made before Alembic, recognised by its tables as revision 0002 and stamped; ")
    assert diffs(engine) == []
    engine.dispose()


def test_a_crm_made_before_alembic_that_matches_no_revision_is_refused_unchanged(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    crm = tmp_path / "old.sqlite"
    engine = sa.create_engine(f"sqlite:///{crm}")
    create_literal(engine, "537730e")
    with engine.begin() as con:
        con.exec_driver_sql("ALTER TABLE contact ADD COLUMN nickname VARCHAR(50)")
        con.exec_driver_sql("DROP TABLE migration_run")
    folder = project(tmp_path / "p")
    code, _, err = cli(capsys, "db", "upgrade", "--project", str(folder), "--target", f"sqlite:///{crm}")
    assert code == 2
    assert err == [f"crmmigrate: Target sqlite:///{crm}: the CRM has crmmigrate's tables but no alembic_version "
                   "table, and they are not those of any crmmigrate before Alembic (nearest: revision 0001, from "
                   "which it differs: no table migration_run; contact has an unexpected column nickname); "
                   "nothing was changed"]
    assert "alembic_version" not in sa.inspect(engine).get_table_names()
    engine.dispose()


# -- A CRM at another revision stops a run before any stage -----------------------------------

def test_a_run_against_a_crm_behind_stops_before_any_stage(demo_project: tuple[Path, dict],
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    folder, _ = demo_project
    crm = folder / "crm" / "crm.sqlite"
    crm.parent.mkdir(exist_ok=True)
    engine = sa.create_engine(f"sqlite:///{crm}")
    upgrade_to(engine, "0001")
    insert_rows(engine)
    code, _, err = cli(capsys, "run", "--project", str(folder))
    assert code == 2
    assert err == [f"crmmigrate: Target sqlite:///{crm}: the CRM's schema is at revision 0001 and this crmmigrate "
                   f"needs {HEAD}; run `crmmigrate db upgrade --project {folder}` first"]
    assert not (folder / "runs").exists()  # no run folder, so no stage and no notebook ran

    code, out, _ = cli(capsys, "db", "current", "--project", str(folder))
    assert code == 0 and f"schema at revision 0001, behind this crmmigrate's {HEAD}\nRun `crmmigrate db upgrade " \
                         f"--project {folder}` to bring it to revision {HEAD}." in out
    code, out, _ = cli(capsys, "db", "upgrade", "--project", str(folder))
    assert code == 0 and out.rstrip().endswith(f"schema upgraded from revision 0001 to {HEAD}")
    assert_rows_kept(engine)
    engine.dispose()


def test_the_command_named_keeps_the_target_given(demo_project: tuple[Path, dict], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    folder, _ = demo_project
    crm = tmp_path / "other crm.sqlite"
    engine = sa.create_engine(f"sqlite:///{crm}")
    create_literal(engine, "537730e")
    monkeypatch.setenv("CRM_URL", f"sqlite:///{crm}")
    code, _, err = cli(capsys, "run", "--project", str(folder), "--target-env", "CRM_URL")
    assert code == 2 and err[0].endswith(
        f"run `crmmigrate db upgrade --project {folder} --target-env CRM_URL` first, which recognises it "
        "and brings it to the latest revision")
    code, _, err = cli(capsys, "run", "--project", str(folder), "--target", f"sqlite:///{crm}")
    assert code == 2 and f"--target 'sqlite:///{crm}'" in err[0]
    assert not (folder / "runs").exists()
    engine.dispose()


def test_stages_that_do_not_write_the_crm_need_no_upgrade(demo_project: tuple[Path, dict]) -> None:
    from crmmigrate.pipeline import preflight

    folder, _ = demo_project
    crm = folder / "crm" / "crm.sqlite"
    crm.parent.mkdir(exist_ok=True)
    engine = sa.create_engine(f"sqlite:///{crm}")
    upgrade_to(engine, "0001")
    engine.dispose()
    assert preflight(folder, None, ["extract", "map"]).schema.status == "behind"
    with pytest.raises(SchemaOutOfDate):
        preflight(folder, None, ["extract", "map", "match", "merge", "load"])


def test_a_crm_ahead_of_this_crmmigrate_is_refused(demo_project: tuple[Path, dict],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    folder, _ = demo_project
    crm = folder / "crm" / "crm.sqlite"
    crm.parent.mkdir(exist_ok=True)
    engine = sa.create_engine(f"sqlite:///{crm}")
    schema.upgrade(engine, "t")
    with engine.begin() as con:
        con.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    message = (f"crmmigrate: Target sqlite:///{crm}: the CRM's schema is at revision 9999, which this crmmigrate "
               f"does not know (its latest is {HEAD}): a newer crmmigrate upgraded it; use that version")
    code, _, err = cli(capsys, "run", "--project", str(folder))
    assert (code, err) == (2, [message])
    assert not (folder / "runs").exists()
    code, _, err = cli(capsys, "db", "upgrade", "--project", str(folder))
    assert (code, err) == (2, [message])
    assert revision(engine) == "9999"
    engine.dispose()


def test_the_load_stage_refuses_a_crm_behind_and_makes_an_empty_one(demo_project: tuple[Path, dict]) -> None:
    """Run from its notebook, the load meets no preflight: it checks for itself."""
    from conftest import run_stages

    folder, _ = demo_project
    crm = folder / "crm" / "crm.sqlite"
    crm.parent.mkdir(exist_ok=True)
    engine = sa.create_engine(f"sqlite:///{crm}")
    upgrade_to(engine, "0001")
    with pytest.raises(SchemaOutOfDate, match=re.escape(f"run `crmmigrate db upgrade --project {folder}` first")):
        run_stages(folder, "behind")
    assert "middle_name" not in {c["name"] for c in sa.inspect(engine).get_columns("contact")}
    engine.dispose()  # (its pooled connection would go on reading the file unlinked here)
    crm.unlink()
    run = run_stages(folder, "fresh")
    assert revision(engine) == HEAD and diffs(engine) == []
    assert run.read_meta()["stages"]["load"]["counts"]["schema_revision"] == HEAD
    engine.dispose()


# -- Shipped with the package ------------------------------------------------------------------

def test_the_migrations_are_package_data() -> None:
    """An installed crmmigrate (not only this checkout) finds every revision."""
    globs = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["crmmigrate"]
    package = REPO / "crmmigrate"
    files = [p.relative_to(package) for p in (package / "crm" / "migrations").rglob("*")
             if p.is_file() and "__pycache__" not in p.parts]
    assert files and [f for f in files if not any(PurePosixPath(f).match(g) for g in globs)] == []


def test_a_drafted_revision_of_the_models_as_they_are_changes_nothing(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The developers' start of a new revision: autogenerate against head finds nothing to do today."""
    import shutil

    copy = tmp_path / "migrations"
    shutil.copytree(schema.MIGRATIONS, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(schema, "MIGRATIONS", copy)
    schema._script.cache_clear()
    try:
        draft = schema.draft_revision("nothing yet")
    finally:
        schema._script.cache_clear()
    assert draft.parent == copy / "versions" and draft.name.startswith(f"{int(HEAD) + 1:04d}_")
    text = draft.read_text()
    assert f"down_revision: str | Sequence[str] | None = '{HEAD}'" in text
    assert "op." not in text.split("def upgrade")[1]
