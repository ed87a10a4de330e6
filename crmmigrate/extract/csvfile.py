"""Delimited text: split into physical records by bytes, then decode and parse each alone,
so one bad record cannot take its neighbours with it."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

from crmmigrate.extract.base import RawRecord, Reader, unique_header
from crmmigrate.spec.model import CsvSource
from crmmigrate.spec.reasons import ReasonCode


SNIFFED = ",;\t|"


def sniff_delimiter(path: Path) -> str:
    """The separator of a delimited file, guessed from its header line: the candidate that
    occurs most often outside quotes (`,` when there is no header or no candidate)."""
    with path.open("rb") as fh:
        head = fh.readline(1 << 20).decode("latin-1")
    outside = re.sub(r'"[^"]*"', "", head)
    counts = {c: outside.count(c) for c in SNIFFED}
    best = max(counts, key=lambda c: counts[c])
    return best if counts[best] else ","


class CsvReader(Reader):
    """Splits the bytes into physical records (quote-aware), then decodes and parses each alone,
    so one bad record cannot take its neighbours with it."""

    def __init__(self, path: Path, spec: CsvSource):
        self.path, self.spec = path, spec
        self.quote = spec.quotechar.encode("ascii")
        self.sep = spec.delimiter or sniff_delimiter(path)
        self.delimiter = self.sep.encode("ascii")
        first = next(self._physical(), None)
        if first is None:
            self.header = []
        else:
            text = first[1].decode("utf-8-sig" if spec.encoding.lower().replace("-", "") == "utf8" else spec.encoding,
                                   errors="replace")
            self.header = unique_header(self._parse(text) or [])

    def _physical(self) -> Iterator[tuple[int, bytes]]:
        with self.path.open("rb") as fh:
            line_no, start, buf, open_quotes = 0, 1, b"", False
            for line in fh:
                line_no += 1
                if not buf:
                    start = line_no
                buf += line
                open_quotes = self._ends_quoted(line, open_quotes)
                if not open_quotes:
                    yield start, buf
                    buf = b""
            if buf:
                yield start, buf

    def _ends_quoted(self, line: bytes, quoted: bool) -> bool:
        """Whether *line* ends inside a quoted field, by the csv module's rules: a quote opens a
        field only at its start (`5" screen` is text), and `""` inside one is an escaped quote."""
        if self.quote not in line:
            return quoted
        field_start, after_quote = not quoted, False
        for byte in line.rstrip(b"\r\n"):
            char = bytes((byte,))
            if quoted:
                if char == self.quote:
                    quoted, after_quote = False, True
                continue
            if after_quote and char == self.quote:  # `""`: still inside the quoted field
                quoted, after_quote = True, False
                continue
            after_quote = False
            if char == self.delimiter:
                field_start = True
            elif field_start and char == self.quote:
                quoted, field_start = True, False
            else:
                field_start = False
        return quoted

    def _parse(self, text: str) -> list[str] | None:
        rows = list(csv.reader(io.StringIO(text.rstrip("\r\n")), delimiter=self.sep,
                               quotechar=self.spec.quotechar, strict=True))
        return rows[0] if len(rows) == 1 else ([] if not rows else None)

    def records(self) -> Iterator[RawRecord]:
        physical = self._physical()
        next(physical, None)  # header
        width = len(self.header)
        for line_no, data in physical:
            try:
                text = data.decode(self.spec.encoding)
            except UnicodeDecodeError as exc:
                yield RawRecord(line_no, None, data.decode(self.spec.encoding, "backslashreplace"),
                                ReasonCode.UNDECODABLE, f"not valid {self.spec.encoding} at byte {exc.start}")
                continue
            if not text.strip("\r\n"):
                yield RawRecord(line_no, None, text, ReasonCode.MALFORMED_ROW, "blank line")
                continue
            try:
                fields = self._parse(text)
            except csv.Error as exc:
                fields, problem = None, str(exc)
            else:
                problem = "record splits into several rows"
            if fields is None:
                yield RawRecord(line_no, None, text, ReasonCode.MALFORMED_ROW, problem)
            elif len(fields) != width:
                yield RawRecord(line_no, None, text, ReasonCode.MALFORMED_ROW,
                                f"record has {len(fields)} fields, the header has {width}")
            else:
                yield RawRecord(line_no, [f if f != "" else None for f in fields], text)

    def count_records(self) -> int:
        # Python's csv module over the whole file, separate from the per-record path above.
        with self.path.open(encoding=self.spec.encoding, errors="replace", newline="") as fh:
            rows = sum(1 for _ in csv.reader(fh, delimiter=self.sep, quotechar=self.spec.quotechar))
        return max(rows - 1, 0)
