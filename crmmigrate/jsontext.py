"""JSON text exactly as DuckDB's `to_json` writes it, for values computed on either side.

A reject's raw record (map) is written by DuckDB on the fast route and by Python on the
per-record one; both must give the same bytes. DuckDB writes compact
separators, non-ASCII as is, and control characters as upper-case ``\\u`` escapes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

_ESCAPED = re.compile(r'[\x00-\x1f\\"]')
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def json_string(text: str) -> str:
    return '"' + _ESCAPED.sub(lambda m: _ESCAPES.get(m.group(), f"\\u{ord(m.group()):04X}"), text) + '"'


def json_objects(columns: Sequence[str], rows: Iterable[Sequence[str | None]]) -> list[str]:
    """`to_json(struct_pack(...))` of text rows: one object per row, keys in *columns* order."""
    keys = [json_string(c) + ":" for c in columns]
    return ["{" + ",".join(k + ("null" if v is None else json_string(v)) for k, v in zip(keys, row)) + "}"
            for row in rows]
