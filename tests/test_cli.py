"""CLI: usage, mapping and connection errors exit 2 with one clear line, before any kernel starts."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import papermill
import pytest

from conftest import REPO
from crmmigrate.cli import build_parser, main


def err_lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if "INFO" not in line]


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "demo-data" in capsys.readouterr().out
    assert main(["run", "--help"]) == 0
    assert "--target-env" in capsys.readouterr().out


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_every_subcommand_has_a_handler() -> None:
    from crmmigrate.cli import COMMANDS

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(sub.choices) == set(COMMANDS)


def test_broken_mapping_exits_2_naming_file_line_and_key(demo_project: tuple[Path, dict],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    project, _ = demo_project
    path = project / "mappings" / "sales.yml"
    text = path.read_text().replace("transform: [email]", "transform: [emial]")
    path.write_text(text)
    line = next(i for i, t in enumerate(text.splitlines(), start=1) if "emial" in t)
    assert main(["run", "--project", str(project)]) == 2
    lines = err_lines(capsys)
    assert lines == [f"crmmigrate: mappings/sales.yml:{line} entities[1].fields.email.transform[0]: "
                     f"unknown transform 'emial' (did you mean 'email'?); allowed: " + lines[0].split("allowed: ")[1]]
    assert not (project / "runs").exists()  # nothing started


def test_column_missing_from_the_real_source_exits_2(demo_project: tuple[Path, dict],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    project, _ = demo_project
    path = project / "mappings" / "billing.yml"
    path.write_text(path.read_text().replace("column: TAX_ID", "column: TAXID"))
    assert main(["validate", "--project", str(project)]) == 2
    assert "column 'TAXID' is not in source 'billing.customers' (did you mean 'TAX_ID'?)" in capsys.readouterr().err


def test_password_on_the_command_line_is_refused(demo_project: tuple[Path, dict],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    project, _ = demo_project
    assert main(["run", "--project", str(project), "--target", "postgresql+psycopg://ann:hunter2@db/crm"]) == 2
    err = capsys.readouterr().err
    assert "environment variable" in err and "hunter2" not in err


def test_unreachable_target_exits_2_without_the_password(demo_project: tuple[Path, dict],
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    project, _ = demo_project
    monkeypatch.setenv("CRM_URL", "postgresql+nosuchdriver://ann:hunter2@127.0.0.1:1/crm")
    assert main(["validate", "--project", str(project), "--target-env", "CRM_URL"]) == 2
    err = capsys.readouterr().err
    assert "Target postgresql+nosuchdriver://ann:***@127.0.0.1:1/crm" in err and "hunter2" not in err
    monkeypatch.setenv("CRM_URL", "sqlite:////proc/no-such-dir/crm.sqlite")
    assert main(["validate", "--project", str(project), "--target-env", "CRM_URL"]) == 2
    assert "cannot use this target" in capsys.readouterr().err
    monkeypatch.delenv("CRM_URL")
    assert main(["validate", "--project", str(project), "--target-env", "CRM_URL"]) == 2
    assert "CRM_URL is not set" in capsys.readouterr().err


def test_unknown_stage_and_missing_earlier_output_exit_2(demo_project: tuple[Path, dict],
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    project, _ = demo_project
    assert main(["run", "--project", str(project), "--stages", "mapp"]) == 2
    assert "unknown stage(s) mapp" in capsys.readouterr().err
    assert main(["run", "--project", str(project), "--stages", "merge", "--run-dir", str(project / "runs" / "x")]) == 2
    assert "no output of extract, map, match" in capsys.readouterr().err


def test_missing_project_settings_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--project", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "crmmigrate.yml: project settings file not found" in err


def test_validate_reports_ok(demo_project: tuple[Path, dict], capsys: pytest.CaptureFixture[str]) -> None:
    project, _ = demo_project
    assert main(["validate", "--project", str(project)]) == 0
    assert capsys.readouterr().out.startswith("OK: 5 mapping files, 8 sources")


def test_demo_data_command_is_deterministic(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo-data", "--out", str(tmp_path / "a"), "--people", "40", "--seed", "3"]) == 0
    assert main(["demo-data", "--out", str(tmp_path / "b"), "--people", "40", "--seed", "3"]) == 0
    for name in ("sales/contacts.csv", "support/tickets.json", "truth.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert "for 40 people" in capsys.readouterr().out


@pytest.mark.slow
def test_a_notebook_refuses_an_undeclared_parameter(demo_project: tuple[Path, dict], tmp_path: Path) -> None:
    project, _ = demo_project
    with pytest.raises(papermill.PapermillExecutionError, match="unknown parameter.*bogus"):
        papermill.execute_notebook(str(REPO / "notebooks" / "10-extract.ipynb"), str(tmp_path / "out.ipynb"),
                                   parameters={"project": str(project), "bogus": "1"}, kernel_name="python3",
                                   progress_bar=False)
    executed = json.loads((tmp_path / "out.ipynb").read_text())
    assert executed["metadata"]["papermill"]["exception"]


def test_interrupt_exits_130(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from crmmigrate import cli

    def interrupted(_args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, "validate", interrupted)
    assert main(["validate"]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_a_password_in_the_query_string_is_refused_on_the_command_line(demo_project: tuple[Path, dict],
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    project, _ = demo_project
    assert main(["validate", "--project", str(project), "--target", "postgresql+psycopg://ann@db/crm?password=hunter2"]) == 2
    err = capsys.readouterr().err
    assert "environment variable" in err and "hunter2" not in err


def test_python_dash_m_runs_the_command() -> None:
    done = subprocess.run([sys.executable, "-m", "crmmigrate", "--version"], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0 and done.stdout.startswith("crmmigrate ")


def test_a_reader_that_goes_away_ends_quietly_with_141() -> None:
    # `crmmigrate schema | head -1`: the pipe closes before the output is written.
    proc = subprocess.Popen([sys.executable, "-m", "crmmigrate", "schema"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    with proc.stderr:
        err = proc.stderr.read()
    assert proc.wait() == 141
    assert "Traceback" not in err and "BrokenPipeError" not in err


def test_debug_is_accepted_after_the_command_too(demo_project: tuple[Path, dict]) -> None:
    project, _ = demo_project
    args = build_parser().parse_args(["validate", "--project", str(project), "--debug"])
    assert args.debug is True
    assert build_parser().parse_args(["--debug", "validate"]).debug is True
    assert build_parser().parse_args(["validate"]).debug is False


def test_sigterm_during_a_run_exits_143_and_run_json_says_interrupted(demo_project: tuple[Path, dict]) -> None:
    # A scheduler's timeout sends SIGTERM; run.json must not go on saying `running`.
    project, _ = demo_project
    run_dir = project / "runs" / "stopped"
    proc = subprocess.Popen([sys.executable, "-m", "crmmigrate", "run", "--project", str(project),
                             "--run-dir", str(run_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        meta = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() else {}
        if any(s.get("status") == "running" for s in meta.get("stages", {}).values()):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    with proc.stderr:  # type: ignore[union-attr]
        err = proc.stderr.read()  # type: ignore[union-attr]
    assert proc.wait(timeout=60) == 143, err
    assert "crmmigrate: terminated (SIGTERM)" in err
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["status"] == "interrupted" and meta["finished_at"]
    # The stage that was running failed (recorded by the CLI, or first by its kernel as it was stopped);
    # between two stages, none was running, and none failed.
    stopped = [name for name, s in meta["stages"].items() if s["status"] == "failed"]
    assert len(stopped) <= 1 and all(meta["stages"][name]["error"]["type"] in ("Terminated", "KeyboardInterrupt")
                                     for name in stopped)
    assert not any(s["status"] == "running" for s in meta["stages"].values())


def test_main_runs_outside_the_main_thread(capsys: pytest.CaptureFixture[str]) -> None:
    # Only the main thread may set a signal handler; main() must not fail elsewhere.
    import threading

    codes: list[int] = []
    worker = threading.Thread(target=lambda: codes.append(main(["schema", "--kind", "project"])))
    worker.start()
    worker.join()
    assert codes == [0]


def test_a_broken_pipe_that_is_not_stdout_is_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    from crmmigrate import cli

    def kernel_gone(_args: object) -> int:
        raise BrokenPipeError("a kernel's socket")

    monkeypatch.setitem(cli.COMMANDS, "validate", kernel_gone)
    with pytest.raises(BrokenPipeError, match="kernel"):
        main(["validate"])


def test_an_error_of_the_source_met_inside_a_stage_exits_2_not_4() -> None:
    """A sheet unreadable past a row, a database failing mid-read: raised in the stage's kernel,
    reported as papermill's error name, and exiting as a source error found before a stage."""
    from crmmigrate.errors import StageFailed

    assert StageFailed("extract", "nb", "SourceError: x.xlsx: row 3", "SourceError").exit_code == 2
    assert StageFailed("map", "nb", "MappingSpecError: …", "MappingSpecError").exit_code == 2
    assert StageFailed("map", "nb", "ValueError: boom", "ValueError").exit_code == 4
    assert StageFailed("reconcile", "nb", "LedgerImbalance: …", "LedgerImbalance").exit_code == 4


