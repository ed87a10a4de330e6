"""sql_phone (map/phoneplan.py) against transforms.phone, differentially.

Wherever the SQL is sure, its value is `phone_e164`'s and Python does not refuse it; and ordinary
numbers are sure, or the test would pass trivially. The inputs: every region's example numbers
(fixed line, mobile) in six written shapes, near-misses of them (last digits redrawn), and
random digit strings after `+`, `00`, `0`, `1` or nothing. The seed is fixed (SEED).
"""

from __future__ import annotations

import random
import re
import sys

import duckdb
import pandas as pd
import phonenumbers
import pyarrow as pa
import pytest
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from crmmigrate import transforms
from crmmigrate.phoneplan import _pattern_widths, usable
from crmmigrate.map.duckdb import sql_half
from crmmigrate.sqlpipe import _Pipe
from tests.map.test_mapper import spec
from tests.map.test_sql import dirty_contacts

SEED = 20261207
REGIONS = ["DE", "US", "GB", "FR", "IT", "AR", "BR", "IN", "CH", "AT"]


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


def shapes(number: phonenumbers.PhoneNumber) -> list[str]:
    """National, international, E.164, with dashes, with the area code in brackets, after 00."""
    national = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
    international = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    groups = re.split(r"[ \-]", national, maxsplit=1)
    bracketed = f"({groups[0]}) {groups[1]}" if len(groups) == 2 else f"({national})"
    return [national, international, e164, international.replace(" ", "-"), bracketed, "00" + e164[1:]]


def examples() -> list[str]:
    out = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE):
            number = phonenumbers.example_number_for_type(region, kind)
            if number is not None:
                out += shapes(number)
    return out


def near_misses(texts: list[str], rng: random.Random) -> list[str]:
    """Each text with its last digit, and its last three, redrawn: valid and invalid neighbours."""
    out = []
    for text in texts:
        for k in (1, 3):
            digits = [i for i, c in enumerate(text) if c.isdigit()][-k:]
            chars = list(text)
            for i in digits:
                chars[i] = str(rng.randrange(10))
            out.append("".join(chars))
    return out


def random_digits(rng: random.Random, n: int) -> list[str]:
    return [rng.choice(["+", "00", "0", "1", ""]) + "".join(rng.choices("0123456789", k=rng.randint(3, 17)))
            for _ in range(n)]


def sure_values(con: duckdb.DuckDBPyConnection, values: list[str | None], region: str) -> tuple[int, int]:
    """Asserts each sure value is Python's; returns (sure, mapped by Python)."""
    p = _Pipe('"V"')
    sql_half("phone")(p, {}, spec([], default_region=region))
    value, sure, _ = p.emit()
    con.register("v", pa.table({"V": pa.array(values, pa.string())}))
    try:
        got = con.sql(f"SELECT {value}, {sure} FROM {p.over('v')}").fetchall()
    finally:
        con.unregister("v")
    out, bad = transforms.phone(pd.Series(values, dtype=object), region)
    for text, want, refused, (have, is_sure) in zip(values, out, bad, got):
        if is_sure:
            assert (have, bool(refused)) == (want, False), f"phone({text!r}) in {region}"
    mapped = [w is not None and w == w for w in out]
    return sum(s and m for (_, s), m in zip(got, mapped)), sum(mapped)


EXAMPLES = examples()


@pytest.mark.parametrize("region", REGIONS)
def test_examples_and_random_digits_agree_with_phonenumbers(con: duckdb.DuckDBPyConnection, region: str) -> None:
    rng = random.Random(f"{SEED} {region}")
    values = EXAMPLES + near_misses(EXAMPLES, rng) + random_digits(rng, 2000)
    sure, mapped = sure_values(con, values, region)
    print(f"{region}: {sure} of {mapped} mapped sure", file=sys.stderr)
    # Transform rules (AR, BR: the national prefix rewrites the number) leave national shapes to Python.
    assert sure > (0.9 if region in ("AR", "BR") else 0.95) * mapped, (sure, mapped)


def test_examples_with_their_own_region(con: duckdb.DuckDBPyConnection) -> None:
    """Each region reads its own examples (the national shapes are the point); a seeded sample of
    regions beside the ten above, as each region is a query of its own to bind (~0.3 s)."""
    rng = random.Random(SEED)
    regions = sorted(set(REGIONS) | set(rng.sample(sorted(phonenumbers.SUPPORTED_REGIONS), 30)))
    total_sure = total_mapped = 0
    for region in regions:
        own = []
        for kind in (PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE):
            number = phonenumbers.example_number_for_type(region, kind)
            own += shapes(number) if number is not None else []
        if own:
            sure, mapped = sure_values(con, own + near_misses(own, rng), region)
            total_sure, total_mapped = total_sure + sure, total_mapped + mapped
    print(f"own regions: {total_sure} of {total_mapped} mapped sure", file=sys.stderr)
    assert total_sure > 0.9 * total_mapped, (total_sure, total_mapped)


def test_bench_phones_are_sure() -> None:
    with duckdb.connect() as c:
        sure, mapped = sure_values(c, list(dirty_contacts(5000)["phone"]), "US")
    assert mapped > 2000 and sure > 0.95 * mapped, (sure, mapped)


def test_nearly_every_country_code_is_compiled() -> None:
    codes = phonenumbers.COUNTRY_CODE_TO_REGION_CODE
    assert usable(1) and usable(44) and usable(49) and sum(map(usable, codes)) > 0.95 * len(codes)


@pytest.mark.parametrize(("pattern", "widths"), [
    (r"\d{3}", {3}), (r"(?:[2-9]\d{2}|1)\d?$", {1, 2, 3, 4}), (r"(?:\d{2}){1,3}", {2, 4, 6}), (r"1|", {0, 1}),
    (r"\d+", None), (r"\d*", None), (r"(?=1)\d", None),
])
def test_pattern_widths(pattern: str, widths: set[int] | None) -> None:
    """The lengths a pattern matches (a length test is left out where it adds nothing); None
    where unbounded or unknown, and then the test is kept."""
    assert _pattern_widths(pattern) == (None if widths is None else frozenset(widths))
    if widths is not None:  # checked by brute force on short digit strings
        found = {n for n in range(6) for k in range(10 ** n) if re.fullmatch(pattern, str(k).zfill(n) if n else "")}
        assert found <= widths
