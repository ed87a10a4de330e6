"""Tests of the deterministic demo data generator."""

from __future__ import annotations

import csv
import io
import json
import math
import random
import re
import sqlite3
from collections import Counter
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from crmmigrate.demo import generate
from crmmigrate.demo.generator import truth_text
from crmmigrate.demo.model import RELATION_RATES, Person, make_persons
from crmmigrate.demo.names import nicknames_of
from crmmigrate.demo.noise import RATES

PEOPLE = 40
SALES_HEADER = "CONTACT_ID;NAME;EMAIL;PHONE;COMPANY;OWNER;STREET;CITY;ZIP;COUNTRY;LAST_MODIFIED;MOBILE;BIRTHDAY;WEBSITE"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("demo")
    return out, generate(out, people=PEOPLE, seed=7)


def _sales(out: Path) -> list[dict]:
    text = (out / "sales/contacts.csv").read_bytes().decode("cp1252")
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=";"))


def _csv(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _sql(out: Path, query: str) -> list[tuple]:
    con = sqlite3.connect(out / "billing/billing.sqlite")
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


def _tickets(out: Path) -> list[dict]:
    return json.loads((out / "support/tickets.json").read_text(encoding="utf-8"))


def _subscribers(out: Path) -> list[tuple]:
    wb = openpyxl.load_workbook(out / "marketing/subscribers.xlsx")
    try:
        return list(wb["Subscribers"].iter_rows(values_only=True))
    finally:
        wb.close()


def _files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def _keys(truth: dict, source: str) -> list[str]:
    return [r["key"] for r in truth["records"] if r["source"] == source]


def test_same_seed_gives_identical_files_and_truth(tmp_path: Path) -> None:
    first, second = generate(tmp_path / "a", PEOPLE, 11), generate(tmp_path / "b", PEOPLE, 11)
    assert first == second
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert _subscribers(tmp_path / "a") == _subscribers(tmp_path / "b")
    query = "SELECT * FROM CUSTOMERS ORDER BY CUST_NO"
    assert _sql(tmp_path / "a", query) == _sql(tmp_path / "b", query)


def test_different_seed_gives_different_data(tmp_path: Path) -> None:
    first, second = generate(tmp_path / "a", PEOPLE, 1), generate(tmp_path / "b", PEOPLE, 2)
    assert first["records"] != second["records"]
    for name in ("sales/contacts.csv", "support/tickets.json", "shipping/orders.csv"):
        assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "b" / name).read_bytes()


def test_truth_file_equals_return_value(demo: tuple[Path, dict]) -> None:
    out, truth = demo
    text = (out / "truth.json").read_text(encoding="utf-8")
    assert json.loads(text) == truth
    assert text == truth_text(truth)
    assert text.count("\n") > len(truth["records"])  # one record a line
    assert truth["seed"] == 7 and truth["people"] == PEOPLE


def test_counts_match_files(demo: tuple[Path, dict]) -> None:
    out, truth = demo
    actual = {
        "sales.contacts": len(_sales(out)),
        "billing.customers": _sql(out, "SELECT COUNT(*) FROM CUSTOMERS")[0][0],
        "billing.invoices": _sql(out, "SELECT COUNT(*) FROM INVOICES")[0][0],
        "support.tickets": len(_tickets(out)),
        "shipping.orders": len(_csv(out / "shipping/orders.csv")),
        "shipping.order_lines": len(_csv(out / "shipping/order_lines.csv")),
        "shipping.shipments": len(_csv(out / "shipping/shipments.csv")),
        "marketing.subscribers": len(_subscribers(out)) - 1,
    }
    assert truth["counts"] == actual


def test_record_keys_match_files(demo: tuple[Path, dict]) -> None:
    out, truth = demo
    assert _keys(truth, "sales.contacts") == [r["CONTACT_ID"] for r in _sales(out)]
    assert _keys(truth, "billing.customers") == [str(r[0]) for r in _sql(out, "SELECT CUST_NO FROM CUSTOMERS")]
    assert _keys(truth, "support.tickets") == [t["ticket_id"] for t in _tickets(out)]
    assert _keys(truth, "shipping.orders") == [r["order_id"] for r in _csv(out / "shipping/orders.csv")]
    rows = len(_subscribers(out))
    assert _keys(truth, "marketing.subscribers") == [str(n) for n in range(2, rows + 1)]


