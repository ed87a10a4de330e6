"""Write five fake legacy department systems plus the truth about who is who.

The output is deterministic: the same ``(people, seed)`` gives byte-identical files.
"""

from __future__ import annotations

import csv
import io
import json
import random
import sqlite3
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.writer.excel import ExcelWriter

from crmmigrate.demo import names
from crmmigrate.demo.model import (
    DEPARTMENTS, END, START, Appearance, Person, appear, format_phone, make_persons,
)

BERLIN = ZoneInfo("Europe/Berlin")
LONDON = ZoneInfo("Europe/London")
FIXED_STAMP = datetime(2026, 6, 30, 0, 0, 0)  # the demo's reference date; also END in model.py
DAY = 86_400

SALES_HEADER = ["CONTACT_ID", "NAME", "EMAIL", "PHONE", "COMPANY", "OWNER", "STREET", "CITY", "ZIP",
                "COUNTRY", "LAST_MODIFIED"]
ORDERS_HEADER = ["order_id", "customer_name", "customer_email", "order_date", "street", "city", "postcode",
                 "country", "total", "currency", "updated_at"]
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
    "STREET TEXT, CITY TEXT, POSTCODE TEXT, COUNTRY TEXT, TAX_ID TEXT, UPDATED_AT INTEGER)",
    "CREATE TABLE INVOICES (INV_NO TEXT PRIMARY KEY, CUST_NO INTEGER, ISSUED TEXT, "
    "AMOUNT_CENTS INTEGER, TAX_RATE TEXT, CURRENCY TEXT, STATUS TEXT)",
)


