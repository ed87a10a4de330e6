"""Snapshots hold personal data: `crmmigrate purge` removes old ones and keeps the rest of the run."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from crmmigrate.cli import main
from crmmigrate.extract import run_extract
from crmmigrate.rundir import RunDir
from crmmigrate.spec import load_project


def make_run(project_dir: Path, name: str, started: str) -> Path:
    run = RunDir(project_dir / "runs" / name)
    run_extract(run, load_project(project_dir))
    run.update_meta(started_at=started)
    return run.path


def test_purge_deletes_only_old_snapshots(demo_project: tuple[Path, dict], capsys: pytest.CaptureFixture[str]) -> None:
    project, _ = demo_project
    old = make_run(project, "old", "2026-01-01T00:00:00+00:00")
    new = make_run(project, "new", dt.datetime.now(dt.timezone.utc).isoformat())
    assert main(["purge", "--project", str(project), "--older-than", "30", "--dry-run"]) == 0
    assert (old / "extract" / "snapshots").exists()
    assert "Would delete 8 snapshot file(s)" in capsys.readouterr().out
    assert main(["purge", "--project", str(project), "--older-than", "30"]) == 0
    assert not (old / "extract" / "snapshots").exists()
    assert (old / "extract" / "sources.parquet").exists()
    assert json.loads((old / "run.json").read_text())["snapshots_purged_at"]
    assert len(list((new / "extract" / "snapshots").iterdir())) == 8


def test_purge_needs_a_retention_period(demo_project: tuple[Path, dict], capsys: pytest.CaptureFixture[str]) -> None:
    project, _ = demo_project
    assert main(["purge", "--project", str(project)]) == 2
    assert "--older-than DAYS" in capsys.readouterr().err
    settings = project / "crmmigrate.yml"
    settings.write_text(settings.read_text() + "snapshot_retention_days: 0\n")
    make_run(project, "r", "2026-01-01T00:00:00+00:00")
    assert main(["purge", "--project", str(project)]) == 0


def test_a_negative_age_is_refused(demo_project: tuple[Path, dict], capsys: pytest.CaptureFixture[str]) -> None:
    project, _ = demo_project
    make_run(project, "r", "2026-01-01T00:00:00+00:00")
    assert main(["purge", "--project", str(project), "--older-than", "-5", "--dry-run"]) == 2
    assert "--older-than must be 0 or more days (got -5)" in capsys.readouterr().err
    assert (project / "runs" / "r" / "extract" / "snapshots").exists()