def test_every_person_appears_somewhere(demo: tuple[Path, dict]) -> None:
    _, truth = demo
    assert {r["person"] for r in truth["records"]} == {f"P{i:05d}" for i in range(1, PEOPLE + 1)}


def test_support_requester_id_is_stable_per_person(demo: tuple[Path, dict]) -> None:
    out, truth = demo
    person = {r["key"]: r["person"] for r in truth["records"] if r["source"] == "support.tickets"}
    ids: dict[str, set[int]] = {}
    for ticket in _tickets(out):
        ids.setdefault(person[ticket["ticket_id"]], set()).add(ticket["requester"]["id"])
    assert all(len(v) == 1 for v in ids.values())
    assert len({next(iter(v)) for v in ids.values()}) == len(ids)


def test_sales_and_marketing_hold_duplicates(tmp_path: Path) -> None:
    truth = generate(tmp_path, 200, 7)
    for source in ("sales.contacts", "marketing.subscribers"):
        per_person = Counter(r["person"] for r in truth["records"] if r["source"] == source)
        assert max(per_person.values()) >= 2


def test_sales_file_is_cp1252_semicolon_crlf(demo: tuple[Path, dict]) -> None:
    out, _ = demo
    raw = (out / "sales/contacts.csv").read_bytes()
    assert raw.startswith(SALES_HEADER.encode("ascii") + b"\r\n")
    assert raw.count(b"\n") == raw.count(b"\r\n")
    raw.decode("cp1252")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    rows = _sales(out)
    assert all(len(r) == 14 and None not in r for r in rows)
    assert any(r["ZIP"].startswith("0") for r in rows)
    assert {r["COUNTRY"] for r in rows} <= {"DE", "AT", "CH"}


def test_lossy_names_are_written_with_question_marks(demo: tuple[Path, dict]) -> None:
    out, truth = demo
    rows = {r["CONTACT_ID"]: r for r in _sales(out)}
    assert truth["lossy_names"]
    for entry in truth["lossy_names"]:
        assert entry["source"] == "sales.contacts"
        assert rows[entry["key"]]["NAME"] == entry["written"]
        assert "?" in entry["written"] and entry["true_name"] != entry["written"]
        assert entry["true_name"].encode("cp1252", errors="replace").decode("cp1252") == entry["written"]
    lossy_keys = {e["key"] for e in truth["lossy_names"]}
    for key, row in rows.items():
        assert ("?" in row["NAME"]) == (key in lossy_keys)
        assert not any("?" in v for k, v in row.items() if k != "NAME")


def test_impossible_dates_are_the_only_bad_dates(demo: tuple[Path, dict]) -> None:
    out, truth = demo
    found = []
    for row in _sales(out):
        found += _bad("sales.contacts", row["CONTACT_ID"], "LAST_MODIFIED", row["LAST_MODIFIED"], "%d.%m.%Y %H:%M")
    for inv_no, issued in _sql(out, "SELECT INV_NO, ISSUED FROM INVOICES"):
        found += _bad("billing.invoices", inv_no, "ISSUED", issued, "%Y-%m-%d")
    for row in _csv(out / "shipping/orders.csv"):
        found += _bad("shipping.orders", row["order_id"], "order_date", row["order_date"], "%m/%d/%Y")
    key = lambda d: (d["source"], d["key"])  # noqa: E731
    assert sorted(found, key=key) == sorted(truth["impossible_dates"], key=key)
    assert sorted(d["value"] for d in found) == ["13/45/2024", "2023-02-30", "2024-13-01", "31.02.2024 10:00"]


def _bad(source: str, key: str, column: str, value: str, fmt: str) -> list[dict]:
    try:
        parsed = datetime.strptime(value, fmt)
    except ValueError:
        return [{"source": source, "key": key, "column": column, "value": value}]
    assert date(2023, 1, 1) <= parsed.date() <= date(2026, 6, 30)
    return []


