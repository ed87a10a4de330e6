"""`crmmigrate run`: check everything that can be checked, then run the stage notebooks.

Mappings, source headers, notebook parameters, the target connection and the revision of the
CRM's schema are all checked before any kernel starts. Each stage runs as its notebook through
papermill's Python API (the CLI costs ~2.5 s a call), and the executed copy is kept in
``<run>/notebooks/``.
"""

from __future__ import annotations

import importlib.metadata
import io
import logging
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crmmigrate.crm.schema import SchemaState, require_current
from crmmigrate.errors import (
    LedgerImbalance,
    MappingSpecError,
    SettingsError,
    SourceError,
    SpecProblem,
    StageFailed,
    mask_secrets,
)
from crmmigrate.extract import source_header
from crmmigrate.notebook import KNOWN
from crmmigrate.rundir import STAGES, RunDir, new_run_id, utc_now
from crmmigrate.spec.load import Project, check_columns, read_project
from crmmigrate.spec.model import MappingSpec
from crmmigrate.spec.yamlsource import load_yaml
from crmmigrate.target import Target, check_target, resolve_target, upgrade_command

LOG = logging.getLogger("crmmigrate")
NOTEBOOKS = {"extract": "10-extract", "map": "20-map", "match": "30-match", "merge": "40-merge",
             "load": "50-load", "reconcile": "60-reconcile"}
PACKAGES = ("crmmigrate", "pandas", "pyarrow", "SQLAlchemy", "alembic", "papermill", "pydantic", "phonenumbers")


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def notebooks_dir(project: Project) -> Path:
    """The project's own `notebooks/` if it has them, else the ones shipped with crmmigrate."""
    own = project.root / "notebooks"
    if (own / "10-extract.ipynb").exists():
        return own
    return Path(__file__).resolve().parent.parent / "notebooks"


@dataclass
class Plan:
    project: Project
    target: Target
    run: RunDir
    stages: list[str]
    notebooks: dict[str, Path]
    parameters: dict[str, dict[str, str]]
    schema: SchemaState | None = None


def preflight(project_dir: str | os.PathLike[str], run_dir: str | None = None, stages: list[str] | None = None,
              target_url: str | None = None, target_env: str | None = None) -> Plan:
    """Everything `run` checks before a kernel starts. Raises a CrmMigrateError (exit 2)."""
    project, problems = read_project(project_dir)
    headers = {}
    for mapping, table in project.readable_sources():
        try:
            headers[mapping.source_id(table)] = source_header(project, mapping, table)
        except SourceError as exc:
            problems.append(source_problem(project, mapping, table, exc))
    # Every problem of every file at once: a key error does not hide a wrong column.
    if problems := problems + check_columns(project, headers):
        raise MappingSpecError(sorted(problems, key=lambda p: (p.file, p.line or 0)))
    chosen = stages or list(STAGES)
    if unknown := [s for s in chosen if s not in STAGES]:
        raise SettingsError(f"--stages: unknown stage(s) {', '.join(unknown)}; stages: {', '.join(STAGES)}")
    chosen = [s for s in STAGES if s in chosen]  # always in pipeline order
    run = RunDir(run_dir) if run_dir else RunDir(project.runs_dir / new_run_id())
    check_writable(run.path)  # before the target's check, which may create the CRM file
    target = resolve_target(project, target_url, target_env)
    schema = check_target(target)
    if {"load", "reconcile"} & set(chosen):
        # Only the stages that write the CRM need its schema at head: re-mapping must not wait
        # for an upgrade of a CRM it does not touch. An empty CRM is brought to head by the load.
        require_current(schema, target.display, upgrade_command(project_dir, target_url, target_env))
    if stages:
        first = STAGES.index(chosen[0])
        meta = run.read_meta().get("stages", {})
        missing = [s for s in STAGES[:first] if meta.get(s, {}).get("status") not in ("succeeded", "stale")]
        if missing:
            raise SettingsError(f"--stages {','.join(chosen)}: run folder {run.path} has no output of "
                                f"{', '.join(missing)}; run those stages first")
    folder = notebooks_dir(project)
    notebooks, parameters = {}, {}
    values = {"project": str(project.root), "run_dir": str(run.path), "target": target_url or "",
              "target_env": target_env or ""}
    import papermill

    for stage in chosen:
        path = folder / f"{NOTEBOOKS[stage]}.ipynb"
        if not path.exists():
            raise SettingsError(f"Notebook for stage `{stage}` not found: {path}")
        declared = papermill.inspect_notebook(str(path))
        if not declared:
            raise SettingsError(f"{path}: no cell tagged `parameters`")
        if unknown := sorted(set(declared) - set(KNOWN)):
            raise SettingsError(f"{path}: parameter(s) {', '.join(unknown)} are not ones crmmigrate passes "
                                f"({', '.join(KNOWN)})")
        notebooks[stage] = path
        parameters[stage] = {k: values[k] for k in declared}
    return Plan(project, target, run, chosen, notebooks, parameters, schema)


