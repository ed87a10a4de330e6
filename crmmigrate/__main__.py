"""`python -m crmmigrate`: the `crmmigrate` command, for a venv whose scripts are not on PATH."""

from crmmigrate.cli import entry

entry()
