"""Write five fake legacy department systems plus the truth about who is who.

The output is deterministic: the same ``(people, seed)`` gives byte-identical files.

The data is meant to be as hard as real data. Stated rates, checked by tests/demo:

Persons (``model.py``)
  - 3% of persons are household members of an earlier person: same address, same landline,
    the same e-mail address (a family mailbox shared by two different people), 80% the same
    surname, another given name and birth date. truth.json lists them under ``households``.
  - 0.5% of persons are planted namesakes of an earlier person: same given name and surname, same
    city, another birth date (a fifth of them a junior at the senior's address, 20 to 40 years
    younger). Namesakes also arise by chance; truth.json lists every group under ``namesakes``.
    At 1,000,000 people about 0.9% of persons share given name, surname and city with someone by
    chance (1.9% with the planted ones); real German name frequencies spread over the same
    cities give about 0.4%, so namesakes are about twice as common here as in a real customer
    base. The 72 given names, 64 surnames and 19 cities of the first demo gave every person about
    11 namesakes at that size; the pools are now enlarged and combined. Given names come by
    origin (86% German, 7% English, 7% other) and sex from pools of 100 German, 32 English and
    28 other names, drawn with weights k**-0.3; surnames from a head of 111 common German, 57
    English and 53 other names (weights k**-0.2) and mostly from a tail of 16,000 compound
    German names (stem + ending, drawn uniformly); customers are spread over 88 cities of
    Germany, Austria and Switzerland by their population to the power 0.4 (each city stands
    for the towns around it).
  - 8% of persons move: their appearances hold the new address with a timestamp after the
    move, or (half of them) the old address with an older timestamp (``old_address``).
  - 12% have a middle name; 70% a landline, 75% a mobile, everyone at least one of them.
  - Everyone has a birth date (1936-2007); sales (``BIRTHDAY``, dd.mm.yyyy), billing
    (``BIRTH_DATE``, yyyymmdd) and support (``requester.birthday``, mm/dd/yyyy) hold it;
    shipping and marketing do not.
  - 55% work for a company. The pool holds one company per 6 people (at least 25), drawn with
    weights k**-0.5 (a few large customers, a long tail), each with a legal form (GmbH, AG,
    GmbH & Co. KG, Ltd, Inc., S.A., ...) and a web domain. Sales writes the company's full name
    60%, with its legal form spelt another way 15% (``G.m.b.H.``, ``Limited``), without it 25%,
    and the website; billing 85/15/0; support 20/10/70. truth.json's ``accounts`` holds
    (source, key, account) for every record that names a company.

Appearances (``noise.py``), each drawn independently per record, and listed per record under
``corruptions`` in truth.json:
  - nickname 12% of the appearances of a person whose given name has a short form (the
    `nicknames` package for the English names, ``names.NICKNAMES_DE`` for the German ones);
  - given name and surname swapped 2%; surname missing 1%; a typo in a name 5%;
  - birth date missing 8% of appearances; of the birth dates written, day and month swapped
    3% (where they differ: a day above 12 then makes an impossible date) and an impossible
    date (30.02., 31.04., ...) 0.5%;
  - a typo in the street 3% and in the locality 2% (systems that write them);
  - in-department duplicates: 3% of sales and marketing members appear twice.
  Untracked noise besides: e-mail missing 6%, the alternative mailbox 5%, case changes 3%,
  landline or mobile missing 8% each, street abbreviations, spacing.

Planted hostile values (formulas, scripts, impossible invoice and order dates, names cp1252
cannot write) are listed in truth.json as before; a formula written in place of a company is
no account.
"""

from __future__ import annotations

import csv
import io
import json
import random
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from crmmigrate.demo import words
from crmmigrate.demo.companies import website, written_name
from crmmigrate.demo.model import (
    DEPARTMENTS,
    END,
    START,
    Person,
    format_phone,
    make_persons,
)
from crmmigrate.demo.noise import (
    ADDRESS_NOISE,
    BIRTH_NOISE,
    NAME_NOISE,
    Appearance,
    appear,
)
from crmmigrate.demo.places import REGION_CODES
from crmmigrate.demo.weighted import Weighted
from crmmigrate.demo.xlsx import xlsx_bytes

BERLIN = ZoneInfo("Europe/Berlin")
LONDON = ZoneInfo("Europe/London")
DAY = 86_400

