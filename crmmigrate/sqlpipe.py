"""The pipe a rule's SQL half is written with, and SQL text that Python and DuckDB read alike.

A rule (a transform in crmmigrate/transforms.py, a coercion in crmmigrate/map/coerce/) may
have a DuckDB half beside its Python half: a compiler that takes the `_Pipe` of one field and
rewrites its value, adding the conditions under which that value is *provably* the Python half's
(`require`) and, where it can, those under which Python *certainly* refuses it (`refuse`). A
compiler that cannot write a rule exactly raises `_NoSql` with the reason: the field is then
mapped by Python, and run.json says so. Python and DuckDB differ in subtle places (Unicode case
mapping and whitespace, `\\d` and `\\s`, strptime), so the helpers here keep to inputs where they
are known to agree; tests/map/test_sql.py checks each by enumeration, and
tests/map/test_conformance.py holds every registered rule to its Python half.

DuckDB shares no subexpression inside CASE, AND or OR, and a step reads its input several times:
an intermediate value is bound once (`_Pipe.let`), as a column of a projection layered over the
table (`layered`): binding in a lambda (`list_transform([x], lambda v: …)[1]`) builds a list per
row, which costs more than the layer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from crmmigrate.sqltext import WHITESPACE, literal, may_end_with_whitespace, may_start_with_whitespace

if TYPE_CHECKING:
    from crmmigrate.spec.model import MappingSpec


def layered(table: str, lets: list[tuple[int, str, str]]) -> str:
    """*table* under one projection per layer, each adding that layer's bound values."""
    for layer in sorted({n for n, _, _ in lets}):
        table = f"(SELECT *, {', '.join(f'{e} AS {name}' for n, name, e in lets if n == layer)} FROM {table})"
    return table


class _NoSql(Exception):
    """A rule with no exact SQL form."""


# --- quoting and the pipe ------------------------------------------------------------------

def quote_str(text: str) -> str:
    if "\x00" in text:  # a NUL cannot be written in an SQL literal
        raise _NoSql(f"NUL character in {text!r}")
    return literal(text)


# Bound values and lambda parameters are named `__crm_…`; an entity reading a column of such a
# name is not compiled.
_LAMBDA = "__crm_"
_SIMPLE = re.compile(rf'"([^"]|"")*"|{_LAMBDA}\w*v\d+')  # a column or a bound name: free to repeat


@dataclass
class _Pipe:
    """One field being compiled: named intermediate values, the current value, and the conditions
    under which it is exactly map_frame's.

    DuckDB shares no subexpression inside CASE, AND or OR, and each step below reads its input
    several times, so an intermediate value is bound once (`let`): a column named *prefix*N, in
    the layer after the last one whose values it reads (see `over`)."""

    value: str
    prefix: str = f"{_LAMBDA}v"
    lets: list[tuple[int, str, str]] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    # Where map_frame certainly refuses the value, by rule ('map' at the value map, 'type' at the
    # coercion): an expression over the bound names. The refusal is then the field's only failure.
    refused: dict[str, str] = field(default_factory=dict)

    def let(self, expr: str) -> str:
        if _SIMPLE.fullmatch(expr):
            return expr
        name = f"{self.prefix}{len(self.lets)}"
        # The names *expr* reads (a literal that looks like one only puts it a layer later).
        reads = {int(n) for n in re.findall(rf"{re.escape(self.prefix)}(\d+)", expr)} & set(range(len(self.lets)))
        self.lets.append((1 + max((self.lets[n][0] for n in reads), default=-1), name, expr))
        return name

    def bind(self) -> str:
        """The current value as a name, to read it more than once."""
        self.value = self.let(self.value)
        return self.value

    def require(self, condition: str) -> None:
        self.conditions.append(condition)

    def sure(self) -> str:
        """Every condition so far (an expression over the bound names)."""
        return " AND ".join(f"({c})" for c in self.conditions) or "true"

    def refuse(self, rule: str, condition: str) -> None:
        """map_frame certainly refuses the value at *rule* where *condition* holds and every
        condition so far does (so call it before the rule's own `require`)."""
        self.refused[rule] = f"({self.sure()}) AND {condition}"

    def emit(self) -> tuple[str, str, dict[str, str]]:
        """(value, sure, {rule: refused}): bound names (or columns) the outer SELECT may read many
        times, the flags never NULL. Read them from `over(table)`."""
        value, sure = self.bind(), self.sure()
        return (value, "true" if sure == "true" else self.let(f"coalesce({sure}, false)"),
                {r: self.let(f"coalesce({c}, false)") for r, c in self.refused.items()})

    def over(self, table: str) -> str:
        return layered(table, self.lets)


def _full(value: str, pattern: str) -> str:
    return f"regexp_full_match({value}, {quote_str(pattern)})"


# --- text that Python and DuckDB read alike -------------------------------------------------

# WHITESPACE (sqltext) is also what Python's `\s` matches; RE2's `\s` knows only a few of them.
_WS = "".join(f"\\x{{{ord(c):x}}}" for c in WHITESPACE)  # for an RE2 class
_NOT_SPACE = "".join(f"\\x{{{ord(c):x}}}" for c in WHITESPACE if c != " ")
_EDGE = f"^ *[{_NOT_SPACE}]|[{_NOT_SPACE}] *$"  # another whitespace than ' ' at an end
_LEAD = f"^ *[{_NOT_SPACE}]"  # ... at the start
_TRAIL = f"[{_NOT_SPACE}] *$"  # ... at the end


