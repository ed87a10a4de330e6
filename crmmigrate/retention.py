"""Retention of source snapshots: they are exact copies of legacy data, personal data included,
so they are kept only as long as the project says."""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

from crmmigrate.errors import SettingsError
from crmmigrate.rundir import RunDir, utc_now
from crmmigrate.spec.load import Project


@dataclass
class Purged:
    run_dir: Path
    files: int
    bytes: int


def _started(run: RunDir) -> dt.datetime:
    started = run.read_meta().get("started_at")
    if started:
        return dt.datetime.fromisoformat(started)
    return dt.datetime.fromtimestamp(run.run_json.stat().st_mtime, dt.timezone.utc)


def purge_snapshots(project: Project, older_than_days: int | None = None, dry_run: bool = False,
                    now: dt.datetime | None = None) -> list[Purged]:
    """Delete the snapshots of runs that started more than *older_than_days* ago.

    Defaults to the project's ``snapshot_retention_days``. The rest of each run folder (ledger,
    report) stays; ``run.json`` records when its snapshots were purged.
    """
    days = older_than_days if older_than_days is not None else project.spec.snapshot_retention_days
    if days is None:
        raise SettingsError("purge: give --older-than DAYS or set `snapshot_retention_days` in crmmigrate.yml")
    if days < 0:  # a cutoff in the future would select every run, including today's
        raise SettingsError(f"purge: --older-than must be 0 or more days (got {days})")
    cutoff = (now or dt.datetime.now(dt.timezone.utc)) - dt.timedelta(days=days)
    purged = []
    runs = sorted(p for p in project.runs_dir.glob("*") if (p / "run.json").exists()) if project.runs_dir.exists() else []
    for folder in runs:
        run = RunDir(folder)
        snapshots = folder / "extract" / "snapshots"
        if not snapshots.exists() or _started(run) >= cutoff:
            continue
        files = [p for p in snapshots.rglob("*") if p.is_file()]
        purged.append(Purged(folder, len(files), sum(p.stat().st_size for p in files)))
        if not dry_run:
            shutil.rmtree(snapshots)
            run.update_meta(snapshots_purged_at=utc_now())
    return purged