SALES_HEADER = ["CONTACT_ID", "NAME", "EMAIL", "PHONE", "COMPANY", "OWNER", "STREET", "CITY", "ZIP",
                "COUNTRY", "LAST_MODIFIED", "MOBILE", "BIRTHDAY", "WEBSITE"]
ORDERS_HEADER = ["order_id", "customer_name", "customer_email", "order_date", "street", "city", "postcode",
                 "state", "country", "total", "currency", "updated_at"]
LINES_HEADER = ["order_id", "line_no", "sku", "description", "quantity", "unit_price"]
SHIPMENTS_HEADER = ["shipment_id", "order_id", "carrier", "tracking_no", "shipped_at", "delivered_at"]
MARKETING_HEADER = ["Email", "First Name", "Last Name", "Phone", "Postcode", "Opt-In", "Signed Up"]

SALES_FORMULA = '=HYPERLINK("http://x","y")'
SALES_AT_VALUE = "@Home Service GmbH"
SUPPORT_SCRIPT = '<script>alert("x")</script>'
MARKETING_SCRIPT = "<script>alert(1)</script>"
MARKETING_FORMULA = "+cmd|' /C calc'!A0"
MULTILINE_DESCRIPTION = "Geschenkset, groß\nmit Grußkarte und Schleife"
BAD_SALES_DATE = "31.02.2024 10:00"
BAD_INVOICE_DATES = ("2023-02-30", "2024-13-01")
BAD_ORDER_DATE = "13/45/2024"

_BILLING_DDL = (
    "CREATE TABLE CUSTOMERS (CUST_NO INTEGER PRIMARY KEY, NAME TEXT, EMAIL TEXT, PHONE TEXT, "
    "STREET TEXT, CITY TEXT, POSTCODE TEXT, COUNTRY TEXT, TAX_ID TEXT, UPDATED_AT INTEGER, "
    "MIDDLE_NAME TEXT, MOBILE TEXT, BIRTH_DATE TEXT, REGION TEXT, COMPANY TEXT)",
    "CREATE TABLE INVOICES (INV_NO TEXT PRIMARY KEY, CUST_NO INTEGER, ISSUED TEXT, "
    "AMOUNT_CENTS INTEGER, TAX_RATE TEXT, CURRENCY TEXT, STATUS TEXT)",
)
# How many of each a customer has, and what their tickets and invoices say
INVOICES = Weighted(range(5), (20, 30, 25, 15, 10))
INVOICE_STATUS = Weighted(("PAID", "OPEN", "VOID"), (75, 18, 7))
TICKETS = Weighted((1, 2, 3, 4), (50, 28, 15, 7))
TICKET_STATUS = Weighted(("open", "pending", "solved", "closed"), (15, 10, 40, 35))
PRIORITY = Weighted(("low", "normal", "high", "urgent"), (20, 55, 20, 5))
ORDERS = Weighted((0, 1, 2, 3), (15, 45, 25, 15))
LINES = Weighted((1, 2, 3, 4), (40, 30, 20, 10))
QUANTITY = Weighted((1, 2, 3, 4, 5), (60, 20, 10, 5, 5))
# The corruptions each source can show: a system that writes no birth date shows none of its.
_ALL = NAME_NOISE + BIRTH_NOISE + ADDRESS_NOISE
SHOWN: dict[str, frozenset[str]] = {
    "sales.contacts": frozenset(_ALL), "billing.customers": frozenset(_ALL),
    "support.tickets": frozenset(NAME_NOISE + BIRTH_NOISE),
    "shipping.orders": frozenset(NAME_NOISE + ADDRESS_NOISE),
    "marketing.subscribers": frozenset(NAME_NOISE + ("old_address",)),
}


