"""The stage notebooks: thin, parameterised, stripped, and regression-tested against goldens.

Goldens in ``tests/notebooks/golden/`` are executed copies made by papermill with the
parameters below. Regenerate after an intended change with
``CRMMIGRATE_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/test_notebooks.py`` and review the diff.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import nbformat
import pandas as pd
import papermill
import pytest
from pytest_notebook.nb_regression import NBRegressionFixture

from conftest import REPO, make_project, run_stages
from crmmigrate.notebook import KNOWN

STAGE_NOTEBOOKS = ["10-extract", "20-map", "30-match", "40-merge", "50-load", "60-reconcile"]
SOURCES = [REPO / "notebooks" / f"{n}.ipynb" for n in STAGE_NOTEBOOKS]
TOOLS = sorted(p for p in (REPO / "notebooks").glob("*.ipynb") if p.stem not in STAGE_NOTEBOOKS)
GOLDEN_DIR = REPO / "tests" / "notebooks" / "golden"
GOLDEN_PARAMETERS = {"10-extract": {"project": "..", "run_dir": "../runs/golden"}}
REGEN = os.environ.get("CRMMIGRATE_REGEN_GOLDEN") == "1"


def code_cells(nb: nbformat.NotebookNode) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code" and "injected-parameters" not in c.metadata.get("tags", [])]


def test_there_is_one_notebook_per_stage_plus_the_tools() -> None:
    assert all(p.exists() for p in SOURCES)
    assert [p.stem for p in TOOLS] == ["01-profile-source", "25-browse-rejects", "35-review-matches"]


def stripped_code_cells(path: Path) -> list[nbformat.NotebookNode]:
    """The code cells of a committed notebook, checked: a tagged parameters cell first, no outputs."""
    code = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    assert all(not c.outputs and c.execution_count is None for c in code)
    return code


@pytest.mark.parametrize("path", TOOLS, ids=lambda p: p.stem)
def test_tool_notebooks_are_stripped_and_documented(path: Path) -> None:
    stripped_code_cells(path)
    assert all(p["help"] for p in papermill.inspect_notebook(str(path)).values())


def outputs(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "\n".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
                     for c in nb.cells if c.cell_type == "code" for o in c.outputs)


@pytest.mark.slow
def test_profile_notebook_profiles_and_drafts_a_mapping(demo_project: tuple[Path, dict], tmp_path: Path) -> None:
    project, _ = demo_project
    out = tmp_path / "profile.ipynb"
    papermill.execute_notebook(str(REPO / "notebooks" / "01-profile-source.ipynb"), str(out), kernel_name="python3",
                               parameters={"path": str(project / "data/demo/shipping/orders.csv"), "encoding": "",
                                           "delimiter": "", "system": "webshop"}, progress_bar=False)
    text = outputs(out)
    assert "customer_email" in text and "system: webshop" in text and "split_name" in text


@pytest.mark.slow
def test_profile_notebook_profiles_a_database_table_and_shows_the_row_count(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "legacy.sqlite"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE kunden (kdnr INTEGER, Nachname TEXT, Vorname TEXT)")
        con.executemany("INSERT INTO kunden VALUES (?, ?, ?)", [(n, f"Name{n}", "Ann") for n in range(1, 13)])
    out = tmp_path / "profile.ipynb"
    papermill.execute_notebook(str(REPO / "notebooks" / "01-profile-source.ipynb"), str(out), kernel_name="python3",
                               parameters={"path": str(db), "table": "kunden", "sample_rows": 5}, progress_bar=False)
    text = outputs(out)
    assert "12 records" in text and "table: kunden" in text and "last_name:\n      column: Nachname" in text
    with pytest.raises(papermill.PapermillExecutionError) as caught:
        papermill.execute_notebook(str(REPO / "notebooks" / "01-profile-source.ipynb"), str(out),
                                   kernel_name="python3", parameters={"path": str(db)}, progress_bar=False)
    assert caught.value.ename == "SettingsError" and "`table` or `query`" in caught.value.evalue
    assert "\n" not in caught.value.evalue


@pytest.mark.slow
def test_the_profile_notebook_run_from_the_project_root_finds_its_default_file(
        demo_project: tuple[Path, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project, _ = demo_project
    shutil.copytree(REPO / "notebooks", project / "notebooks")
    monkeypatch.chdir(project)
    papermill.execute_notebook("notebooks/01-profile-source.ipynb", str(tmp_path / "out.ipynb"), kernel_name="python3",
                               parameters={"sample_rows": 10}, progress_bar=False)
    text = outputs(tmp_path / "out.ipynb")
    assert "records in the source; the profile read the first 10" in text
    assert f"path: {project / 'data/demo/sales/contacts.csv'}" in text


@pytest.mark.slow
def test_browse_rejects_notebook_reruns_map_and_lists_rejects(demo_project: tuple[Path, dict], tmp_path: Path) -> None:
    from crmmigrate.extract import run_extract
    from crmmigrate.rundir import RunDir
    from crmmigrate.spec import load_project

    project, _ = demo_project
    run = RunDir(project / "runs" / "r1")
    run_extract(run, load_project(project))
    out = tmp_path / "rejects.ipynb"
    papermill.execute_notebook(str(REPO / "notebooks" / "25-browse-rejects.ipynb"), str(out), kernel_name="python3",
                               parameters={"project": str(project), "rerun_map": True, "reason": "invalid_date"},
                               progress_bar=False)
    text = outputs(out)
    # (A bad e-mail is an optional field's: dropped and recorded, no longer a reject.)
    assert "billing.invoices" in text and "invalid_date" in text and "invalid_datetime" not in text
    assert (run.path / "map" / "rejects").exists()


def html_outputs(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "\n".join(str(o.get("data", {}).get("text/html", "")) for c in nb.cells if c.cell_type == "code"
                     for o in c.outputs)


@pytest.mark.slow
def test_review_notebook_shows_a_pair_and_records_a_decision_only_when_asked(
        demo_project: tuple[Path, dict], tmp_path: Path) -> None:
    import json

    from crmmigrate.match import run_match
    from crmmigrate.match.decisions import decisions_path
    from crmmigrate.spec import load_project

    project, _ = demo_project
    run = run_stages(project)
    review = pd.read_parquet(run.path / "match" / "review.parquet")
    contacts = review[review["entity"] == "contact"].reset_index(drop=True)
    parameters = {"project": str(project), "run_dir": str(run.path), "limit": 3, "index": 1, "reviewer": "tester"}
    out = tmp_path / "review.ipynb"
    papermill.execute_notebook(str(REPO / "notebooks" / "35-review-matches.ipynb"), str(out), kernel_name="python3",
                               parameters=parameters, progress_bar=False, cwd=str(REPO / "notebooks"))
    text, html = outputs(out), html_outputs(out)
    assert re.search(rf"\ball\s+{len(contacts)}\s+0\n", text)  # the queue's size, none decided yet
    assert all(reason.split(":")[0] in text for reason in contacts["reason"])
    pair = contacts.iloc[1]
    assert f"Pair 1 of the {len(contacts)} in the contact queue" in text and pair["left_key"] in text
    assert "compared_as" in html and "not compared" in html  # the side-by-side table
    assert "Starting match weight (prior)" in html and "Final score" in html and "cumulative_weight" in html
    assert not decisions_path(project).exists()  # shown, not decided

    papermill.execute_notebook(str(REPO / "notebooks" / "35-review-matches.ipynb"), str(out), kernel_name="python3",
                               parameters={**parameters, "decide": "same"}, progress_bar=False,
                               cwd=str(REPO / "notebooks"))
    [entry] = [json.loads(line) for line in decisions_path(project).read_text(encoding="utf-8").splitlines()]
    keys = ["left_source", "left_key", "right_source", "right_key"]
    assert [entry[k] for k in keys] == pair[keys].tolist()
    assert entry["decision"] == "same" and entry["by"] == "tester" and entry["at"] and entry["seen"]["last_name"]
    run_match(run, load_project(project))  # the next run applies it
    links = pd.read_parquet(run.path / "match" / "pairs.parquet")
    assert links.loc[links["link"] == "same", keys].values.tolist() == [pair[keys].tolist()]


def test_the_review_notebook_refuses_a_parameter_it_does_not_declare(demo_project: tuple[Path, dict]) -> None:
    from crmmigrate.errors import SettingsError
    from crmmigrate.notebook import REVIEW_PARAMETERS, open_review

    project, _ = demo_project
    declared = set(papermill.inspect_notebook(str(REPO / "notebooks" / "35-review-matches.ipynb")))
    assert declared == set(REVIEW_PARAMETERS)
    params = {"project": str(project), "run_dir": "", "entity": "contact", "reviewer": "", "limit": 5, "index": 0,
              "decide": ""}
    with pytest.raises(SettingsError, match=r"unknown or missing parameter\(s\) decide; it takes project"):
        open_review(**{k: v for k, v in params.items() if k != "decide"})
    with pytest.raises(SettingsError, match=r"unknown or missing parameter\(s\) page;"):
        open_review(**params, page=2)
    with pytest.raises(SettingsError, match="No run folder"):
        open_review(**params)


def _extracted_and_mapped(project: Path) -> Path:
    """The run folder of *project* after extract and map, run in-process."""
    from crmmigrate.extract import run_extract
    from crmmigrate.map import run_map
    from crmmigrate.rundir import RunDir
    from crmmigrate.spec import load_project

    loaded, run = load_project(project), RunDir(project / "runs" / "r1")
    run_extract(run, loaded)
    run_map(run, loaded)
    return run.path


@pytest.mark.slow
def test_a_stage_notebook_run_by_papermill_from_the_project_root_finds_its_project(
        demo_project: tuple[Path, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `papermill notebooks/30-match.ipynb out.ipynb` in a shell at the project root: papermill
    # starts the kernel in the shell's folder, and the default project ".." is the notebook's parent.
    project, _ = demo_project
    shutil.copytree(REPO / "notebooks", project / "notebooks")
    run = _extracted_and_mapped(project)
    monkeypatch.chdir(project)
    papermill.execute_notebook("notebooks/30-match.ipynb", str(tmp_path / "out.ipynb"), kernel_name="python3",
                               progress_bar=False)
    assert (run / "match" / "pairs.parquet").exists()


@pytest.mark.slow
def test_a_stage_run_from_its_notebook_makes_later_stages_stale_until_they_run_again(
        demo_project: tuple[Path, dict], tmp_path: Path) -> None:
    from crmmigrate.load import run_load
    from crmmigrate.merge import run_merge
    from crmmigrate.reconcile import run_reconcile
    from crmmigrate.spec import load_project
    from crmmigrate.target import resolve_target

    project, _ = demo_project
    run = run_stages(project)
    assert run.read_meta()["verdict"] == "balanced"
    papermill.execute_notebook(str(REPO / "notebooks" / "30-match.ipynb"), str(tmp_path / "match.ipynb"),
                               parameters={"project": str(project), "run_dir": str(run.path)}, kernel_name="python3",
                               progress_bar=False, cwd=str(REPO / "notebooks"))
    meta = run.read_meta()
    assert [meta["stages"][s]["status"] for s in ("match", "merge", "load", "reconcile")] == [
        "succeeded", "stale", "stale", "stale"]
    assert meta["verdict"] == "stale"
    loaded = load_project(project)
    run_merge(run, loaded)
    run_load(run, loaded, resolve_target(loaded))
    assert run.read_meta()["verdict"] == "stale"
    run_reconcile(run, loaded, resolve_target(loaded))
    assert run.read_meta()["verdict"] == "balanced"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.stem)
def test_source_notebooks_are_thin_documented_and_stripped(path: Path) -> None:
    code = stripped_code_cells(path)
    declared = papermill.inspect_notebook(str(path))
    assert set(declared) <= set(KNOWN) and {"project", "run_dir"} <= set(declared)
    assert all(p["help"] and p["inferred_type_name"] == "str" for p in declared.values())
    assert f'notebook.start("{path.stem.split("-")[1]}"' in code[1].source
    assert sum(len(c.source.splitlines()) for c in code) < 25  # logic lives in the package


@pytest.mark.parametrize("name", sorted(GOLDEN_PARAMETERS))
def test_golden_code_matches_its_source(name: str) -> None:
    golden = GOLDEN_DIR / f"{name}.ipynb"
    if not golden.exists():
        pytest.fail(f"{golden} missing; regenerate with CRMMIGRATE_REGEN_GOLDEN=1")
    assert code_cells(nbformat.read(golden, as_version=4)) == code_cells(
        nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(GOLDEN_PARAMETERS))
def test_notebook_output_matches_golden(name: str, tmp_path: Path) -> None:
    project = tmp_path / "project"
    make_project(project)
    (project / "notebooks").mkdir()
    executed = project / "notebooks" / f"{name}.ipynb"
    golden = GOLDEN_DIR / f"{name}.ipynb"
    if REGEN:
        papermill.execute_notebook(str(REPO / "notebooks" / f"{name}.ipynb"), str(executed),
                                   parameters=GOLDEN_PARAMETERS[name], kernel_name="python3",
                                   progress_bar=False, cwd=str(executed.parent))
        GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
        shutil.copy(executed, golden)
        shutil.rmtree(project / "runs")
    shutil.copy(golden, executed)
    fixture = NBRegressionFixture(
        exec_timeout=180,
        diff_ignore=("/metadata/language_info", "/metadata/papermill", "/metadata/widgets",
                     "/cells/*/metadata/papermill", "/cells/*/metadata/execution", "/cells/*/execution_count"),
        diff_replace=(("/cells/*/outputs", r"\d+\.\d+ ?s\b", "DURATION"),),
        diff_use_color=False,
    )
    fixture.check(str(executed))
