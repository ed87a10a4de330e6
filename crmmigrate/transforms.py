"""The registry of named field transforms: the mapping files' only way to call Python.

A transform takes a pandas Series of text (``None`` = missing) and returns the new Series,
or ``(series, bad)`` where the boolean mask ``bad`` marks values it refuses; those records
are rejected with the transform's reason code. Transforms are vectorised; they never see
a whole record and never do I/O. Register your own with ``@register_transform("name")``.
"""

from __future__ import annotations

import functools
import inspect
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from difflib import get_close_matches

import pandas as pd
import phonenumbers

from crmmigrate.spec.reasons import ReasonCode

TransformFn = Callable[..., "pd.Series | tuple[pd.Series, pd.Series]"]


@dataclass(frozen=True)
class Transform:
    name: str
    fn: TransformFn
    reason: ReasonCode
    changed: str  # what it did to a value it changed, in plain words for the report ("trimmed")

    def bind_problem(self, args: dict, context: dict) -> str | None:
        """Why *args* cannot call this transform, or None."""
        params = inspect.signature(self.fn).parameters
        accepted = {k: v for k, v in context.items() if k in params}
        try:
            inspect.signature(self.fn).bind(pd.Series(dtype=object), **args, **accepted)
        except TypeError as exc:
            return f"bad arguments for transform '{self.name}': {exc}"
        return None

    def __call__(self, values: pd.Series, args: dict, context: dict) -> tuple[pd.Series, pd.Series]:
        params = inspect.signature(self.fn).parameters
        out = self.fn(values, **args, **{k: v for k, v in context.items() if k in params})
        if isinstance(out, tuple):
            return out
        return out, pd.Series(False, index=values.index)


_REGISTRY: dict[str, Transform] = {}


def register_transform(name: str, reason: ReasonCode = ReasonCode.TRANSFORM_ERROR, changed: str | None = None):
    """Register *fn* under *name* for use as ``transform: [name]`` in mapping files; *changed* says
    in plain words what it did to a value it changed (the report counts them: "city: 1 value trimmed")."""

    def decorate(fn: TransformFn) -> TransformFn:
        _REGISTRY[name] = Transform(name, fn, reason, changed or f"changed by {name}")
        return fn

    return decorate


def get_transform(name: str) -> Transform:
    return _REGISTRY[name]


def transform_names() -> list[str]:
    return sorted(_REGISTRY)


