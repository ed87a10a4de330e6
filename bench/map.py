"""Extract + map throughput and memory, side by side with the shared anchors (run on demand, never in tests).

The input is the anchor's ``dirty_contacts_N.csv``, made by ``/work/shared/anchors/gen_contacts.py``
(run unchanged, in a subprocess; it needs Faker: set ``BENCH_FAKER_PATH`` to a folder where
``pip install --target`` put it, or install Faker in the venv). Each engine runs in a fresh
subprocess; its peak RSS is that process's own ``ru_maxrss`` (``os.wait4``).

The anchor's mapping expressed as a crmmigrate mapping file:

* contact: first/last name ``trim`` + ``title``, email ``email`` (trim + lower + a validity check the
  anchor does not make), phone ``phone`` with ``default_region: US``.
* The CRM's contact has no birth date nor status, so those two land on a second entity from the same
  record, ``marketing_consent``: ``consented_on`` ← birth_date in the anchor's 5 formats, ``channel`` ←
  status through a value map. A value map has no default: codes outside it (``XX``, about 1 in 6) are
  rejected as ``unmapped_value`` instead of becoming ``'unknown'``. This costs crmmigrate a second
  entity in the map's pass (a second set of outputs, which the anchors do not write) and ~167k rejects
  per million rows, each written with every failed rule, its message and its raw record (by DuckDB:
  the SQL is sure of them).

crmmigrate writes parquet (extract: raw rows + lineage, a row hash, a zstd snapshot of the file,
a byte scan that proves DuckDB may read it; map: mapped rows and rejects); the anchors only
materialise their result in memory.

Usage::

    python bench/map.py [--rows 1000000] [--chunk-rows 20000] [--engines crmmigrate,duckdb,petl] [--repeat 5]
    python bench/map.py --memory-scaling          # crmmigrate at 1M and 3M rows, peak RSS ratio
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ANCHORS = Path(os.environ.get("ANCHORS_DIR", "/work/shared/anchors"))
DATA = Path(os.environ.get("ANCHOR_DATA", "/tmp/anchor_data"))
ROOT = Path(__file__).resolve().parent.parent

STATUS = {"AC": "active", "IN": "inactive", "PR": "prospect", "LD": "lead", "CL": "closed"}
DATE_FORMATS = ["%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y", "%Y%m%d", "%d %b %Y"]


def mapping_yaml(csv_path: Path) -> str:
    """The anchor's contact mapping as a crmmigrate mapping file."""
    status = ", ".join(f"{k}: {v}" for k, v in STATUS.items())
    formats = ", ".join(f"'{f}'" for f in DATE_FORMATS)
    return f"""\
spec_version: 1
kind: mapping
system: legacy
department: sales
default_region: US
sources:
  contacts:
    format: csv
    path: {csv_path}
    key: [id]
entities:
  - entity: contact
    from: contacts
    fields:
      first_name: {{column: first_name, transform: [trim, title]}}
      last_name: {{column: last_name, transform: [trim, title]}}
      email: {{column: email, transform: [email]}}
      phone: {{column: phone, transform: [phone]}}
  - entity: marketing_consent
    from: contacts
    links: {{contact: self}}
    fields:
      channel: {{column: status, map: {{{status}}}}}
      opted_in: {{constant: true}}
      consented_on: {{column: birth_date, formats: [{formats}]}}
"""


def make_project(folder: Path, csv_path: Path, chunk_rows: int) -> Path:
    (folder / "mappings").mkdir(parents=True, exist_ok=True)
    (folder / "crmmigrate.yml").write_text(
        f"spec_version: 1\nkind: project\nname: bench\nchunk_rows: {chunk_rows}\n", encoding="utf-8")
    (folder / "mappings" / "legacy.yml").write_text(mapping_yaml(csv_path), encoding="utf-8")
    return folder


