"""`crmmigrate validate` on small projects built here: every problem in one pass, each located,
and nothing called fine that a run would then fail on."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from textwrap import dedent

import pytest
import sqlalchemy as sa
from alembic import command

from crmmigrate.cli import main
from crmmigrate.crm.schema import alembic_config, head

SETTINGS = "spec_version: 1\nkind: project\nname: t\ntarget: sqlite:///crm.sqlite\n"
CSV = "ID,NAME,MAIL\n1,Ann Lee,ann@example.com\n2,Bob Roe,bob@example.com\n"
MAPPING = """\
spec_version: 1
kind: mapping
system: crm
department: sales
sources:
  people:
    format: csv
    path: people.csv
    key: [ID]
entities:
  - entity: contact
    from: people
    fields:
      last_name: {column: NAME, transform: [{split_name: {part: surname}}]}
      email: {column: MAIL, transform: [email]}
"""


def make(folder: Path, mapping: str = MAPPING, csv: str = CSV) -> Path:
    (folder / "crmmigrate.yml").write_text(SETTINGS)
    (folder / "people.csv").write_text(csv)
    (folder / "mappings").mkdir()
    (folder / "mappings" / "crm.yml").write_text(dedent(mapping))
    return folder


def validate(project: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["validate", "--project", str(project), *args])
    captured = capsys.readouterr()
    err = "\n".join(line for line in captured.err.splitlines() if " INFO " not in line)
    return code, captured.out, err


def test_a_corrupt_sqlite_target_is_not_reachable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = make(tmp_path)
    crm = tmp_path / "crm.sqlite"
    with sqlite3.connect(crm) as con:
        con.execute("CREATE TABLE t (a TEXT)")
        con.executemany("INSERT INTO t VALUES (?)", [("x" * 500,)] * 200)
    con.close()
    data = bytearray(crm.read_bytes())
    data[3 * 4096:3 * 4096 + 2000] = b"\xff" * 2000  # a page of the table overwritten, the header intact
    crm.write_bytes(bytes(data))
    code, out, err = validate(project, capsys)
    assert code == 2, out
    assert f"Target sqlite:///{crm}: " in err and "reachable" not in out
    assert "quick_check" in err or "malformed" in err

    crm.write_bytes(b"this is not a database" * 100)  # not SQLite at all
    code, out, err = validate(project, capsys)
    assert code == 2 and "not a database" in err


def test_the_target_schema_revision_is_reported_and_one_behind_is_an_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """As an unreachable target is: a run would stop on it, so validate does not call it fine."""
    project = make(tmp_path)
    code, out, _ = validate(project, capsys)
    assert code == 0 and f"reachable, no CRM tables yet (the load creates them at revision {head()})" in out
    crm = tmp_path / "crm.sqlite"
    engine = sa.create_engine(f"sqlite:///{crm}")
    with engine.begin() as con:
        command.upgrade(alembic_config(con), "0001")
    engine.dispose()
    code, out, err = validate(project, capsys)
    assert code == 2 and "reachable" not in out
    assert err == (f"crmmigrate: Target sqlite:///{crm}: the CRM's schema is at revision 0001 and this crmmigrate "
                   f"needs {head()}; run `crmmigrate db upgrade --project {project}` first")
    assert main(["db", "upgrade", "--project", str(project)]) == 0
    code, out, _ = validate(project, capsys)
    assert code == 0 and f"reachable, schema at revision {head()}, the latest" in out


def test_a_key_error_a_transform_and_a_column_in_one_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mapping = MAPPING.replace("{part: surname}}]}", "{part: surname}}], requird: true}").replace(
        "transform: [email]}\n", "transform: [emial]}\n      phone: {column: PHONE}\n")
    project = make(tmp_path, mapping)
    lines = mapping.splitlines()
    at = {word: next(i for i, t in enumerate(lines, start=1) if word in t) for word in ("requird", "emial", "PHONE")}
    code, out, err = validate(project, capsys)
    assert code == 2, out
    assert err.splitlines()[0] == "crmmigrate: 3 problem(s) in mapping files:"
    assert err.splitlines()[1:3] == [
        f"mappings/crm.yml:{at['requird']} entities[0].fields.last_name.requird: unknown key (did you mean 'required'?)",
        f"mappings/crm.yml:{at['emial']} entities[0].fields.email.transform[0]: unknown transform 'emial' "
        f"(did you mean 'email'?); allowed: " + err.splitlines()[2].split("allowed: ")[1],
    ]
    assert err.splitlines()[3] == (f"mappings/crm.yml:{at['PHONE']} entities[0].fields.phone: column 'PHONE' is not in "
                                   "source 'crm.people'; allowed: ID, NAME, MAIL")


def test_a_source_with_a_key_error_is_not_checked_against_its_header(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    # `delimiter: 5` is refused; read with the default delimiter instead, the header would
    # make every column look missing: one problem is reported, not four.
    project = make(tmp_path, MAPPING.replace("    key: [ID]\n", "    key: [ID]\n    delimiter: 5\n"),
                   CSV.replace(",", ";"))
    code, out, err = validate(project, capsys)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("crmmigrate: mappings/crm.yml:10 sources.people.delimiter: ")


def test_an_unknown_key_in_a_source_still_lets_its_columns_be_checked(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """`last_modifed:` changes no reading, so the wrong column is found in the same pass; a
    misspelled reading option (`delimeter:`) would make every column look missing: not checked."""
    mapping = MAPPING.replace("    key: [ID]\n", "    key: [ID]\n    last_modifed: {column: ID, formats: [iso]}\n").replace(
        "transform: [email]}\n", "transform: [email]}\n      phone: {column: PHONE}\n")
    (tmp_path / "typo").mkdir(), (tmp_path / "reading").mkdir()
    code, out, err = validate(make(tmp_path / "typo", mapping), capsys)
    assert code == 2 and err.splitlines()[0] == "crmmigrate: 2 problem(s) in mapping files:", err
    assert "sources.people.last_modifed: unknown key (did you mean 'last_modified'?)" in err
    assert "column 'PHONE' is not in source" in err
    mapping = MAPPING.replace("    key: [ID]\n", "    key: [ID]\n    delimeter: ';'\n")
    code, out, err = validate(make(tmp_path / "reading", mapping, CSV.replace(",", ";")), capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "delimeter: unknown key (did you mean 'delimiter'?)" in err, err


def test_a_missing_source_file_names_the_mapping_file_and_line(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    project = make(tmp_path, MAPPING.replace("transform: [email]}", "transform: [emial]}"))
    (project / "people.csv").unlink()
    code, out, err = validate(project, capsys)
    assert code == 2, out
    lines = err.splitlines()
    assert lines[0] == "crmmigrate: 2 problem(s) in mapping files:"
    assert lines[1] == (f"mappings/crm.yml:8 sources.people.path: source 'crm.people' cannot be opened: "
                        f"{project / 'people.csv'}: file not found")
    assert lines[2].startswith("mappings/crm.yml:15 entities[0].fields.email.transform[0]: unknown transform 'emial'")


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_validate_warns_of_an_empty_source_and_exits_0(tmp_path: Path, fmt: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    mapping = MAPPING if fmt == "csv" else MAPPING.replace("format: csv", "format: json").replace("people.csv",
                                                                                                 "people.json")
    project = make(tmp_path, mapping, csv="")
    (project / "people.csv").rename(project / f"people.{fmt}")
    code, out, err = validate(project, capsys)
    assert code == 0, err
    assert ("warning: mappings/crm.yml:8 sources.people.path: source 'crm.people' is empty (0 bytes): "
            "a run reads it as 0 records") in out.splitlines()


def test_a_run_reads_an_empty_source_as_0_records(demo_project: tuple[Path, dict]) -> None:
    import json

    from conftest import run_stages

    project, _ = demo_project
    (project / "data" / "demo" / "sales" / "contacts.csv").write_bytes(b"")
    run = run_stages(project)
    meta = json.loads((run.path / "run.json").read_text())
    assert meta["stages"]["extract"]["counts"]["sources"]["sales.contacts"] == 0
    assert meta["stages"]["reconcile"]["counts"]["balanced"] is True
    report = (run.path / "reconcile" / "report.html").read_text()
    assert ('<td><code>sales.contacts</code></td><td>csv</td><td><code>data/demo/sales/contacts.csv</code></td>\n'
            '<td class="n">0</td>') in report


DATED = MAPPING + """\
  - entity: support_case
    from: people
    links: {contact: self}
    fields:
      case_number: ID
      status: {constant: open}
      opened_at: {column: SINCE, formats: ["%d.%m.%Y"]}
