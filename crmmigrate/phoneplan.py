"""phonenumbers' metadata compiled to DuckDB SQL: the digits of a phone → its E.164, where exact.

`transforms.phone_e164(text, region)` is `phonenumbers.parse(text, region)`, kept where
`is_valid_number` holds, written as E.164 (`+`, the country code, the national significant number
or NSN). On a text of ASCII digits after at most one `+` (sql_phone removes the punctuation
phonenumbers ignores), `parse` and `is_valid_number` come down to these steps on the digits, each
driven by the metadata of one region (`PhoneMetadata`):

* `+` then digits I, or the region's international prefix (`international_prefix`, matched at the
  start) then digits I that do not start with 0: the country code is the prefix of I found in
  `COUNTRY_CODE_TO_REGION_CODE` (1 to 3 digits; the codes are prefix-free, which is checked), the
  rest is read with the metadata of the code's main region (`_maybe_extract_country_code`).
* Other digits D are national, for the default region R: if D starts with R's country code and
  (D does not match R's general pattern while D less the code and less the national prefix does,
  or D is too long for R), the code is taken off (`_maybe_extract_country_code`) and what follows
  is read with the metadata of the code's main region; else D is read with R's.
* Reading: the national prefix (`national_prefix_for_parsing`, matched at the start) is taken off
  unless the number matched the general pattern and the rest does not, and only if the rest has
  a possible length or is too long (`_maybe_strip_national_prefix_carrier_code`,
  `_test_number_length`). The rest is the NSN.
* Valid (`is_valid_number`): of the regions of the code, in their order, the first whose
  `leading_digits` match the start of the NSN, or that has none and knows the NSN's type, is the
  number's; valid iff its type there is known: the general description matches (possible
  lengths, then pattern) and one of the type descriptions does (`_region_code_for_number_from_list`,
  `_number_type_helper`, `_is_number_matching_desc`).

Where every step is written here, the verdict is certain both ways: a valid number is sure, and an
invalid one is certainly refused (phonenumbers either reads the same NSN and finds it invalid, or
raises, which is a refusal too). Where a step is not written here exactly, the verdict is NULL and
the caller marks the row not sure (Python reads it): a `+` followed by 0 or by no known code
(phonenumbers then retries the digits without the `+`; certainly refused unless they start with the
home region's international prefix), an international prefix followed by 0, a national prefix
with a transform rule (AR, BR, JP…), a region outside `SUPPORTED_REGIONS`, a code whose patterns
RE2 does not compile or that use more than the syntax on which RE2 and Python's `re` agree. An
international prefix followed by no known code is certainly refused.

RE2 and `re` agree on these patterns over ASCII digits: they use only classes, `\\d`, groups,
`?`, `{m,n}`, `|` and `$` (checked per pattern), and RE2's leftmost-first match of a prefix ends
where `re.match` does. A `CASE` evaluates a branch only on its rows, and in a `WHEN` an `AND`
stops at its first false operand, while `AND`/`OR` in a value evaluate both sides: so the tests
are nested `CASE`s, cheap length tests before each pattern, and a country's patterns run only on
the rows of its code (two levels of `CASE` on the code: first digit, then code).
"""

from __future__ import annotations

import functools
import re
import re._constants as sre
import re._parser as sre_parse
from collections.abc import Callable
from typing import Any

import duckdb
import phonenumbers
from phonenumbers.phonemetadata import PhoneMetadata
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE, SUPPORTED_REGIONS

from crmmigrate.sqltext import literal

# The type descriptions `_number_type_helper` tries; any match makes the type known. Fixed line
# and mobile first: most numbers are one of them, and a CASE stops at its first true WHEN.
_TYPES = ("fixed_line", "mobile", "toll_free", "premium_rate", "shared_cost", "voip", "personal_number", "pager",
          "uan", "voicemail")