@pytest.mark.parametrize("blocked", ["under-a-file", "read-only"])
def test_a_run_folder_that_cannot_be_written_exits_2_and_leaves_no_crm(demo_project: tuple[Path, dict],
                                                                       blocked: str,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    import os

    project, _ = demo_project
    if blocked == "read-only":
        if os.geteuid() == 0:
            pytest.skip("root writes into a read-only folder")
        parent = project / "locked"
        parent.mkdir()
        parent.chmod(0o555)
    else:
        parent = project / "a-file"
        parent.write_text("not a folder")
    run_dir = parent / "run"
    crm = project / "crm" / "crm.sqlite"
    for debug in ([], ["--debug"]):
        assert main([*debug, "run", "--project", str(project), "--run-dir", str(run_dir)]) == 2
        err = capsys.readouterr().err
        assert f"Run folder {run_dir}: cannot be written" in err
        assert debug or "Traceback" not in err
        assert not crm.exists()  # no CRM file made for a run that cannot start


def test_debug_keeps_the_exit_code_and_shows_the_traceback(demo_project: tuple[Path, dict],
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    project, _ = demo_project
    assert main(["--debug", "run", "--project", str(project), "--stages", "mapp"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "unknown stage(s) mapp" in err


def test_an_unforeseen_fault_exits_4_not_1(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from crmmigrate import cli

    def broken(_args: object) -> int:
        raise ValueError("boom")

    monkeypatch.setitem(cli.COMMANDS, "validate", broken)
    assert main(["validate"]) == 4
    assert err_lines(capsys) == ["crmmigrate: internal error: ValueError: boom (--debug shows the traceback)"]
    assert main(["validate", "--debug"]) == 4
    assert "Traceback" in capsys.readouterr().err


def test_a_kernel_that_dies_is_a_crash_of_its_stage(demo_project: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    project, _ = demo_project

    def dead(*_args: object, **_kw: object) -> None:
        raise RuntimeError("Kernel died before replying to kernel_info")

    monkeypatch.setattr(papermill, "execute_notebook", dead)
    run_dir = project / "runs" / "dead"
    assert main(["run", "--project", str(project), "--run-dir", str(run_dir)]) == 4
    assert "Stage `extract` failed" in capsys.readouterr().err
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["status"] == "failed" and meta["stages"]["extract"]["status"] == "failed"
