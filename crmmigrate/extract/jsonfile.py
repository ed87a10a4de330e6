"""JSON sources: an array of objects (at a declared path) or JSON Lines, streamed with ijson."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from crmmigrate.errors import SourceError
from crmmigrate.extract.base import RawRecord, Reader, as_text, checked, json_text, unique_header
from crmmigrate.spec.model import JsonSource
from crmmigrate.spec.reasons import ReasonCode

BOM = b"\xef\xbb\xbf"

JSON_WS = b" \t\r\n"
#: Bytes handed to ijson's C parser at a time. Small on purpose: the parser builds a prefix
#: string per nesting level, so a hostile `[[[[…` costs memory quadratic in the depth reached
#: within one buffer; 4 KiB keeps that to tens of MB, and `MAX_DEPTH` stops it after.
JSON_BUFFER = 4096
MAX_DEPTH = 512
# A `\uD800`-`\uDFFF` escape (after an even run of backslashes: `\\ud800` is text). One that is not
# half of a pair, ijson's C parser turns into `?`, joins with the next escape into another
# character, or stops reading the document at; its pure-Python parser (~5x slower) keeps it, so
# that the record becomes an `undecodable` reject as it does in JSON Lines.
_SURROGATE_ESCAPE = re.compile(rb"(?<!\\)((?:\\\\)*)\\u([dD][89a-fA-F][0-9a-fA-F]{2})")
# Quick signs that a block may hold a lone one (searched before the exact reading, which goes
# escape by escape): a high half with no low one after it, more low halves than pairs, or a
# backslash before an escape. Files with only proper pairs (`json.dumps` writes emoji so) show none.
_HIGH_ALONE = re.compile(rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])")
_LOW = re.compile(rb"\\u[dD][c-fC-F]")
_PAIR = re.compile(rb"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F]")
_ESCAPED_BACKSLASH = re.compile(rb"\\\\u[dD][89a-fA-F]")


def _maybe_lone(data: bytes) -> bool:
    return bool(_HIGH_ALONE.search(data) or _ESCAPED_BACKSLASH.search(data)
                or len(_LOW.findall(data)) > len(_PAIR.findall(data)))


_SCAN_BLOCK, _SCAN_CARRY, _SCAN_EDGE = 1 << 20, 64, 16


def _has_lone_surrogate(path: Path) -> bool:
    """Whether the file holds a surrogate escape that is not half of a pair. Block by block: an
    escape within _SCAN_EDGE bytes of a block's end is judged with the next block (carried over
    with the bytes before it, which tell its pair and its backslashes)."""
    carry = b""
    with path.open("rb") as fh:
        while True:
            block = fh.read(_SCAN_BLOCK)
            data = carry + block
            judged = max(len(carry) - _SCAN_EDGE, 0)  # what the previous block judged already
            if _maybe_lone(data) and _lone_between(data, judged, len(data) - _SCAN_EDGE if block else len(data)):
                return True
            if not block:
                return False
            start = max(len(data) - _SCAN_CARRY, 0)
            while start and data[start - 1] == 0x5C:  # whole runs of backslashes: their count is the point
                start -= 1
            carry = data[start:]


def _lone_between(data: bytes, lo: int, hi: int) -> bool:
    """Whether a surrogate escape starting in data[lo:hi] is not half of a pair."""
    high_at = None  # where the last high half starts, while it waits for its low half
    for m in _SURROGATE_ESCAPE.finditer(data):
        at = m.end(1)
        if m.group(2)[1:2] in b"89abAB":
            if high_at is not None and lo <= high_at < hi:
                return True  # the previous high half was not followed by a low one
            high_at = at
        elif high_at is not None and high_at + 6 == at:
            high_at = None  # a pair
        elif lo <= at < hi:
            return True
    return high_at is not None and lo <= high_at < hi


class _Collision(Exception):
    """Two keys of one record flatten to the same column (`{"a.b": 1, "a": {"b": 2}}`)."""


def _flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        flat = _flatten(value, f"{name}.") if isinstance(value, dict) else {name: value}
        if clash := out.keys() & flat.keys():
            raise _Collision(min(clash))
        out.update(flat)
    return out


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`json.loads`' object_pairs_hook: a key given twice would keep only its last value."""
    obj = dict(pairs)
    if len(obj) < len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"key '{key}' appears twice in one object")
            seen.add(key)
    return obj


