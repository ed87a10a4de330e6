"""The extract stage on a small project: rows in = extracted + rejected per source, lineage on
every row, rejects with their line and reason, and a snapshot of what was read."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crmmigrate import extract
from crmmigrate.extract import extract_source, row_hash, run_extract, source_header
from crmmigrate.rundir import RunDir
from crmmigrate.spec import load_project

MAPPING = """\
spec_version: 1
kind: mapping
system: shop
department: sales
sources:
  people:
    format: csv
    path: people.csv
    key: [ID, REGION]
  notes:
    format: sql
    path: notes.sqlite
    table: NOTES
    key: row_number
entities:
  - entity: contact
    from: people
    fields:
      last_name: NAME
  - entity: account
    from: notes
    fields:
      name: TEXT
"""

PEOPLE = (
    b"ID,REGION,NAME\n"
    b"1, north ,Ann\n"          # 2: ok; key parts are trimmed
    b"2,north\n"                # 3: ragged
    b" ,south,Bob\n"            # 4: blank key part
    b"3,south,J\xfcrgen\n"      # 5: not utf-8
    b'4,south,"Multi\nline"\n'  # 6-7: ok
    b"5,,Eve\n"                 # 8: missing key part
)


@pytest.fixture
def project(tmp_path: Path):
    (tmp_path / "crmmigrate.yml").write_text("spec_version: 1\nkind: project\nname: t\nchunk_rows: 1\n")
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "shop.yml").write_text(MAPPING)
    (tmp_path / "people.csv").write_bytes(PEOPLE)
    con = sqlite3.connect(tmp_path / "notes.sqlite")
    con.execute("CREATE TABLE NOTES (TEXT TEXT)")
    con.executemany("INSERT INTO NOTES VALUES (?)", [("a",), (None,), ("c",)])
    con.commit()
    con.close()
    return load_project(tmp_path)


def test_extract_csv_source(project, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    mapping = project.mappings["shop"]
    stats = extract_source(project, mapping, "people", out)
    assert stats == {"source": "shop.people", "system": "shop", "department": "sales", "table": "people",
                     "format": "csv", "path": "people.csv", "records_in": 6, "extracted": 2, "rejected": 4,
                     "snapshot": "shop.people.csv.zst", "fallback_decoded": 0}
    rows = pd.read_parquet(out / "shop.people.parquet")
    assert rows.to_dict("records") == [
        {"ID": "1", "REGION": " north ", "NAME": "Ann", "_source": "shop.people", "_department": "sales",
         "_source_key": "1|north", "_row_number": 2, "_row_hash": row_hash(["1", " north ", "Ann"])},
        {"ID": "4", "REGION": "south", "NAME": "Multi\nline", "_source": "shop.people", "_department": "sales",
         "_source_key": "4|south", "_row_number": 6, "_row_hash": row_hash(["4", "south", "Multi\nline"])},
    ]
    rejects = pd.read_parquet(out / "rejects" / "shop.people.parquet")
    assert rejects[["_row_number", "reason_code"]].values.tolist() == [
        [3, "malformed_row"], [4, "missing_key"], [5, "undecodable"], [8, "missing_key"]]
    assert rejects["message"].tolist()[1] == "key column(s) ID, REGION empty"
    assert rejects["raw"].tolist()[1] == " ,south,Bob\n"
    assert (rejects["_source"] == "shop.people").all()
    # Written chunk_rows (1) at a time as they come, never gathered whole in memory.
    assert pq.ParquetFile(out / "rejects" / "shop.people.parquet").num_row_groups == 4
    assert unzstd(out / "snapshots" / "shop.people.csv.zst") == PEOPLE


def unzstd(path: Path) -> bytes:
    with pa.input_stream(str(path), compression="zstd") as fh:
        return fh.read()


def test_a_snapshot_of_many_blocks_reads_back_whole(project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One zstd frame per block, concatenated: still one .zst that pyarrow (and `zstd -d`) read whole."""
    monkeypatch.setattr(extract._Snapshot, "BLOCK", 7)
    out = tmp_path / "extract"
    out.mkdir()
    extract_source(project, project.mappings["shop"], "people", out)
    path = out / "snapshots" / "shop.people.csv.zst"
    assert unzstd(path) == PEOPLE and path.read_bytes().count(b"\x28\xb5\x2f\xfd") >= len(PEOPLE) // 7


