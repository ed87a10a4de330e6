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
from typing import TYPE_CHECKING, Any
from difflib import get_close_matches

import numpy as np
import pandas as pd
import phonenumbers

from crmmigrate.countries import alpha2, code_key_sql, fold_sql, lookup_sql, sql_foldable
from crmmigrate.phoneplan import phone_sql
from crmmigrate.spec.reasons import ReasonCode
from crmmigrate.sqlpipe import (
    CASED, CASED_RANGES, SHARP_S, UNCASED_RANGES, _LAMBDA, _LETTERS, _LOWER_SAFE, _TITLE_SAFE, _UPPER_SAFE,
    _WS, Compiler, _ascii, _case_safe, _class, _full, _no_args, _NoSql, _Pipe, _strip, quote_str,
)
from crmmigrate.sqltext import WHITESPACE

if TYPE_CHECKING:
    from crmmigrate.spec.model import MappingSpec

TransformFn = Callable[..., "pd.Series | tuple[pd.Series, pd.Series]"]


@dataclass(frozen=True)
class Transform:
    """One rule of the registry: its Python half (the reference semantics), and optionally its
    DuckDB half, written beside it (a `sqlpipe.Compiler`: where it is sure, it gives the Python
    half's value; tests/map/test_conformance.py holds every registered pair to that)."""

    name: str
    fn: TransformFn
    reason: ReasonCode
    changed: str  # what it did to a value it changed, in plain words for the report ("trimmed")
    sql: Compiler | None = None  # None: the field is mapped by Python, and run.json says so

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


def register_transform(name: str, reason: ReasonCode = ReasonCode.TRANSFORM_ERROR, changed: str | None = None,
                       sql: Compiler | None = None):
    """Register *fn* under *name* for use as ``transform: [name]`` in mapping files; *changed* says
    in plain words what it did to a value it changed (the report counts them: "city: 1 value
    trimmed"); *sql*, its DuckDB half if it has one (without, Python maps the field: fast enough at
    demo sizes, and the route is recorded)."""

    def decorate(fn: TransformFn) -> TransformFn:
        _REGISTRY[name] = Transform(name, fn, reason, changed or f"changed by {name}", sql)
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


def sql_trim(p: _Pipe, args: dict[str, Any], mapping: MappingSpec) -> None:
    _no_args("trim", args)
    p.value = f"nullif({_strip(p.bind())}, '')"


@register_transform("trim", changed="trimmed", sql=sql_trim)
def trim(values: pd.Series) -> pd.Series:
    """Strip surrounding whitespace; an all-blank value becomes missing."""
    return _blank_to_none(values.str.strip())


def sql_collapse_spaces(p: _Pipe, args: dict[str, Any], mapping: MappingSpec) -> None:
    # Python's `\s+` is every str.isspace() character; after the replacement only ' ' is left to strip.
    _no_args("collapse_spaces", args)
    spaced = f"regexp_replace({p.value}, {quote_str(f'[{_WS}]+')}, ' ', 'g')"
    p.value = f"nullif(trim({spaced}), '')"


@register_transform("collapse_spaces", changed="with its spaces collapsed", sql=sql_collapse_spaces)
def collapse_spaces(values: pd.Series) -> pd.Series:
    """Turn every run of whitespace (tabs and line breaks too) into one space and strip the ends;
    an all-blank value becomes missing: `Anna   Maria` → `Anna Maria`."""
    return _blank_to_none(values.str.replace(r"\s+", " ", regex=True).str.strip())


def sql_lower(p: _Pipe, args: dict[str, Any], mapping: MappingSpec) -> None:
    _no_args("lower", args)
    p.require(_case_safe(p.bind(), _LOWER_SAFE))
    p.value = f"lower({p.value})"


@register_transform("lower", changed="lower-cased", sql=sql_lower)
def lower(values: pd.Series) -> pd.Series:
    """Lower-case, by Unicode rules (`STRASSE` → `strasse`, `İ` → `i̇`)."""
    return values.str.lower()