class _Feed:
    """A binary file as ijson's C parser reads it, with what that parser cannot report or survive.

    It counts the bytes handed over (the parser reports no position), skips a UTF-8 BOM (the
    parser rejects it), and ends the stream early before a run of digits longer than Python
    converts to an int (ijson's C backend crashes the process on one). `slow_from` hands the
    bytes over one at a time from that offset on, so a parse error is raised at its exact byte.
    """

    def __init__(self, fh: IO[bytes], slow_from: int | None = None):
        self.fh, self.slow_from = fh, slow_from
        self.start = self.pos = 3 if fh.read(3) == BOM else 0
        fh.seek(self.pos)
        self.chunk_start = self.pos
        self.limit = sys.get_int_max_str_digits()
        self.digits = 0  # digits at the end of what was handed over so far
        self.cut: int | None = None  # where the stream was ended early

    def read(self, size: int = -1) -> bytes:
        if self.cut is not None:
            return b""
        if self.slow_from is not None:
            size = 1 if self.pos >= self.slow_from else min(size, self.slow_from - self.pos)
        data = self.fh.read(size)
        if self.limit:
            data = self._guard_digits(data)
        self.chunk_start = self.pos
        self.pos += len(data)
        return data

    def _guard_digits(self, data: bytes) -> bytes:
        match = re.search(rb"[0-9]{%d}" % (self.limit + 1), data)
        lead = len(data) - len(data.lstrip(b"0123456789"))
        if self.digits and self.digits + lead > self.limit:
            self.cut = self.pos - self.digits
            return b""
        if match is not None:
            self.cut = self.pos + match.start()
            return data[:match.start()]
        self.digits = (self.digits + lead) if lead == len(data) else len(data) - len(data.rstrip(b"0123456789"))
        return data


@dataclass
class _Broken:
    """Where and why a JSON document stops being readable."""

    offset: int
    line: int
    column: int
    problem: str

    def message(self, records_read: int) -> str:
        return (f"the document breaks off near byte {self.offset} (line {self.line}, column {self.column}) "
                f"after {records_read} record(s): {self.problem}; the rest of the file is this one reject")


def _problem(exc: Exception) -> str:
    arg = exc.args[0] if exc.args else exc
    text = arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def _line_column(path: Path, offset: int) -> tuple[int, int]:
    """1-based line and column of byte *offset*, reading the file in blocks (memory bounded)."""
    line, line_start, pos = 1, 0, 0
    with path.open("rb") as fh:
        while pos < offset and (block := fh.read(min(1 << 20, offset - pos))):
            newlines = block.count(b"\n")
            if newlines:
                line += newlines
                line_start = pos + block.rfind(b"\n") + 1
            pos += len(block)
    return line, offset - line_start + 1