# The syntax of every pattern in the metadata (classes, \d, groups, ?, {m,n}, |, $), on which RE2
# and Python's re agree; `{,n}` (0 to n in re, a literal in RE2) and anything else is refused.
_SAFE = re.compile(r"(?:[0-9\[\]\-()?:|,{}$]|\\d)*")

_Let = Callable[[str], str]


def _safe(pattern: str) -> bool:
    return bool(_SAFE.fullmatch(pattern)) and "{," not in pattern


_CHECK: list[duckdb.DuckDBPyConnection] = []  # one connection for every check of this process


@functools.lru_cache(maxsize=None)
def _compiles(patterns: tuple[str, ...]) -> bool:
    """Whether DuckDB's RE2 takes each of *patterns*."""
    if not _CHECK:
        _CHECK.append(duckdb.connect())
    try:
        _CHECK[0].execute("SELECT " + ", ".join(f"regexp_full_match('0', {literal(p)})" for p in patterns)).fetchall()
    except duckdb.Error:
        return False
    return True


def _metadata(cc: int, region: str) -> Any:
    return PhoneMetadata.metadata_for_region_or_calling_code(cc, region)


def _patterns(m: Any) -> list[str]:
    descs = [m.general_desc, *(getattr(m, t) for t in _TYPES)]
    return [p for p in [*(d.national_number_pattern for d in descs if d is not None), m.leading_digits,
                        m.international_prefix, m.national_prefix_for_parsing] if p]


@functools.lru_cache(maxsize=None)
def usable(cc: int) -> bool:
    """Whether every region of *cc* has metadata whose patterns RE2 reads as `re` does, and
    general lengths within parse's bounds (2..17 digits)."""
    metas = [_metadata(cc, r) for r in COUNTRY_CODE_TO_REGION_CODE[cc]]
    if any(m is None for m in metas):
        return False
    patterns = tuple(p for m in metas for p in _patterns(m))
    lengths = [n for m in metas for n in m.general_desc.possible_length]
    return (all(m.general_desc.possible_length for m in metas) and min(lengths) >= 2 and max(lengths) <= 17
            and all(map(_safe, patterns)) and _compiles(patterns))


def _main(cc: int) -> Any:
    """The metadata parse reads a number of code *cc* with (its main region's, or the non-geographic one)."""
    return _metadata(cc, COUNTRY_CODE_TO_REGION_CODE[cc][0])


# --- SQL pieces over a bound name x of ASCII digits -------------------------------------------

def _length_in(x: str, lengths: tuple[int, ...] | list[int], at_least: int | None = None) -> str:
    """length(x) is one of *lengths*, or at least *at_least*."""
    runs: list[list[int]] = []
    for n in sorted(set(lengths)):
        if runs and runs[-1][1] == n - 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    if at_least is not None:
        while runs and runs[-1][1] >= at_least - 1:
            at_least = min(at_least, runs.pop()[0])
    tests = [f"length({x}) = {lo}" if lo == hi else f"length({x}) BETWEEN {lo} AND {hi}" for lo, hi in runs]
    tests += [f"length({x}) >= {at_least}"] if at_least is not None else []
    return "(" + " OR ".join(tests) + ")" if tests else "false"


def _full(x: str, pattern: str) -> str:
    return f"regexp_full_match({x}, {literal(pattern)})"


def _prefix(x: str, pattern: str) -> str:
    """`re.match(pattern, x)` succeeds (a prefix of x matches)."""
    if pattern.isdigit():
        return f"starts_with({x}, {literal(pattern)})"
    return f"regexp_matches({x}, {literal('^(?:' + pattern + ')')})"


def _after(x: str, pattern: str) -> str:
    """x less the prefix `re.match(pattern, x)` matches (RE2's leftmost-first match ends where re's does)."""
    if pattern.isdigit():
        return f"substr({x}, {len(pattern) + 1})"
    return f"regexp_replace({x}, {literal('^(?:' + pattern + ')')}, '')"


