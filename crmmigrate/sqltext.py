"""SQL text for DuckDB: quoting of names and values from users' files, and Python's whitespace.

Shared by the stages that compile to DuckDB (extract's keys and hashes, map's compiled SQL),
so both quote the same way and strip the same characters Python's str.strip() does.
"""

from __future__ import annotations

# Every character for which Python's str.isspace() is true: str.strip() removes these, and
# DuckDB's one-argument trim() only removes spaces.
WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B)))
              + "\u2028\u2029\u202f\u205f\u3000")


def ident(name: str) -> str:
    """*name* as a DuckDB identifier (column names come from users' files)."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """*text* as a DuckDB string literal."""
    return "'" + text.replace("'", "''") + "'"


# `may_start_with_whitespace` compares bytes: every WHITESPACE character is below '!' or encoded
# from the bytes of U+0085 up.
assert all(c < "!" or c.encode() >= "\x85".encode() for c in WHITESPACE)
_VISIBLE_ASCII = "".join(map(chr, range(0x21, 0x7F)))  # never whitespace


def may_start_with_whitespace(value: str) -> str:
    """SQL: whether *value* may begin with `WHITESPACE` (never false where it does). DuckDB
    compares text by its UTF-8 bytes, and the first bytes decide against a one-character literal,
    so two comparisons read the first character without decoding the text: ascii() validated the
    whole text as UTF-8 on each of the five calls that ranges of its code needed. A first
    character from U+0085 up is looked up (rarely whitespace, often a letter: `Émile`)."""
    return f"({value} < '!' OR ({value} >= '\u0085' AND contains({literal(WHITESPACE)}, {value}[1])))"


def may_end_with_whitespace(value: str) -> str:
    """SQL: whether *value* may end with `WHITESPACE`: unless its last character is printable
    ASCII other than ' ' (a false alarm only costs a trim). One contains() extracts that character
    once; two comparisons, or a BETWEEN (rewritten into two), extracted it twice inside a CASE."""
    return f"(NOT contains({literal(_VISIBLE_ASCII)}, {value}[-1]))"