def test_formula_and_script_values_exist_exactly_as_listed(demo: tuple[Path, dict]) -> None:
    out, truth = demo
    cells: dict[tuple[str, str, str], object] = {}
    for row in _sales(out):
        for column in ("NAME", "EMAIL", "COMPANY"):
            cells["sales.contacts", row["CONTACT_ID"], column] = row[column]
    for ticket in _tickets(out):
        cells["support.tickets", ticket["ticket_id"], "subject"] = ticket["subject"]
    header, *rows = _subscribers(out)
    for number, row in enumerate(rows, 2):
        for column in ("Email", "First Name", "Last Name"):
            cells["marketing.subscribers", str(number), column] = row[header.index(column)]
    formulas = [k for k, v in cells.items() if isinstance(v, str) and v[:1] in ("=", "+", "@", "-")]
    scripts = [k for k, v in cells.items() if isinstance(v, str) and "<script" in v]
    as_key = lambda d: (d["source"], d["key"], d["column"])  # noqa: E731
    assert sorted(formulas) == sorted(map(as_key, truth["formula_values"]))
    assert sorted(scripts) == sorted(map(as_key, truth["script_values"]))
    for entry in truth["formula_values"] + truth["script_values"]:
        assert cells[as_key(entry)] == entry["value"]
    assert len(truth["formula_values"]) == 3 and len(truth["script_values"]) == 2


def test_money_matches_files(demo: tuple[Path, dict]) -> None:
    out, truth = demo
    cents = _sql(out, "SELECT SUM(AMOUNT_CENTS) FROM INVOICES")[0][0]
    assert truth["money"]["billing.invoices"] == {"EUR": f"{Decimal(cents) / 100:.2f}"}
    orders = _csv(out / "shipping/orders.csv")
    assert truth["money"]["shipping.orders"] == {"EUR": f"{sum(Decimal(o['total']) for o in orders):.2f}"}
    per_order: Counter[str] = Counter()
    for line in _csv(out / "shipping/order_lines.csv"):
        per_order[line["order_id"]] += int(line["quantity"]) * Decimal(line["unit_price"])
    assert all(Decimal(o["total"]) == per_order[o["order_id"]] for o in orders)
    assert {r[0] for r in _sql(out, "SELECT DISTINCT TAX_RATE FROM INVOICES")} <= {"19.00", "7.00"}


def test_shipping_files_are_utf8_lf_with_one_multiline_description(demo: tuple[Path, dict]) -> None:
    out, _ = demo
    for name in ("orders.csv", "order_lines.csv", "shipments.csv"):
        raw = (out / "shipping" / name).read_bytes()
        assert b"\r" not in raw
        raw.decode("utf-8")
    lines = _csv(out / "shipping/order_lines.csv")
    assert sum("\n" in line["description"] and "," in line["description"] for line in lines) == 1


def test_marketing_sheet_types(demo: tuple[Path, dict]) -> None:
    out, _ = demo
    header, *rows = _subscribers(out)
    assert header == ("Email", "First Name", "Last Name", "Phone", "Postcode", "Opt-In", "Signed Up")
    postcodes = [r[4] for r in rows]
    assert any(isinstance(p, int) for p in postcodes) and any(isinstance(p, str) for p in postcodes)
    assert {r[5] for r in rows} <= {"Y", "N"}
    assert all(isinstance(r[6], datetime) for r in rows)


def test_too_few_people_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 20"):
        generate(tmp_path, people=5)


def test_every_demo_phone_is_a_valid_number_read_in_the_systems_region(tmp_path: Path) -> None:
    """The demo systems read phones with `default_region: DE`: each phone they hold must be a
    valid number there, or the map would (rightly) refuse it."""
    import phonenumbers

    out = tmp_path / "demo"
    generate(out, people=300, seed=11)
    phones = [r[c] for r in _sales(out) for c in ("PHONE", "MOBILE")]
    phones += [n for row in _sql(out, "SELECT PHONE, MOBILE FROM CUSTOMERS") for n in row]
    phones += [t["requester"]["phone"] for t in json.loads((out / "support/tickets.json").read_text())]
    book = openpyxl.load_workbook(out / "marketing/subscribers.xlsx", read_only=True)
    phones += [row[3] for row in book.active.iter_rows(min_row=2, values_only=True)]
    book.close()
    phones = [p for p in phones if p]
    assert len(phones) > 300
    invalid = [p for p in phones if not phonenumbers.is_valid_number(phonenumbers.parse(p, "DE"))]
    assert invalid == []