def suggest(name: str, choices: list[str]) -> str:
    close = get_close_matches(name, choices, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"{hint}; allowed: {', '.join(choices)}"


def _text(values: pd.Series, fn: Callable[[str], str]) -> pd.Series:
    return values.map(lambda v: None if v is None else fn(v), na_action="ignore")


def _blank_to_none(values: pd.Series) -> pd.Series:
    return values.where(values.str.len() > 0, None) if len(values) else values


@register_transform("trim", changed="trimmed")
def trim(values: pd.Series) -> pd.Series:
    """Strip surrounding whitespace; an all-blank value becomes missing."""
    return _blank_to_none(values.str.strip())


@register_transform("collapse_spaces", changed="with its spaces collapsed")
def collapse_spaces(values: pd.Series) -> pd.Series:
    """Turn every run of whitespace (tabs and line breaks too) into one space and strip the ends;
    an all-blank value becomes missing: `Anna   Maria` → `Anna Maria`."""
    return _blank_to_none(values.str.replace(r"\s+", " ", regex=True).str.strip())


@register_transform("lower", changed="lower-cased")
def lower(values: pd.Series) -> pd.Series:
    """Lower-case, by Unicode rules (`STRASSE` → `strasse`, `İ` → `i̇`)."""
    return values.str.lower()


@register_transform("upper", changed="upper-cased")
def upper(values: pd.Series) -> pd.Series:
    """Upper-case, by Unicode rules (`straße` → `STRASSE`: the text may get longer)."""
    return values.str.upper()


@register_transform("title", changed="title-cased")
def title(values: pd.Series) -> pd.Series:
    """Title-case words, keeping hyphenated parts capitalised (`MÜLLER-LÜDENSCHEIDT`)."""
    return values.str.lower().str.title()


@register_transform("nfc", changed="written in Unicode NFC")
def nfc(values: pd.Series) -> pd.Series:
    """Unicode NFC: a letter and its combining accent become one character, so `Müller` typed
    two ways compares equal (and matches) as one."""
    return _text(values, lambda v: unicodedata.normalize("NFC", v))


@register_transform("zfill", changed="padded with zeros")
def zfill(values: pd.Series, width: int) -> pd.Series:
    """Left-pad digits with zeros (postcodes that a spreadsheet stored as numbers)."""
    return values.where(~values.str.fullmatch(r"\d+", na=False), values.str.zfill(width))


_EMAIL = re.compile(r"^[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+\.[^@\s<>()\[\],;:\".]{2,}$")


@register_transform("email", reason=ReasonCode.INVALID_EMAIL, changed="trimmed and lower-cased")
def email(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Trim and lower-case; a value that is not an address is refused."""
    cleaned = _blank_to_none(values.str.strip().str.lower())
    bad = cleaned.notna() & ~cleaned.str.match(_EMAIL, na=False)
    return cleaned, bad


@register_transform("split", changed="cut to one part")
def split(values: pd.Series, sep: str, part: int) -> pd.Series:
    """Take one part of a value split on *sep* (0 = first, -1 = last); a missing part is missing.

    `{split: {sep: "/", part: 0}}` reads `4711/B` as `4711`.
    """
    pieces = values.str.split(sep, regex=False)
    chosen = pieces.map(lambda p: p[part] if isinstance(p, list) and -len(p) <= part < len(p) else None)
    return _blank_to_none(chosen.astype(object).where(chosen.notna(), None).str.strip())


@register_transform("split_name", changed="cut from a full name")
def split_name(values: pd.Series, part: str, order: str = "given_first") -> pd.Series:
    """Take the given name or surname out of a full name.

    ``order: surname_comma`` reads ``SURNAME, Given``; ``given_first`` reads
    ``Given Middle Surname`` (the last word is the surname).
    """
    if part not in ("given", "surname") or order not in ("given_first", "surname_comma"):
        raise ValueError("split_name: part is given|surname, order is given_first|surname_comma")
    text = values.str.strip()
    if order == "surname_comma":
        pieces = text.str.split(",", n=1, expand=True).reindex(columns=[0, 1])
        surname, given = pieces[0], pieces[1]
    else:
        pieces = text.str.rsplit(" ", n=1, expand=True).reindex(columns=[0, 1])
        one_word = pieces[1].isna()
        surname = pieces[1].where(~one_word, pieces[0])
        given = pieces[0].where(~one_word, None)
    chosen = given if part == "given" else surname
    return _blank_to_none(chosen.astype(object).where(chosen.notna(), None).str.strip())


@register_transform("phone", reason=ReasonCode.INVALID_PHONE, changed="written as E.164")
def phone(values: pd.Series, default_region: str = "DE") -> tuple[pd.Series, pd.Series]:
    """E.164 of the number `phonenumbers` reads, where it is a valid number; anything else is refused.

    `phonenumbers` decides alone: it knows every region's trunk prefixes (`+44 020 7707 0707` is
    `+442077070707`), international prefixes and number plans, which hand-written shapes got
    wrong. Each distinct text is read once (a source repeats its phones, a household shares one).

    Parameters
    ----------
    values
        Phone numbers as typed (None = missing; blank = missing).
    default_region
        ISO country the source's numbers are read in when they carry no country code (the
        mapping's ``default_region``).

    Returns
    -------
    (values, bad)
        E.164 text, and the mask of values that are no valid number (an extension is refused
        too: E.164 cannot hold it, and dropping it would change the value unseen).
    """
    cleaned = _blank_to_none(values.str.strip()) if len(values) else values
    codes, uniques = pd.factorize(cleaned, use_na_sentinel=True)
    read = [phone_e164(text, default_region) for text in uniques] + [None]  # the last slot: missing (-1)
    out = pd.Series([read[c] for c in codes], index=values.index, dtype=object)
    return out, cleaned.notna() & out.isna()


@functools.lru_cache(maxsize=1 << 16)
def phone_e164(text: str, default_region: str) -> str | None:
    """E.164 of *text* read in *default_region* by `phonenumbers`, or None where it is no valid number."""
    try:
        parsed = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        return None
    if parsed.extension or not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