def _widths(items: Any) -> frozenset[int] | None:
    """The lengths of the texts a parsed pattern (re._parser) can match; None where unbounded or
    another construct than the metadata's."""
    out = frozenset({0})
    for op, arg in items:
        if op in (sre.LITERAL, sre.IN):
            each: frozenset[int] | None = frozenset({1})
        elif op is sre.AT:
            each = frozenset({0})
        elif op is sre.SUBPATTERN:
            each = _widths(arg[-1])
        elif op is sre.BRANCH:
            alts = [_widths(a) for a in arg[1]]
            each = None if any(a is None for a in alts) else frozenset().union(*alts)  # type: ignore[arg-type]
        elif op is sre.MAX_REPEAT and arg[1] is not sre.MAXREPEAT:
            one, each, times = _widths(arg[2]), frozenset(), frozenset({0})
            if one is None:
                return None
            for k in range(arg[1] + 1):  # times: the widths of k repetitions
                each = each | times if k >= arg[0] else each
                times = frozenset(a + b for a in times for b in one)
        else:
            return None
        if each is None:
            return None
        out = frozenset(a + b for a in out for b in each)
    return out


@functools.lru_cache(maxsize=None)
def _pattern_widths(pattern: str) -> frozenset[int] | None:
    return _widths(sre_parse.parse(pattern))


def _length_test(x: str, desc: Any) -> tuple[int, ...]:
    """The lengths *desc* allows, or () where its pattern matches no other length anyway (the test is
    then left out: each costs DuckDB binding time)."""
    widths = _pattern_widths(desc.national_number_pattern)
    lengths = tuple(sorted(desc.possible_length))
    return () if widths is not None and widths <= set(lengths) else lengths


def _usable_desc(desc: Any) -> bool:
    return (desc is not None and bool(desc.national_number_pattern)
            and not (desc.possible_length and all(n < 0 for n in desc.possible_length)))  # (-1,): no number of the type


def _descs_match(x: str, descs: list[Any]) -> str | None:
    """`_is_number_matching_desc` of any of *descs*: each its own possible lengths (where it has
    some), then its pattern. Descriptions with the same lengths share one test of the union of
    their patterns (a full match of `A|B` is a full match of A or of B): DuckDB binds each WHEN
    anew, and a query binds hundreds of these, once per source and run."""
    groups: dict[tuple[int, ...], list[str]] = {}
    for d in descs:
        if _usable_desc(d):
            groups.setdefault(_length_test(x, d) if d.possible_length else (), []).append(d.national_number_pattern)
    tests = []
    for lengths, patterns in groups.items():
        pattern = _full(x, "|".join(f"(?:{p})" for p in dict.fromkeys(patterns)) if len(patterns) > 1 else patterns[0])
        tests.append(f"({_length_in(x, lengths)} AND {pattern})" if lengths else pattern)
    return "CASE " + " ".join(f"WHEN {t} THEN true" for t in tests) + " ELSE false END" if tests else None


def _type_known(x: str, m: Any) -> str:
    """`_number_type_helper(x, m) != UNKNOWN`."""
    types = [m.fixed_line, *([] if m.same_mobile_and_fixed_line_pattern else [m.mobile])]
    types += [getattr(m, t) for t in _TYPES[2:]]
    general, any_type = _descs_match(x, [m.general_desc]), _descs_match(x, types)
    if general is None or any_type is None:
        return "false"
    return f"CASE WHEN {general} THEN {any_type} ELSE false END"


def _valid(cc: int, x: str) -> str:
    """`is_valid_number` of the NSN x under code *cc*."""
    regions = COUNTRY_CODE_TO_REGION_CODE[cc]
    if len(regions) == 1:  # the region is taken without looking at its leading digits
        return _type_known(x, _metadata(cc, regions[0]))
    whens = []
    for r in regions:  # `_region_code_for_number_from_list`
        m = _metadata(cc, r)
        if m.leading_digits is not None:
            whens.append(f"WHEN {_prefix(x, m.leading_digits)} THEN {_type_known(x, m)}")
        else:
            whens.append(f"WHEN {_type_known(x, m)} THEN true")
    return "CASE " + " ".join(whens) + " ELSE false END"


