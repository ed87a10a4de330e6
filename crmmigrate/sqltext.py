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
