"""The import boundaries in pyproject.toml hold: stages never import each other."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import REPO


def test_import_contracts_hold() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([str(lint)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 2 kept, 0 broken." in done.stdout


def test_importing_the_package_has_no_side_effects() -> None:
    code = ("import logging, crmmigrate, crmmigrate.cli, crmmigrate.pipeline; "
            "assert not logging.getLogger().handlers and not logging.getLogger('crmmigrate').handlers")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=60)