def _general(x: str, m: Any) -> str:
    """`_match_national_number(x, general_desc)`: the pattern alone, no lengths."""
    return _full(x, m.general_desc.national_number_pattern) if m.general_desc.national_number_pattern else "false"


def _too_long(x: str, m: Any) -> str:
    """`_test_number_length(x, m) == TOO_LONG`."""
    local = m.general_desc.possible_length_local_only
    test = f"length({x}) > {max(m.general_desc.possible_length)}"
    return f"({test} AND NOT {_length_in(x, local)})" if local else test


def _strip(x: str, m: Any, keep_short: bool) -> str:
    """x less m's national prefix, as `_maybe_strip_national_prefix_carrier_code`; with
    *keep_short*, kept whole unless the rest passes `_test_number_length` (as parse does). NULL
    where a transform rule would rewrite the number."""
    npp = m.national_prefix_for_parsing
    if not npp:
        return x
    rest = _after(x, npp)
    if m.national_prefix_transform_rule:  # the rule applies when the last group took part: not written here
        return f"CASE WHEN {_prefix(x, npp)} THEN NULL ELSE {x} END"
    whens = [f"WHEN NOT {_prefix(x, npp)} THEN {x}",
             f"WHEN {_general(x, m)} AND NOT {_general(rest, m)} THEN {x}"]  # viable, and the rest would not be
    if keep_short:  # the rest must be possible or too long, and not possible only locally
        possible, local = m.general_desc.possible_length, m.general_desc.possible_length_local_only
        top = max(possible)  # possible, or longer than any possible length (TOO_LONG): not local only
        ok = _length_in(rest, [n for n in possible if n < top], top)
        if local:
            ok = f"({ok} AND NOT {_length_in(rest, local)})"
        whens.append(f"WHEN NOT {ok} THEN {x}")
    return "CASE " + " ".join(whens) + f" ELSE {rest} END"


def _by_code(code: str, branches: dict[str, str], default: str) -> str:
    """CASE on the country code *code* (text), two levels deep: first digit, then the code."""
    by_digit: dict[str, list[str]] = {}
    for cc, expr in branches.items():
        by_digit.setdefault(cc[0], []).append(f"WHEN {literal(cc)} THEN {expr}")
    inner = {d: f"CASE {code} {' '.join(ws)} ELSE {default} END" for d, ws in by_digit.items()}
    return f"CASE left({code}, 1) " + " ".join(f"WHEN {literal(d)} THEN {e}" for d, e in inner.items()) + \
        f" ELSE {default} END"


_CODES = sorted((str(cc) for cc in COUNTRY_CODE_TO_REGION_CODE), key=lambda c: (len(c), c))
# `_extract_country_code` takes the shortest prefix found: a prefix-free set has only one.
assert not any(a != b and b.startswith(a) for a in _CODES for b in _CODES)
_CODE_RE = "^(?:" + "|".join(_CODES) + ")"


