"""True persons of the demo world.

Besides independent people the world holds two kinds of hard cases, drawn at stated rates
(see ``RELATION_RATES`` and ``generator.py``'s docstring): household members, who live with an
earlier person, share that person's address, landline and e-mail address (a family mailbox),
often the surname too, and are someone else; and planted namesakes, who carry an earlier
person's given name and surname in the same city with another birth date (a fifth of them are
a junior living at the senior's address). Noisy appearances of these people in department
systems are drawn in ``noise.py``.
"""

from __future__ import annotations

import bisect
import itertools
import random
import unicodedata
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from functools import cache

from crmmigrate.demo import names, places, words
from crmmigrate.demo.companies import Company, make_companies
from crmmigrate.demo.weighted import Weighted

DEPARTMENTS: dict[str, float] = {
    "sales": 0.70, "billing": 0.60, "support": 0.55, "shipping": 0.70, "marketing": 0.60,
}
START = int(datetime(2023, 1, 1, tzinfo=timezone.utc).timestamp())
MOVED_AFTER = int(datetime(2025, 7, 1, tzinfo=timezone.utc).timestamp())
END = int(datetime(2026, 6, 30, tzinfo=timezone.utc).timestamp())
BORN_FIRST, BORN_LAST = date(1936, 1, 1).toordinal(), date(2007, 12, 31).toordinal()

# Share of persons drawn as a relation of an earlier person rather than as someone new.
RELATION_RATES: dict[str, float] = {"household": 0.03, "namesake": 0.005}
MOVE_RATE = 0.08  # persons with a newer address than some departments hold
MIDDLE_NAME_RATE = 0.12
PEOPLE_PER_COMPANY = 6

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
    region: str


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
    origin: str
    sex: str
    given: str
    middle: str | None
    surname: str
    birth: date
    email: str
    alt_email: str
    phone: Phone | None  # landline
    mobile: Phone | None
    address: Address
    new_address: Address | None
    company: Company | None
    tax_id: str | None
    departments: tuple[str, ...]


# Origins of given names, and which surname pool people of that origin draw from.
ORIGINS: dict[str, float] = {"de": 0.86, "en": 0.07, "xx": 0.07}
_ORIGIN = Weighted(tuple(ORIGINS), ORIGINS.values())
SURNAME_POOLS: dict[str, tuple[tuple[str, float], ...]] = {
    "de": (("de", 0.06), ("tail", 0.92), ("en", 0.01), ("xx", 0.01)),
    "en": (("en", 0.25), ("de", 0.05), ("tail", 0.70)),
    "xx": (("xx", 0.30), ("de", 0.05), ("tail", 0.65)),
}


def _tail() -> tuple[str, ...]:
    return tuple(s + e for s in names.SURNAME_STEMS for e in names.SURNAME_ENDINGS)


# Heads flatter than a real name list's (there the hundredth German surname is held by about a
# sixth as many people as Müller): the pools are far smaller than a population's, and a steeper
# head would make namesakes far more common than they are (see generator.py).
_GIVEN = {key: Weighted.zipf(pool, 0.3) for key, pool in names.GIVEN.items()}
_SURNAMES = {"de": Weighted.zipf(names.SURNAMES_DE, 0.2), "en": Weighted.zipf(names.SURNAMES_EN, 0.2),
             "xx": Weighted.zipf(names.SURNAMES_XX, 0.2), "tail": Weighted.zipf(_tail(), 0.0)}
# Customers live where people live, but less concentrated in the largest cities than the census
# says: each city here also stands for the towns around it.
_CITIES = Weighted(places.CITIES, [c.thousands ** 0.4 for c in places.CITIES])


@cache
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


def _address(rng: random.Random, city: places.City | None = None) -> Address:
    city = city or _CITIES.draw(rng)
    suffix = rng.choice("ab") if rng.random() < 0.1 else ""
    street = f"{rng.choice(places.STREETS)} {rng.randint(1, 140)}{suffix}"
    return Address(street, city.name, rng.choice(city.postcodes), city.country, city.region)


