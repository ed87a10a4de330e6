"""`crmmigrate`: a thin layer over the Python API with exit codes that mean something.

0 success and balanced · 1 ledger imbalance or verification failure · 2 usage, mapping or
connection error (one line; --debug adds the traceback, never changes the code) · 4 a stage (or
crmmigrate itself) crashed · 130 interrupted ·
141 the reader of stdout went away · 143 terminated (SIGTERM): as a shell reports those signals.
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import signal
import sys
import threading
import traceback
from pathlib import Path
from typing import TextIO

from crmmigrate import __version__
from crmmigrate.errors import CrmMigrateError, mask_secrets
from crmmigrate.visible import code_point, visible

EXIT_OK, EXIT_IMBALANCE, EXIT_USAGE, EXIT_STAGE, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE, EXIT_TERMINATED = \
    0, 1, 2, 4, 130, 141, 143


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 too; keep its one-line form
        self.print_usage(sys.stderr)
        raise SystemExit(f"crmmigrate: error: {message}")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"not a whole number above 0: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="crmmigrate", description="Move customer data from departmental legacy systems "
                                                     "into one CRM, and prove nothing was lost.")
    parser.add_argument("--version", action="version", version=f"crmmigrate {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    # Also after the command (`crmmigrate validate --debug`); SUPPRESS keeps an earlier --debug.
    debug = _Parser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help, parents=[debug])

    run = command("run", "run the pipeline (or some stages) through the stage notebooks")
    run.add_argument("--project", default=".", help="project folder holding crmmigrate.yml (default: .)")
    run.add_argument("--run-dir", help="run folder (default: a new one under the project's runs folder)")
    run.add_argument("--stages", help="comma-separated stages to (re-)run, e.g. merge,load,reconcile")
    run.add_argument("--target", help="SQLAlchemy URL of the CRM, without a password")
    run.add_argument("--target-env", help="environment variable holding the CRM URL (for URLs with a password)")

    validate = command("validate", "check mappings, source headers and the target; move no row")
    validate.add_argument("--project", default=".")
    validate.add_argument("--target")
    validate.add_argument("--target-env")
    validate.add_argument("--sample-rows", type=int, default=100_000, metavar="N",
                          help="records of each source scanned for picklist values the maps miss (default: 100000)")
    validate.add_argument("--map-sample", type=_positive, default=1_000, metavar="N",
                          help="records spread evenly over each source, mapped to measure what each rule refuses "
                               "(default: 1000)")
    validate.add_argument("--strict", action="store_true",
                          help="exit 2 on warnings too (an empty source, a field whose rules refuse over half its values)")

    demo = command("demo-data", "write the demo's five legacy department systems")
    demo.add_argument("--out", default="data/demo", help="folder to write (default: data/demo)")
    demo.add_argument("--people", type=int, default=500, help="true persons behind the records (default: 500)")
    demo.add_argument("--seed", type=int, default=7, help="random seed; same seed, same files (default: 7)")

    preview = command("preview", "map the first records of one mapping's sources in memory; write nothing")
    preview.add_argument("--project", default=".")
    preview.add_argument("--mapping", required=True, help="system name (e.g. sales) or path of a mapping file")
    preview.add_argument("--entity", help="only this entity (default: all the mapping's entities)")
    preview.add_argument("-n", type=int, default=500, help="records read from each source (default: 500)")
    preview.add_argument("--show", type=int, default=10, metavar="K", help="mapped rows and rejects shown (default: 10)")

    schema = command("schema", "print the JSON Schema of mapping or project files, or the reference")
    schema.add_argument("--kind", choices=["mapping", "project"], default="mapping",
                        help="which file's schema to print (default: mapping)")
    schema.add_argument("--reference", action="store_true", help="print the mapping reference (markdown) instead")
    schema.add_argument("--write", metavar="DIR", help="write both schemas and the reference into DIR (e.g. docs)")

    db = command("db", "the CRM's schema: its revision, and the upgrade to this crmmigrate's")
    db_commands = db.add_subparsers(dest="db_command", required=True, parser_class=_Parser)
    for name, help in (("upgrade", "apply the pending schema migrations (a CRM made before they existed is "
                                   "recognised by its tables and stamped first)"),
                       ("current", "print the CRM's schema revision and whether it is this crmmigrate's latest")):
        sub_db = db_commands.add_parser(name, help=help, parents=[debug])
        sub_db.add_argument("--project", default=".", help="project folder holding crmmigrate.yml (default: .)")
        sub_db.add_argument("--target", help="SQLAlchemy URL of the CRM, without a password")
        sub_db.add_argument("--target-env", help="environment variable holding the CRM URL (for URLs with a password)")

    match = command("match", "the match model a project keeps")
    match_sub = match.add_subparsers(dest="match_command", required=True, parser_class=_Parser)
    retrain = match_sub.add_parser("retrain", help="let go of the pinned match models: the next run trains anew",
                                   parents=[debug])
    retrain.add_argument("--project", default=".")

    purge = command("purge", "delete source snapshots older than the retention period")
    purge.add_argument("--project", default=".")
    purge.add_argument("--older-than", type=int, metavar="DAYS",
                       help="age in days (default: snapshot_retention_days in crmmigrate.yml)")
    purge.add_argument("--dry-run", action="store_true", help="list what would be deleted")
    return parser


def _run(args: argparse.Namespace) -> int:
    from crmmigrate.pipeline import execute, preflight, summary

    stages = [s.strip() for s in args.stages.split(",") if s.strip()] if args.stages else None
    plan = preflight(args.project, args.run_dir, stages, args.target, args.target_env)
    _print(f"crmmigrate: run folder {plan.run.path}", sys.stderr)
    meta = execute(plan)
    _print(summary(meta))
    return EXIT_OK


def _validate(args: argparse.Namespace) -> int:
    from crmmigrate.coverage import empty_sources, format_coverage, project_coverage
    from crmmigrate.pipeline import preflight
    from crmmigrate.previewing import format_refusals, sample_refusals

    plan = preflight(args.project, None, None, args.target, args.target_env)
    n = sum(len(m.entities) for m in plan.project.mappings.values())
    _print(f"OK: {len(plan.project.mappings)} mapping files, {len(plan.project.sources())} sources, "
           f"{n} entity mappings; target {plan.target.display} reachable, {plan.schema.describe()}")
    # Coverage gaps are information for the consultant, not failures: the exit code stays 0.
    report = project_coverage(plan.project, args.sample_rows)
    _print("\n".join(format_coverage(report, args.sample_rows)))
    refusals = sample_refusals(plan.project, args.map_sample)
    _print("\n".join(format_refusals(refusals, args.map_sample)))
    warnings = empty_sources(plan.project) + [w for r in refusals for w in r.warnings(plan.project.root)]
    for warning in warnings:
        _print(f"warning: {warning}")
    if warnings and args.strict:
        _print(f"crmmigrate: {len(warnings)} warning(s), and --strict makes warnings errors", sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from crmmigrate.demo import generate

    truth = generate(Path(args.out), args.people, args.seed)
    total = sum(truth["counts"].values())
    _print(f"Wrote {total:,} records in {len(truth['counts'])} sources for {args.people} people to {args.out}")
    return EXIT_OK


def _db(args: argparse.Namespace) -> int:
    from crmmigrate.spec.load import read_project
    from crmmigrate.target import check_target, resolve_target, upgrade_command, upgrade_schema

    project, _ = read_project(args.project)  # only the settings matter here; mapping problems are validate's
    target = resolve_target(project, args.target, args.target_env)
    if args.db_command == "upgrade":
        _print(f"Target {target.display}: {upgrade_schema(target).describe()}")
        return EXIT_OK
    state = check_target(target)
    _print(f"Target {target.display}: {state.describe()}")
    if state.status in ("behind", "unversioned"):
        _print(f"Run `{upgrade_command(args.project, args.target, args.target_env)}` to bring it to revision "
               f"{state.head}.")
    return EXIT_OK


def _purge(args: argparse.Namespace) -> int:
    from crmmigrate.retention import purge_snapshots
    from crmmigrate.spec.load import load_project

    purged = purge_snapshots(load_project(args.project), args.older_than, args.dry_run)
    verb = "Would delete" if args.dry_run else "Deleted"
    for p in purged:
        _print(f"{verb} {p.files} snapshot file(s), {p.bytes:,} bytes, in {p.run_dir}")
    _print(f"{verb} the snapshots of {len(purged)} run(s).")
    return EXIT_OK


def _preview(args: argparse.Namespace) -> int:
    from crmmigrate.previewing import format_preview, preview

    mapping = args.mapping
    if mapping.endswith((".yml", ".yaml")) and not Path(mapping).is_absolute():
        mapping = str(Path(args.project) / mapping)  # a file is named relative to the project, like every path
    result = preview(mapping, args.n, project=args.project, entity=args.entity)
    _print("\n".join(format_preview(result, args.show)))
    return EXIT_OK


def _schema(args: argparse.Namespace) -> int:
    from crmmigrate.spec import docs

    if args.write:
        for path in docs.write_docs(args.write):
            _print(f"Wrote {path}")
        return EXIT_OK
    sys.stdout.write(docs.reference_markdown() if args.reference else docs.schema_text(args.kind))
    return EXIT_OK


def _match(args: argparse.Namespace) -> int:
    from crmmigrate.match import retrain
    from crmmigrate.spec.load import load_project

    project = load_project(args.project)
    moved = retrain(project)
    if not moved:
        _print("No match model is pinned: the next run trains one.")
    for path in moved:
        _print(f"Unpinned; kept as {path}. The next run trains a new model (and pins it once accepted).")
    return EXIT_OK


COMMANDS = {"match": _match, "run": _run, "validate": _validate, "demo-data": _demo, "purge": _purge,
            "schema": _schema, "preview": _preview, "db": _db}


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        if isinstance(exc.code, str):
            _print(exc.code, sys.stderr)
            return EXIT_USAGE
        return EXIT_OK if exc.code in (0, None) else EXIT_USAGE
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    logging.getLogger("papermill").setLevel(logging.WARNING)  # its per-notebook INFO lines drown ours
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its set-up lines too; `db upgrade` prints from and to
    # Only the main thread may set a handler (main() may be called from another, e.g. in a server).
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        return COMMANDS[args.command](args)
    except BrokenPipeError:
        if not _stdout_gone():  # another pipe than stdout (a kernel's, a subprocess's) is an error like any other
            raise
        # The reader went away (`crmmigrate validate | head`): no traceback, and no second error when
        # Python flushes stdout at exit. 128 + SIGPIPE, as a shell reports it.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt as exc:
        _print(f"crmmigrate: {str(exc) or 'interrupted'}", sys.stderr)
        return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
    except CrmMigrateError as exc:
        _print(f"crmmigrate: {mask_secrets(str(exc))}", sys.stderr)
        if args.debug:  # the traceback as well, never another exit code: scripts read the code
            _print(mask_secrets(traceback.format_exc()).rstrip("\n"), sys.stderr)
        return exc.exit_code
    except Exception as exc:
        # A fault nothing above foresaw is not a record unaccounted for (1, Python's own exit
        # code for an uncaught exception): it is a crash, as a stage's crash is.
        _print(f"crmmigrate: internal error: {type(exc).__name__}: {mask_secrets(str(exc))}"
               f"{'' if args.debug else ' (--debug shows the traceback)'}", sys.stderr)
        if args.debug:
            _print(mask_secrets(traceback.format_exc()).rstrip("\n"), sys.stderr)
        return EXIT_STAGE
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


def terminal_text(text: str, encoding: str) -> str:
    """*text* as a console in *encoding* can show it faithfully: hidden or reordering characters,
    and those the encoding lacks (`ë` on an ASCII console), as ``<U+XXXX>``."""
    text = visible(text, keep_layout=True)
    try:
        text.encode(encoding)
        return text
    except (UnicodeEncodeError, LookupError):
        return "".join(c if _encodes(c, encoding) else code_point(c) for c in text)


def _encodes(char: str, encoding: str) -> bool:
    try:
        char.encode(encoding)
        return True
    except (UnicodeEncodeError, LookupError):
        return False


def _print(text: str, stream: TextIO | None = None) -> None:
    """A line for the terminal; data in it (names, values) can hold anything."""
    stream = stream or sys.stdout
    stream.write(terminal_text(str(text), getattr(stream, "encoding", None) or "utf-8") + "\n")


def _stdout_gone() -> bool:
    """Whether stdout is a pipe whose reader has closed it."""
    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poll.poll(0))
    except (OSError, ValueError, AttributeError):  # no file descriptor (captured), or no poll()
        return False


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's timeout, `kill`): stopped like Ctrl-C, so run.json says so."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated("terminated (SIGTERM)")


def entry() -> None:
    sys.exit(main())