def _strip(name: str) -> str:
    """Python's str.strip() of a bound *name*. trim() with the whole set is much slower than trim()
    (spaces only), so text is left alone when neither end is whitespace (most), and the set is
    used only where another whitespace than ' ' sits at an end.

    Each end is tested and trimmed on its own: trim() and rtrim() read the whole text, ltrim()
    only what it removes, and an anchored `_LEAD` stops at the first letter, so a text padded at
    one end is not read whole twice. The default trims remove exactly the 17 space separators,
    all in WHITESPACE."""
    ws = quote_str(WHITESPACE)
    lead, trail = may_start_with_whitespace(name), may_end_with_whitespace(name)
    both = f"trim(CASE WHEN regexp_matches({name}, {quote_str(_EDGE)}) THEN trim({name}, {ws}) ELSE {name} END)"
    return (f"CASE WHEN {lead} THEN CASE WHEN {trail} THEN {both} "
            f"WHEN regexp_matches({name}, {quote_str(_LEAD)}) THEN ltrim({name}, {ws}) ELSE ltrim({name}) END "
            f"WHEN {trail} THEN CASE WHEN regexp_matches({name}, {quote_str(_TRAIL)}) THEN rtrim({name}, {ws}) "
            f"ELSE rtrim({name}) END "
            f"ELSE {name} END")


def _one_of(name: str, literals: list[str]) -> str:
    """`name IN (literals)` (NULL for a NULL *name*, as IN) without IN: DuckDB rewrites an IN list
    of five or more values into a hash join, which a value map of hundreds of codes makes far
    slower than the comparisons (bench/map.py measures the pass)."""
    return "(" + " OR ".join(f"{name} = {v}" for v in literals) + ")" if literals else "false"


def _printable_ascii(name: str) -> str:
    """Where Python's Unicode `\\d`, `\\s`, IGNORECASE and lower() agree with RE2's and DuckDB's."""
    return _full(name, "[ -~]*")


def _ascii(name: str) -> str:
    return f"strlen({name}) = length({name})"  # bytes = code points


# Latin letters whose lower, upper and title case are single characters on which Python and
# DuckDB agree, and whose lower case is again one of them (each checked in the tests). Left
# out: ß (`SS` in Python, `ẞ` in DuckDB), İ (`i̇` in Python), ŉ, ǰ, ẖ…ẚ (two characters in
# Python), the title-case digraphs ǅ ǈ ǋ ǲ, and letters cased in Python without a case pair (ĸ ƍ ẟ…).
CASED_RANGES = (
    (0x41, 0x5A), (0x61, 0x7A), (0xB5, 0xB5), (0xC0, 0xD6), (0xD8, 0xDE), (0xE0, 0xF6), (0xF8, 0x12F),
    (0x131, 0x137), (0x139, 0x148), (0x14A, 0x180), (0x182, 0x185), (0x187, 0x188), (0x18B, 0x18C), (0x18E, 0x18E),
    (0x191, 0x192), (0x195, 0x195), (0x198, 0x19A), (0x19E, 0x19E), (0x1A0, 0x1A5), (0x1A7, 0x1A8), (0x1AC, 0x1AD),
    (0x1AF, 0x1B0), (0x1B3, 0x1B6), (0x1B8, 0x1B9), (0x1BC, 0x1BD), (0x1BF, 0x1BF), (0x1CD, 0x1EF), (0x1F4, 0x220),
    (0x222, 0x233), (0x23B, 0x23D), (0x23F, 0x243), (0x246, 0x24F), (0x1E00, 0x1E95), (0x1E9B, 0x1E9B),
    (0x1EA0, 0x1EFF),
)
# ß lower-cases to itself in both, and title() keeps it inside a word (`Weiß`); only upper-casing
# differs, so it may be lower-cased anywhere and title-cased where it does not start a word.
SHARP_S = ((0xDF, 0xDF),)
# Characters without case that both map to themselves: ASCII and Latin-1 non-letters (less ª º,
# which Python counts as cased), combining accents (less U+0345, which has an upper case),
# general punctuation (’ – “ …) and every whitespace.
UNCASED_RANGES = (
    (0x1, 0x40), (0x5B, 0x60), (0x7B, 0xA9), (0xAB, 0xB4), (0xB6, 0xB9), (0xBB, 0xBF), (0xD7, 0xD7), (0xF7, 0xF7),
    (0x300, 0x344), (0x346, 0x36F), (0x1680, 0x1680), (0x2000, 0x206F), (0x3000, 0x3000),
)


def _class(ranges: tuple[tuple[int, int], ...], without: str = "") -> str:
    """The body of an RE2 character class: the code points of *ranges*, less those in *without*."""
    points = sorted({c for lo, hi in ranges for c in range(lo, hi + 1)} - {ord(c) for c in without})
    runs: list[list[int]] = []
    for c in points:
        if runs and runs[-1][1] == c - 1:
            runs[-1][1] = c
        else:
            runs.append([c, c])
    return "".join(f"\\x{{{lo:x}}}" + (f"-\\x{{{hi:x}}}" if hi > lo else "") for lo, hi in runs)


CASED, UNCASED = _class(CASED_RANGES), _class(UNCASED_RANGES)
_LETTERS = _class(CASED_RANGES + SHARP_S)
_UPPER_SAFE = f"[{CASED}{UNCASED}]*"
_LOWER_SAFE = f"[{_LETTERS}{UNCASED}]*"
_TITLE_SAFE = f"(?:[{UNCASED}]|[{CASED}][{_LETTERS}]*)*"  # no ß first in a run of letters


def _case_safe(name: str, safe: str) -> str:
    return f"{name} IS NULL OR {_full(name, safe)}"



Compiler = Callable[[_Pipe, dict[str, Any], "MappingSpec"], None]  # a rule's DuckDB half


def _no_args(name: str, args: dict[str, Any]) -> None:
    if args:  # the Python transform would raise on them: every row of a chunk rejected
        raise _NoSql(f"transform {name} takes no arguments, got {args}")