class JsonReader(Reader):
    """JSON: an array of objects (at `records`, a dotted path) or JSON Lines, streamed with ijson.

    Nested objects become dotted columns (`requester.email`), arrays become JSON text, and
    numbers keep the digits they were written with. The header (the union of every record's
    keys) costs one streaming pass before the records are read: two passes, memory bounded by
    one record. In an array, a document that breaks off (truncated, invalid) keeps every
    record before the break, and the rest of the file becomes one reject with its byte, line
    and column. In JSON Lines every line stands alone: a bad one is a reject with its line.
    """

    def __init__(self, path: Path, spec: JsonSource):
        self.path, self.lines, self.location = path, spec.lines, str(path)
        self.key_columns = () if spec.key == "row_number" else tuple(spec.key)
        if spec.lines and spec.records:
            raise SourceError(str(path), "`records` is for a JSON document; JSON Lines (`lines: true`) has a record per line")
        self.prefix = spec.records
        self.item_prefix = f"{spec.records}.item" if spec.records else "item"
        self.broken: _Broken | None = None
        # Lines ended by CR alone (old Mac tools): with no LF anywhere, a CR can only end a line.
        self.cr_only = spec.lines and _without_lf(path)
        self.parser = _json_parser(path) if not spec.lines else None
        self.repeated_keys: dict[int, str] = {}  # array item → a key it gives twice (ijson keeps the last)
        # The records' own dotted keys, and the columns they become (a key named like a lineage
        # column, or blank, is renamed as a CSV header would be).
        self.keys = self._lines_header() if spec.lines else self._array_scan()
        self.header = unique_header(self.keys)

    # JSON Lines

    def _physical_lines(self) -> Iterator[tuple[int, bytes]]:
        """(line number, bytes) of every line that is not blank; blank lines are not records."""
        with self.path.open("rb") as fh:
            lines = _cr_lines(fh) if self.cr_only else fh
            for n, line in enumerate(lines, start=1):
                if n == 1 and line.startswith(BOM):
                    line = line[len(BOM):]
                if line.strip(JSON_WS):
                    yield n, line

    def _lines_header(self) -> list[str]:
        names: dict[str, None] = {}
        for n, line in self._physical_lines():
            loaded = self._load_line(n, line)
            if not isinstance(loaded, RawRecord):
                names.update(dict.fromkeys(_keys(loaded[0])))
        return list(names)

    def _load_line(self, n: int, line: bytes) -> tuple[Any, str] | RawRecord:
        """(the parsed value, its text), or the reject that the line is."""
        import json

        try:
            text = line.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            return RawRecord(n, None, line.decode("utf-8", "backslashreplace").rstrip("\r\n"), ReasonCode.UNDECODABLE,
                             f"line {n} is not valid UTF-8 at byte {exc.start}")
        try:
            return json.loads(text, parse_float=_decimal, parse_constant=_no_constant, object_pairs_hook=_unique_pairs), text
        except (ValueError, RecursionError) as exc:
            return checked(RawRecord(n, None, text, ReasonCode.MALFORMED_ROW, f"line {n} is not valid JSON: {_problem(exc)}"))

    def _line_record(self, n: int, line: bytes) -> RawRecord:
        loaded = self._load_line(n, line)
        return loaded if isinstance(loaded, RawRecord) else self._object_record(n, *loaded)

    # JSON arrays

    def _array_scan(self) -> list[str]:
        """One pass over the document: the header, the record count (from parser events, not
        the records built from them) and where the document breaks, if it does."""
        import ijson

        names: dict[str, None] = {}
        state = {"found": None, "done": 0, "depth": 0, "events": 0}
        maps: list[set[str]] = []  # the keys of each object being read, innermost last
        inside = (self.item_prefix, f"{self.item_prefix}.")

        def tap(events: Iterator[tuple[str, str, Any]]) -> Iterator[tuple[str, str, Any]]:
            for prefix, event, value in events:
                state["events"] += 1
                if event in ("start_map", "start_array"):
                    state["depth"] += 1
                    if state["depth"] > MAX_DEPTH:
                        raise _TooDeep(f"nested deeper than {MAX_DEPTH} levels")
                    if event == "start_map":
                        maps.append(set())
                elif event in ("end_map", "end_array"):
                    state["depth"] -= 1
                    if event == "end_map":
                        maps.pop()
                elif event == "map_key":
                    if value in maps[-1] and (prefix == inside[0] or prefix.startswith(inside[1])):
                        self.repeated_keys.setdefault(state["done"] + 1, value)  # the item being read
                    maps[-1].add(value)
                if prefix == self.prefix and state["found"] is None and event != "map_key":
                    state["found"] = event
                if prefix == self.item_prefix and event not in ("start_map", "start_array", "map_key"):
                    state["done"] += 1
                yield prefix, event, value

        with self.path.open("rb") as fh:
            feed = _Feed(fh)
            try:
                for item in ijson.items(tap(self.parser.parse(feed, buf_size=JSON_BUFFER)), self.item_prefix):
                    names.update(dict.fromkeys(_keys(item)))
            except (ijson.JSONError, ValueError, _TooDeep) as exc:
                if state["events"] == 0 and feed.cut is None and self._blank():
                    self.counted = 0
                    return []  # an empty file: no records, like an empty CSV
                self.broken = self._locate(feed, exc)
                if state["found"] != "start_array":
                    raise SourceError(str(self.path), f"not a readable JSON file: {self.broken.problem} near byte "
                                      f"{self.broken.offset} (line {self.broken.line}, column {self.broken.column})") from None
        if state["found"] != "start_array":
            where = f"`{self.prefix}`" if self.prefix else "the top level"
            found = {None: "nothing", "start_map": "an object"}.get(state["found"], "a single value")
            raise SourceError(str(self.path), f"the JSON document is not an array of records at {where} (found {found})")
        self.counted = state["done"] + (self.broken is not None)
        return list(names)

    def _blank(self) -> bool:
        with self.path.open("rb") as fh:
            return not any(block.strip(JSON_WS + BOM) for block in iter(lambda: fh.read(1 << 16), b""))

    def _locate(self, feed: _Feed, exc: Exception) -> _Broken:
        """Where the parser failed. ijson's C parser reports no offset, only the text around the
        error; that text is found in the buffer it was parsing (the start of that buffer when
        it cannot be found once and only once)."""
        if feed.cut is not None:
            offset, problem = feed.cut, f"a number longer than {feed.limit} digits"
        elif isinstance(exc, _TooDeep):
            offset, problem = feed.chunk_start, str(exc)
        else:
            problem = _problem(exc)
            offset = self._near(exc, feed.chunk_start, feed.pos) if "premature EOF" not in problem else feed.pos
        line, column = _line_column(self.path, offset)
        return _Broken(offset, line, column, problem)

    def _near(self, exc: Exception, start: int, end: int) -> int:
        arg = exc.args[0] if exc.args else b""
        text = arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)
        lines = text.splitlines()
        if len(lines) < 3 or "^" not in lines[2] or not lines[1].strip():
            return start
        context = lines[1].lstrip()
        before = lines[2].index("^") - (len(lines[1]) - len(context))
        with self.path.open("rb") as fh:  # the buffer and the one before: the context may span both
            fh.seek(max(start - JSON_BUFFER, 0))
            base = fh.tell()
            buffer = fh.read(end - base).decode("utf-8", "replace")
        buffer = re.sub(r"\s", " ", buffer)  # yajl shows every whitespace as a space
        found = [m.start() for m in re.finditer(re.escape(context), buffer)]
        if len(found) != 1 or before < 0:
            return start
        # The caret stands one character past the offending one.
        return base + len(buffer[:max(found[0] + before - 1, 0)].encode("utf-8"))

    def _remainder(self, n: int, records_read: int) -> RawRecord:
        assert self.broken is not None
        with self.path.open("rb") as fh:
            fh.seek(max(self.broken.offset - 200, 0))
            window = fh.read(1200).decode("utf-8", "backslashreplace")  # the snapshot keeps all of it
        return RawRecord(n, None, window, ReasonCode.MALFORMED_ROW, self.broken.message(records_read))

    def _array_records(self) -> Iterator[RawRecord]:
        import ijson

        expected = self.counted - (self.broken is not None)
        n = 0
        with self.path.open("rb") as fh:
            items = self.parser.items(_Feed(fh), self.item_prefix, buf_size=JSON_BUFFER, use_float=False)
            try:
                # Stop at the records the scan saw complete: past them the parser may meet the
                # break (or a hostile nesting) that the scan already located.
                while n < expected:
                    item = next(items)
                    n += 1
                    if n in self.repeated_keys:
                        yield checked(RawRecord(n, None, json_text(item), ReasonCode.MALFORMED_ROW,
                                                f"key '{self.repeated_keys[n]}' appears twice in one object "
                                                f"(raw shows the last value; the snapshot keeps both)"))
                    else:
                        yield self._object_record(n, item, None)
            except (ijson.JSONError, ValueError, StopIteration) as exc:
                # The file changed since the scan: say so rather than lose the difference.
                raise SourceError(str(self.path), f"the file changed while it was read ({_problem(exc)})") from None
        if self.broken is not None:
            yield self._remainder(n + 1, n)

    # shared

    def _object_record(self, n: int, obj: Any, text: str | None) -> RawRecord:
        try:
            raw = text if text is not None else json_text(obj)
        except RecursionError:
            return RawRecord(n, None, "", ReasonCode.MALFORMED_ROW, f"record {n} is nested too deeply to store")
        if not isinstance(obj, dict):
            what = f"line {n}" if self.lines else "array item"
            return checked(RawRecord(n, None, raw, ReasonCode.MALFORMED_ROW,
                                     f"{what} is a {type(obj).__name__}, not an object"))
        try:
            flat = _flatten(obj)
            values = [as_text(flat.get(c)) for c in self.keys]
        except RecursionError:
            return checked(RawRecord(n, None, raw, ReasonCode.MALFORMED_ROW, f"record {n} is nested too deeply to flatten"))
        except _Collision as exc:
            return checked(RawRecord(n, None, raw, ReasonCode.MALFORMED_ROW,
                                     f"two keys of the record both make column '{exc}' (a dotted key and a nested one)"))
        for k in self.key_columns:
            if k not in flat and (nested := [c for c in flat if c.startswith(f"{k}.")]):
                return checked(RawRecord(n, None, raw, ReasonCode.MISSING_KEY, (
                    f"key '{k}' holds an object, not a value; its fields are columns {', '.join(nested[:3])}"
                    f"{', …' if len(nested) > 3 else ''}: name one of them as the key")))
        return checked(RawRecord(n, values, raw))

    def records(self) -> Iterator[RawRecord]:
        """Every record: a line of JSON Lines, or an item of the array (numbered from 1)."""
        if self.lines:
            for n, line in self._physical_lines():
                yield self._line_record(n, line)
        else:
            yield from self._array_records()

    def count_records(self) -> int:
        """JSON Lines: the non-blank lines. An array: the items the parser's events closed
        (counted in the header pass, apart from the records built), plus one for a break."""
        if self.lines:
            return sum(1 for _ in self._physical_lines())
        return self.counted


def _without_lf(path: Path) -> bool:
    """Whether the file holds a CR but no LF (read until the first LF: one block, for most files)."""
    seen_cr = False
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            if b"\n" in block:
                return False
            seen_cr = seen_cr or b"\r" in block
    return seen_cr


def _cr_lines(fh: IO[bytes]) -> Iterator[bytes]:
    """The lines of a file whose lines end in CR alone, each with its CR (as a file iterator gives LF)."""
    carry = b""
    while block := fh.read(1 << 20):
        parts = (carry + block).split(b"\r")
        carry = parts.pop()
        yield from (part + b"\r" for part in parts)
    if carry:
        yield carry


class _TooDeep(Exception):
    pass


def _json_parser(path: Path) -> Any:
    """ijson's C backend, or its pure-Python one for a file with a lone surrogate escape."""
    import ijson

    if _has_lone_surrogate(path):
        from ijson.backends import python

        return python
    return ijson


def _keys(obj: Any) -> list[str]:
    """The dotted column names of one record; none for a record that will be a reject."""
    if not isinstance(obj, dict):
        return []
    try:
        return list(_flatten(obj))
    except (RecursionError, _Collision):
        return []


def _decimal(text: str) -> Any:
    import decimal

    return decimal.Decimal(text)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")