def sql_upper(p: _Pipe, args: dict[str, Any], mapping: MappingSpec) -> None:
    _no_args("upper", args)
    p.require(_case_safe(p.bind(), _UPPER_SAFE))
    p.value = f"upper({p.value})"


@register_transform("upper", changed="upper-cased", sql=sql_upper)
def upper(values: pd.Series) -> pd.Series:
    """Upper-case, by Unicode rules (`straße` → `STRASSE`: the text may get longer)."""
    return values.str.upper()


def sql_title(p: _Pipe, args: dict[str, Any], mapping: MappingSpec) -> None:
    """`values.str.lower().str.title()`: Python upper-cases a cased letter that follows an
    uncased character (or starts the text) and lower-cases the others, so `o'neil` → `O'Neil`
    and `1st` → `1St`. That is: upper-case the first character of each run of cased letters
    (or of every run: UNCASED maps to itself). Most names are one run, read without a list."""
    _no_args("title", args)
    x = p.bind()
    # One run is also safe: computed once, it spares most names (one run of letters) the second regex.
    one_run = p.let(_full(x, f'[{CASED}][{_LETTERS}]*'))
    p.require(f"CASE WHEN {one_run} THEN true ELSE {_case_safe(x, _TITLE_SAFE)} END")  # (OR would run both)
    runs = f"regexp_extract_all(lower({x}), {quote_str(f'[{_LETTERS}]+|[^{_LETTERS}]+')})"
    p.value = (f"CASE WHEN {one_run} THEN upper(left({x}, 1)) || lower(substr({x}, 2)) "
               f"ELSE array_to_string(list_transform({runs}, lambda {_LAMBDA}w: upper(left({_LAMBDA}w, 1)) || substr({_LAMBDA}w, 2)), '') END")


@register_transform("title", changed="title-cased", sql=sql_title)
def title(values: pd.Series) -> pd.Series:
    """Title-case words, keeping hyphenated parts capitalised (`MÜLLER-LÜDENSCHEIDT`)."""
    return values.str.lower().str.title()


def sql_nfc(p: _Pipe, args: dict[str, Any], mapping: MappingSpec) -> None:
    _no_args("nfc", args)
    x = p.bind()
    p.require(f"{x} IS NULL OR {_ascii(x)}")  # ASCII text is already NFC


@register_transform("nfc", changed="written in Unicode NFC", sql=sql_nfc)
def nfc(values: pd.Series) -> pd.Series:
    """Unicode NFC: a letter and its combining accent become one character, so `Müller` typed
    two ways compares equal (and matches) as one."""
    return _text(values, lambda v: unicodedata.normalize("NFC", v))


def sql_zfill(p: _Pipe, args: dict[str, Any], mapping: MappingSpec) -> None:
    width = args.get("width")
    if set(args) != {"width"} or type(width) is not int:
        raise _NoSql(f"zfill: width must be an int, got {args}")
    x = p.bind()
    # Python's `\d+` also takes non-ASCII digits: sure on ASCII, or when an ASCII non-digit rules it out.
    p.require(f"{x} IS NULL OR {_ascii(x)} OR regexp_matches({x}, '[\\x{{1}}-/:-\\x{{7f}}]')")
    p.value = f"CASE WHEN {_full(x, '[0-9]+')} AND length({x}) < {width} THEN lpad({x}, {width}, '0') ELSE {x} END"


@register_transform("zfill", changed="padded with zeros", sql=sql_zfill)
def zfill(values: pd.Series, width: int) -> pd.Series:
    """Left-pad digits with zeros (postcodes that a spreadsheet stored as numbers)."""
    return values.where(~values.str.fullmatch(r"\d+", na=False), values.str.zfill(width))


_EMAIL = re.compile(r"^[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+\.[^@\s<>()\[\],;:\".]{2,}$")


