"""Text as people can read it where it is shown (the report, a terminal): a character that is
invisible or reorders the text around it (a value starting with U+202E displays the rest of its
line reversed; an escape sequence drives a terminal) is shown as its code point instead."""

from __future__ import annotations

import re

_HIDDEN = "\x00-\x08\x0b-\x1f\x7f-\x9f\xad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\U000e0000-\U000e007f"
_HIDDEN_KEEPING_LAYOUT = re.compile(f"[{_HIDDEN}]")
_HIDDEN_ALL = re.compile(f"[\t\n{_HIDDEN}]")  # a table cell has no layout of its own


def code_point(char: str) -> str:
    return f"<U+{ord(char):04X}>"


def visible(text: str, keep_layout: bool = False) -> str:
    """*text* with its hidden characters as ``<U+XXXX>``; tab and newline kept where *keep_layout*."""
    hidden = _HIDDEN_KEEPING_LAYOUT if keep_layout else _HIDDEN_ALL
    return hidden.sub(lambda m: code_point(m.group()), text)
