"""The run folder: the only way stages talk to each other.

Each stage owns one sub-folder (``extract/``, ``map/``, …). A stage writes into a hidden
staging folder and swaps it in when it succeeds, so re-running a stage replaces its output
whole or not at all; later stages (and reconcile's verdict) are then marked stale in ``run.json``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import os
import queue
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from crmmigrate.errors import CrmMigrateError, StageInputError, mask_secrets

Stage = Literal["extract", "map", "match", "merge", "load", "reconcile"]
STAGES: tuple[str, ...] = get_args(Stage)
StageStatus = Literal["running", "succeeded", "failed", "stale"]


def new_run_id(now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.timezone.utc)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@dataclass
class StageResult:
    stage: str
    counts: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0


class RunDir:
    """A run folder on disk. Cheap to create; reads ``run.json`` on demand."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path).resolve()

    @property
    def run_json(self) -> Path:
        return self.path / "run.json"

    @property
    def run_id(self) -> str:
        return self.read_meta().get("run_id") or self.path.name

    def stage_dir(self, stage: str) -> Path:
        return self.path / stage

    def require(self, stage: str) -> Path:
        """The output folder of *stage*, which a later stage is about to read."""
        folder = self.stage_dir(stage)
        if not folder.is_dir():
            raise StageInputError(
                f"In run folder {self.path}: stage `{stage}` has no output yet; run it first"
            )
        return folder

    # -- run.json -------------------------------------------------------------------
    def read_meta(self) -> dict[str, Any]:
        if not self.run_json.exists():
            return {}
        return json.loads(self.run_json.read_text(encoding="utf-8"))

    def write_meta(self, meta: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        text = mask_secrets(json.dumps(meta, indent=2, default=str))
        tmp = self.run_json.with_suffix(".json.tmp")
        tmp.write_text(text + "\n", encoding="utf-8")
        os.replace(tmp, self.run_json)

    def update_meta(self, **values: Any) -> dict[str, Any]:
        meta = self.read_meta()
        meta.update(values)
        self.write_meta(meta)
        return meta

    def init(self, parameters: dict[str, Any], versions: dict[str, str]) -> None:
        """Start run.json for a new run, or record a re-run of an existing folder."""
        meta = self.read_meta()
        meta.setdefault("run_id", self.path.name)
        meta.setdefault("started_at", utc_now())
        meta.setdefault("stages", {})
        meta.update(parameters=parameters, versions=versions, status="running", finished_at=None)
        meta.setdefault("attempts", []).append({"at": utc_now(), "parameters": parameters})
        self.write_meta(meta)

    def set_stage(self, stage: str, **entry: Any) -> None:
        meta = self.read_meta()
        stages = meta.setdefault("stages", {})
        stages[stage] = {**stages.get(stage, {}), **entry}
        self.write_meta(meta)

    # -- stage output -----------------------------------------------------------------
    @contextlib.contextmanager
    def stage(self, stage: str) -> Iterator[tuple[Path, StageResult]]:
        """Write a stage's output into staging; swap it in on success, record it in run.json."""
        staging = self.path / f".{stage}.staging"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        result = StageResult(stage)
        started = time.perf_counter()
        self.set_stage(stage, status="running", started_at=utc_now(), error=None)
        try:
            with stage_memory_pool():
                yield staging, result
        except BaseException as exc:
            shutil.rmtree(staging, ignore_errors=True)
            error = exc.attrs() if isinstance(exc, CrmMigrateError) else {
                "type": type(exc).__name__, "message": mask_secrets(str(exc))}
            self.set_stage(stage, status="failed", finished_at=utc_now(), error=error,
                           duration_s=round(time.perf_counter() - started, 3))
            raise
        self._swap_in(staging, self.stage_dir(stage))
        result.duration_s = round(time.perf_counter() - started, 3)
        self.set_stage(stage, status="succeeded", finished_at=utc_now(),
                       duration_s=result.duration_s, counts=result.counts)
        self._mark_later_stale(stage)

    @staticmethod
    def _swap_in(staging: Path, final: Path) -> None:
        old = final.with_name(f".{final.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            os.replace(final, old)
        os.replace(staging, final)
        shutil.rmtree(old, ignore_errors=True)

    def _mark_later_stale(self, stage: str) -> None:
        """The one rule for a re-run, however it is started (`crmmigrate run --stages`, a stage
        notebook, a call): the stages after *stage* read the output it replaced, so theirs is
        stale, and so is reconcile's verdict on it until reconcile runs again."""
        meta = self.read_meta()
        stages = meta.get("stages", {})
        changed = False
        for later in STAGES[STAGES.index(stage) + 1:]:
            if stages.get(later, {}).get("status") == "succeeded":
                stages[later]["status"] = "stale"
                changed = True
        if stage != STAGES[-1] and meta.get("verdict") not in (None, "stale"):
            meta["verdict"] = "stale"
            changed = True
        if changed:
            self.write_meta(meta)


@contextlib.contextmanager
def stage_memory_pool() -> Iterator[None]:
    """Arrow allocates from the C library's allocator while a stage runs, unless the user chose
    one (ARROW_DEFAULT_MEMORY_POOL). The default, mimalloc, keeps freed memory in each thread's
    heap, and a stage streams batches through several threads (DuckDB's, the parquet writers'):
    peak RSS of extract + map at 1M rows was 407-439 MB with it, 334-342 MB without it, at the
    same speed. Restored afterwards: a buffer is always freed to the pool it came from."""
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        yield
        return
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


# The stages' streamed parquet: snappy, and dictionary pages only for the columns whose values
# repeat by construction (and a link's parent source: `_link_<parent>_source`, one per mapping).
# Dictionary-encoding every text column cost ~0.3 s per million rows written (and more to read
# back) for 8% fewer bytes. Statistics only where a reader prunes row groups by them (the map
# stage looks rows up again by `_row_number`): 13% less CPU per write.
PARQUET_STREAM = {"compression": "snappy",
                  "use_dictionary": ["_source", "_department", "entity", "reason_code", "category"],
                  "write_statistics": ["_row_number"]}
# Working copies are written uncompressed: the extract's copy of a source (the snapshot is the
# compressed one) and the map's mapped, skipped and nulled rows. Each is read whole by the next
# stage and kept with the run. Per million bench rows: snappy cost the extract's writer ~0.5 CPU-s
# (extract 1.7-2.1 s -> 1.45-1.9 s; 219 MB instead of 130), and the map's writers 0.35 CPU-s of
# both cores' 5 (map 2.62-2.83 s -> 2.42-2.51 s; 161 MB instead of 102). Rejects stay snappy:
# people read and keep them, and their raw records and messages shrink 3-20x.
WORKING_CODEC = "none"
# Hex digests do not compress (snappy gained 10% of their bytes for ~0.08 s of CPU per million rows).
_UNCOMPRESSED = frozenset({"_row_hash"})


def parquet_stream(schema: pa.Schema, codec: str = PARQUET_STREAM["compression"]) -> dict[str, Any]:
    """`PARQUET_STREAM` for a writer of *schema* (in *codec*)."""
    links = [n for n in schema.names if n.startswith("_link_") and n.endswith("_source")]
    return {**PARQUET_STREAM, "compression": {c: "none" if c in _UNCOMPRESSED else codec for c in _leaf_paths(schema)},
            "use_dictionary": PARQUET_STREAM["use_dictionary"] + links}


@functools.lru_cache(maxsize=64)
def _leaf_paths(schema: pa.Schema) -> tuple[str, ...]:
    """Parquet's column paths (`failures.list.element.field`): a per-column codec names every leaf,
    or that leaf is left uncompressed. Read from an empty file, so they are the writer's own."""
    buffer = pa.BufferOutputStream()
    pq.ParquetWriter(buffer, schema).close()
    written = pq.ParquetFile(pa.BufferReader(buffer.getvalue())).schema
    return tuple(written.column(i).path for i in range(len(written)))


# A row group is read whole: DuckDB allocates one block for a row group's columns, and its
# readers here run under a 64-128 MB limit. A source of 100 columns of 40 characters made
# 260 MB row groups of 65,536 rows, and the map stage ran out of memory.
ROW_GROUP_BYTES = 4 << 20


def row_group_rows(table: pa.Table) -> int:
    """Rows per row group for *table*, so that a group holds about ROW_GROUP_BYTES."""
    if not table.num_rows:
        return 1
    return max(1, min(table.num_rows, ROW_GROUP_BYTES * table.num_rows // max(table.nbytes, 1)))


class StreamWriter:
    """A parquet writer (`PARQUET_STREAM`) that writes in its own thread: encoding (and compressing)
    one batch overlaps with DuckDB computing the next, since both release the GIL. The extract's
    writer spends ~0.3 CPU-s per million bench rows, uncompressed (snappy: ~0.85). At most *depth*
    batches wait, so memory stays bounded."""

    def __init__(self, path: Path, schema: pa.Schema, depth: int = 2, codec: str = PARQUET_STREAM["compression"]):
        self._writer = pq.ParquetWriter(path, schema, **parquet_stream(schema, codec))
        self._queue: queue.Queue[pa.Table | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name=f"write {path.name}", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while (table := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._writer.write_table(table, row_group_size=row_group_rows(table))
                except BaseException as exc:  # re-raised in the caller's thread
                    self._error = exc

    def write_table(self, table: pa.Table) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(table)

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
            self._writer.close()
        if self._error is not None:
            raise self._error

    def __enter__(self) -> StreamWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_table(path: Path, frame: pd.DataFrame, schema: pa.Schema) -> int:
    """Write *frame* through *schema* (columns in schema order, missing columns null)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = {}
    for f in schema:
        values = frame[f.name] if f.name in frame.columns else pd.Series([None] * len(frame), dtype=object)
        columns[f.name] = pa.array(_nullable(values), type=f.type, from_pandas=True)
    table = pa.Table.from_pydict(columns, schema=schema) if len(schema) else pa.table({})
    pq.write_table(table, path, compression="zstd")
    return table.num_rows


def _nullable(values: pd.Series) -> list[Any] | pd.Series:
    if values.dtype == object:
        return values.where(values.notna(), None)
    return values


def read_table(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a run-folder table; dates, decimals and timestamps keep their Python types."""
    table = pq.read_table(path, columns=columns)
    return table.to_pandas(types_mapper=None, date_as_object=True)


def stack(frames: list[pd.DataFrame], columns: list[str] | None = None) -> pd.DataFrame:
    """Concatenate the non-empty *frames*; an empty frame (with *columns*) when there are none."""
    parts = [f for f in frames if len(f)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def read_tables(folder: Path, pattern: str = "*.parquet") -> pd.DataFrame:
    parts = [read_table(p) for p in sorted(folder.glob(pattern))]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