@dataclass
class _Truth:
    """Accumulates the answer key while the department files are written."""

    records: list[dict] = field(default_factory=list)
    accounts: list[dict] = field(default_factory=list)
    corruptions: list[dict] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    money: dict[str, dict[str, str]] = field(default_factory=dict)
    lossy_names: list[dict] = field(default_factory=list)
    impossible_dates: list[dict] = field(default_factory=list)
    formula_values: list[dict] = field(default_factory=list)
    script_values: list[dict] = field(default_factory=list)

    def record(self, source: str, key: str, app: Appearance, company: bool = False) -> None:
        self.records.append({"source": source, "key": key, "person": app.pid})
        kinds = [k for k in app.noise if k in SHOWN[source]]
        if kinds:
            self.corruptions.append({"source": source, "key": key, "kinds": kinds})
        if company and app.company is not None:
            self.accounts.append({"source": source, "key": key, "account": app.company.cid})

    def unaccount(self, source: str, key: str) -> None:
        self.accounts = [a for a in self.accounts if (a["source"], a["key"]) != (source, key)]

    @staticmethod
    def flag(target: list[dict], source: str, key: str, column: str, value: str) -> None:
        target.append({"source": source, "key": key, "column": column, "value": value})

    def as_dict(self, seed: int, people: int, persons: list[Person]) -> dict:
        return {
            "seed": seed, "people": people, "records": self.records, "accounts": self.accounts,
            "corruptions": self.corruptions, "counts": dict(sorted(self.counts.items())),
            "money": self.money, "lossy_names": self.lossy_names, "impossible_dates": self.impossible_dates,
            "formula_values": self.formula_values, "script_values": self.script_values,
            **relations(persons),
        }


def relations(persons: list[Person]) -> dict:
    """Groups of different persons that look alike: shared mailboxes, and namesakes in one city."""
    mailboxes, namesakes = defaultdict(list), defaultdict(list)
    for p in persons:
        mailboxes[p.email].append(p.pid)
        namesakes[p.given, p.surname, p.address.city].append(p.pid)
    return {
        "households": [{"email": e, "persons": ps} for e, ps in mailboxes.items() if len(ps) > 1],
        "namesakes": [{"given": g, "surname": s, "city": c, "persons": ps}
                      for (g, s, c), ps in namesakes.items() if len(ps) > 1],
    }


def generate(out: Path, people: int = 500, seed: int = 7) -> dict:
    """Write the demo legacy systems into *out* and return the truth about them.

    Parameters
    ----------
    out : Path
        Target directory; created if missing. Existing demo files are overwritten.
    people : int
        Number of true persons (``P00001`` ...). At least 20, so every planted anomaly fits.
    seed : int
        Seed of the private ``random.Random``; same ``(people, seed)`` gives identical bytes.

    Returns
    -------
    dict
        The truth, identical to what is written to ``out/truth.json``: ``seed``, ``people``,
        ``records`` (source, key, person), ``accounts`` (source, key, account),
        ``corruptions`` (source, key, kinds), ``households``, ``namesakes``, ``counts``,
        ``money``, ``lossy_names``, ``impossible_dates``, ``formula_values``, ``script_values``.

    Raises
    ------
    ValueError
        If *people* is below 20.
    """
    if people < 20:
        raise ValueError(f"people must be at least 20, got {people}")
    out = Path(out)
    persons = make_persons(people, random.Random(seed))
    members = {d: [p for p in persons if d in p.departments] for d in DEPARTMENTS}
    truth = _Truth()
    _write_sales(out / "sales", members["sales"], _rng(seed, "sales"), truth)
    _write_billing(out / "billing", members["billing"], _rng(seed, "billing"), truth)
    _write_support(out / "support", members["support"], _rng(seed, "support"), truth)
    _write_shipping(out / "shipping", members["shipping"], _rng(seed, "shipping"), truth)
    _write_marketing(out / "marketing", members["marketing"], _rng(seed, "marketing"), truth)
    result = truth.as_dict(seed, people, persons)
    (out / "truth.json").write_text(truth_text(result), encoding="utf-8", newline="\n")
    return result


def _json(value: object) -> str:
    # never with indent=: json then encodes in Python, not C, 10x slower at a million people
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def truth_text(truth: dict) -> str:
    """truth.json's text: one key a line, one list item a line (greppable at a million people)."""
    parts = []
    for key, value in sorted(truth.items()):
        if isinstance(value, list) and value:
            items = ",\n".join("  " + _json(item) for item in value)
            parts.append(f" {_json(key)}: [\n{items}\n ]")
        else:
            parts.append(f" {_json(key)}: {_json(value)}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def _rng(seed: int, department: str) -> random.Random:
    # one stream per department, so tweaking one writer leaves the other files unchanged
    return random.Random(f"{seed}:{department}")


def _with_duplicates(members: list[Person], rng: random.Random, rate: float = 0.03) -> list[Appearance]:
    apps = [appear(p, rng) for p in members]
    extra = rng.sample(members, max(1, round(rate * len(members)))) if members else []
    apps += [appear(p, rng, force_diff=True) for p in extra]
    rng.shuffle(apps)
    return apps


def _csv_text(header: list[str], rows: list[list], delimiter: str, terminator: str) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator=terminator, quoting=csv.QUOTE_MINIMAL)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _local(ts: int, zone: ZoneInfo, fmt: str) -> str:
    return datetime.fromtimestamp(ts, zone).strftime(fmt)