def sql_email(p: _Pipe, args: dict[str, Any], mapping: MappingSpec) -> None:
    """Trim + lower, refused unless transforms._EMAIL matches. Sure on text that lower-cases alike
    (_LOWER_SAFE): there lower-casing maps letters to letters and leaves the rest, so the match of
    the text decides as the match of its lower case; and Python's `\\s` is exactly WHITESPACE."""
    _no_args("email", args)
    t = p.let(_strip(p.bind()))
    safe = CASED_RANGES + SHARP_S + UNCASED_RANGES
    char, tld = _class(safe, '@<>()[],;:"' + WHITESPACE), _class(safe, '@<>()[],;:".' + WHITESPACE)
    address = _full(t, f"[{char}]+@[{char}]+\\.[{tld}]{{2,}}")
    p.require(f"{t} IS NULL OR {t} = '' OR {address}")
    p.value = f"nullif(lower({t}), '')"


@register_transform("email", reason=ReasonCode.INVALID_EMAIL, changed="trimmed and lower-cased", sql=sql_email)
def email(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Trim and lower-case; a value that is not an address is refused."""
    cleaned = _blank_to_none(values.str.strip().str.lower())
    bad = cleaned.notna() & ~cleaned.str.match(_EMAIL, na=False)
    return cleaned, bad


def sql_split(p: _Pipe, args: dict[str, Any], mapping: MappingSpec) -> None:
    sep, part = args.get("sep"), args.get("part")
    if set(args) != {"sep", "part"} or not isinstance(sep, str) or not sep or type(part) is not int:
        raise _NoSql(f"split: sep must be a non-empty str and part an int, got {args}")
    index = part + 1 if part >= 0 else part  # DuckDB lists count from 1; negative counts from the end
    piece = p.let(f"string_split({p.value}, {quote_str(sep)})[{index}]")
    p.value = f"nullif({_strip(piece)}, '')"


@register_transform("split", changed="cut to one part", sql=sql_split)
def split(values: pd.Series, sep: str, part: int) -> pd.Series:
    """Take one part of a value split on *sep* (0 = first, -1 = last); a missing part is missing.

    `{split: {sep: "/", part: 0}}` reads `4711/B` as `4711`.
    """
    pieces = values.str.split(sep, regex=False)
    chosen = pieces.map(lambda p: p[part] if isinstance(p, list) and -len(p) <= part < len(p) else None)
    return _blank_to_none(chosen.astype(object).where(chosen.notna(), None).str.strip())


def sql_split_name(p: _Pipe, args: dict[str, Any], mapping: MappingSpec) -> None:
    part, order = args.get("part"), args.get("order", "given_first")
    if not set(args) <= {"part", "order"} or part not in ("given", "surname") \
            or order not in ("given_first", "surname_comma"):
        raise _NoSql(f"split_name: bad arguments {args}")
    t = p.let(_strip(p.bind()))
    if order == "surname_comma":  # `SURNAME, Given`: split at the first comma
        given = f"CASE WHEN strpos({t}, ',') > 0 THEN regexp_extract({t}, '(?s)^[^,]*,(.*)$', 1) END"
        surname = f"regexp_extract({t}, '(?s)^([^,]*)', 1)"
    else:  # `Given Middle Surname`: split at the last space (only ' ', like str.rsplit(" "))
        given = f"CASE WHEN strpos({t}, ' ') > 0 THEN regexp_extract({t}, '(?s)^(.*) ', 1) END"
        surname = f"CASE WHEN strpos({t}, ' ') > 0 THEN regexp_extract({t}, '(?s) ([^ ]*)$', 1) ELSE {t} END"
    p.value = given if part == "given" else surname
    p.value = f"nullif({_strip(p.bind())}, '')"


@register_transform("split_name", changed="cut from a full name", sql=sql_split_name)
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


def sql_phone(p: _Pipe, args: dict[str, Any], mapping: MappingSpec) -> None:
    """`phonenumbers` read through its own metadata (phoneplan): sure where the digits take a
    path phoneplan writes exactly and the number is valid, certainly refused where it is not (or
    where phonenumbers certainly raises); every other text goes to Python.

    Sure only on text of ASCII digits, at most one `+` before them, and ` ()./-`: on such text
    phonenumbers starts at the `+` or first digit, finds no extension (that needs a letter, `#`,
    `,`, `;` or `~`), takes it as viable (three digits or more), and reads the digits alone."""
    _no_args("phone", args)  # default_region comes from the mapping (an argument would clash with it)
    t = p.let(_strip(p.bind()))
    c = t
    for junk in " ()./-":
        # Only where it occurs: replace() copies the text even when it finds nothing, contains()
        # is a memchr. Each step is bound (a layer of its own): a CASE reading an unbound nested
        # one would evaluate it twice, at every level.
        c = p.let(f"CASE WHEN contains({c}, {quote_str(junk)}) THEN replace({c}, {quote_str(junk)}, '') ELSE {c} END")
    value, sure, refused = phone_sql(c, mapping.default_region, p.let)
    # Refused whatever the text's length (parse refuses a text over 250 characters before reading it).
    p.refuse("phone", refused)
    p.require(f"{t} IS NULL OR {t} = '' OR (strlen({t}) <= 250 AND {sure})")
    p.value = value  # NULL unless valid (so NULL for a missing or blank text)


@register_transform("phone", reason=ReasonCode.INVALID_PHONE, changed="written as E.164", sql=sql_phone)
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
    return _per_distinct(values, lambda text: phone_e164(text, default_region))


def _per_distinct(values: pd.Series, read: Callable[[str], str | None]) -> tuple[pd.Series, pd.Series]:
    """*read* of each distinct stripped value once (a source repeats them), and the mask of the
    values it reads as None; a missing or blank value is missing, not refused."""
    cleaned = _blank_to_none(values.str.strip()) if len(values) else values
    codes, uniques = pd.factorize(cleaned, use_na_sentinel=True)
    done = np.array([read(text) for text in uniques] + [None], dtype=object)  # -1: missing
    out = pd.Series(done[codes], index=values.index, dtype=object)
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


def sql_country(p: _Pipe, args: dict[str, Any], mapping: MappingSpec) -> None:
    """countries.alpha2 of the text: sure where it has a code's shape or DuckDB folds it as Python
    does (countries.sql_foldable), and a code or name is found; certainly refused where it folds
    alike and neither is found. Other text (a script or compatibility character DuckDB folds
    otherwise) goes to Python."""
    _no_args("country", args)
    x = p.bind()
    blank = p.let(f"coalesce({_full(x, f'[{_WS}]*')}, true)")  # missing, or what str.strip() empties
    foldable = p.let(sql_foldable(x))
    by_code = p.let(lookup_sql(p.let(code_key_sql(x))))
    code = p.let(f"coalesce({by_code}, {lookup_sql(p.let(fold_sql(x)))})")
    p.refuse("country", f"NOT {blank} AND {foldable} AND {code} IS NULL")
    p.require(f"{blank} OR ({foldable} AND {code} IS NOT NULL) OR {by_code} IS NOT NULL")
    p.value = code  # NULL for a blank text: no name folds to nothing


@register_transform("country", reason=ReasonCode.INVALID_COUNTRY, changed="written as ISO 3166-1 alpha-2",
                    sql=sql_country)
def country(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """ISO 3166-1 alpha-2 of a country written as a code or a name, read by `pycountry`; any
    other text is refused.

    It reads alpha-2 and alpha-3 codes, pycountry's English names (`Germany`, `Federal Republic
    of Germany`, `South Korea`), its translations in the languages of Europe's states
    (`Deutschland`, `Österreich`, `Suisse`, `Svizzera`, `Česká republika`, `Magyarország`) and a
    few names it lacks (`UK`, `Great Britain`, `England`, `Turkey`, `Ivory Coast`). Case,
    accents, punctuation and spacing do not count: `u.s.a.`, `ÖSTERREICH` and `Osterreich` read.
    A code is read only as written, but for case and surrounding spaces (`N/A` is no Namibia). A
    name two countries share in those translations, a numeric code and a misspelling are refused,
    never guessed. Each distinct text is read once.
    """
    return _per_distinct(values, alpha2)
