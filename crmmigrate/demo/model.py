"""True persons of the demo world and their noisy appearances in department systems."""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from crmmigrate.demo import names

DEPARTMENTS: dict[str, float] = {
    "sales": 0.70, "billing": 0.60, "support": 0.55, "shipping": 0.70, "marketing": 0.60,
}
START = int(datetime(2023, 1, 1, tzinfo=timezone.utc).timestamp())
MOVED_AFTER = int(datetime(2025, 7, 1, tzinfo=timezone.utc).timestamp())
END = int(datetime(2026, 6, 30, tzinfo=timezone.utc).timestamp())

_FOLD = str.maketrans({
    "ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss", "ø": "o",
    "Ø": "O", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ı": "i", "æ": "ae", "å": "a", "Å": "A",
})


@dataclass(frozen=True)
class Address:
    """A postal address; ``street`` includes the house number."""

    street: str
    city: str
    postcode: str
    country: str


@dataclass(frozen=True)
class Phone:
    """A phone number split into country code, area code (no trunk 0) and subscriber."""

    cc: str
    area: str
    number: str


@dataclass(frozen=True)
class Person:
    """One true person of the demo world."""

    pid: str
    given: str
    surname: str
    email: str
    alt_email: str
    phone: Phone
    address: Address
    new_address: Address | None
    company: str | None
    tax_id: str | None
    departments: tuple[str, ...]


@dataclass(frozen=True)
class Appearance:
    """How one department system happens to record a person."""

    pid: str
    given: str
    surname: str
    email: str | None
    phone: Phone | None
    address: Address
    company: str | None
    ts: int


def ascii_fold(text: str) -> str:
    """Lower-case ASCII letters and digits of *text*, as people type them into e-mails."""
    text = unicodedata.normalize("NFKD", text.translate(_FOLD))
    return "".join(c for c in text if c.isascii() and c.isalnum()).lower()


HOME_CC = "49"  # the demo systems are German: they read a number without a country code as German


def format_phone(phone: Phone, shape: str) -> str:
    """Render *phone* in one of the shapes ``local``, ``intl``, ``paren``, ``00``, ``e164``.

    A foreign number is never written in a local shape (`044 …` for Zürich): a German system
    would read it as a German number, as a real one does, and that is not what its staff typed.
    """
    if shape in ("local", "paren") and phone.cc != HOME_CC:
        shape = "intl"
    if shape == "local":
        return f"0{phone.area} {phone.number}"
    if shape == "intl":
        return f"+{phone.cc} {phone.area} {phone.number}"
    if shape == "paren":
        return f"(0{phone.area}) {phone.number[:3]}-{phone.number[3:]}"
    if shape == "00":
        return f"00{phone.cc}{phone.area}{phone.number}"
    return f"+{phone.cc}{phone.area}{phone.number}"


def _address(rng: random.Random) -> Address:
    city, postcodes, country, _ = rng.choice(names.CITIES)
    suffix = rng.choice("ab") if rng.random() < 0.1 else ""
    street = f"{rng.choice(names.STREETS)} {rng.randint(1, 140)}{suffix}"
    return Address(street, city, rng.choice(postcodes), country)


def _phone(rng: random.Random, country: str, city: str) -> Phone:
    cc = {"DE": "49", "AT": "43", "CH": "41"}[country]
    if rng.random() < 0.4:
        prefix, length = rng.choice(names.MOBILE_PREFIXES[cc])
        return Phone(cc, prefix, str(rng.randint(10 ** (length - 1), 10 ** length - 1)))
    area = next(c[3] for c in names.CITIES if c[0] == city)
    return Phone(cc, area, str(rng.randint(2_000_000, 9_999_999)))  # no subscriber number starts with 0 or 1


def _tax_id(rng: random.Random, country: str) -> str:
    digits = "".join(rng.choice("0123456789") for _ in range(9))
    return {"DE": f"DE{digits}", "AT": f"ATU{digits[:8]}", "CH": f"CHE{digits}"}[country]


def _email(rng: random.Random, given: str, surname: str, company: str | None, taken: set[str]) -> str:
    g, s = ascii_fold(given), ascii_fold(surname)
    local = rng.choice((f"{g}.{s}", f"{g[0]}.{s}", f"{g}{s}", f"{s}.{g}", f"{g}_{s}"))
    if company and rng.random() < 0.5:
        domain = "-".join(ascii_fold(w) for w in company.split()[:2] if ascii_fold(w)) + ".de"
    else:
        domain = rng.choice(names.FREE_MAIL)
    email, n = f"{local}@{domain}", 1
    while email in taken:  # namesakes exist; their mailboxes must not collide
        n += 1
        email = f"{local}{n}@{domain}"
    taken.add(email)
    return email


