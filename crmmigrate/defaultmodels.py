"""Train the default match models on the generated demo systems and write them here.

    python -m crmmigrate.defaultmodels [--people 3000] [--seed 2026]

A project with too few records to train on (`match.<entity>.training.min_records`) is scored
by these. Re-run this when the model's comparisons or the generator change, and commit the
result: it is data, reviewed like code.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import pandas as pd

from crmmigrate.demo import generate
from crmmigrate.match.entity import match_entity
from crmmigrate.match.model import DEFAULTS
from crmmigrate.spec.model import MATCHED_ENTITIES, MatchSpec, MatchTraining

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    from crmmigrate.extract import run_extract
    from crmmigrate.map import run_map
    from crmmigrate.rundir import RunDir, read_tables
    from crmmigrate.spec import load_project

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        shutil.copy(REPO / "crmmigrate.yml", folder / "crmmigrate.yml")
        shutil.copytree(REPO / "mappings", folder / "mappings")
        generate(folder / "data" / "demo", people=args.people, seed=args.seed)
        project = load_project(folder)
        run = RunDir(folder / "runs" / "defaults")
        run_extract(run, project)
        run_map(run, project)
        mapped = run.stage_dir("map") / "mapped"
        spec = MatchSpec(unique=("tax_id",), training=MatchTraining(min_records=0))
        for entity in MATCHED_ENTITIES:
            records = read_tables(mapped / entity)
            matched = match_entity(entity, records, spec, pd.Series(0, index=records.index),
                                   addresses=read_tables(mapped / "address"), contacts=read_tables(mapped / "contact"))
            model = {**matched.model, "crmmigrate_trained_on": f"demo systems, {args.people} people, seed {args.seed}"}
            path = DEFAULTS / f"model-{entity}.json"
            path.write_text(json.dumps(model, indent=1, sort_keys=True, default=str) + "\n", encoding="utf-8")
            print(f"wrote {path}: {matched.report['records']:,} records, {matched.report['clusters']:,} clusters")


if __name__ == "__main__":
    main()
