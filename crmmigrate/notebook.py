"""The one entry point a stage notebook calls after its parameters cell.

``start()`` turns the notebook's parameters into a loaded project, a run folder and (for
the stages that need it) the target, and refuses parameters the notebook does not declare:
papermill only warns about those, and a misspelt parameter silently ignored is how a run
goes to the wrong place.
"""

from __future__ import annotations

import ast
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from crmmigrate.errors import SettingsError
from crmmigrate.rundir import STAGES, RunDir, StageResult, new_run_id
from crmmigrate.spec.load import Project, load_project
from crmmigrate.target import Target, resolve_target

if TYPE_CHECKING:
    from crmmigrate.match.review import Review

LOG = logging.getLogger("crmmigrate")


@dataclass
class Session:
    stage: str
    project: Project
    run: RunDir
    target_url: str = ""
    target_env: str = ""

    @property
    def target(self) -> Target:
        return resolve_target(self.project, self.target_url or None, self.target_env or None)

    def show(self, result: StageResult) -> pd.DataFrame:
        """The stage's counts as a table (what the notebook displays)."""
        rows = [{"count": k, "value": v} for k, v in _flatten(result.counts).items()]
        return pd.DataFrame(rows)

    def table(self, relative: str) -> pd.DataFrame:
        """A run-folder table, for a look in the notebook."""
        return pd.read_parquet(self.run.path / relative)