def make_persons(people: int, rng: random.Random) -> list[Person]:
    """Create *people* true persons, each belonging to at least one department.

    Parameters
    ----------
    people : int
        Number of persons, ids ``P00001`` upwards.
    rng : random.Random
        Source of all randomness.

    Returns
    -------
    list of Person
    """
    taken: set[str] = set()
    persons = []
    for i in range(1, people + 1):
        given, surname = rng.choice(names.GIVEN_NAMES), rng.choice(names.SURNAMES)
        address = _address(rng)
        company = rng.choice(names.COMPANIES) if rng.random() < 0.55 else None
        email = _email(rng, given, surname, company, taken)
        alt = f"{email.split('@')[0]}@{rng.choice(names.FREE_MAIL)}"
        depts = tuple(d for d, p in DEPARTMENTS.items() if rng.random() < p)
        if not depts:
            depts = (rng.choice(list(DEPARTMENTS)),)
        has_tax = rng.random() < (0.8 if company else 0.2)
        persons.append(Person(
            pid=f"P{i:05d}", given=given, surname=surname, email=email,
            alt_email=alt if alt != email else f"{email.split('@')[0]}@mailbox.org",
            phone=_phone(rng, address.country, address.city), address=address,
            new_address=_address(rng) if rng.random() < 0.08 else None, company=company,
            tax_id=_tax_id(rng, address.country) if has_tax else None, departments=depts,
        ))
    return persons


def typo(text: str, rng: random.Random) -> str:
    """Swap two neighbouring characters of *text* or drop one; the result always differs."""
    if len(text) < 3:
        return text + text[-1]
    i = rng.randrange(len(text) - 1)
    swapped = text[:i] + text[i + 1] + text[i] + text[i + 2:]
    if rng.random() < 0.5 and swapped != text:
        return swapped
    return text[:i] + text[i + 1:]


def _spacing(text: str, rng: random.Random) -> str:
    return rng.choice((f"{text} ", f" {text}", text.replace(" ", "  ") if " " in text else f"{text}  "))


def _street_variant(street: str, rng: random.Random) -> str:
    # legacy systems disagree on abbreviations more often than on anything else
    if rng.random() < 0.12 and "straße" in street:
        return street.replace("straße", rng.choice(("str.", "strasse", "str")))
    if rng.random() < 0.03:
        return _spacing(street, rng)
    return street


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
    given, surname = person.given, person.surname
    if person.given in names.NICKNAMES and rng.random() < 0.15:
        given = names.NICKNAMES[person.given]
    if rng.random() < 0.05:
        given, surname = (typo(given, rng), surname) if rng.random() < 0.5 else (given, typo(surname, rng))
    if rng.random() < 0.03:
        given, surname = rng.choice(((given.lower(), surname.lower()), (given.upper(), surname.upper())))
    if rng.random() < 0.03:
        given = _spacing(given, rng)
    email: str | None = person.alt_email if rng.random() < 0.05 else person.email
    if rng.random() < 0.03:
        email = email.title() if rng.random() < 0.5 else email.upper()
    if rng.random() < 0.06:
        email = None
    phone = None if rng.random() < 0.08 else person.phone
    moved = person.new_address is not None and rng.random() < 0.5
    if moved:
        address, ts = person.new_address, rng.randrange(MOVED_AFTER, END)
    else:
        hi = END if person.new_address is None else MOVED_AFTER
        address, ts = person.address, rng.randrange(START, hi)
    address = replace(address, street=_street_variant(address.street, rng))
    company = person.company if rng.random() < 0.9 else None
    app = Appearance(person.pid, given, surname, email, phone, address, company, ts)
    return _force_difference(app, rng) if force_diff else app


def _force_difference(app: Appearance, rng: random.Random) -> Appearance:
    kind = rng.choice(("typo", "phone", "email", "space"))
    if kind == "typo":
        return replace(app, surname=typo(app.surname, rng))
    if kind == "phone" and app.phone is not None:
        return replace(app, phone=None)
    if kind == "email" and app.email is not None:
        return replace(app, email=app.email.upper())
    return replace(app, given=_spacing(app.given, rng))