@dataclass
class _Truth:
    """Accumulates the answer key while the department files are written."""

    records: list[dict] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    money: dict[str, dict[str, str]] = field(default_factory=dict)
    lossy_names: list[dict] = field(default_factory=list)
    impossible_dates: list[dict] = field(default_factory=list)
    formula_values: list[dict] = field(default_factory=list)
    script_values: list[dict] = field(default_factory=list)

    def record(self, source: str, key: str, pid: str) -> None:
        self.records.append({"source": source, "key": key, "person": pid})

    @staticmethod
    def flag(target: list[dict], source: str, key: str, column: str, value: str) -> None:
        target.append({"source": source, "key": key, "column": column, "value": value})

    def as_dict(self, seed: int, people: int) -> dict:
        return {
            "seed": seed, "people": people, "records": self.records, "counts": dict(sorted(self.counts.items())),
            "money": self.money, "lossy_names": self.lossy_names, "impossible_dates": self.impossible_dates,
            "formula_values": self.formula_values, "script_values": self.script_values,
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
        ``records``, ``counts``, ``money``, ``lossy_names``, ``impossible_dates``,
        ``formula_values``, ``script_values``.

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
    result = truth.as_dict(seed, people)
    text = json.dumps(result, sort_keys=True, indent=1, ensure_ascii=False) + "\n"
    (out / "truth.json").write_text(text, encoding="utf-8", newline="\n")
    return result


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


def _write_sales(folder: Path, members: list[Person], rng: random.Random, truth: _Truth) -> None:
    source, rows = "sales.contacts", []
    for i, a in enumerate(_with_duplicates(members, rng), 1):
        cid, name = f"S-{i:06d}", f"{a.surname.upper()}, {a.given}"
        phone = format_phone(a.phone, rng.choice(("local", "intl", "paren", "00"))) if a.phone else ""
        rows.append([cid, name, a.email or "", phone, a.company or "", rng.choice(names.SALES_OWNERS),
                     a.address.street, a.address.city, a.address.postcode, a.address.country,
                     _local(a.ts, BERLIN, "%d.%m.%Y %H:%M")])
        truth.record(source, cid, a.pid)
        written = name.encode("cp1252", errors="replace").decode("cp1252")
        if written != name:
            truth.lossy_names.append({"source": source, "key": cid, "true_name": name, "written": written})
    formula, at_sign, bad_date = rng.sample(range(len(rows)), 3)
    for row, value in ((formula, SALES_FORMULA), (at_sign, SALES_AT_VALUE)):
        rows[row][4] = value
        truth.flag(truth.formula_values, source, rows[row][0], "COMPANY", value)
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
        customers.append((cust_no, f"{a.given} {a.surname}".upper(), a.email.upper() if a.email else None,
                          phone, a.address.street, a.address.city, a.address.postcode,
                          a.address.country, tax_ids[a.pid], a.ts))
        truth.record("billing.customers", str(cust_no), a.pid)
        invoices += [_invoice(cust_no, rng) for _ in range(rng.choices(range(5), (20, 30, 25, 15, 10))[0])]
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
        con.executemany("INSERT INTO CUSTOMERS VALUES (?,?,?,?,?,?,?,?,?,?)", customers)
        con.executemany("INSERT INTO INVOICES VALUES (?,?,?,?,?,?,?)", invoices)
    con.close()
    truth.counts["billing.customers"], truth.counts["billing.invoices"] = len(customers), len(invoices)
    truth.money["billing.invoices"] = {"EUR": _money(sum(inv[3] for inv in invoices))}


def _invoice(cust_no: int, rng: random.Random) -> tuple:
    """One invoice as ``(issued, cust_no, cents, tax_rate, currency, status)``; numbered later."""
    issued = datetime.fromtimestamp(rng.randrange(START, END), timezone.utc).date().isoformat()
    tax_rate = "19.00" if rng.random() < 0.85 else "7.00"
    status = rng.choices(("PAID", "OPEN", "VOID"), (75, 18, 7))[0]
    return (issued, cust_no, rng.randint(990, 250_000), tax_rate, "EUR", status)


def _write_support(folder: Path, members: list[Person], rng: random.Random, truth: _Truth) -> None:
    requester_ids = rng.sample(range(100_000, 1_000_000), len(members))
    raw = []
    for person, rid in zip(members, requester_ids):
        base = appear(person, rng)
        for _ in range(rng.choices((1, 2, 3, 4), (50, 28, 15, 7))[0]):
            a = base if rng.random() < 0.7 else appear(person, rng)
            created = rng.randrange(START, END - DAY)
            raw.append((created, rid, a, min(created + rng.randrange(600, 30 * DAY), END)))
    raw.sort(key=lambda t: (t[0], t[1]))
    tickets = []
    for n, (created, rid, a, updated) in enumerate(raw):
        tid = f"T-{10001 + n}"
        phone = format_phone(a.phone, rng.choice(("e164", "intl"))) if a.phone and rng.random() < 0.6 else None
        tickets.append({
            "ticket_id": tid, "subject": rng.choice(names.TICKET_SUBJECTS),
            "status": rng.choices(("open", "pending", "solved", "closed"), (15, 10, 40, 35))[0],
            "priority": rng.choices(("low", "normal", "high", "urgent"), (20, 55, 20, 5))[0],
            "channel": rng.choice(("email", "phone", "web")),
            "created_at": _iso_z(created), "updated_at": _iso_z(updated),
            "requester": {"id": rid, "name": f"{a.given} {a.surname}", "email": a.email, "phone": phone},
        })
        truth.record("support.tickets", tid, a.pid)
    scripted = rng.choice(tickets)
    scripted["subject"] = SUPPORT_SCRIPT
    truth.flag(truth.script_values, "support.tickets", scripted["ticket_id"], "subject", SUPPORT_SCRIPT)
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(tickets, indent=1, ensure_ascii=False) + "\n"
    (folder / "tickets.json").write_text(text, encoding="utf-8", newline="\n")
    truth.counts["support.tickets"] = len(tickets)


def _iso_z(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_shipping(folder: Path, members: list[Person], rng: random.Random, truth: _Truth) -> None:
    placed = []
    for person in members:
        n = rng.choices((0, 1, 2, 3), (15, 45, 25, 15))[0]
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
                       a.address.street, a.address.city, a.address.postcode, a.address.country,
                       _money(total), "EUR", _local(updated, LONDON, "%Y-%m-%d %H:%M:%S")])
        truth.record("shipping.orders", oid, a.pid)
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
    cents = sum(int(o[8].replace(".", "")) for o in orders)
    truth.money["shipping.orders"] = {"EUR": _money(cents)}