"""


def dated_csv(german: int, iso: int) -> str:
    """*german* rows whose date the mapping's format reads, then *iso* rows it refuses."""
    rows = [f"{n},Ann Lee,ann{n}@example.com,{n % 28 + 1:02}.01.2024" for n in range(1, german + 1)]
    rows += [f"{n},Bob Roe,bob{n}@example.com,2024-01-{n % 28 + 1:02}" for n in range(german + 1, german + iso + 1)]
    return "ID,NAME,MAIL,SINCE\n" + "\n".join(rows) + "\n"


def test_a_rule_refusing_most_values_is_a_warning_and_strict_makes_it_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = make(tmp_path, DATED, dated_csv(0, 12))
    line = next(i for i, t in enumerate(DATED.splitlines(), start=1) if "opened_at" in t)
    code, out, err = validate(project, capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert "      support_case.opened_at: 100% of 12 values refused: type 100%" in lines
    assert (f"warning: mappings/crm.yml:{line} entities[1].fields.opened_at: 100% of the 12 non-empty values sampled "
            "from 'crm.people' are refused (type 100%): is the rule right for this data? (`crmmigrate preview` "
            "shows the rejects)") in lines
    code, out, err = validate(project, capsys, "--strict")
    assert code == 2
    assert "crmmigrate: 1 warning(s), and --strict makes warnings errors" in err


def test_the_sample_is_spread_over_the_whole_source_and_the_same_every_time(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The first 10 of 40 rows are fine: a sample of the first rows would see nothing wrong. Ten
    # rows evenly spaced over the 40 (positions 0, 4, 9, 13, … 39) hold 3 of them.
    project = make(tmp_path, DATED, dated_csv(10, 30))
    code, out, err = validate(project, capsys, "--map-sample", "10")
    assert code == 0, err
    assert "    crm.people: 10 records sampled" in out.splitlines()
    assert "      support_case.opened_at: 70% of 10 values refused: type 70%" in out.splitlines()
    assert validate(project, capsys, "--map-sample", "10")[1] == out


def test_strict_makes_an_empty_source_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = make(tmp_path, csv="")
    assert validate(project, capsys)[0] == 0
    code, out, err = validate(project, capsys, "--strict")
    assert code == 2 and "crmmigrate: 1 warning(s), and --strict makes warnings errors" in err
