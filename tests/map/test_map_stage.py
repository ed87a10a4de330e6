"""The map stage's two routes on the demo's five systems: DuckDB for the rows its SQL is sure of
plus `map_frame` for the rest must write exactly what `map_frame` alone writes, file by file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from crmmigrate import map as map_stage
from crmmigrate.extract import run_extract
from crmmigrate.map.sql import compile_entity
from crmmigrate.rundir import RunDir
from crmmigrate.spec import load_project


@pytest.fixture(scope="module")
def both_routes(demo_template: tuple[Path, dict], tmp_path_factory: pytest.TempPathFactory) -> dict:
    project_dir, _ = demo_template
    project = load_project(project_dir)
    run = RunDir(tmp_path_factory.mktemp("map-routes") / "run")
    run_extract(run, project)
    outs = {}
    for compiled in (True, False):
        out = run.path / ("compiled" if compiled else "reference")
        counts = {}
        for mapping in project.mappings.values():
            for em in mapping.entities:
                counts[(mapping.source_id(em.from_), em.entity)] = map_stage.map_source(
                    run, project, mapping, em, out, compiled=compiled)
        outs[compiled] = (out, counts)
    return {"project": project, "outs": outs}


def _read(path: Path) -> pd.DataFrame:
    frame = pd.read_parquet(path)
    order = [c for c in ("_source", "_source_key", "_row_number", "field") if c in frame]
    return frame.sort_values(order, ignore_index=True) if len(frame) else frame


def test_compiled_route_writes_what_map_frame_writes(both_routes: dict) -> None:
    (compiled, compiled_counts), (reference, reference_counts) = both_routes["outs"][True], both_routes["outs"][False]
    assert compiled_counts == reference_counts
    files = sorted(p.relative_to(reference) for p in reference.rglob("*.parquet"))
    assert files == sorted(p.relative_to(compiled) for p in compiled.rglob("*.parquet"))
    for rel in files:
        pd.testing.assert_frame_equal(_read(compiled / rel), _read(reference / rel), obj=str(rel))


def test_most_demo_entities_compile(both_routes: dict) -> None:
    """Else the comparison above would hold trivially: every entity would take map_frame alone."""
    project = both_routes["project"]
    entities = [(m, em) for m in project.mappings.values() for em in m.entities]
    compiled = [em.entity for m, em in entities if compile_entity(em, m) is not None]
    assert len(compiled) >= len(entities) // 2, compiled