def run_crmmigrate(csv_path: Path, chunk_rows: int) -> tuple[int, str]:
    """Extract + map into a fresh run folder; returns (records in, a summary of the counts)."""
    sys.path.insert(0, str(ROOT))
    from crmmigrate.extract import run_extract
    from crmmigrate.map import run_map
    from crmmigrate.rundir import RunDir
    from crmmigrate.spec import load_project

    with tempfile.TemporaryDirectory(prefix="bench_map_") as tmp:
        project = load_project(make_project(Path(tmp) / "project", csv_path, chunk_rows))
        run = RunDir(Path(tmp) / "run")
        # CPU seconds beside wall seconds: on a 2-core machine the stages are CPU-bound, and CPU
        # time is what a change saves even when the wall time hides it in the noise.
        t0, c0 = time.perf_counter(), _cpu()
        extract = run_extract(run, project)
        t1, c1 = time.perf_counter(), _cpu()
        mapped = run_map(run, project)
        t2, c2 = time.perf_counter(), _cpu()
        per = mapped.counts["by_source_entity"]
        summary = " ".join(f"{k}:mapped={v['mapped']},rejected={v['rejects']}" for k, v in per.items())
        return int(extract.counts["records_in"]), (
            f"extract_s={t1 - t0:.2f} extract_cpu_s={c1 - c0:.2f} map_s={t2 - t1:.2f} map_cpu_s={c2 - c1:.2f} "
            f"extract_rejected={extract.counts['rejected']} {summary}")


def _cpu() -> float:
    """CPU seconds of this process, every thread."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_engine(engine: str, csv_path: Path, chunk_rows: int) -> None:
    """One engine in this process; prints a RESULT line (seconds after the imports, like the anchors')."""
    sys.path[:0] = [str(ROOT), str(ANCHORS)]
    # Imports are not part of the measured work; each process imports only its own engine.
    if engine == "crmmigrate":
        import crmmigrate.extract  # noqa: F401
        import crmmigrate.map  # noqa: F401
    else:
        __import__(engine)
    t0 = time.perf_counter()
    if engine == "crmmigrate":
        rows, extra = run_crmmigrate(csv_path, chunk_rows)
    else:
        sys.path.insert(0, str(ANCHORS))
        import transform  # the anchor's own engines, unchanged

        rows, bad = {"duckdb": transform.run_duckdb, "petl": transform.run_petl}[engine](str(csv_path))
        extra = f"unparsed_dates={bad}"
    secs = time.perf_counter() - t0
    print(f"RESULT {engine} rows={rows} secs={secs:.2f} {extra}", flush=True)


def measure(engine: str, csv_path: Path, chunk_rows: int) -> dict[str, float | str]:
    """Run *engine* in a fresh subprocess: its in-process seconds, wall seconds and own peak RSS."""
    cmd = [sys.executable, __file__, "--engine", engine, "--csv", str(csv_path), "--chunk-rows", str(chunk_rows)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"bench/map.py: engine {engine} failed with exit code {proc.returncode}")
    line = next(x for x in out.splitlines() if x.startswith("RESULT"))
    rows = int(re.search(r"rows=(\d+)", line).group(1))  # type: ignore[union-attr]
    secs = float(re.search(r"secs=([\d.]+)", line).group(1))  # type: ignore[union-attr]
    return {"engine": engine, "rows": rows, "secs": secs, "wall": wall, "rss_mb": usage.ru_maxrss / 1024,
            "line": line}


def ensure_input(rows: int) -> Path:
    path = DATA / f"dirty_contacts_{rows}.csv"
    if path.exists():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "ANCHOR_DATA": str(DATA)}
    if faker := os.environ.get("BENCH_FAKER_PATH"):
        env["PYTHONPATH"] = os.pathsep.join([faker, env.get("PYTHONPATH", "")])
    print(f"# generating {path} with {ANCHORS / 'gen_contacts.py'}", flush=True)
    subprocess.run([sys.executable, "gen_contacts.py", str(rows)], cwd=ANCHORS, env=env, check=True)
    return path