_CITY_BY_NAME = {c.name: c for c in places.CITIES}


def _landline(rng: random.Random, address: Address) -> Phone:
    city = _CITY_BY_NAME[address.city]
    # no subscriber number starts with 0 or 1
    return Phone(places.COUNTRY_CODES[city.country], city.area, str(rng.randint(2_000_000, 9_999_999)))


def _mobile(rng: random.Random, country: str) -> Phone:
    cc = places.COUNTRY_CODES[country]
    prefix, length = rng.choice(places.MOBILE_PREFIXES[cc])
    return Phone(cc, prefix, str(rng.randint(10 ** (length - 1), 10 ** length - 1)))


def _phones(rng: random.Random, address: Address) -> tuple[Phone | None, Phone | None]:
    """A landline for 70% of people, a mobile for 75%, and at least one of them."""
    landline = _landline(rng, address) if rng.random() < 0.7 else None
    mobile = _mobile(rng, address.country) if landline is None or rng.random() < 0.64 else None
    return landline, mobile


def _tax_id(rng: random.Random, country: str) -> str:
    digits = str(rng.randrange(10 ** 9)).zfill(9)
    return {"DE": f"DE{digits}", "AT": f"ATU{digits[:8]}", "CH": f"CHE{digits}"}[country]


def _email(rng: random.Random, given: str, surname: str, company: Company | None, taken: set[str]) -> str:
    g, s = ascii_fold(given), ascii_fold(surname)
    local = rng.choice((f"{g}.{s}", f"{g[0]}.{s}", f"{g}{s}", f"{s}.{g}", f"{g}_{s}"))
    domain = company.domain if company and rng.random() < 0.5 else rng.choice(words.FREE_MAIL)
    email, n = f"{local}@{domain}", 1
    while email in taken:  # namesakes exist; their mailboxes must not collide
        n += 1
        email = f"{local}{n}@{domain}"
    taken.add(email)
    return email


def _alt_email(rng: random.Random, email: str, taken: set[str]) -> str:
    local = email.split("@")[0]
    for domain in (rng.choice(words.FREE_MAIL), "mailbox.org", "posteo.de"):
        alt = f"{local}@{domain}"
        if alt not in taken:
            taken.add(alt)
            return alt
    alt = f"{local}.{len(taken)}@mailbox.org"
    taken.add(alt)
    return alt


def _birth(rng: random.Random) -> date:
    return date.fromordinal(rng.randint(BORN_FIRST, BORN_LAST))


def _other_birth(rng: random.Random, than: date, years: tuple[int, int] | None = None) -> date:
    """A birth date other than *than*; *years* (min, max) apart when given, either way."""
    while True:
        if years is None:
            born = _birth(rng)
        else:
            shift = rng.randint(years[0] * 365, years[1] * 365) * rng.choice((-1, 1))
            born = date.fromordinal(min(max(than.toordinal() + shift, BORN_FIRST), BORN_LAST))
        if born != than:
            return born


def _given(rng: random.Random, origin: str, sex: str, not_: str | None = None) -> str:
    while True:
        name = _GIVEN[origin, sex].draw(rng)
        if name != not_:
            return name


def _surname(rng: random.Random, origin: str) -> str:
    pools = SURNAME_POOLS[origin]
    r, total = rng.random(), 0.0
    for pool, share in pools:
        total += share
        if r < total:
            return _SURNAMES[pool].draw(rng)
    return _SURNAMES[pools[-1][0]].draw(rng)


