"""docs/tutorial.md, executed: its files are written, its commands run, its outputs checked.

Fenced blocks are tagged in their info string: ``sh tutorial`` (commands; ``slow`` too for the
full pipeline), ``<lang> file=PATH`` (write the file), ``<lang> edit=PATH line=N`` (replace line
N), and ``text exit=N`` (the previous command's exit code, and lines its output contains in
this order; each shown line is a prefix of an output line).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from crmmigrate.cli import main

TUTORIAL = Path(__file__).resolve().parent.parent / "docs" / "tutorial.md"
FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```$", re.M | re.S)


@dataclass
class Block:
    lang: str
    tags: set[str]
    options: dict[str, str]
    body: str
    line: int  # where the block starts in the tutorial, for failure messages
    slow: bool = False


@dataclass
class Session:
    outputs: list[tuple[str, int, str]] = field(default_factory=list)  # command, exit code, output


def blocks(text: str) -> list[Block]:
    found = []
    for m in FENCE.finditer(text):
        lang, *words = m["info"].split()
        options = dict(w.split("=", 1) for w in words if "=" in w)
        found.append(Block(lang, {w for w in words if "=" not in w}, options, m["body"],
                           text.count("\n", 0, m.start()) + 1))
    slow = False
    for b in found:  # an expected output belongs to its command, slow or not
        slow = "slow" in b.tags if "tutorial" in b.tags else slow
        b.slow = slow if "exit" in b.options or "tutorial" in b.tags else False
    return found


def run_commands(block: Block, session: Session, monkeypatch: pytest.MonkeyPatch,
                 capsys: pytest.CaptureFixture[str]) -> None:
    for command in filter(None, (c.strip() for c in block.body.splitlines())):
        argv = shlex.split(command)
        if argv[0] == "cd":
            monkeypatch.chdir(argv[1])
        elif argv[:2] == ["mkdir", "-p"]:
            for folder in argv[2:]:
                Path(folder).mkdir(parents=True, exist_ok=True)
        elif argv[0] == "crmmigrate":
            code = main(argv[1:])
            captured = capsys.readouterr()
            session.outputs.append((command, code, captured.out + captured.err))
        else:
            pytest.fail(f"tutorial.md:{block.line}: the test cannot run `{command}`; use mkdir -p, cd or crmmigrate")


def _shows(line: str, wanted: str) -> bool:
    """The tutorial shows an output line whole, or its start followed by `…`."""
    return line.startswith(wanted[:-1]) if wanted.endswith("…") else line.rstrip() == wanted.rstrip()


def check_output(block: Block, session: Session) -> None:
    assert session.outputs, f"tutorial.md:{block.line}: expected output with no command before it"
    command, code, output = session.outputs[-1]
    where = f"tutorial.md:{block.line} (`{command}`)"
    assert code == int(block.options["exit"]), f"{where}: exit {code}, expected {block.options['exit']}\n{output}"
    lines = output.splitlines()
    at = 0
    for wanted in filter(None, block.body.splitlines()):
        hit = next((i for i in range(at, len(lines)) if _shows(lines[i], wanted)), None)
        assert hit is not None, f"{where}: no line {wanted!r} after line {at} of the output:\n{output}"
        at = hit + 1


def apply(block: Block, session: Session, monkeypatch: pytest.MonkeyPatch,
          capsys: pytest.CaptureFixture[str]) -> None:
    if "tutorial" in block.tags:
        run_commands(block, session, monkeypatch, capsys)
    elif "file" in block.options:
        path = Path(block.options["file"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(block.body, encoding="utf-8")
    elif "edit" in block.options:
        path, n = Path(block.options["edit"]), int(block.options["line"])
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        lines[n - 1:n] = block.body.splitlines(keepends=True)
        path.write_text("".join(lines), encoding="utf-8")
    elif "exit" in block.options:
        check_output(block, session)


def walk(include_slow: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
         capsys: pytest.CaptureFixture[str]) -> Session:
    monkeypatch.chdir(tmp_path)
    session = Session()
    for block in blocks(TUTORIAL.read_text(encoding="utf-8")):
        if include_slow or not block.slow:
            apply(block, session, monkeypatch, capsys)
    return session


def test_the_tutorial_is_tagged_so_this_test_sees_it() -> None:
    found = blocks(TUTORIAL.read_text(encoding="utf-8"))
    assert sum("tutorial" in b.tags for b in found) >= 5
    assert sum("exit" in b.options for b in found) >= 4
    assert [b.body.strip() for b in found if b.slow and "tutorial" in b.tags] == ["crmmigrate run --project ."]


def test_tutorial_up_to_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    session = walk(False, tmp_path, monkeypatch, capsys)
    assert [code for _, code, _ in session.outputs] == [0, 2, 0, 0]
    assert not (tmp_path / "acme" / "runs").exists()  # validate and preview write nothing


@pytest.mark.slow
def test_tutorial_to_the_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    session = walk(True, tmp_path, monkeypatch, capsys)
    assert session.outputs[-1][:2] == ("crmmigrate run --project .", 0)
    assert list((tmp_path / "acme" / "runs").glob("*/reconcile/report.html"))