def _birth(app: Appearance, order: str) -> str | None:
    """The birth date as written, digits in *order* (``dmy``, ``ymd``, ``mdy``), whatever the calendar says."""
    if app.birth is None:
        return None
    y, m, d = app.birth
    return {"dmy": f"{d:02d}.{m:02d}.{y}", "ymd": f"{y}{m:02d}{d:02d}", "mdy": f"{m:02d}/{d:02d}/{y}"}[order]


def _write_sales(folder: Path, members: list[Person], rng: random.Random, truth: _Truth) -> None:
    source, rows = "sales.contacts", []
    for i, a in enumerate(_with_duplicates(members, rng), 1):
        cid, name = f"S-{i:06d}", f"{a.surname.upper()}, {a.given}"
        phone = format_phone(a.phone, rng.choice(("local", "intl", "paren", "00"))) if a.phone else ""
        mobile = format_phone(a.mobile, rng.choice(("local", "intl", "00"))) if a.mobile else ""
        company = written_name(a.company, "sales", rng) if a.company else ""
        site = website(a.company, rng) if a.company and rng.random() < 0.6 else ""
        rows.append([cid, name, a.email or "", phone, company, rng.choice(words.SALES_OWNERS),
                     a.address.street, a.address.city, a.address.postcode, a.address.country,
                     _local(a.ts, BERLIN, "%d.%m.%Y %H:%M"), mobile, _birth(a, "dmy") or "", site])
        truth.record(source, cid, a, company=True)
        written = name.encode("cp1252", errors="replace").decode("cp1252")
        if written != name:
            truth.lossy_names.append({"source": source, "key": cid, "true_name": name, "written": written})
    formula, at_sign, bad_date = rng.sample(range(len(rows)), 3)
    for row, value in ((formula, SALES_FORMULA), (at_sign, SALES_AT_VALUE)):
        rows[row][4] = value
        truth.flag(truth.formula_values, source, rows[row][0], "COMPANY", value)
        truth.unaccount(source, rows[row][0])
    rows[bad_date][10] = BAD_SALES_DATE
    truth.flag(truth.impossible_dates, source, rows[bad_date][0], "LAST_MODIFIED", BAD_SALES_DATE)
    folder.mkdir(parents=True, exist_ok=True)
    text = _csv_text(SALES_HEADER, rows, ";", "\r\n")
    (folder / "contacts.csv").write_bytes(text.encode("cp1252", errors="replace"))
    truth.counts[source] = len(rows)


def _write_billing(folder: Path, members: list[Person], rng: random.Random, truth: _Truth) -> None:
    apps = [appear(p, rng) for p in members]
    rng.shuffle(apps)
    tax_ids = {p.pid: p.tax_id for p in members}
    customers, invoices = [], []
    for i, a in enumerate(apps):
        cust_no = 10001 + i
        phone = format_phone(a.phone, rng.choice(("intl", "local"))) if a.phone else None
        mobile = format_phone(a.mobile, rng.choice(("intl", "local"))) if a.mobile else None
        company = written_name(a.company, "billing", rng).upper() if a.company else None
        customers.append((cust_no, f"{a.given} {a.surname}".upper(), a.email.upper() if a.email else None,
                          phone, a.address.street, a.address.city, a.address.postcode,
                          a.address.country, tax_ids[a.pid], a.ts, a.middle.upper() if a.middle else None,
                          mobile, _birth(a, "ymd"), a.address.region, company))
        truth.record("billing.customers", str(cust_no), a, company=True)
        invoices += [_invoice(cust_no, rng) for _ in range(INVOICES.draw(rng))]
    invoices.sort()
    invoices = [(f"RE-{issued[:4]}-{n:06d}", cust_no, issued, *rest)
                for n, (issued, cust_no, *rest) in enumerate(invoices, 1)]
    for slot, bad in zip(rng.sample(range(len(invoices)), 2), BAD_INVOICE_DATES):
        invoices[slot] = (invoices[slot][0], invoices[slot][1], bad, *invoices[slot][3:])
        truth.flag(truth.impossible_dates, "billing.invoices", invoices[slot][0], "ISSUED", bad)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "billing.sqlite"
    path.unlink(missing_ok=True)
    with sqlite3.connect(path) as con:
        for ddl in _BILLING_DDL:
            con.execute(ddl)
        con.executemany(f"INSERT INTO CUSTOMERS VALUES ({','.join('?' * 15)})", customers)
        con.executemany("INSERT INTO INVOICES VALUES (?,?,?,?,?,?,?)", invoices)
    con.close()
    truth.counts["billing.customers"], truth.counts["billing.invoices"] = len(customers), len(invoices)
    truth.money["billing.invoices"] = {"EUR": _money(sum(inv[3] for inv in invoices))}


