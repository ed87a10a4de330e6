"""Sources a consultant meets in the field, read for real: hostile JSON, XLSX and SQL fixtures
with an expected outcome per record, PostgreSQL through `url_env`, and JSON streamed in
bounded memory.

Every hostile case asserts: no crash, the header, every record's outcome (extracted with its
values, or rejected with its reason), no record unexplained, `count_records()` equal to
extracted + rejected, and formula-like or markup values kept verbatim.
"""

from __future__ import annotations

import importlib.util
import json
import tracemalloc
import uuid
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa

from crmmigrate.errors import SourceError
from crmmigrate.extract import extract_source, run_extract
from crmmigrate.extract.readers import RawRecord, Reader, open_reader
from crmmigrate.map.mapper import map_frame
from crmmigrate.previewing import preview
from crmmigrate.rundir import RunDir
from crmmigrate.spec import load_project
from crmmigrate.spec.model import JsonSource, SqlSource, XlsxSource

HOSTILE = Path(__file__).resolve().parent.parent / "fixtures" / "hostile"
VERBATIM = ["=SUM(A1)", "+cmd|' /C calc'!A0", "@x", "-2+3", "<script>alert('x')</script>"]


def builder(fmt: str) -> ModuleType:
    """The committed builder of one format's fixtures (loaded by path: `json` is a stdlib name)."""
    spec = importlib.util.spec_from_file_location(f"hostile_{fmt}_build", HOSTILE / fmt / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def outcomes(reader: Reader) -> list[dict[str, Any]]:
    """Every record as the fixtures describe it, after checking the reader's invariants."""
    records = list(reader.records())
    assert reader.count_records() == len(records), "count_records() != extracted + rejected"
    assert list(reader.records()) == records, "a second pass differs"
    assert len({r.row_number for r in records}) == len(records), "a row number twice"
    return [describe(reader.header, r) for r in records]


def describe(header: list[str], rec: RawRecord) -> dict[str, Any]:
    if rec.values is None:
        assert rec.reason is not None and rec.message, f"row {rec.row_number}: a reject without a reason"
        return {"row": rec.row_number, "outcome": "rejected", "reason": str(rec.reason), "message": rec.message}
    return {"row": rec.row_number, "outcome": "extracted", "values": dict(zip(header, rec.values))}


def assert_matches(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    assert [g["row"] for g in got] == [e["row"] for e in expected], "records missing, extra or renumbered"
    for g, e in zip(got, expected):
        assert g["outcome"] == e["outcome"], g
        if e["outcome"] == "extracted":
            assert g["values"] == e["values"], f"row {e['row']}"
        else:
            assert g["reason"] == e["reason"], g
            assert e["message"] in g["message"], g


def assert_verbatim(got: list[dict[str, Any]], wanted: list[str]) -> None:
    values = {v for g in got if g["outcome"] == "extracted" for v in g["values"].values()}
    assert set(wanted) <= values, set(wanted) - values


def committed(fmt: str) -> dict[str, Any]:
    return json.loads((HOSTILE / fmt / "expected.json").read_text(encoding="utf-8"))


# -- hostile fixtures --------------------------------------------------------------------

def test_hostile_fixtures_are_what_the_builders_make(tmp_path: Path) -> None:
    for fmt in ("json", "xlsx", "sql"):
        assert builder(fmt).build(tmp_path / fmt) == committed(fmt), f"{fmt}: rerun tests/fixtures/hostile/{fmt}/build.py"
    for case in builder("json").cases():  # the committed JSON files too, byte for byte
        assert (HOSTILE / "json" / case["file"]).read_bytes() == case["data"], case["file"]


@pytest.mark.parametrize("name", sorted(committed("json")))
def test_hostile_json(name: str) -> None:
    case = committed("json")[name]
    reader = open_reader(HOSTILE / "json" / name, JsonSource(format="json", path=name, key=("id",), **case["spec"]), 2)
    assert reader.header == case["header"]
    got = outcomes(reader)
    assert_matches(got, case["records"])
    if name in ("array.json", "lines.jsonl"):
        assert_verbatim(got, VERBATIM if name == "array.json" else [VERBATIM[0], VERBATIM[4]])


def test_hostile_xlsx(tmp_path: Path) -> None:
    expected = builder("xlsx").build(tmp_path)
    for name, case in expected.items():
        reader = open_reader(tmp_path / name, XlsxSource(format="xlsx", path=name, key="row_number", **case["spec"]), 2)
        assert reader.header == case["header"]
        got = outcomes(reader)
        assert_matches(got, case["records"])
        assert_verbatim(got, VERBATIM)


@pytest.mark.parametrize("chunk_rows", [1, 2, 1000])
def test_hostile_sqlite(tmp_path: Path, chunk_rows: int) -> None:
    expected = builder("sql").build(tmp_path)["sqlite"]
    for name, case in expected.items():
        reader = open_reader(tmp_path / "hostile.sqlite",
                             SqlSource(format="sql", path="hostile.sqlite", key="row_number", **case["spec"]), chunk_rows)
        assert reader.header == case["header"], name
        got = outcomes(reader)
        assert_matches(got, case["records"])
    assert_verbatim(outcomes(open_reader(tmp_path / "hostile.sqlite", SqlSource(
        format="sql", path="x", key="row_number", table="CUSTOMERS"), 2)), [VERBATIM[0], VERBATIM[1], VERBATIM[2], VERBATIM[4]])


def test_an_sqlite_source_is_never_written(tmp_path: Path) -> None:
    builder("sql").build(tmp_path)
    before = (tmp_path / "hostile.sqlite").read_bytes()
    reader = open_reader(tmp_path / "hostile.sqlite", SqlSource(format="sql", path="x", key="row_number", table="EMPTY"), 2)
    outcomes(reader)
    assert (tmp_path / "hostile.sqlite").read_bytes() == before
    assert not list(tmp_path.glob("hostile.sqlite-*")), "a journal or WAL file was created"


# -- SQL through url_env -----------------------------------------------------------------

def test_url_env_missing_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEGACY_DB_URL", raising=False)
    spec = SqlSource(format="sql", url_env="LEGACY_DB_URL", key=("ID",), table="T")
    with pytest.raises(SourceError, match=r"`\$LEGACY_DB_URL`.*environment variable LEGACY_DB_URL is not set"):
        open_reader(None, spec, 10)


def test_url_env_errors_mask_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    # Port 1 on loopback: refused at once, and the error must not carry the password.
    monkeypatch.setenv("LEGACY_DB_URL", "postgresql+psycopg://ann:Sup3rS3cret@127.0.0.1:1/crm?connect_timeout=2")
    spec = SqlSource(format="sql", url_env="LEGACY_DB_URL", key=("ID",), table="T")
    with pytest.raises(SourceError) as info:
        open_reader(None, spec, 10)
    assert "Sup3rS3cret" not in str(info.value)
    assert "ann:***@127.0.0.1:1/crm" in str(info.value)


@pytest.mark.parametrize("url", ["postgresql+psycopg://mig:Hunter2@TopSecret@127.0.0.1:1/crm",
                                 "postgresql+psycopg://mig:p@ss:w0rdXYZ/o@127.0.0.1:1/crm",
                                 "postgresql+psycopg://mig@127.0.0.1:1/crm?password=a@TopSecret"])
def test_a_password_not_percent_encoded_is_refused_without_showing_it(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    """Parsed as it stood, the rest of such a password became the host (and an error message
    showed it), or a port that is not a number (a ValueError: a traceback, exit 1)."""
    monkeypatch.setenv("LEGACY_DB_URL", url)
    with pytest.raises(SourceError, match="cannot be read as it stands: percent-encode") as info:
        open_reader(None, SqlSource(format="sql", url_env="LEGACY_DB_URL", key=("ID",), table="T"), 10)
    assert "TopSecret" not in str(info.value) and "w0rdXYZ" not in str(info.value)


@pytest.mark.parametrize("url", ["postgresql+psycopg://ann@srv:pw@127.0.0.1:1/crm",  # Azure's user@server
                                 "postgresql+psycopg://ann:p%40ss@127.0.0.1:1/crm",
                                 "postgresql+psycopg://postgres@/crm?host=/var/run/postgresql",
                                 "sqlite:////data/exports@2024/a@b.db"])
def test_urls_sqlalchemy_reads_right_are_accepted(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    from crmmigrate.extract.readers import _database

    monkeypatch.setenv("LEGACY_DB_URL", url)
    assert _database(None, SqlSource(format="sql", url_env="LEGACY_DB_URL", key=("ID",), table="T"))[1] == url


def test_postgresql_reads_read_only_and_keeps_server_text(pg_engine: sa.Engine, pg_url: str, pg_table: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    with pg_engine.begin() as con:
        con.exec_driver_sql(f"CREATE TABLE {pg_table} (id text, at time, doc jsonb, span interval, docs json[])")
        con.exec_driver_sql(f"""INSERT INTO {pg_table} VALUES ('1', '24:00:00', '{{"n": 123456789012345678901234567890.5}}',
                                '1 year 2 mons', ARRAY['{{"a": 2.50}}'::json]), ('2', '09:30', '{{"n": 2.50}}', '1 mon', NULL)""")
    monkeypatch.setenv("LEGACY_PG_URL", pg_url)
    reader = open_reader(None, SqlSource(format="sql", url_env="LEGACY_PG_URL", key=("id",), table=pg_table), 1)
    # `24:00:00` is a PostgreSQL time (not a Python one); JSON numbers and intervals as the server writes them.
    assert [r.values for r in reader.records()] == [
        ["1", "24:00:00", '{"n": 123456789012345678901234567890.5}', "1 year 2 mons", '{"{\\"a\\": 2.50}"}'],
        ["2", "09:30:00", '{"n": 2.50}', "1 mon", None]]
    with pg_engine.begin() as con:
        con.exec_driver_sql(f"CREATE SEQUENCE {pg_table}_seq")
    spec = SqlSource(format="sql", url_env="LEGACY_PG_URL", key=("id",), query=f"SELECT nextval('{pg_table}_seq') AS id")
    with pytest.raises(SourceError, match="read-only transaction"):  # a query must not change the legacy database
        open_reader(None, spec, 1)
    with pg_engine.begin() as con:
        con.exec_driver_sql(f"DROP SEQUENCE {pg_table}_seq")


def test_url_env_reads_an_sqlite_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    builder("sql").build(tmp_path)
    monkeypatch.setenv("LEGACY_DB_URL", f"sqlite:///{tmp_path / 'hostile.sqlite'}")
    reader = open_reader(None, SqlSource(format="sql", url_env="LEGACY_DB_URL", key=("ID",), table="CUSTOMERS"), 3)
    assert reader.location == f"$LEGACY_DB_URL (sqlite:///{tmp_path / 'hostile.sqlite'})"
    assert_matches(outcomes(reader), committed("sql")["sqlite"]["table"]["records"])


# -- PostgreSQL (a real server: .ci/run starts one) -------------------------------------

@pytest.fixture
def pg_table(pg_engine: sa.Engine):
    """A fresh table name in the test database, dropped afterwards."""
    name = f"legacy_{uuid.uuid4().hex[:10]}"
    yield name
    with pg_engine.begin() as con:
        con.execute(sa.text("SET LOCAL lock_timeout = '5s'"))  # a reader left open fails, not hangs
        con.execute(sa.text(f'DROP TABLE IF EXISTS "{name}"'))


def with_password(url: str, password: str) -> str:
    """The test URL with a password (trust authentication on the throwaway cluster ignores it)."""
    parsed = sa.engine.make_url(url)
    return parsed.set(password=password).render_as_string(hide_password=False)


def test_hostile_postgresql(pg_engine: sa.Engine, pg_url: str, pg_table: str, monkeypatch: pytest.MonkeyPatch) -> None:
    sql = builder("sql")
    with pg_engine.begin() as con:
        for statement in sql.POSTGRES_SQL:
            # text(), not exec_driver_sql: psycopg reads a bare `%` as a placeholder there.
            con.execute(sa.text(statement.format(table=pg_table).replace(":", "\\:")))
    monkeypatch.setenv("LEGACY_PG_URL", pg_url)
    expected = committed("sql")["postgresql"]
    for spec, case in ((SqlSource(format="sql", url_env="LEGACY_PG_URL", key=("id",), table=pg_table), expected["table"]),
                       (SqlSource(format="sql", url_env="LEGACY_PG_URL", key=("id",),
                                  query=sql.POSTGRES_QUERY.format(table=pg_table)), expected["query"])):
        reader = open_reader(None, spec, 2)
        assert reader.header == case["header"]
        assert_matches(outcomes(reader), case["records"])


PG_MAPPING = """\
spec_version: 1
kind: mapping
system: legacy
department: billing
sources:
  customers:
    format: sql
    url_env: LEGACY_PG_URL
    table: {table}
    key: [cust_no]
entities:
  - entity: contact
    from: customers
    fields:
      last_name: name
"""


def test_postgresql_extract_through_url_env(pg_engine: sa.Engine, pg_url: str, pg_table: str, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    with pg_engine.begin() as con:
        con.exec_driver_sql(f"""CREATE TABLE {pg_table} (cust_no text, name text, balance numeric(12, 2),
                                signed_up date, last_seen timestamptz, note text)""")
        con.exec_driver_sql(f"""INSERT INTO {pg_table} VALUES
            ('00042', 'Jürgen Groß', 1234.50, '2024-01-31', '2024-02-01 09:30:00+01', NULL),
            ('00043', '张伟', -0.10, '1999-12-31', '2024-06-30 23:59:59.5+00', 'ok'),
            ('0', 'Zoë 👩‍💻', 0, NULL, NULL, ''),
            (NULL, 'no key', 1, NULL, NULL, NULL),
            ('00044', NULL, NULL, '2024-02-29', '2024-02-29 00:00:00+00', '=SUM(A1)')""")
    password = "Pw-" + uuid.uuid4().hex
    monkeypatch.setenv("LEGACY_PG_URL", with_password(pg_url, password))
    (tmp_path / "crmmigrate.yml").write_text("spec_version: 1\nkind: project\nname: t\nchunk_rows: 2\n")
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "legacy.yml").write_text(PG_MAPPING.format(table=pg_table))
    project = load_project(tmp_path)
    run = RunDir(tmp_path / "runs" / "r1")
    result = run_extract(run, project)

    assert {k: result.counts[k] for k in ("records_in", "extracted", "rejected", "sources")} == {
        "records_in": 5, "extracted": 4, "rejected": 1, "sources": {"legacy.customers": 5}}
    rows = pd.read_parquet(run.path / "extract" / "legacy.customers.parquet")
    raw = rows[["cust_no", "name", "balance", "signed_up", "last_seen", "note"]].astype(object)
    assert raw.where(raw.notna(), None).values.tolist() == [
        ["00042", "Jürgen Groß", "1234.50", "2024-01-31", "2024-02-01T08:30:00+00:00", None],
        ["00043", "张伟", "-0.10", "1999-12-31", "2024-06-30T23:59:59.500000+00:00", "ok"],
        ["0", "Zoë 👩‍💻", "0.00", None, None, ""],
        ["00044", None, None, "2024-02-29", "2024-02-29T00:00:00+00:00", "=SUM(A1)"],
    ]
    assert rows["_source_key"].tolist() == ["00042", "00043", "0", "00044"]
    rejects = pd.read_parquet(run.path / "extract" / "rejects" / "legacy.customers.parquet")
    assert rejects[["_row_number", "reason_code"]].values.tolist() == [[4, "missing_key"]]
    sources = pd.read_parquet(run.path / "extract" / "sources.parquet")
    masked = sa.engine.make_url(with_password(pg_url, password)).render_as_string(hide_password=True)
    assert "***@" in masked and sources["path"].tolist() == [f"$LEGACY_PG_URL ({masked})"]
    assert (sources["records_in"] == sources["extracted"] + sources["rejected"]).all()

    for path in run.path.rglob("*"):  # the password is nowhere in the run folder
        if path.is_file():
            data = (pa.input_stream(str(path), compression="zstd").read() if path.suffix == ".zst"
                    else path.read_bytes())
            assert password.encode() not in data, path


def test_postgresql_reads_through_a_server_side_cursor(pg_engine: sa.Engine, pg_url: str, pg_table: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    with pg_engine.begin() as con:
        con.exec_driver_sql(f"CREATE TABLE {pg_table} AS SELECT g AS id FROM generate_series(1, 7) AS g")
    monkeypatch.setenv("LEGACY_PG_URL", pg_url)
    reader = open_reader(None, SqlSource(format="sql", url_env="LEGACY_PG_URL", key=("id",), table=pg_table), 3)
    records = reader.records()
    try:
        assert next(records).values == ["1"]
        # Between chunks, the reader's session is inside a declared cursor and its last
        # statement fetched at most 3 rows: the rows stream, they are not all in the client.
        with pg_engine.connect() as con:
            queries = con.execute(sa.text(
                "SELECT query FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND query LIKE 'FETCH FORWARD %'")).scalars().all()
        assert queries, "no cursor open between chunks: the result was fetched whole"
        assert all(int(q.split()[2]) <= 3 for q in queries), queries
        assert [r.values for r in records] == [[str(i)] for i in range(2, 8)]
    finally:
        records.close()
    assert reader.count_records() == 7


# -- JSON specifics ----------------------------------------------------------------------

def json_reader(path: Path, **spec: Any) -> Reader:
    return open_reader(path, JsonSource(format="json", path=path.name, key=("id",), **spec), 10)


@pytest.mark.parametrize(("text", "records", "message"), [
    ('{"data": {"rows": []}}', "data.items", r"not an array of records at `data.items` \(found nothing\)"),
    ('{"data": {"items": {"a": 1}}}', "data.items", r"at `data.items` \(found an object\)"),
    ('{"a": [1,', "data.items", "not a readable JSON file: parse error: premature EOF near byte 9"),
])
def test_json_record_path_problems_are_source_errors(tmp_path: Path, text: str, records: str, message: str) -> None:
    (tmp_path / "in.json").write_text(text)
    with pytest.raises(SourceError, match=message):
        json_reader(tmp_path / "in.json", records=records)


def test_json_lines_with_a_record_path_is_a_source_error(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text('{"id": 1}\n')
    with pytest.raises(SourceError, match="`records` is for a JSON document"):
        json_reader(tmp_path / "in.jsonl", lines=True, records="data")


@pytest.mark.parametrize("lines", [False, True])
def test_json_memory_does_not_grow_with_the_file(tmp_path: Path, lines: bool) -> None:
    def peak(n: int) -> int:
        path = tmp_path / f"{n}.json"
        record = '{"id": %d, "name": "Name %d", "address": {"city": "Köln", "zip": "50667"}, "tags": ["a", "b"]}'
        with path.open("w", encoding="utf-8") as fh:
            if lines:
                fh.writelines(record % (i, i) + "\n" for i in range(n))
            else:
                fh.write("[" + ",\n".join(record % (i, i) for i in range(n)) + "]")
        tracemalloc.start()
        try:
            reader = json_reader(path, lines=lines)
            count = sum(1 for _ in reader.records())
            assert count == reader.count_records() == n
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak(1_000), peak(10_000)  # ~0.1 MB and ~1 MB of JSON
    assert large < small * 2 + 256 * 1024, (small, large)


def extract_alone(folder: Path, mapping: str, files: dict[str, bytes]) -> tuple[dict[str, object], Path]:
    """Extract the one source of *mapping* (a mapping file's text) with *files* beside it."""
    (folder / "crmmigrate.yml").write_text("spec_version: 1\nkind: project\nname: t\nchunk_rows: 2\n")
    (folder / "mappings").mkdir()
    (folder / "mappings" / "m.yml").write_text(mapping)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    out = folder / "out"
    out.mkdir()
    project = load_project(folder)
    spec = next(iter(project.mappings.values()))
    return extract_source(project, spec, next(iter(spec.sources)), out), out


def test_json_arrays_in_the_extract_stage(tmp_path: Path) -> None:
    stats, out = extract_alone(tmp_path, (
        "spec_version: 1\nkind: mapping\nsystem: desk\ndepartment: support\nsources:\n"
        "  tickets: {format: json, path: truncated.json, key: [id]}\n"
        "entities:\n  - entity: contact\n    from: tickets\n    fields:\n      last_name: name\n"),
        {"truncated.json": (HOSTILE / "json" / "truncated.json").read_bytes()})
    assert (stats["records_in"], stats["extracted"], stats["rejected"]) == (3, 2, 1)
    rejects = pd.read_parquet(out / "rejects" / "desk.tickets.parquet")
    assert rejects["message"].tolist()[0].startswith("the document breaks off near byte 73 (line 4, column 16)")


def test_json_records_without_fields_are_extracted_and_previewed(tmp_path: Path) -> None:
    """A source with no columns at all: every record still extracts, each with a row hash."""
    stats, out = extract_alone(tmp_path, (
        "spec_version: 1\nkind: mapping\nsystem: shop\ndepartment: sales\n"
        "sources:\n  people: {format: json, path: people.json, key: row_number}\n"
        "entities:\n  - entity: account\n    from: people\n    fields:\n      name: {constant: x}\n"),
        {"people.json": b"[{}, {}, {}]"})
    assert (stats["records_in"], stats["extracted"], stats["rejected"]) == (3, 3, 0)
    rows = pd.read_parquet(out / "shop.people.parquet")
    assert rows["_source_key"].tolist() == ["1", "2", "3"] and rows["_row_hash"].nunique() == 1
    shown = preview(tmp_path / "mappings" / "m.yml", n=10)
    assert len(shown.entities[0].mapped) == 3


# -- XLSX specifics ----------------------------------------------------------------------

XLSX_MAPPING = """\
spec_version: 1
kind: mapping
system: marketing
department: marketing
sources:
  subscribers:
    format: xlsx
    path: hostile.xlsx
    sheet: Contacts
    header_row: 2
    key: row_number
entities:
  - entity: contact
    from: subscribers
    fields:
      last_name: Name
  - entity: address
    from: subscribers
    links: {contact: self}
    fields:
      kind: {constant: mailing}
      # Excel stored these postcodes as numbers (0800 became 800): restored by the mapping.
      postcode: {column: Postcode, transform: [trim, {zfill: {width: 4}}]}
"""


def test_xlsx_number_postcode_is_restored_by_zfill_through_the_mapping(tmp_path: Path) -> None:
    builder("xlsx").build(tmp_path)
    (tmp_path / "crmmigrate.yml").write_text("spec_version: 1\nkind: project\nname: t\n")
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "marketing.yml").write_text(XLSX_MAPPING)
    project = load_project(tmp_path)
    mapping = project.mappings["marketing"]
    out = tmp_path / "out"
    out.mkdir()
    extract_source(project, mapping, "subscribers", out)
    frame = pd.read_parquet(out / "marketing.subscribers.parquet")
    assert frame["Postcode"].tolist()[:3] == ["800", "1067", "01067"]  # as read: digits, no `.0`
    result = map_frame(frame, mapping.entities[1], mapping)
    assert result.mapped["postcode"].tolist()[:3] == ["0800", "1067", "01067"]


def test_xlsx_workbook_is_closed_after_each_pass(tmp_path: Path) -> None:
    import gc

    builder("xlsx").build(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        reader = open_reader(tmp_path / "hostile.xlsx",
                             XlsxSource(format="xlsx", path="x", key="row_number", sheet="Contacts", header_row=2), 2)
        assert reader.book._archive.fp is None  # noqa: SLF001 - the zip file behind the workbook
        list(reader.records())
        reader.count_records()
        gc.collect()


def test_xlsx_unknown_sheet_lists_the_sheets(tmp_path: Path) -> None:
    builder("xlsx").build(tmp_path)
    with pytest.raises(SourceError, match="no sheet named 'Nope'; sheets: Contacts, Other"):
        open_reader(tmp_path / "hostile.xlsx", XlsxSource(format="xlsx", path="x", key="row_number", sheet="Nope"), 2)
