"""The map stage's two routes on the demo's five systems: DuckDB for the rows its SQL is sure of
plus `map_frame` for the rest must write exactly what `map_frame` alone writes, file by file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from conftest import make_project
from crmmigrate import map as map_stage
from crmmigrate.extract import run_extract
from crmmigrate.map.sql import compile_entity
from crmmigrate.rundir import RunDir
from crmmigrate.spec import load_project
from tests.test_edge_cases import project


def map_both_routes(project_dir: Path, run_dir: Path) -> dict:
    project = load_project(project_dir)
    run = RunDir(run_dir)
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


@pytest.fixture(scope="module", params=["small", "full"])
def both_routes(request: pytest.FixtureRequest, demo_template: tuple[Path, dict],
                tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The tests' small demo, and the README's 500 people: only the larger one has doubtful rows
    of several kinds interleaved within one batch."""
    if request.param == "small":
        project_dir = demo_template[0]
    else:
        project_dir = tmp_path_factory.mktemp("demo-500") / "project"
        make_project(project_dir, people=500, seed=7)
    return map_both_routes(project_dir, tmp_path_factory.mktemp("map-routes") / "run")


INTERLEAVED = """\
spec_version: 1
kind: mapping
system: s
department: marketing
default_region: GB
sources:
  c: {format: csv, path: c.csv, key: [ID]}
entities:
  - entity: contact
    from: c
    fields:
      last_name: {column: NAME, transform: [trim, title]}
      phone: {column: PHONE, transform: [phone]}
  - entity: marketing_consent
    from: c
    links: {contact: self}
    fields:
      channel: {column: CH, map: {E: email, P: post}}
      opted_in: {constant: true}
"""


def test_doubtful_rows_of_different_kinds_keep_their_own_values(tmp_path: Path) -> None:
    """Rows the SQL doubts for different fields alternate: each must get its own sure values back."""
    lines = ["ID,NAME,PHONE,CH"]
    for i in range(300):
        phone = ["020 7946 0%03d" % i, "+44 (0)20 7946 0%03d" % i, "tel 0%d" % i][i % 3]  # 2nd: phonenumbers
        name = f"ßn{i}" if i % 4 == 1 else f"  name{i} "  # a leading ß: only Python title-cases it
        lines.append(f"{i},{name},{phone},{'EPX'[i % 3 if i % 2 else 0]}")
    routes = map_both_routes(project(tmp_path, "\n".join(lines) + "\n", INTERLEAVED), tmp_path / "run")
    (compiled, _), (reference, _) = routes["outs"][True], routes["outs"][False]
    assert_same_files(compiled, reference)
    contacts = _read(compiled / "mapped" / "contact" / "s.c.parquet")
    plain = contacts["_source_key"].astype(int) % 4 != 1
    assert (contacts.loc[plain, "last_name"] == "Name" + contacts.loc[plain, "_source_key"]).all()
    assert plain.sum() > 100 and (~plain).sum() > 30


def _read(path: Path) -> pd.DataFrame:
    frame = pd.read_parquet(path)
    order = [c for c in ("_source", "_source_key", "_row_number", "field") if c in frame]
    return frame.sort_values(order, ignore_index=True) if len(frame) else frame


def assert_same_files(compiled: Path, reference: Path) -> None:
    files = sorted(p.relative_to(reference) for p in reference.rglob("*.parquet"))
    assert files == sorted(p.relative_to(compiled) for p in compiled.rglob("*.parquet"))
    for rel in files:
        pd.testing.assert_frame_equal(_read(compiled / rel), _read(reference / rel), obj=str(rel))


def test_compiled_route_writes_what_map_frame_writes(both_routes: dict) -> None:
    (compiled, compiled_counts), (reference, reference_counts) = both_routes["outs"][True], both_routes["outs"][False]
    assert compiled_counts == reference_counts
    assert_same_files(compiled, reference)


def test_most_demo_entities_compile(both_routes: dict) -> None:
    """Else the comparison above would hold trivially: every entity would take map_frame alone."""
    project = both_routes["project"]
    entities = [(m, em) for m in project.mappings.values() for em in m.entities]
    compiled = [em.entity for m, em in entities if compile_entity(em, m) is not None]
    assert len(compiled) >= len(entities) // 2, compiled