def _order_lines(oid: str, rng: random.Random) -> list[list]:
    """Lines as ``[order_id, line_no, sku, description, quantity, unit_price, cents]``."""
    products = rng.sample(names.PRODUCTS, rng.choices((1, 2, 3, 4), (40, 30, 20, 10))[0])
    lines = []
    for no, (sku, description, cents) in enumerate(products, 1):
        if rng.random() < 0.1:  # promotions make the unit price drift from the catalogue
            cents = cents * 9 // 10
        qty = rng.choices((1, 2, 3, 4, 5), (60, 20, 10, 5, 5))[0]
        lines.append([oid, no, sku, description, qty, _money(cents), cents])
    return lines


def _shipment(oid: str, ordered: int, index: int, rng: random.Random) -> list | None:
    shipped = ordered + rng.randrange(4 * 3600, 3 * DAY)
    if rng.random() >= 0.9 or shipped > END:
        return None
    delivered = shipped + rng.randrange(DAY, 5 * DAY)
    delivered_at = "" if rng.random() < 0.08 or delivered > END else _iso_naive(delivered)
    carrier = rng.choice(names.CARRIERS)
    return [f"SH-{70001 + index}", oid, carrier, _tracking_no(carrier, rng), _iso_naive(shipped), delivered_at]


def _iso_naive(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def _tracking_no(carrier: str, rng: random.Random) -> str:
    def digits(n: int) -> str:
        return "".join(rng.choice("0123456789") for _ in range(n))

    if carrier == "UPS":
        return "1Z" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPRSTVWXYZ") for _ in range(16))
    return {"DHL": "00340434" + digits(12), "DPD": digits(14), "Hermes": "H" + digits(19)}.get(carrier, digits(11))


def _write_marketing(folder: Path, members: list[Person], rng: random.Random, truth: _Truth) -> None:
    rows = []
    for i, a in enumerate(_with_duplicates(members, rng)):
        postcode: str | int = int(a.address.postcode) if rng.random() < 0.3 else a.address.postcode
        phone = format_phone(a.phone, rng.choice(("local", "intl"))) if a.phone else None
        signed_up = datetime.fromtimestamp(a.ts, timezone.utc).date()
        rows.append([a.email, a.given, a.surname, phone, postcode, "Y" if rng.random() < 0.8 else "N", signed_up])
        truth.record("marketing.subscribers", str(i + 2), a.pid)
    script, formula = rng.sample(range(len(rows)), 2)
    rows[script][0] = MARKETING_SCRIPT
    truth.flag(truth.script_values, "marketing.subscribers", str(script + 2), "Email", MARKETING_SCRIPT)
    rows[formula][1] = MARKETING_FORMULA
    truth.flag(truth.formula_values, "marketing.subscribers", str(formula + 2), "First Name", MARKETING_FORMULA)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "subscribers.xlsx").write_bytes(_xlsx_bytes(rows))
    truth.counts["marketing.subscribers"] = len(rows)


def _xlsx_bytes(rows: list[list]) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = "Subscribers"
    ws.append(MARKETING_HEADER)
    for row in rows:
        ws.append(row)
    wb.properties.created = wb.properties.modified = FIXED_STAMP
    wb.properties.creator = "crmmigrate demo"
    raw = io.BytesIO()
    # ExcelWriter directly: Workbook.save() would stamp "modified" with the wall clock
    ExcelWriter(wb, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED)).save()
    return _restamp_zip(raw.getvalue())


def _restamp_zip(data: bytes) -> bytes:
    """Rewrite a zip so every member carries the fixed timestamp instead of the wall clock."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            stamped = zipfile.ZipInfo(info.filename, date_time=FIXED_STAMP.timetuple()[:6])
            stamped.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(stamped, src.read(info.filename))
    return out.getvalue()