def source_problem(project: Project, mapping: MappingSpec, table: str, exc: SourceError) -> SpecProblem:
    """A source that cannot be opened, located at its declaration in the mapping file."""
    file = project.files[mapping.system]
    spec = mapping.sources[table]
    key = "path" if spec.path is not None else "url_env"
    return load_yaml(project.root / file, file).problem(
        ("sources", table, key), f"source '{mapping.source_id(table)}' cannot be opened: {exc.source}: {exc.detail}")


def check_writable(folder: Path) -> None:
    """The run folder can be made and written, judged on the nearest folder that exists, so that
    a read-only place fails before any file is made rather than in the middle of run.json."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise SettingsError(f"Run folder {folder}: cannot be written: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise SettingsError(f"Run folder {folder}: cannot be written: {existing} is read-only for this user")


def _pin_accepted_models(plan: Plan) -> None:
    """A run that trained a match model and balanced is accepted: the project keeps its model,
    so later runs score the same records the same way (`crmmigrate match retrain` lets go of it)."""
    from crmmigrate.match import pin_models

    if "match" in plan.stages and plan.run.read_meta().get("verdict") == "balanced":
        if pinned := pin_models(plan.run, plan.project):
            LOG.info("match models pinned for later runs: %s", ", ".join(pinned))
            plan.run.update_meta(pinned_models=pinned)


def _kernel_manager(log_path: Path, opened: list[Any]) -> type:
    """A kernel manager whose kernel writes its stderr into run.log instead of the terminal (a
    cron job mails the summary, not a kernel's chatter), and talks over Unix sockets in the
    user's Jupyter runtime folder rather than localhost TCP, which any local user may connect to
    (ipykernel warns of it in every stage)."""
    from jupyter_client.manager import AsyncKernelManager

    class RunLogKernelManager(AsyncKernelManager):
        def __init__(self, **kw: Any) -> None:
            if connection_file := _ipc_connection_file():
                kw = {"transport": "ipc", "connection_file": connection_file, **kw}
            super().__init__(**kw)

        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            stream = log_path.open("ab")
            opened.append(stream)
            kw["stderr"] = stream
            result = await super()._async_launch_kernel(kernel_cmd, **kw)
            opened.append(self)  # so that an interrupted run can stop its kernel before saying so
            return result

    return RunLogKernelManager


def _ipc_connection_file() -> str | None:
    """A new kernel's connection file in the user's private Jupyter runtime folder; its sockets
    are named after it. Absolute, since papermill runs the kernel in the notebook's folder, where
    relative socket names would land and could collide. None (TCP, then) where the folder cannot
    be made or the names would pass the ~100-byte limit of a Unix socket path."""
    from jupyter_core.paths import jupyter_runtime_dir
    from jupyter_core.utils import ensure_dir_exists

    try:
        folder = jupyter_runtime_dir()
        ensure_dir_exists(folder, 0o700)
    except OSError:
        return None
    name = os.path.join(folder, f"crmmigrate-{secrets.token_hex(6)}.json")
    return name if len(name.encode()) < 90 else None


def execute(plan: Plan) -> dict[str, Any]:
    """Run the planned stages. Raises StageFailed (exit 4; 2 for a source, mapping or target error met inside a
    stage) or LedgerImbalance (exit 1)."""
    import papermill

    run = plan.run
    try:
        run.init(parameters={"project": str(plan.project.root), "target": plan.target.display,
                             "stages": plan.stages, "run_dir": str(run.path)}, versions=versions())
        handler = logging.FileHandler(run.path / "run.log", encoding="utf-8")
    except OSError as exc:  # what check_writable cannot see: a read-only file system, a full disk
        raise SettingsError(f"Run folder {run.path}: cannot be written: {exc}") from None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    LOG.addHandler(handler)
    streams: list[Any] = []
    kernel_manager = _kernel_manager(run.path / "run.log", streams)
    try:
        for stage in plan.stages:
            executed = run.path / "notebooks" / plan.notebooks[stage].name
            executed.parent.mkdir(parents=True, exist_ok=True)
            LOG.info("stage %s: running %s", stage, plan.notebooks[stage].name)
            run.set_stage(stage, notebook=str(executed.relative_to(run.path)))
            try:
                papermill.execute_notebook(
                    str(plan.notebooks[stage]), str(executed), parameters=plan.parameters[stage],
                    kernel_name="python3", progress_bar=False, cwd=str(plan.notebooks[stage].parent),
                    kernel_manager_class=kernel_manager,
                )
            except papermill.PapermillExecutionError as exc:
                meta = run.read_meta()
                if stage == "reconcile" and meta.get("verdict") == "unbalanced":
                    run.update_meta(status="unbalanced", finished_at=utc_now())
                    raise LedgerImbalance([], [mask_secrets(f"{exc.ename}: {exc.evalue}")]) from None
                error = {"type": exc.ename, "message": mask_secrets(exc.evalue)}
                run.set_stage(stage, status="failed", error=error)
                run.update_meta(status="failed", finished_at=utc_now())
                raise StageFailed(stage, str(executed), f"{exc.ename}: {exc.evalue}", exc.ename) from None
            except Exception as exc:  # the kernel died, or the executed notebook could not be written
                run.set_stage(stage, status="failed", error={"type": type(exc).__name__,
                                                             "message": mask_secrets(str(exc))})
                run.update_meta(status="failed", finished_at=utc_now())
                raise StageFailed(stage, str(executed), f"{type(exc).__name__}: {exc}") from exc
            LOG.info("stage %s: done", stage)
        run.update_meta(status="succeeded", finished_at=utc_now())
        _pin_accepted_models(plan)
        return run.read_meta()
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM from a scheduler (cli.Terminated)
        # run.json must not go on saying `running`; the stage's output was never swapped in, and a
        # re-run of the stage replaces its half-written staging folder. The stage's kernel writes
        # run.json too: it is stopped first, so that it cannot write after us.
        _stop_kernels(streams)
        stopped = next((s for s, e in run.read_meta().get("stages", {}).items() if e.get("status") == "running"), None)
        reason = str(exc) or "interrupted"
        if stopped is not None:
            run.set_stage(stopped, status="failed", finished_at=utc_now(),
                          error={"type": type(exc).__name__, "message": reason})
        run.update_meta(status="interrupted", finished_at=utc_now())
        LOG.error("run %s%s", reason, f" during stage {stopped}" if stopped else "")
        raise
    finally:
        LOG.removeHandler(handler)
        handler.close()
        for stream in streams:
            if isinstance(stream, io.IOBase):  # (the list holds the kernel managers too)
                stream.close()


def _stop_kernels(opened: list[Any]) -> None:
    """Kill the kernels still running (their process, at once: the run is being stopped)."""
    for manager in opened:
        process = getattr(getattr(manager, "provisioner", None), "process", None)
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def summary(meta: dict[str, Any]) -> str:
    """The paragraph `crmmigrate run` prints at the end."""
    stages = meta.get("stages", {})
    extract = stages.get("extract", {}).get("counts", {})
    rec = stages.get("reconcile", {}).get("counts", {})
    stale = [s for s in STAGES if stages.get(s, {}).get("status") == "stale"]
    if stale:  # reconcile's counts are of the stages before this re-run: no verdict on it yet
        ran = [s for s in STAGES if stages.get(s, {}).get("status") == "succeeded" and s not in stale]
        return (f"Ran {', '.join(ran)}; {', '.join(stale)} are stale, so the run has no verdict until they run "
                f"again (--stages {','.join(stale)} --run-dir {meta.get('run_id')}).")
    if not rec:
        return f"Ran {', '.join(s for s in STAGES if s in stages)}; run folder {meta.get('run_id')}."
    sources = extract.get("sources", {})
    return (
        f"Read {rec['records_in']:,} records from {len(sources)} sources. "
        f"The CRM now holds {rec['persons']:,} people ({rec['persons_created']:,} created by this run). "
        f"Across all record kinds: {rec['created']:,} created, {rec['updated']:,} updated, "
        f"{rec['unchanged']:,} unchanged, {rec['merged']:,} merged into another record, "
        f"{rec['rejected']:,} rejected, {rec['deferred']:,} deferred (parent not loaded), "
        f"{rec['skipped']:,} skipped (not applicable); {rec['conflicts']:,} conflicting field values between "
        f"departments were settled by survivorship. Ledger {'balanced' if rec['balanced'] else 'NOT balanced'}.\n"
        f"Report: {rec['report']}"
    )