def report(results: list[dict[str, float | str]]) -> None:
    for r in results:
        print(f"{r['engine']:<11} rows={r['rows']:>9,} secs={r['secs']:6.2f} "
              f"rows_per_s={_rows_per_s(r):>10,.0f} wall_s={r['wall']:6.2f} peak_rss_mb={r['rss_mb']:6.0f}")
        print(f"    {r['line']}")
    ours = next((r for r in results if r["engine"] == "crmmigrate"), None)
    for other in (r for r in results if r["engine"] != "crmmigrate"):
        if ours is not None:
            ratio = _rows_per_s(ours) / _rows_per_s(other)
            print(f"RATIO crmmigrate/{other['engine']} throughput={ratio:.2f}x "
                  f"rss={ours['rss_mb'] / other['rss_mb']:.2f}x")  # type: ignore[operator]
            # The headline above is extract + map: from the same CSV the anchors read. The map stage
            # alone (reading the extract's parquet) is printed apart, never instead of it.
            map_s = float(re.search(r"map_s=([\d.]+)", str(ours["line"])).group(1))  # type: ignore[union-attr]
            ratio = (float(ours["rows"]) / map_s) / _rows_per_s(other)
            print(f"    map stage alone: rows_per_s={ours['rows'] / map_s:,.0f} "  # type: ignore[operator]
                  f"throughput={ratio:.2f}x {other['engine']} (whose figure includes its CSV parse)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--chunk-rows", type=int, default=20_000)
    ap.add_argument("--engines", default="crmmigrate,duckdb,petl")
    ap.add_argument("--memory-scaling", action="store_true", help="crmmigrate at 1M and 3M rows")
    ap.add_argument("--repeat", type=int, default=1,
                    help="rounds of every engine, one after the other; then each ratio's median and range "
                         "(a shared machine's speed drifts by 10-30%% within minutes)")
    ap.add_argument("--engine", help=argparse.SUPPRESS)  # internal: run one engine in this process
    ap.add_argument("--csv", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.engine:
        run_engine(a.engine, a.csv, a.chunk_rows)
        return
    if a.memory_scaling:
        small, large = (measure("crmmigrate", ensure_input(n), a.chunk_rows) for n in (1_000_000, 3_000_000))
        report([small, large])
        print(f"RESULT memory_scaling peak_rss_1M_mb={small['rss_mb']:.0f} peak_rss_3M_mb={large['rss_mb']:.0f} "
              f"ratio={large['rss_mb'] / small['rss_mb']:.2f} (target <= 1.25)")  # type: ignore[operator]
        return
    csv_path = ensure_input(a.rows)
    rounds = []
    for _ in range(a.repeat):
        rounds.append([measure(e, csv_path, a.chunk_rows) for e in a.engines.split(",")])
        report(rounds[-1])
    if len(rounds) > 1:
        summarize(rounds)


def summarize(rounds: list[list[dict[str, float | str]]]) -> None:
    """Each ratio's median and range over rounds: an engine is compared with the one measured
    next to it, not with an average taken while the machine ran at another speed."""
    for other in (r["engine"] for r in rounds[0] if r["engine"] != "crmmigrate"):
        ratios = sorted(_rows_per_s(_engine(rnd, "crmmigrate")) / _rows_per_s(_engine(rnd, str(other))) for rnd in rounds)
        print(f"SUMMARY crmmigrate/{other} throughput median={statistics.median(ratios):.2f}x "
              f"range={ratios[0]:.2f}-{ratios[-1]:.2f}x over {len(ratios)} rounds")


def _engine(results: list[dict[str, float | str]], engine: str) -> dict[str, float | str]:
    return next(r for r in results if r["engine"] == engine)


def _rows_per_s(result: dict[str, float | str]) -> float:
    return float(result["rows"]) / float(result["secs"])


if __name__ == "__main__":
    main()
