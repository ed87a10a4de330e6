"""YAML loading that remembers where every key came from.

PyYAML marks are zero-based; every line we report is 1-based. Dates stay strings (a
mapping's ``formats: ['%Y-%m-%d']`` must not turn into a ``date``), duplicate keys are
errors rather than last-one-wins, and nothing is ever constructed from a tag.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from crmmigrate.errors import SpecProblem

KeyPath = tuple[str | int, ...]

_BOOL = {"true": True, "false": False, "yes": True, "no": False, "on": True, "off": False}


@dataclass
class YamlDoc:
    file: str
    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)
    problems: list[SpecProblem] = field(default_factory=list)
    refused: list[KeyPath] = field(default_factory=list)  # keys the schema refused, left out to check the rest

    def line_of(self, path: KeyPath) -> int | None:
        """The 1-based line of *path*, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)

    def problem(self, path: KeyPath, message: str) -> SpecProblem:
        return SpecProblem(self.file, self.line_of(path), format_path(path), message)


def format_path(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_yaml(path: Path, display_name: str | None = None) -> YamlDoc:
    """Parse *path*; syntax errors become problems with a 1-based line, not exceptions."""
    name = display_name or str(path)
    doc = YamlDoc(name, None)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        doc.problems.append(SpecProblem(name, None, "", f"cannot read file: {exc}"))
        return doc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        doc.problems.append(SpecProblem(name, _syntax_error_line(exc, text), "", f"YAML syntax error: {exc.problem}"))
        return doc
    if node is None:
        doc.problems.append(SpecProblem(name, 1, "", "file is empty"))
        return doc
    doc.data = _build(node, (), doc)
    return doc


# Errors PyYAML only finds out at the next token, which may be lines later: a key without `:`, a
# quote or a bracket left open. The line that is wrong is where the key or quote starts, or, in a
# bracket, the last line with text before the token (a missing `,` or closing bracket ends it).
_STARTED_AT = ("while scanning a simple key", "while scanning a quoted scalar")
_OPEN_BRACKET = ("while parsing a flow mapping", "while parsing a flow sequence")


def _syntax_error_line(exc: yaml.MarkedYAMLError, text: str) -> int | None:
    """The 1-based line of the mistake behind *exc*."""
    mark, context = exc.problem_mark, exc.context_mark
    if mark is None:
        return None
    if context is not None and exc.context in _STARTED_AT:
        return context.line + 1
    if (context is not None and exc.context in _OPEN_BRACKET and context.line < mark.line) or \
            exc.problem == "found unexpected end of stream":
        before = text.splitlines()[:mark.line]
        written = [i for i, line in enumerate(before, start=1) if line.strip() and not line.lstrip().startswith("#")]
        if written:
            return written[-1]
    return mark.line + 1


def _build(node: yaml.Node, path: KeyPath, doc: YamlDoc) -> Any:
    doc.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(_scalar(key_node)) if isinstance(key_node, yaml.ScalarNode) else "?"
            child = (*path, key)
            if key in out:
                doc.problems.append(
                    SpecProblem(doc.file, key_node.start_mark.line + 1, format_path(child),
                                f"duplicate key (first defined on line {doc.lines[child]})")
                )
                continue
            doc.lines[child] = key_node.start_mark.line + 1
            out[key] = _build(value_node, child, doc)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), doc) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.ScalarNode) -> Any:
    value = node.value
    if node.style:  # quoted: always a string
        return value
    tag = node.tag.rsplit(":", 1)[-1]
    if tag == "null":
        return None
    if tag == "bool":
        return _BOOL[value.lower()]
    if tag == "int":
        try:
            return int(value.replace("_", ""), 0)
        except ValueError:
            return value
    if tag == "float":
        try:
            return float(value.replace("_", ""))
        except ValueError:
            return value
    return value  # str, timestamp (kept as text), anything else