# -- as hard as real data: corruptions, namesakes, households, accounts --------------------

HARD_PEOPLE, HARD_SEED = 4000, 5
BIRTH_SOURCES = ("sales.contacts", "billing.customers", "support.tickets")
ADDRESS_SOURCES = ("sales.contacts", "billing.customers", "shipping.orders")


@pytest.fixture(scope="module")
def hard(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, dict]:
    out = tmp_path_factory.mktemp("hard")
    truth = generate(out, people=HARD_PEOPLE, seed=HARD_SEED)
    persons = {p.pid: p for p in make_persons(HARD_PEOPLE, random.Random(HARD_SEED))}
    return out, truth, persons


def _kinds(truth: dict) -> dict[tuple[str, str], set[str]]:
    return {(c["source"], c["key"]): set(c["kinds"]) for c in truth["corruptions"]}


def _assert_rate(kind: str, hits: int, trials: int, rate: float) -> None:
    # four standard deviations, or a quarter of the rate: support tickets of one person share
    # an appearance, so its records are not quite independent draws
    seen = hits / trials
    slack = max(4 * math.sqrt(rate * (1 - rate) / trials), rate / 4)
    assert abs(seen - rate) <= slack, f"{kind}: {hits}/{trials} = {seen:.4f}, stated {rate}"


def test_corruptions_appear_at_their_stated_rates(hard: tuple[Path, dict, dict]) -> None:
    _, truth, persons = hard
    kinds, rates = _kinds(truth), RATES
    records = [(r["source"], r["key"], persons[r["person"]]) for r in truth["records"]]

    def rate_of(kind: str, where) -> None:
        trials = [(s, k) for s, k, p in records if where(s, k, p)]
        hits = sum(kind in kinds.get(t, ()) for t in trials)
        _assert_rate(kind, hits, len(trials), rates[kind])

    def everywhere(s: str, k: str, p: Person) -> bool:
        return True

    def has_nickname(s: str, k: str, p: Person) -> bool:
        return bool(nicknames_of(p.given, p.origin))

    def birth_system(s: str, k: str, p: Person) -> bool:
        return s in BIRTH_SOURCES

    def birth_written(s: str, k: str, p: Person) -> bool:
        return s in BIRTH_SOURCES and "birth_date_missing" not in kinds.get((s, k), ())

    def swappable(s: str, k: str, p: Person) -> bool:
        return birth_written(s, k, p) and p.birth.day != p.birth.month \
            and "birth_date_impossible" not in kinds.get((s, k), ())

    def address_system(s: str, k: str, p: Person) -> bool:
        return s in ADDRESS_SOURCES

    def moved(s: str, k: str, p: Person) -> bool:
        return s != "support.tickets" and p.new_address is not None

    rate_of("nickname", has_nickname)
    for kind in ("name_typo", "names_swapped", "surname_missing"):
        rate_of(kind, everywhere)
    rate_of("birth_date_missing", birth_system)
    rate_of("birth_date_impossible", birth_written)
    rate_of("birth_date_swapped", swappable)
    rate_of("street_typo", address_system)
    rate_of("locality_typo", address_system)
    rate_of("old_address", moved)
    relations = Counter(p.pid for group in truth["households"] for p in map(persons.get, group["persons"][1:]))
    _assert_rate("household", len(relations), HARD_PEOPLE, RELATION_RATES["household"])


