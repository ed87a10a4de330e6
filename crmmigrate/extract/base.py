"""What every reader yields, and the small helpers they share."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from crmmigrate.spec.reasons import ReasonCode


@dataclass
class RawRecord:
    row_number: int
    values: list[str | None] | None  # in header order; None when unreadable
    raw: str
    reason: ReasonCode | None = None
    message: str = ""


class Reader:
    header: list[str]

    def records(self) -> Iterator[RawRecord]:
        raise NotImplementedError

    def count_records(self) -> int:
        raise NotImplementedError


def unique_header(names: list[str]) -> list[str]:
    """Keep duplicate column names addressable: the second `NAME` becomes `NAME~2`."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        name = name.strip()
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}~{seen[name]}")
    return out


def as_text(value: Any) -> str | None:
    """A native value as the text a person would have typed."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)
