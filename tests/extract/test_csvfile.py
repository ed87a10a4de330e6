"""The CSV reader on hostile files (tests/fixtures/hostile/csv): no crash, every physical record
either extracted or rejected with its line and reason as the outcome table says, the independent
count agrees, and formula-like or script values are kept verbatim through the extract stage."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import pytest

from crmmigrate.errors import SourceError
from crmmigrate.extract import extract_source
from crmmigrate.extract.csvfile import CsvReader
from crmmigrate.spec import load_project
from crmmigrate.spec.model import CsvSource

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "hostile" / "csv"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_fixtures", FIXTURES / "make_fixtures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATOR = _generator()
CASES = GENERATOR.expected()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hostile-csv")
    GENERATOR.write(folder)
    return folder


def reader_for(folder: Path, name: str) -> CsvReader:
    spec = CsvSource(format="csv", path=name, key=("ID",), **CASES[name]["spec"])
    return CsvReader(folder / name, spec)


def expected_value(value: Any) -> str | None:
    if isinstance(value, dict):  # a long value: {"len": n, "char": c}
        return str(value["char"]) * (int(value["len"]) // len(value["char"]))
    return value


def test_the_committed_outcome_table_is_the_generators() -> None:
    assert json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8")) == CASES


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_physical_record_is_explained(hostile: Path, name: str) -> None:
    case = CASES[name]
    reader = reader_for(hostile, name)
    assert reader.header == case["header"]
    records = list(reader.records())
    assert reader.count_records() == len(records), "records in (counted) != extracted + rejected"
    got = [(r.row_number, "extracted" if r.reason is None else str(r.reason)) for r in records]
    assert got == [(row["line"], row["outcome"]) for row in case["rows"]]
    for record, row in zip(records, case["rows"]):
        if row["outcome"] == "extracted":
            assert record.values == [expected_value(v) for v in row["values"]], record.row_number
        else:
            assert record.values is None and record.message, record.row_number
    assert reader.fallback_records == case["fallback_decoded"]


def test_rejects_carry_their_text_and_a_message(hostile: Path) -> None:
    records = {r.row_number: r for r in reader_for(hostile, "nul.csv").records()}
    assert records[3].message == "NUL byte at character 3"
    assert records[3].raw == "2,B\x00b\n"
    records = {r.row_number: r for r in reader_for(hostile, "cp1252_fallback.csv").records()}
    assert records[5].message == "not valid utf-8 at byte 6, nor valid cp1252"
    assert records[5].raw == "4,bad \\x81 byte\n"
    records = {r.row_number: r for r in reader_for(hostile, "ragged.csv").records()}
    assert records[3].message == "record has 2 fields, the header has 3"
    assert records[7].raw == "6,a,b,\n"


def test_fallback_count_restarts_with_each_pass(hostile: Path) -> None:
    reader = reader_for(hostile, "cp1252_fallback.csv")
    first, second = list(reader.records()), list(reader.records())
    assert first == second
    assert reader.fallback_records == 2


def test_a_header_that_cannot_be_decoded_is_a_source_error(tmp_path: Path) -> None:
    (tmp_path / "h.csv").write_bytes("ID,STRAẞE\n".encode("utf-8").replace(b"\xe1\xba\x9e", b"\xdf") + b"1,x\n")
    with pytest.raises(SourceError, match=r"h\.csv.*header line is not valid utf-8 at byte 7"):
        CsvReader(tmp_path / "h.csv", CsvSource(format="csv", path="h.csv", key=("ID",)))
    latin = CsvReader(tmp_path / "h.csv", CsvSource(format="csv", path="h.csv", key=("ID",), fallback_encoding="latin-1"))
    assert latin.header == ["ID", "STRAßE"]


def test_a_lone_carriage_return_in_the_header_is_named_as_such(tmp_path: Path) -> None:
    (tmp_path / "h.csv").write_bytes(b"ID,NA\rME\n1,x\n")
    with pytest.raises(SourceError, match=r"header line holds a carriage return \(CR\) that ends no line, at character 6"):
        CsvReader(tmp_path / "h.csv", CsvSource(format="csv", path="h.csv", key=("ID",)))
    (tmp_path / "q.csv").write_bytes(b'ID,"NA\rME"\n1,x\n')  # inside quotes it is part of the name
    assert CsvReader(tmp_path / "q.csv", CsvSource(format="csv", path="q.csv", key=("ID",))).header == ["ID", "NA\rME"]


def test_formulas_and_scripts_are_stored_verbatim(hostile: Path, tmp_path: Path) -> None:
    (tmp_path / "crmmigrate.yml").write_text("spec_version: 1\nkind: project\nname: t\nchunk_rows: 2\n")
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "h.yml").write_text(
        "spec_version: 1\nkind: mapping\nsystem: h\ndepartment: d\n"
        f"sources:\n  f: {{format: csv, path: '{hostile / 'formulas.csv'}', key: [ID]}}\n"
        "entities:\n  - entity: contact\n    from: f\n    fields:\n      last_name: VALUE\n")
    project = load_project(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    stats = extract_source(project, project.mappings["h"], "f", out)
    assert (stats["records_in"], stats["extracted"], stats["rejected"]) == (6, 6, 0)
    rows = pd.read_parquet(out / "h.f.parquet")
    assert rows["VALUE"].tolist() == GENERATOR.FORMULAS
    assert rows["_row_number"].tolist() == [2, 3, 4, 5, 6, 7]
