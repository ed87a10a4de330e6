"""`crmmigrate validate` on small projects built here: every problem in one pass, each located,
and nothing called fine that a run would then fail on."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from textwrap import dedent

import pytest

from crmmigrate.cli import main

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
