"""The run folder: atomic stage output, stale marking, failures recorded, secrets masked."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crmmigrate.errors import mask_secrets
from crmmigrate.rundir import STAGES, RunDir, StreamWriter, read_table, write_table
from crmmigrate.schemas import MAP_REJECTS, mapped_schema


def test_a_stage_swaps_in_its_output_and_marks_later_stages_stale(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "r")
    for stage in ("extract", "map"):
        with run.stage(stage) as (out, result):
            (out / "x.txt").write_text(stage)
            result.counts = {"rows": 1}
    with run.stage("extract") as (out, _):
        (out / "y.txt").write_text("again")
    assert sorted(p.name for p in (run.path / "extract").iterdir()) == ["y.txt"]
    stages = run.read_meta()["stages"]
    assert stages["extract"]["status"] == "succeeded" and stages["map"]["status"] == "stale"
    assert stages["map"]["counts"] == {"rows": 1}


def test_a_rerun_stage_takes_back_the_verdict_until_reconcile_runs_again(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "r")
    for stage in STAGES:
        with run.stage(stage):
            pass
    run.update_meta(verdict="balanced")  # as reconcile records it
    with pytest.raises(RuntimeError), run.stage("match"):
        raise RuntimeError("no output swapped in: the verdict still holds")
    assert run.read_meta()["verdict"] == "balanced"
    with run.stage("match"):
        pass
    meta = run.read_meta()
    assert [meta["stages"][s]["status"] for s in STAGES[STAGES.index("match") + 1:]] == ["stale"] * 3
    assert meta["verdict"] == "stale"


def test_a_failing_stage_keeps_the_previous_output_and_records_the_error(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "r")
    with run.stage("extract") as (out, _):
        (out / "good.txt").write_text("ok")
    with pytest.raises(RuntimeError):
        with run.stage("extract") as (out, _):
            (out / "half.txt").write_text("partial")
            raise RuntimeError("cannot reach postgresql://ann:pw123@db/x")
    assert [p.name for p in (run.path / "extract").iterdir()] == ["good.txt"]
    entry = run.read_meta()["stages"]["extract"]
    assert entry["status"] == "failed" and "pw123" not in entry["error"]["message"]
    assert not list(run.path.glob(".*staging"))


def test_run_json_never_holds_a_password(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "r")
    run.init({"target": "postgresql+psycopg://ann:s3cret@db:5432/crm"}, {"python": "3.11"})
    text = (run.path / "run.json").read_text()
    assert "s3cret" not in text and "ann:***@db" in text
    assert json.loads(text)["status"] == "running"


def test_mask_secrets_leaves_urls_without_passwords_alone() -> None:
    assert mask_secrets("sqlite:////tmp/crm.sqlite") == "sqlite:////tmp/crm.sqlite"
    assert mask_secrets("a postgresql://u:p@h/d and mysql://v:q@h2/e") == "a postgresql://u:***@h/d and mysql://v:***@h2/e"


def test_write_table_keeps_declared_types_for_all_null_columns(tmp_path: Path) -> None:
    schema = pa.schema([("key", pa.string()), ("when", pa.timestamp("us", tz="UTC")), ("n", pa.int64())])
    write_table(tmp_path / "t.parquet", pd.DataFrame({"key": ["a", None]}), schema)
    back = pa.parquet.read_schema(tmp_path / "t.parquet")
    assert back.equals(schema)
    assert read_table(tmp_path / "t.parquet")["key"].tolist() == ["a", None]


def test_mask_secrets_covers_query_passwords_and_at_signs_inside_passwords() -> None:
    assert mask_secrets("postgresql://ann@db/crm?sslmode=require&password=s3") == \
        "postgresql://ann@db/crm?sslmode=require&password=***"
    assert mask_secrets("postgresql://ann:p@ss@db/crm") == "postgresql://ann:***@db/crm"


def test_stream_writer_writes_every_batch_in_order_and_reports_a_failed_write(tmp_path: Path) -> None:
    schema = pa.schema([pa.field("n", pa.int64(), nullable=False)])
    with StreamWriter(tmp_path / "ok.parquet", schema) as writer:
        for start in range(0, 1000, 100):
            writer.write_table(pa.table({"n": pa.array(range(start, start + 100))}, schema=schema))
    assert pq.read_table(tmp_path / "ok.parquet")["n"].to_pylist() == list(range(1000))

    writer = StreamWriter(tmp_path / "bad.parquet", schema)
    writer.write_table(pa.table({"other": [1]}))  # fails in the writing thread ...
    with pytest.raises(ValueError, match="schema"):
        writer.close()  # ... and is raised here, in the caller's


def test_a_stage_allocates_from_the_system_pool_and_restores_the_default(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    before = pa.default_memory_pool().backend_name
    run = RunDir(tmp_path / "run")
    with run.stage("extract"):
        assert pa.default_memory_pool().backend_name == "system"
    assert pa.default_memory_pool().backend_name == before
    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", before)  # a user's own choice is kept
    with run.stage("extract"):
        assert pa.default_memory_pool().backend_name == before


def test_stream_writer_compresses_every_column_but_the_row_hash(tmp_path: Path) -> None:
    """Nested columns too: a per-column codec that misses a leaf would leave it uncompressed."""
    with StreamWriter(tmp_path / "r.parquet", MAP_REJECTS) as writer:
        writer.write_table(MAP_REJECTS.empty_table())
    meta = pq.ParquetFile(tmp_path / "r.parquet").metadata
    codecs = {meta.schema.column(i).path: meta.row_group(0).column(i).compression for i in range(meta.num_columns)}
    assert codecs.pop("_row_hash") == "UNCOMPRESSED"
    assert "failures.list.element.message" in codecs and set(codecs.values()) == {"SNAPPY"}


def test_columns_that_repeat_by_construction_are_dictionary_encoded(tmp_path: Path) -> None:
    schema = mapped_schema("marketing_consent")
    rows = schema.empty_table().to_pylist()
    table = pa.Table.from_pylist(rows + [dict.fromkeys(schema.names) | {
        "_source": "crm.people", "_department": "sales", "_source_key": "1", "_row_number": 2, "_row_hash": "0" * 16,
        "_link_contact_source": "crm.people", "_link_contact_key": "1", "channel": "email", "opted_in": True}],
        schema=schema)
    with StreamWriter(tmp_path / "m.parquet", schema) as writer:
        writer.write_table(table)
    meta = pq.ParquetFile(tmp_path / "m.parquet").metadata
    encodings = {meta.schema.column(i).path: meta.row_group(0).column(i).encodings for i in range(meta.num_columns)}
    assert "RLE_DICTIONARY" in encodings["_link_contact_source"] and "RLE_DICTIONARY" in encodings["_source"]
    assert "RLE_DICTIONARY" not in encodings["_link_contact_key"]