def _invoice(cust_no: int, rng: random.Random) -> tuple:
    """One invoice as ``(issued, cust_no, cents, tax_rate, currency, status)``; numbered later."""
    issued = datetime.fromtimestamp(rng.randrange(START, END), timezone.utc).date().isoformat()
    tax_rate = "19.00" if rng.random() < 0.85 else "7.00"
    status = INVOICE_STATUS.draw(rng)
    return (issued, cust_no, rng.randint(990, 250_000), tax_rate, "EUR", status)


def _write_support(folder: Path, members: list[Person], rng: random.Random, truth: _Truth) -> None:
    requester_ids = rng.sample(range(100_000, 1_000_000), len(members))
    raw = []
    for person, rid in zip(members, requester_ids):
        base = appear(person, rng)
        for _ in range(TICKETS.draw(rng)):
            a = base if rng.random() < 0.7 else appear(person, rng)
            created = rng.randrange(START, END - DAY)
            raw.append((created, rid, a, min(created + rng.randrange(600, 30 * DAY), END)))
    raw.sort(key=lambda t: (t[0], t[1]))
    tickets = []
    for n, (created, rid, a, updated) in enumerate(raw):
        tid = f"T-{10001 + n}"
        # the helpdesk has one phone field: whichever number the caller gave
        number = a.mobile if a.mobile and (a.phone is None or rng.random() < 0.6) else a.phone
        phone = format_phone(number, rng.choice(("e164", "intl"))) if number and rng.random() < 0.6 else None
        organization = written_name(a.company, "support", rng) if a.company else None
        requester = {"id": rid, "name": f"{a.given} {a.surname}", "email": a.email, "phone": phone,
                     "birthday": _birth(a, "mdy"), "organization": organization}
        tickets.append({
            "ticket_id": tid, "subject": rng.choice(words.TICKET_SUBJECTS),
            "status": TICKET_STATUS.draw(rng),
            "priority": PRIORITY.draw(rng),
            "channel": rng.choice(("email", "phone", "web")),
            "created_at": _iso_z(created), "updated_at": _iso_z(updated), "requester": requester,
        })
        truth.record("support.tickets", tid, a, company=True)
    scripted = rng.choice(tickets)
    scripted["subject"] = SUPPORT_SCRIPT
    truth.flag(truth.script_values, "support.tickets", scripted["ticket_id"], "subject", SUPPORT_SCRIPT)
    folder.mkdir(parents=True, exist_ok=True)
    text = "[\n" + ",\n".join(map(_json, tickets)) + "\n]\n"  # one ticket a line, as many exports write them
    (folder / "tickets.json").write_text(text, encoding="utf-8", newline="\n")
    truth.counts["support.tickets"] = len(tickets)