def phone_sql(c: str, region: str, let: _Let) -> tuple[str, str, str]:
    """(value, sure, refused) of `phone_e164` over *c*: a bound name, the text without its
    punctuation (NULL or any text). *let* binds an expression to a name (a column computed once
    per row). `sure` and `refused` are never NULL and both false where *c* is not `+`? and three
    or more ASCII digits; `refused`: phonenumbers certainly reads no valid number (the value is
    then NULL). Every step is exact where the NSN is not NULL, so an invalid NSN is as certain
    as a valid one; and parse raising is a refusal too."""
    national = region in SUPPORTED_REGIONS and usable(phonenumbers.country_code_for_region(region))
    home = PhoneMetadata.metadata_for_region(region) if national else None
    idd = home.international_prefix if home is not None else None
    # How the digits are read: 1 `+`, 2 the international prefix, 3 national; NULL: not here.
    route = [f"WHEN NOT regexp_full_match({c}, '\\+?[0-9]{{3,}}') THEN NULL", f"WHEN starts_with({c}, '+') THEN 1"]
    if idd:
        # The prefix is not taken as one where a 0 follows (`_parse_prefix_as_idd`): then the digits
        # are national, with the prefix; not written here.
        route.append(f"WHEN {_prefix(c, idd)} THEN CASE WHEN starts_with({_after(c, idd)}, '0') THEN NULL ELSE 2 END")
    route.append(f"WHEN {'true' if national else 'false'} THEN 3")
    how = let(f"CASE {' '.join(route)} END")
    digits = let(f"CASE {how} WHEN 1 THEN substr({c}, 2) WHEN 2 THEN {_after(c, idd) if idd else 'NULL'} END")
    intl_cc = let(f"regexp_extract({digits}, {literal(_CODE_RE)})")  # '' where no code is known
    codes = {str(cc): cc for cc in COUNTRY_CODE_TO_REGION_CODE if usable(cc)}
    # The NSN of an international number: the rest, read with the code's main region.
    intl_nsn = let(_by_code(intl_cc, {s: _strip(f"substr({digits}, {len(s) + 1})", _main(cc), True)
                                      for s, cc in codes.items()}, "NULL"))
    if national:
        assert home is not None
        own = phonenumbers.country_code_for_region(region)
        lead = f"substr({c}, {len(str(own)) + 1})"
        lead_stripped = let(f"CASE WHEN {how} = 3 AND starts_with({c}, {literal(str(own))}) "
                            f"THEN {_strip(lead, home, False)} END")
        takes_code = (f"{how} = 3 AND starts_with({c}, {literal(str(own))}) AND "
                      f"CASE WHEN {_too_long(c, home)} THEN true WHEN {_general(c, home)} THEN false "
                      f"ELSE {_general(lead_stripped, home)} END")
        # The code taken off: the number's metadata is the code's main region's from then on.
        taken = let(f"CASE WHEN {takes_code} THEN 1 WHEN starts_with({c}, {literal(str(own))}) "
                    f"AND {lead_stripped} IS NULL THEN NULL ELSE 0 END")
        nat_nsn = let(f"CASE WHEN {how} <> 3 THEN NULL WHEN {taken} = 1 THEN {_strip(lead_stripped, _main(own), True)} "
                      f"WHEN {taken} = 0 THEN {_strip(c, home, True)} END")
        code = let(f"CASE WHEN {how} = 3 THEN {literal(str(own))} ELSE {intl_cc} END")
        nsn = let(f"CASE WHEN {how} = 3 THEN {nat_nsn} ELSE {intl_nsn} END")
    else:
        code, nsn = intl_cc, intl_nsn
    valid = _by_code(code, {s: _valid(cc, nsn) for s, cc in codes.items()}, "false")
    # After a `+` or the international prefix, digits with no known code: `_extract_country_code`
    # finds none and parse raises. Only a `+` is forgiven, by reading the digits again without it:
    # then they are international only after the home region's prefix (own code would have been
    # found), else national, where parse raises again (a code of 0).
    unknown = f"{intl_cc} = ''"
    if idd:
        after = _after(digits, idd)
        retried = f"CASE WHEN {_prefix(digits, idd)} THEN starts_with({after}, '0') ELSE true END"
        fails = f"CASE WHEN {how} = 2 THEN {unknown} WHEN {how} = 1 AND {unknown} THEN {retried} ELSE false END"
    else:
        fails = "false"  # no home region read here: its retry after a `+` is not written
    # true: valid; false: certainly no valid number (refused); NULL: not decided here.
    verdict = let(f"CASE WHEN {nsn} IS NOT NULL THEN {valid} WHEN {fails} THEN false END")
    return f"CASE WHEN {verdict} THEN '+' || {code} || {nsn} END", f"coalesce({verdict}, false)", \
        f"coalesce(NOT {verdict}, false)"
