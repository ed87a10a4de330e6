"""Delimited text: split into physical records by bytes, then decode and parse each alone,
so one bad record cannot take its neighbours with it."""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

from crmmigrate.errors import SourceError
from crmmigrate.extract.base import RawRecord, Reader, unique_header
from crmmigrate.spec.model import CsvSource
from crmmigrate.spec.reasons import ReasonCode

SNIFFED = ",;\t|"

# The csv module refuses fields over 128 KiB by default, which would turn a legitimate long
# free-text field (notes, an exported e-mail body) into a reject, and make the independent
# count route raise. Our splitter already holds each whole record in memory before the csv
# module sees it, so that limit protects nothing here; 1 GiB keeps a ceiling far above any
# real field. The setting is process-wide, so it is only ever raised, never lowered.
FIELD_SIZE_LIMIT = 1 << 30
csv.field_size_limit(max(csv.field_size_limit(), FIELD_SIZE_LIMIT))


def sniff_delimiter(path: Path) -> str:
    """The separator of a delimited file, guessed from its header line: the candidate that
    occurs most often outside quotes (`,` when there is no header or no candidate)."""
    with path.open("rb") as fh:
        head = fh.readline(1 << 20).decode("latin-1")
    outside = re.sub(r'"[^"]*"', "", head)
    counts = {c: outside.count(c) for c in SNIFFED}
    best = max(counts, key=lambda c: counts[c])
    return best if counts[best] else ","


def _is_utf8(encoding: str) -> bool:
    try:
        return codecs.lookup(encoding).name == "utf-8"
    except LookupError:
        return False