def _flatten(counts: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in counts.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def latest_run(project: Project) -> Path | None:
    runs = sorted(p for p in project.runs_dir.glob("*") if (p / "run.json").exists()) if project.runs_dir.exists() else []
    return runs[-1] if runs else None


def injected_names() -> set[str]:
    """Names papermill injected into this kernel (its cell starts with '# Parameters')."""
    try:
        from IPython import get_ipython
    except ImportError:
        return set()
    shell = get_ipython()
    if shell is None:
        return set()
    names: set[str] = set()
    for source in shell.user_ns.get("In", []):
        if source.startswith("# Parameters"):
            for node in ast.parse(source).body:
                if isinstance(node, ast.Assign):
                    names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


KNOWN = ("project", "run_dir", "target", "target_env")


def from_notebook(value: str, notebook: str, parameter: str = "project") -> str:
    """The path a notebook's *parameter* names (*notebook*: the notebook's file name, a glob).

    A value papermill injected (``-p project …``) is the caller's path, relative to the folder
    the kernel runs in, as a shell user means it. The notebook's own default (``".."``) is
    relative to the notebook's folder, as its parameters cell says, and the kernel is told
    nothing of that folder: papermill passes no path and runs the kernel in the shell's folder
    unless given ``cwd`` (JupyterLab's ``__session__`` and VS Code's ``__vsc_ipynb_file__`` are
    theirs alone). So the folder is the one where the notebook is seen: the kernel's (JupyterLab,
    ``crmmigrate run``, ``papermill --cwd``), or its ``notebooks/`` (``papermill
    notebooks/30-match.ipynb out.ipynb`` at a project root, which a project's own notebooks and
    the shipped ones alike sit in; run there, another project's notebook would be read as this
    one's, so pass ``-p project`` then). Outside a kernel (a plain Python call) a relative path
    is the current folder's.
    """
    here = Path.cwd()
    if not value or Path(value).is_absolute() or parameter in injected_names() or not _in_kernel():
        return value
    folder = next((f for f in (here, here / "notebooks") if any(f.glob(notebook))), here)
    return os.path.normpath(folder / value)


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return getattr(get_ipython(), "kernel", None) is not None


def start(stage: str, **params: str) -> Session:
    """Open the project and run folder for *stage*, given the notebook's declared parameters.

    Fails on a parameter papermill injected that the notebook does not declare. An empty
    ``run_dir`` means a new run folder for `extract`, and the latest run for the stages
    after it, so a consultant can re-run one stage from JupyterLab.
    """
    if stage not in STAGES:
        raise SettingsError(f"Notebook: unknown stage '{stage}'; stages: {', '.join(STAGES)}")
    stray = (set(params) - set(KNOWN)) | (injected_names() - set(params))
    if stray:
        raise SettingsError(f"Notebook `{stage}`: unknown parameter(s) {', '.join(sorted(stray))}; "
                            f"it takes {', '.join(params)}")
    project, run_dir = params.get("project", "."), params.get("run_dir", "")
    target, target_env = params.get("target", ""), params.get("target_env", "")
    loaded = load_project(from_notebook(project, f"[0-9][0-9]-{stage}.ipynb"))
    if run_dir:
        folder = Path(run_dir)
    elif stage == "extract":
        folder = loaded.runs_dir / new_run_id()
    else:
        found = latest_run(loaded)
        if found is None:
            raise SettingsError(f"Notebook `{stage}`: no run folder under {loaded.runs_dir}; run 10-extract first")
        folder = found
    run = RunDir(folder)
    _log_to(run)
    LOG.info("stage %s: run folder %s", stage, run.path)
    return Session(stage, loaded, run, target, target_env)


def _log_to(run: RunDir) -> None:
    run.path.mkdir(parents=True, exist_ok=True)
    log_file = str(run.path / "run.log")
    if not any(getattr(h, "baseFilename", None) == log_file for h in LOG.handlers):
        handler = logging.FileHandler(log_file, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        LOG.addHandler(handler)
    LOG.setLevel(logging.INFO)


def read_all(folder: Path) -> pd.DataFrame:
    """Every parquet table under *folder* (e.g. all rejects of all entities), stacked."""
    parts = [pd.read_parquet(p) for p in sorted(Path(folder).rglob("*.parquet"))]
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def open_run(project: str = "..", run_dir: str = "", notebook: str = "25-browse-rejects.ipynb") -> Session:
    """Open an existing run folder to look at (the latest one when *run_dir* is empty), from
    *notebook* (whose folder a relative *project* is resolved from: `from_notebook`)."""
    loaded = load_project(from_notebook(project, notebook))
    folder = Path(run_dir) if run_dir else latest_run(loaded)
    if folder is None or not (folder / "run.json").exists():
        raise SettingsError(f"No run folder {'at ' + str(folder) if folder else 'under ' + str(loaded.runs_dir)}")
    return Session("map", loaded, RunDir(folder))


REVIEW_PARAMETERS = ("project", "run_dir", "entity", "reviewer", "limit", "index", "decide")


def open_review(**params: Any) -> Review:
    """The review queue notebook `35-review-matches` works through, given its parameters (all of
    them, so that one papermill injected and the notebook does not declare is refused)."""
    from crmmigrate.match.review import Review

    stray = (set(params) ^ set(REVIEW_PARAMETERS)) | (injected_names() - set(params))
    if stray:
        raise SettingsError(f"Notebook `35-review-matches`: unknown or missing parameter(s) {', '.join(sorted(stray))}; "
                            f"it takes {', '.join(REVIEW_PARAMETERS)}")
    session = open_run(params["project"], params["run_dir"], notebook="35-review-matches.ipynb")
    return Review(session.project.root, session.run.path, entity=params["entity"], reviewer=params["reviewer"])


def rejects(run: RunDir, source: str = "", entity: str = "", reason: str = "") -> pd.DataFrame:
    """Every rejected record of *run* (unreadable ones included), optionally filtered."""
    mapped = read_all(run.path / "map" / "rejects")
    unreadable = read_all(run.path / "extract" / "rejects")
    if not unreadable.empty:
        unreadable = unreadable.assign(entity="(unreadable)", _source_key="line:" + unreadable["_row_number"].astype(str))
    frame = pd.concat([f for f in (unreadable, mapped) if not f.empty], ignore_index=True) if (
        len(mapped) or len(unreadable)) else pd.DataFrame(columns=["_source", "entity", "reason_code", "_source_key"])
    for column, wanted in (("_source", source), ("entity", entity), ("reason_code", reason)):
        if wanted:
            frame = frame[frame[column] == wanted]
    return frame.reset_index(drop=True)