class _World:
    """Builds persons one by one; holds what later persons need to know about earlier ones."""

    def __init__(self, people: int, rng: random.Random):
        self.rng = rng
        self.companies = make_companies(max(25, people // PEOPLE_PER_COMPANY), rng)
        # a few large customers and a long tail of small ones
        self.company_cum = list(itertools.accumulate((k + 1) ** -0.5 for k in range(len(self.companies))))
        self.taken: set[str] = set()
        self.persons: list[Person] = []

    def company(self) -> Company | None:
        if self.rng.random() >= 0.55:
            return None
        k = bisect.bisect(self.company_cum, self.rng.random() * self.company_cum[-1])
        return self.companies[k]

    def departments(self) -> tuple[str, ...]:
        rng = self.rng
        depts = tuple(d for d, p in DEPARTMENTS.items() if rng.random() < p)
        return depts or (rng.choice(list(DEPARTMENTS)),)

    def person(self, pid: str, origin: str, sex: str, given: str, surname: str, birth: date,
               address: Address, phones: tuple[Phone | None, Phone | None], email: str | None = None,
               new_address: Address | None = None, moves: bool = True) -> Person:
        rng = self.rng
        middle = _given(rng, origin, sex, not_=given) if rng.random() < MIDDLE_NAME_RATE else None
        company = self.company()
        own = _email(rng, given, surname, company, self.taken)
        if moves and rng.random() < MOVE_RATE:
            new_address = _address(rng)
        has_tax = rng.random() < (0.8 if company else 0.2)
        return Person(
            pid=pid, origin=origin, sex=sex, given=given, middle=middle, surname=surname, birth=birth,
            email=email or own, alt_email=_alt_email(rng, own, self.taken) if email is None else own,
            phone=phones[0], mobile=phones[1], address=address, new_address=new_address, company=company,
            tax_id=_tax_id(rng, address.country) if has_tax else None, departments=self.departments())

    def new(self, pid: str) -> Person:
        rng = self.rng
        origin = _ORIGIN.draw(rng)
        sex = rng.choice("mf")
        address = _address(rng)
        return self.person(pid, origin, sex, _given(rng, origin, sex), _surname(rng, origin), _birth(rng),
                           address, _phones(rng, address))

    def household_member(self, pid: str, j: int) -> Person:
        """A partner or grown-up child of the *j*-th person: same address, landline and mailbox.

        A head whose address is at work gets a family mailbox first (``familie.name@…``), kept
        as their main address; the work address becomes their alternative one.
        """
        rng, head = self.rng, self.persons[j]
        if head.email.split("@")[1] not in words.FREE_MAIL:
            family = _email(rng, "familie", head.surname, None, self.taken)
            head = self.persons[j] = replace(head, email=family, alt_email=head.email)
        sex = rng.choice("mf")
        surname = head.surname if rng.random() < 0.8 else _surname(rng, head.origin)
        years = (0, 8) if rng.random() < 0.6 else (20, 35)
        mobile = _mobile(rng, head.address.country) if head.phone is None or rng.random() < 0.8 else None
        return self.person(pid, head.origin, sex, _given(rng, head.origin, sex, not_=head.given), surname,
                           _other_birth(rng, head.birth, years), head.address, (head.phone, mobile),
                           email=head.email, new_address=head.new_address, moves=False)

    def namesake(self, pid: str, of: Person) -> Person:
        """Someone else with *of*'s given name and surname in the same city."""
        rng = self.rng
        if rng.random() < 0.2:  # senior and junior under one roof
            address, years, new = of.address, (20, 40), of.new_address
            phones = (of.phone, _mobile(rng, address.country))
        else:
            address, years, new = _address(rng, _CITY_BY_NAME[of.address.city]), None, None
            phones = _phones(rng, address)
        return self.person(pid, of.origin, of.sex, of.given, of.surname, _other_birth(rng, of.birth, years),
                           address, phones, new_address=new, moves=new is None)


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
    world = _World(people, rng)
    household, namesake = RELATION_RATES["household"], RELATION_RATES["namesake"]
    for i in range(1, people + 1):
        pid, r = f"P{i:05d}", rng.random()
        if world.persons and r < household:
            person = world.household_member(pid, rng.randrange(len(world.persons)))
        elif world.persons and r < household + namesake:
            person = world.namesake(pid, rng.choice(world.persons))
        else:
            person = world.new(pid)
        world.persons.append(person)
    return world.persons

