"""Shared fixtures: small demo projects built deterministically in tmp folders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from crmmigrate.demo import generate

REPO = Path(__file__).resolve().parent.parent
DEMO_PEOPLE, DEMO_SEED = 60, 11


def make_project(folder: Path, people: int = DEMO_PEOPLE, seed: int = DEMO_SEED) -> dict:
    """A copy of the demo project (settings + mappings) with freshly generated legacy data."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "crmmigrate.yml", folder / "crmmigrate.yml")
    shutil.copytree(REPO / "mappings", folder / "mappings")
    return generate(folder / "data" / "demo", people=people, seed=seed)


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("demo-template")
    truth = make_project(folder)
    return folder, truth


@pytest.fixture
def demo_project(demo_template: tuple[Path, dict], tmp_path: Path) -> tuple[Path, dict]:
    """A fresh copy of the small demo project (its own CRM, its own runs)."""
    source, truth = demo_template
    target = tmp_path / "project"
    shutil.copytree(source, target)
    return target, json.loads(json.dumps(truth))
