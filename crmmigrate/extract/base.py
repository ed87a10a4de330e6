"""What every reader yields, and the small helpers they share."""

from __future__ import annotations

import datetime as dt
import decimal
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from crmmigrate.schemas import EXTRACT_REJECTS, LINEAGE_NAMES
from crmmigrate.spec.reasons import ReasonCode


@dataclass
class RawRecord:
    row_number: int
    values: list[str | None] | None  # in header order; None when unreadable
    raw: str
    reason: ReasonCode | None = None
    message: str = ""


class RejectWriter:
    """`extract/rejects/<source>.parquet`, written *rows* at a time: a file of a million bad lines
    is not held in memory (100,000 rejected 2 KB lines took 829 MB when it was)."""

    def __init__(self, path: Path, rows: int):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.writer = pq.ParquetWriter(path, EXTRACT_REJECTS, compression="zstd")
        self.rows, self.pending = rows, []
        self.count = 0

    def add(self, reject: dict[str, object]) -> None:
        self.pending.append(reject)
        self.count += 1
        if len(self.pending) >= self.rows:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.writer.write_table(pa.Table.from_pylist(self.pending, schema=EXTRACT_REJECTS))
            self.pending = []

    def close(self) -> None:
        self.flush()
        self.writer.close()


class Reader:
    header: list[str]
    #: Where the records come from, fit for run.json and messages: a path or a masked URL.
    location: str = ""

    def records(self) -> Iterator[RawRecord]:
        raise NotImplementedError

    def count_records(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the reader holds open (an engine's pool, a workbook)."""
        for attr in ("engine", "book"):
            held = getattr(self, attr, None)
            if held is not None:
                (held.dispose if attr == "engine" else held.close)()


def unique_header(names: list[str]) -> list[str]:
    """Keep duplicate column names addressable: the second `NAME` becomes `NAME~2`. A column named
    like a lineage column (`_source_key`) is renamed the same way, and a made-up name never takes
    one a real column has (`a~2, a, a` gives `a~2, a, a~3`). A blank name becomes `column_N`
    (its 1-based position), as a spreadsheet shows it: no SQL or mapping can name an empty one;
    made up too, it never takes a real column's name (`id, "", column_2` gives `column_2~2`)."""
    raw = [name.strip() for name in names]
    avoid = set(raw) | set(LINEAGE_NAMES)
    taken: set[str] = set()
    out = []
    for i, name in enumerate(raw):
        made_up = not name
        name = name or f"column_{i + 1}"
        if name in taken or name in LINEAGE_NAMES or (made_up and name in avoid):
            name = next(f"{name}~{k}" for k in itertools.count(2) if f"{name}~{k}" not in taken | avoid)
        taken.add(name)
        out.append(name)
    return out


def as_text(value: Any) -> str | None:
    """A native value as the text a person would have typed.

    Parameters
    ----------
    value
        A value from a driver or parser: text, number, date, bytes, a JSON object or array.

    Returns
    -------
    str or None
        ``None`` for a missing value. Whole floats lose their ``.0`` (a spreadsheet's
        ``800.0`` was typed as ``800``); decimals keep their exact digits (``12.50``) and never
        use an exponent; naive datetimes at midnight are dates; aware datetimes are ISO text in
        UTC, so the same instant reads the same whatever the server's session time zone.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        # Past 1e21 a float's exact value has digits nobody wrote (1e300 has 301 of them).
        return str(int(value))
    if isinstance(value, decimal.Decimal):
        # Positional digits, except for an absurd exponent (`1e999999999` in a JSON file
        # would otherwise become a gigabyte of zeros).
        return format(value, "f") if not value.is_finite() or -100 <= value.adjusted() <= 100 else str(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            return value.astimezone(dt.timezone.utc).isoformat()
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (dict, list, tuple)):
        return json_text(value, sort_keys=True)
    return str(value)


def json_text(value: Any, sort_keys: bool = False) -> str:
    """*value* as JSON text; decimals are written as the exact numbers they hold.

    ``json.dumps`` cannot write a ``Decimal`` as a number (only as a string or a rounded
    float), and the JSON reader keeps numbers as decimals so that ``0.1`` or a 20-digit
    account number survive. Raises ``RecursionError`` for absurdly deep nesting: callers
    turn that into a reject.
    """
    if isinstance(value, dict):
        items = sorted(value.items()) if sort_keys else value.items()
        return "{" + ", ".join(f"{json.dumps(str(k), ensure_ascii=False)}: {json_text(v, sort_keys)}"
                               for k, v in items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(json_text(v, sort_keys) for v in value) + "]"
    if isinstance(value, decimal.Decimal):
        return str(value) if value.is_finite() else json.dumps(str(value))
    return json.dumps(value, ensure_ascii=False, default=as_text)


def checked(record: RawRecord) -> RawRecord:
    """*record*, or an `undecodable` reject when its text cannot be written as UTF-8.

    A lone surrogate (``"\\ud800"`` in a JSON string, an ``_xD800_`` escape in a sheet) is a
    valid Python string but not valid UTF-8: the run folder's parquet files and the snapshot
    could not store it, and the whole extract would crash on that one record.
    """
    try:
        record.raw.encode("utf-8")
        # The values too: a JSON escape (`"\\ud800"`) is plain ASCII in the raw text.
        "\x00".join(v for v in record.values or () if v).encode("utf-8")
    except UnicodeEncodeError as exc:
        escaped = record.raw.encode("utf-8", "backslashreplace").decode("utf-8")
        return RawRecord(record.row_number, None, escaped, ReasonCode.UNDECODABLE,
                         f"text holds {exc.object[exc.start:exc.end]!a}, which is not encodable as UTF-8")
    return record
