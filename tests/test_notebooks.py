"""The stage notebooks: thin, parameterised, stripped, and regression-tested against goldens.

Goldens in ``tests/notebooks/golden/`` are executed copies made by papermill with the
parameters below. Regenerate after an intended change with
``CRMMIGRATE_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/test_notebooks.py`` and review the diff.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nbformat
import papermill
import pytest
from pytest_notebook.nb_regression import NBRegressionFixture

from conftest import REPO, make_project
from crmmigrate.notebook import KNOWN

SOURCES = sorted((REPO / "notebooks").glob("*.ipynb"))
GOLDEN_DIR = REPO / "tests" / "notebooks" / "golden"
GOLDEN_PARAMETERS = {"10-extract": {"project": "..", "run_dir": "../runs/golden"}}
REGEN = os.environ.get("CRMMIGRATE_REGEN_GOLDEN") == "1"


def code_cells(nb: nbformat.NotebookNode) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code" and "injected-parameters" not in c.metadata.get("tags", [])]


def test_there_is_one_notebook_per_stage() -> None:
    assert [p.stem for p in SOURCES] == ["10-extract", "20-map", "30-match", "40-merge", "50-load", "60-reconcile"]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.stem)
def test_source_notebooks_are_thin_documented_and_stripped(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    assert all(not c.outputs and c.execution_count is None for c in code)
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