def _iso_z(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_shipping(folder: Path, members: list[Person], rng: random.Random, truth: _Truth) -> None:
    placed = []
    for person in members:
        n = ORDERS.draw(rng)
        if n == 0 and person.departments == ("shipping",):
            n = 1  # otherwise this person would exist in no system at all
        # guest checkouts retype the address every time, so every order is its own appearance
        placed += [appear(person, rng) for _ in range(n)]
    placed.sort(key=lambda a: (a.ts, a.pid))
    orders, lines, shipments = [], [], []
    for n, a in enumerate(placed):
        oid = f"O-{50001 + n}"
        order_lines = _order_lines(oid, rng)
        lines += order_lines
        total = sum(q * c for q, c in ((ln[4], ln[6]) for ln in order_lines))
        updated = min(a.ts + rng.randrange(60, 20 * DAY), END)
        orders.append([oid, f"{a.given} {a.surname}", a.email or "", _local(a.ts, LONDON, "%m/%d/%Y"),
                       a.address.street, a.address.city, a.address.postcode, REGION_CODES[a.address.region],
                       a.address.country, _money(total), "EUR", _local(updated, LONDON, "%Y-%m-%d %H:%M:%S")])
        truth.record("shipping.orders", oid, a)
        shipment = _shipment(oid, a.ts, len(shipments), rng)
        if shipment:
            shipments.append(shipment)
    lines = [ln[:6] for ln in lines]
    rng.choice(lines)[3] = MULTILINE_DESCRIPTION
    bad = rng.choice(orders)
    bad[3] = BAD_ORDER_DATE
    truth.flag(truth.impossible_dates, "shipping.orders", bad[0], "order_date", BAD_ORDER_DATE)
    folder.mkdir(parents=True, exist_ok=True)
    for name, header, rows in (("orders.csv", ORDERS_HEADER, orders), ("order_lines.csv", LINES_HEADER, lines),
                               ("shipments.csv", SHIPMENTS_HEADER, shipments)):
        (folder / name).write_bytes(_csv_text(header, rows, ",", "\n").encode("utf-8"))
    truth.counts.update({"shipping.orders": len(orders), "shipping.order_lines": len(lines),
                         "shipping.shipments": len(shipments)})
    cents = sum(int(o[9].replace(".", "")) for o in orders)
    truth.money["shipping.orders"] = {"EUR": _money(cents)}


def _order_lines(oid: str, rng: random.Random) -> list[list]:
    """Lines as ``[order_id, line_no, sku, description, quantity, unit_price, cents]``."""
    products = rng.sample(words.PRODUCTS, LINES.draw(rng))
    lines = []
    for no, (sku, description, cents) in enumerate(products, 1):
        if rng.random() < 0.1:  # promotions make the unit price drift from the catalogue
            cents = cents * 9 // 10
        qty = QUANTITY.draw(rng)
        lines.append([oid, no, sku, description, qty, _money(cents), cents])
    return lines


def _shipment(oid: str, ordered: int, index: int, rng: random.Random) -> list | None:
    shipped = ordered + rng.randrange(4 * 3600, 3 * DAY)
    if rng.random() >= 0.9 or shipped > END:
        return None
    delivered = shipped + rng.randrange(DAY, 5 * DAY)
    delivered_at = "" if rng.random() < 0.08 or delivered > END else _iso_naive(delivered)
    carrier = rng.choice(words.CARRIERS)
    return [f"SH-{70001 + index}", oid, carrier, _tracking_no(carrier, rng), _iso_naive(shipped), delivered_at]


def _iso_naive(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


_UPS_SYMBOLS = "0123456789ABCDEFGHJKLMNPRSTVWXYZ"
_TRACKING = {"DHL": ("00340434", 12), "DPD": ("", 14), "Hermes": ("H", 19)}  # prefix, digits after it


def _tracking_no(carrier: str, rng: random.Random) -> str:
    if carrier == "UPS":
        bits = rng.getrandbits(80)  # 16 symbols of 5 bits each
        return "1Z" + "".join(_UPS_SYMBOLS[(bits >> (5 * i)) & 31] for i in range(16))
    prefix, length = _TRACKING.get(carrier, ("", 11))
    return prefix + str(rng.randrange(10 ** length)).zfill(length)


def _write_marketing(folder: Path, members: list[Person], rng: random.Random, truth: _Truth) -> None:
    rows = []
    for i, a in enumerate(_with_duplicates(members, rng)):
        postcode: str | int = int(a.address.postcode) if rng.random() < 0.3 else a.address.postcode
        number = a.mobile if a.mobile and (a.phone is None or rng.random() < 0.7) else a.phone
        phone = format_phone(number, rng.choice(("local", "intl"))) if number else None
        signed_up = datetime.fromtimestamp(a.ts, timezone.utc).date()
        rows.append([a.email, a.given, a.surname or None, phone, postcode, "Y" if rng.random() < 0.8 else "N", signed_up])
        truth.record("marketing.subscribers", str(i + 2), a)
    script, formula = rng.sample(range(len(rows)), 2)
    rows[script][0] = MARKETING_SCRIPT
    truth.flag(truth.script_values, "marketing.subscribers", str(script + 2), "Email", MARKETING_SCRIPT)
    rows[formula][1] = MARKETING_FORMULA
    truth.flag(truth.formula_values, "marketing.subscribers", str(formula + 2), "First Name", MARKETING_FORMULA)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "subscribers.xlsx").write_bytes(xlsx_bytes("Subscribers", [MARKETING_HEADER, *rows]))
    truth.counts["marketing.subscribers"] = len(rows)