class CsvReader(Reader):
    """Splits the bytes into physical records (quote-aware), then decodes and parses each alone,
    so one bad record cannot take its neighbours with it.

    Parameters
    ----------
    path
        The delimited file.
    spec
        Its source spec: `encoding`, `fallback_encoding`, `delimiter` (sniffed when None), `quotechar`.

    Attributes
    ----------
    header
        Column names; a repeated name is kept as ``NAME~2``.
    fallback_records
        Records of the last ``records()`` pass that were not valid in `encoding` and were
        decoded with `fallback_encoding` instead.
    """

    def __init__(self, path: Path, spec: CsvSource):
        self.path, self.spec = path, spec
        # A byte-order mark means something only at the start of the file (the header reads it);
        # in a record it is a character, whether the source says utf-8 or utf-8-sig.
        self.encoding = "utf-8" if codecs.lookup(spec.encoding).name == "utf-8-sig" else spec.encoding
        self.quote = spec.quotechar.encode("ascii")
        self.sep = spec.delimiter or sniff_delimiter(path)
        self.delimiter = self.sep.encode("ascii")
        self.fallback_records = 0
        self.closed_line = self._closed_line_pattern()
        first = next(self._physical(), None)
        self.header = [] if first is None else unique_header(self._parse_header(first[1]))

    def _closed_line_pattern(self) -> re.Pattern[bytes]:
        """A line whose every quote belongs to a whole quoted field (the common case): it cannot
        leave a quoted field open, so the byte-by-byte scan of `_ends_quoted` is not needed."""
        q, d = re.escape(self.quote), re.escape(self.delimiter)
        field = rb"(?:%s(?:[^%s]|%s%s)*%s|[^%s%s\r\n]*)" % (q, q, q, q, q, q, d)
        return re.compile(rb"%s(?:%s%s)*\r?\n?" % (field, d, field))

    def _parse_header(self, data: bytes) -> list[str]:
        text = self._decode_header(data)
        try:
            return self._parse(text) or []
        except csv.Error as exc:
            if "\r" in text.rstrip("\r\n"):  # the csv module's own words would suggest another way to open the file
                raise SourceError(str(self.path), "the header line holds a carriage return (CR) that ends no line, "
                                                  f"at character {text.index(chr(13)) + 1}") from None
            raise SourceError(str(self.path), f"the header line cannot be read: {exc}") from None

    def _decode_header(self, data: bytes) -> str:
        encoding = "utf-8-sig" if _is_utf8(self.encoding) else self.spec.encoding
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as exc:
            if self.spec.fallback_encoding is not None:
                try:
                    return data.decode(self.spec.fallback_encoding)
                except UnicodeDecodeError:
                    pass
            raise SourceError(str(self.path), f"the header line is not valid {self.spec.encoding} at byte {exc.start}"
                              " (set `encoding` or `fallback_encoding` in the source)") from None

    def _physical(self) -> Iterator[tuple[int, bytes]]:
        quote, closed = self.quote, self.closed_line.fullmatch
        with self.path.open("rb") as fh:
            line_no, start, parts, open_quotes = 0, 1, [], False
            for line in fh:
                line_no += 1
                if not parts and (quote not in line or closed(line)):
                    yield line_no, line
                    continue
                if not parts:
                    start = line_no
                parts.append(line)
                open_quotes = self._ends_quoted(line, open_quotes)
                if not open_quotes:
                    yield start, b"".join(parts)
                    parts = []
            if parts:
                yield start, b"".join(parts)

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
        line = text.rstrip("\r\n")
        if self.spec.quotechar not in line and "\r" not in line and "\n" not in line:
            # Without quotes or line breaks the csv module only splits on the delimiter.
            return line.split(self.sep) if line else []
        rows = list(csv.reader(io.StringIO(line), delimiter=self.sep,
                               quotechar=self.spec.quotechar, strict=True))
        return rows[0] if len(rows) == 1 else ([] if not rows else None)

    def fields(self, line: bytes) -> int:
        """How many fields a one-line record holds (-1 when it cannot be read)."""
        try:
            parsed = self._parse(line.decode(self.encoding))
        except (csv.Error, UnicodeDecodeError):
            return -1
        return -1 if parsed is None else len(parsed)

    def _decode(self, data: bytes) -> str | UnicodeDecodeError:
        """The record's text in `encoding`, else in `fallback_encoding` (counted), else the error."""
        try:
            return data.decode(self.encoding)
        except UnicodeDecodeError as exc:
            if self.spec.fallback_encoding is None:
                return exc
            try:
                text = data.decode(self.spec.fallback_encoding)
            except UnicodeDecodeError:
                return exc
            self.fallback_records += 1
            return text

    def _undecodable(self, line_no: int, data: bytes, exc: UnicodeDecodeError) -> RawRecord:
        message = f"not valid {self.spec.encoding} at byte {exc.start}"
        if self.spec.fallback_encoding is not None:
            message += f", nor valid {self.spec.fallback_encoding}"
        raw = data.decode(self.encoding, "backslashreplace")
        return RawRecord(line_no, None, raw, ReasonCode.UNDECODABLE, message)

    def records(self) -> Iterator[RawRecord]:
        """Every physical record after the header, in file order: values, or a reject with its reason.

        Yields
        ------
        RawRecord
            ``values`` in header order (empty text is None), or ``values=None`` with
            ``undecodable`` / ``malformed_row`` and a message naming the problem.
        """
        self.fallback_records = 0
        physical = self._physical()
        next(physical, None)  # header
        for line_no, data in physical:
            yield self.record(line_no, data)

    def record(self, line_no: int, data: bytes) -> RawRecord:
        """One physical record's bytes (its line break included) as values or a reject."""
        text = self._decode(data)
        if isinstance(text, UnicodeDecodeError):
            return self._undecodable(line_no, data, text)
        if "\x00" in text:  # strict: a NUL is never data in a text export, and we do not guess what it hides
            return RawRecord(line_no, None, text, ReasonCode.MALFORMED_ROW, f"NUL byte at character {text.index(chr(0))}")
        if not text.strip("\r\n"):
            return RawRecord(line_no, None, text, ReasonCode.MALFORMED_ROW, "blank line")
        try:
            fields = self._parse(text)
        except csv.Error as exc:
            fields, problem = None, str(exc)
        else:
            problem = "record splits into several rows"
        if fields is None:
            return RawRecord(line_no, None, text, ReasonCode.MALFORMED_ROW, problem)
        if len(fields) != len(self.header):
            return RawRecord(line_no, None, text, ReasonCode.MALFORMED_ROW,
                             f"record has {len(fields)} fields, the header has {len(self.header)}")
        return RawRecord(line_no, [f if f != "" else None for f in fields], text)

    def count_records(self) -> int:
        """Records after the header, counted by Python's csv module over the whole file: a route
        separate from the per-record splitter above, so the two can be checked against each other."""
        # newline="\n": like the splitter, a lone CR is not a line break. A record the csv module
        # cannot read (a CR inside an unquoted field) is still one record; the reader goes on
        # with the next line after an error.
        with self.path.open(encoding=self.spec.encoding, errors="replace", newline="\n") as fh:
            # The csv module ends a record at a lone CR outside quotes, where the splitter does not.
            lines = (line.rstrip("\r\n").replace("\r", " ") + "\n" for line in fh)
            reader = csv.reader(lines, delimiter=self.sep, quotechar=self.spec.quotechar)
            rows, line = 0, -1
            while True:
                try:
                    next(reader)
                except StopIteration:
                    break
                except csv.Error:
                    if reader.line_num == line:  # no progress: never loop on one spot
                        raise
                line = reader.line_num
                rows += 1
        return max(rows - 1, 0)
