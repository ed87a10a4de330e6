"""How one department system happens to record a person: the corruptions of real data.

Each appearance draws its corruptions independently at the rates of ``RATES`` and lists the
kinds it got in ``Appearance.noise``, so the generator can tell truth.json which record got which
corruption. Rates are per appearance unless said otherwise (see ``generator.py``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from crmmigrate.demo import names
from crmmigrate.demo.companies import Company
from crmmigrate.demo.model import END, MOVED_AFTER, START, Address, Person, Phone

RATES: dict[str, float] = {
    "nickname": 0.12,  # of appearances of a person whose given name has a known short form
    "name_typo": 0.05,
    "names_swapped": 0.02,  # given name written as the surname and the other way round
    "surname_missing": 0.01,
    "birth_date_missing": 0.08,
    "birth_date_swapped": 0.03,  # of birth dates written whose day and month differ
    "birth_date_impossible": 0.005,  # of birth dates written: 30.02., 31.04. ...
    "street_typo": 0.03,
    "locality_typo": 0.02,
    "old_address": 0.5,  # of appearances of a person who moved
}
NAME_NOISE = ("nickname", "name_typo", "names_swapped", "surname_missing")
BIRTH_NOISE = ("birth_date_missing", "birth_date_swapped", "birth_date_impossible")
ADDRESS_NOISE = ("street_typo", "locality_typo", "old_address")
_SHORT_MONTHS = ((2, 30), (2, 31), (4, 31), (6, 31), (9, 31), (11, 31))


@dataclass(frozen=True)
class Appearance:
    """How one department system happens to record a person.

    ``birth`` is (year, month, day) as written, which may be no date at all.
    """

    pid: str
    given: str
    surname: str
    middle: str | None
    birth: tuple[int, int, int] | None
    email: str | None
    phone: Phone | None
    mobile: Phone | None
    address: Address
    company: Company | None
    ts: int
    noise: tuple[str, ...] = ()


def typo(text: str, rng: random.Random) -> str:
    """Swap two neighbouring characters of *text* or drop one; the result always differs."""
    if len(text) < 3:
        return text + text[-1]
    i = rng.randrange(len(text) - 1)
    swapped = text[:i] + text[i + 1] + text[i] + text[i + 2:]
    if rng.random() < 0.5 and swapped != text:
        return swapped
    return text[:i] + text[i + 1:]


def _letter_typo(text: str, rng: random.Random) -> str:
    """A typo inside the longest word of *text* (a street's name, not its house number)."""
    words = text.split(" ")
    i = max(range(len(words)), key=lambda k: len(words[k]))
    words[i] = typo(words[i], rng)
    return " ".join(words)


def _spacing(text: str, rng: random.Random) -> str:
    return rng.choice((f"{text} ", f" {text}", text.replace(" ", "  ") if " " in text else f"{text}  "))


def _street_variant(street: str, rng: random.Random) -> str:
    # legacy systems disagree on abbreviations more often than on anything else
    if rng.random() < 0.12 and "straße" in street:
        return street.replace("straße", rng.choice(("str.", "strasse", "str")))
    if rng.random() < 0.03:
        return _spacing(street, rng)
    return street


def _names(person: Person, rng: random.Random, noise: list[str]) -> tuple[str, str]:
    given, surname = person.given, person.surname
    short = names.nicknames_of(given, person.origin)
    if short and rng.random() < RATES["nickname"]:
        given = rng.choice(short)
        noise.append("nickname")
    if rng.random() < RATES["names_swapped"]:
        given, surname = surname, given
        noise.append("names_swapped")
    if rng.random() < RATES["surname_missing"]:
        surname = ""
        noise.append("surname_missing")
    if rng.random() < RATES["name_typo"]:
        if surname and rng.random() < 0.5:
            surname = typo(surname, rng)
        else:
            given = typo(given, rng)
        noise.append("name_typo")
    if rng.random() < 0.03:
        given, surname = rng.choice(((given.lower(), surname.lower()), (given.upper(), surname.upper())))
    if rng.random() < 0.03:
        given = _spacing(given, rng)
    return given, surname


def _birth(person: Person, rng: random.Random, noise: list[str]) -> tuple[int, int, int] | None:
    if rng.random() < RATES["birth_date_missing"]:
        noise.append("birth_date_missing")
        return None
    y, m, d = person.birth.year, person.birth.month, person.birth.day
    if rng.random() < RATES["birth_date_impossible"]:
        noise.append("birth_date_impossible")
        m, d = rng.choice(_SHORT_MONTHS)
    elif d != m and rng.random() < RATES["birth_date_swapped"]:
        # a day above 12 read as a month makes a date no calendar has, as it does in real systems
        noise.append("birth_date_swapped")
        m, d = d, m
    return y, m, d


def _address(person: Person, rng: random.Random, noise: list[str]) -> tuple[Address, int]:
    if person.new_address is not None and rng.random() >= RATES["old_address"]:
        address, ts = person.new_address, rng.randrange(MOVED_AFTER, END)
    else:
        hi = END if person.new_address is None else MOVED_AFTER
        address, ts = person.address, rng.randrange(START, hi)
        if person.new_address is not None:
            noise.append("old_address")
    street = _street_variant(address.street, rng)
    if rng.random() < RATES["street_typo"]:
        street = _letter_typo(street, rng)
        noise.append("street_typo")
    city = address.city
    if rng.random() < RATES["locality_typo"]:
        city = typo(city, rng)
        noise.append("locality_typo")
    return replace(address, street=street, city=city), ts


def appear(person: Person, rng: random.Random, force_diff: bool = False) -> Appearance:
    """Draw one noisy appearance of *person* in some department system.

    Parameters
    ----------
    person : Person
        The true person.
    rng : random.Random
        Source of all randomness.
    force_diff : bool
        Guarantee at least one small difference (used for in-department duplicates).

    Returns
    -------
    Appearance
    """
    noise: list[str] = []
    given, surname = _names(person, rng, noise)
    birth = _birth(person, rng, noise)
    email: str | None = person.alt_email if rng.random() < 0.05 else person.email
    if rng.random() < 0.03:
        email = email.title() if rng.random() < 0.5 else email.upper()
    if rng.random() < 0.06:
        email = None
    phone = None if rng.random() < 0.08 else person.phone
    mobile = None if rng.random() < 0.08 else person.mobile
    address, ts = _address(person, rng, noise)
    company = person.company if rng.random() < 0.9 else None
    app = Appearance(person.pid, given, surname, person.middle, birth, email, phone, mobile, address,
                     company, ts, tuple(noise))
    return _force_difference(app, rng) if force_diff else app


def _force_difference(app: Appearance, rng: random.Random) -> Appearance:
    kind = rng.choice(("typo", "phone", "email", "space"))
    if kind == "typo" and app.surname:
        noise = app.noise if "name_typo" in app.noise else app.noise + ("name_typo",)
        return replace(app, surname=typo(app.surname, rng), noise=noise)
    if kind == "phone" and app.phone is not None:
        return replace(app, phone=None)
    if kind == "email" and app.email is not None:
        return replace(app, email=app.email.upper())
    return replace(app, given=_spacing(app.given, rng))