def test_the_snapshot_of_an_empty_file_is_one_empty_frame(project, tmp_path: Path) -> None:
    """A .zst of no bytes at all is refused by `zstd -d`."""
    (project.root / "people.csv").write_bytes(b"")
    out = tmp_path / "extract"
    out.mkdir()
    stats = extract_source(project, project.mappings["shop"], "people", out)
    path = out / "snapshots" / "shop.people.csv.zst"
    assert stats["records_in"] == 0 and path.read_bytes().startswith(b"\x28\xb5\x2f\xfd") and unzstd(path) == b""


def test_extract_sql_source_with_row_number_key(project, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    stats = extract_source(project, project.mappings["shop"], "notes", out)
    assert (stats["records_in"], stats["extracted"], stats["rejected"]) == (3, 3, 0)
    rows = pd.read_parquet(out / "shop.notes.parquet")
    assert rows["_source_key"].tolist() == ["1", "2", "3"]
    assert rows["TEXT"].tolist() == ["a", None, "c"]
    lines = unzstd(out / "snapshots" / "shop.notes.jsonl.zst").splitlines()
    assert [json.loads(line) for line in lines] == [["a"], [None], ["c"]]


def test_run_extract_balances_every_source(project, tmp_path: Path) -> None:
    run = RunDir(tmp_path / "runs" / "r1")
    result = run_extract(run, project)
    assert result.counts == {"records_in": 9, "extracted": 5, "rejected": 4, "repeated_keys": 0,
                             "sources": {"shop.people": 6, "shop.notes": 3}}
    sources = pd.read_parquet(run.path / "extract" / "sources.parquet")
    assert (sources["records_in"] == sources["extracted"] + sources["rejected"]).all()
    assert run.read_meta()["stages"]["extract"]["status"] == "succeeded"
    # The extract's copies are working copies, written uncompressed (rundir.WORKING_CODEC).
    for source in ("shop.people", "shop.notes"):
        meta = pq.ParquetFile(run.path / "extract" / f"{source}.parquet").metadata
        assert {meta.row_group(0).column(i).compression for i in range(meta.num_columns)} == {"UNCOMPRESSED"}


def test_source_header(project) -> None:
    assert source_header(project, project.mappings["shop"], "people") == ["ID", "REGION", "NAME"]
    assert source_header(project, project.mappings["shop"], "notes") == ["TEXT"]


def test_row_hash_tells_missing_from_empty() -> None:
    assert row_hash(["a", None]) != row_hash(["a", ""])
    assert row_hash(["a\x1fb", "c"]) != row_hash(["a", "b\x1fc"])
    assert row_hash(["\x00"]) != row_hash([None])
    assert row_hash(["a", "b"]) == row_hash(["a", "b"])


def test_a_source_whose_count_and_read_disagree_is_an_error(project, tmp_path: Path) -> None:
    """A table written to between the count and the read (here: a query that is not
    deterministic) is refused, naming the source, instead of balancing nothing."""
    (tmp_path / "mappings" / "shop.yml").write_text(
        MAPPING.replace("table: NOTES", "query: SELECT TEXT FROM NOTES WHERE (SELECT count(*) FROM _calls) = 1"))
    con = sqlite3.connect(tmp_path / "notes.sqlite")
    con.execute("CREATE TABLE _calls (n INTEGER)")
    con.commit()
    con.close()
    changed = load_project(tmp_path)

    import crmmigrate.extract.readers as readers

    count = readers.SqlReader.count_records

    def count_then_write(self: readers.SqlReader) -> int:  # a writer slips in after the count
        n = count(self)
        with sqlite3.connect(tmp_path / "notes.sqlite") as db:
            db.execute("INSERT INTO _calls VALUES (1)")
        return n

    out = tmp_path / "out"
    out.mkdir()
    from crmmigrate.errors import SourceError

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(readers.SqlReader, "count_records", count_then_write)
        with pytest.raises(SourceError, match=r"notes.sqlite`: counted 0 records but read 3 \(the query is not "
                                              r"deterministic or the data changed while it was read\)"):
            extract_source(changed, changed.mappings["shop"], "notes", out)