def test_corruptions_are_in_the_files_where_truth_says(hard: tuple[Path, dict, dict]) -> None:
    out, truth, persons = hard
    kinds = _kinds(truth)
    person = {r["key"]: persons[r["person"]] for r in truth["records"] if r["source"] == "sales.contacts"}
    for row in _sales(out):
        p, got = person[row["CONTACT_ID"]], kinds.get(("sales.contacts", row["CONTACT_ID"]), set())
        surname, _, given = row["NAME"].partition(", ")
        if "surname_missing" in got:
            assert surname == ""
        if "birth_date_missing" in got:
            assert row["BIRTHDAY"] == ""
            continue
        day, month, year = map(int, row["BIRTHDAY"].split("."))
        assert year == p.birth.year
        if "birth_date_swapped" in got:
            assert (day, month) == (p.birth.month, p.birth.day)
        elif "birth_date_impossible" in got:
            with pytest.raises(ValueError):
                date(year, month, day)
        else:
            assert date(year, month, day) == p.birth
    # every written birth date that a calendar knows is the person's, or swapped, in all three systems
    assert {r[0] for r in _sql(out, "SELECT length(BIRTH_DATE) FROM CUSTOMERS")} <= {8, None}
    assert all(re.fullmatch(r"\d\d/\d\d/\d{4}", t["requester"]["birthday"] or "00/00/0000") for t in _tickets(out))
    assert "birthday" not in json.dumps(_csv(out / "shipping/orders.csv")[:1]).lower()


def test_namesakes_are_different_people_with_one_name_in_one_city(hard: tuple[Path, dict, dict]) -> None:
    out, truth, persons = hard
    groups = truth["namesakes"]
    assert len(groups) >= RELATION_RATES["namesake"] * HARD_PEOPLE / 2
    for group in groups:
        members = [persons[pid] for pid in group["persons"]]
        assert len(members) >= 2
        assert {(p.given, p.surname, p.address.city) for p in members} == {(group["given"], group["surname"], group["city"])}
        assert len({p.birth for p in members}) == len(members)
        assert len({p.email for p in members}) == len(members)
    # and they meet in the files: one written name, one city, two people
    who = {r["key"]: r["person"] for r in truth["records"] if r["source"] == "shipping.orders"}
    seen: dict[tuple[str, str], set[str]] = {}
    for row in _csv(out / "shipping/orders.csv"):
        seen.setdefault((row["customer_name"], row["city"]), set()).add(who[row["order_id"]])
    assert any(len(people) > 1 for people in seen.values())


def test_household_mailboxes_are_shared_by_different_persons(hard: tuple[Path, dict, dict]) -> None:
    out, truth, persons = hard
    assert truth["households"]
    for group in truth["households"]:
        members = [persons[pid] for pid in group["persons"]]
        assert {p.email for p in members} == {group["email"]}
        assert len({(p.given, p.birth) for p in members}) == len(members)
        assert len({p.address for p in members}) == 1
    who = {r["key"]: r["person"] for r in truth["records"] if r["source"] == "sales.contacts"}
    by_email: dict[str, set[str]] = {}
    for row in _sales(out):
        if row["EMAIL"]:
            by_email.setdefault(row["EMAIL"].lower(), set()).add(who[row["CONTACT_ID"]])
    assert sum(len(people) > 1 for people in by_email.values()) >= 5


def test_accounts_grow_with_people_and_are_written_several_ways(hard: tuple[Path, dict, dict]) -> None:
    out, truth, _ = hard
    account = {(a["source"], a["key"]): a["account"] for a in truth["accounts"]}
    planted = {(f["source"], f["key"]) for f in truth["formula_values"] if f["column"] == "COMPANY"}
    written: dict[str, set[str]] = {}
    for row in _sales(out):
        key = ("sales.contacts", row["CONTACT_ID"])
        assert (key in account) == (bool(row["COMPANY"]) and key not in planted)
        if key in account:
            written.setdefault(account[key], set()).add(row["COMPANY"])
            assert not row["WEBSITE"] or "." in row["WEBSITE"]
    for cust_no, company in _sql(out, "SELECT CUST_NO, COMPANY FROM CUSTOMERS"):
        assert (("billing.customers", str(cust_no)) in account) == (company is not None)
        if company:
            written.setdefault(account["billing.customers", str(cust_no)], set()).add(company)
    for ticket in _tickets(out):
        key = ("support.tickets", ticket["ticket_id"])
        assert (key in account) == (ticket["requester"]["organization"] is not None)
    assert len(set(account.values())) >= HARD_PEOPLE / 20  # not 22 companies at any size
    assert sum(len(v) >= 3 for v in written.values()) >= 20
    suffixes = " ".join(name for names in written.values() for name in names)
    assert all(form in suffixes for form in ("GmbH", "AG", "KG", "Ltd", "Inc", "S.A.", "G.m.b.H."))
