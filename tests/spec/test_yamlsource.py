"""YAML with places: 1-based lines per key path, strings kept as written, no constructors run."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmmigrate.spec.yamlsource import format_path, load_yaml


def load(tmp_path: Path, text: str):
    path = tmp_path / "f.yml"
    path.write_text(text, encoding="utf-8")
    return load_yaml(path, "f.yml")


def test_lines_are_one_based_per_key_path(tmp_path: Path) -> None:
    doc = load(tmp_path, "a: 1\nb:\n  c: [x, y]\n  d:\n    - e: 2\n")
    assert doc.problems == []
    assert doc.data == {"a": 1, "b": {"c": ["x", "y"], "d": [{"e": 2}]}}
    assert doc.lines[("a",)] == 1
    assert doc.lines[("b", "c")] == 3
    assert doc.lines[("b", "d", 0)] == 5
    assert doc.lines[("b", "d", 0, "e")] == 5


def test_line_of_falls_back_to_the_nearest_ancestor(tmp_path: Path) -> None:
    doc = load(tmp_path, "a: 1\nb:\n  c: 2\n")
    assert doc.line_of(("b", "c", "missing", 3)) == 3
    assert doc.line_of(("nothing",)) == 1
    assert str(doc.problem(("b", "c", "z"), "bad")) == "f.yml:3 b.c.z: bad"


@pytest.mark.parametrize(("text", "expected"), [
    ("v: 2024-01-31", "2024-01-31"),
    ("v: 2024-01-31 10:00:00", "2024-01-31 10:00:00"),
    ("v: '%Y-%m-%d'", "%Y-%m-%d"),
    ("v: '01067'", "01067"),
    ("v: 01067", "01067"),   # YAML 1.1 reads this as octal 583; a postcode must stay as written
    ("v: 0x1F", 31),
    ("v: 1_000", 1000),
    ("v: 1.5", 1.5),
    ("v: 'yes'", "yes"),
    ("v: yes", True),
    ("v: Off", False),
    ("v: ~", None),
    ("v: null", None),
    ("v: Jürgen", "Jürgen"),
])
def test_scalars(tmp_path: Path, text: str, expected: object) -> None:
    doc = load(tmp_path, text + "\n")
    assert doc.problems == []
    assert doc.data["v"] == expected
    assert type(doc.data["v"]) is type(expected)


def test_tags_are_never_constructed(tmp_path: Path) -> None:
    doc = load(tmp_path, "v: !!python/object/apply:os.system ['echo hi']\n")
    assert doc.problems == []
    assert doc.data == {"v": ["echo hi"]}  # the tag is ignored: plain data, nothing called


def test_duplicate_keys_are_problems_with_both_lines(tmp_path: Path) -> None:
    doc = load(tmp_path, "a: 1\nb:\n  c: 2\n  c: 3\na: 4\n")
    assert [str(p) for p in doc.problems] == [
        "f.yml:4 b.c: duplicate key (first defined on line 3)",
        "f.yml:5 a: duplicate key (first defined on line 1)",
    ]
    assert doc.data == {"a": 1, "b": {"c": 2}}  # first wins, and the problem is reported


def test_syntax_error_line_is_one_based(tmp_path: Path) -> None:
    doc = load(tmp_path, "a: 1\nb: [1, 2\nc: 3\n")
    (problem,) = doc.problems
    assert problem.file == "f.yml"
    assert problem.message.startswith("YAML syntax error: ")
    import yaml

    with pytest.raises(yaml.MarkedYAMLError) as info:
        yaml.safe_load("a: 1\nb: [1, 2\nc: 3\n")
    # Zero-based, PyYAML's mark is line 2 (`c`, where it finds the bracket open); the bracket opens on line 2.
    assert info.value.problem_mark.line == 2 and problem.line == 2


def test_empty_and_unreadable_files(tmp_path: Path) -> None:
    assert [str(p) for p in load(tmp_path, "").problems] == ["f.yml:1: file is empty"]
    bad = tmp_path / "bad.yml"
    bad.write_bytes(b"a: \xff\n")
    (problem,) = load_yaml(bad, "bad.yml").problems
    assert problem.message.startswith("cannot read file:")
    (problem,) = load_yaml(tmp_path / "missing.yml", "missing.yml").problems
    assert problem.message.startswith("cannot read file:")


def test_format_path() -> None:
    assert format_path(()) == ""
    assert format_path(("entities", 0, "fields", "email", "transform", 2)) == "entities[0].fields.email.transform[2]"


@pytest.mark.parametrize(("text", "line"), [
    ("a: 1\nb\nc: 3\n", 2),  # no `:` after b: PyYAML finds it out on line 3
    ("a: 1\nb: [1, 2\nc: 3\n", 2),  # a flow sequence left open
    ("a: 1\nb: {x: 1,\n    y: 2\n    z: 3}\nc: 3\n", 3),  # the comma missing at the end of line 3
    ("a: 1\nb: \"abc\nc: 3\n", 2),  # a quote left open
    ("a: 1\n\n# note\nb: [1\n\n", 4),  # blank and comment lines are never the wrong one
])
def test_a_syntax_error_points_at_the_wrong_line(tmp_path: Path, text: str, line: int) -> None:
    (problem,) = load(tmp_path, text).problems
    assert problem.message.startswith("YAML syntax error: ")
    assert problem.line == line, problem


@pytest.mark.parametrize(("text", "line"), [
    ("a:\n  b: 1\n c: 2\n", 3),  # an indentation error is where PyYAML says
    ("a: 1\nb:\n\tc: 2\n", 3),  # a tab too
    ("a: 1\nb: c: d\ne: 2\n", 2),
])
def test_a_syntax_error_found_on_its_own_line_stays_there(tmp_path: Path, text: str, line: int) -> None:
    (problem,) = load(tmp_path, text).problems
    assert problem.line == line, problem
