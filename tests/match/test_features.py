"""Comparable forms: streets split and written out, nicknames, company names without legal forms."""

from __future__ import annotations

import pytest

from crmmigrate.match.features import company_name, nickname_forms, split_street


@pytest.mark.parametrize(("street", "split"), [
    ("Hauptstr. 41a", ("41a", "hauptstrasse")),
    ("Hauptstraße 41 a", ("41a", "hauptstrasse")),
    ("12 Baker St", ("12", "bakerstreet")),
    ("Bahnhofplatz 115b", ("115b", "bahnhofplatz")),
    ("Am Markt 3-5", ("3-5", "ammarkt")),
    ("Rathauspl. 2", ("2", "rathausplatz")),
    ("Lindenallee", (None, "lindenallee")),
    (None, (None, None)),
])
def test_split_street(street: str | None, split: tuple[str | None, str | None]) -> None:
    assert split_street(street) == split


def test_nicknames_meet_their_formal_name() -> None:
    assert "william" in nickname_forms("bill")
    assert set(nickname_forms("bill")) & set(nickname_forms("william"))
    assert nickname_forms("jurgen") == ("jurgen",)  # a name the dataset does not know stands for itself
    assert nickname_forms(None) is None


@pytest.mark.parametrize(("name", "folded"), [
    ("Donau Medizintechnik GmbH", "donaumedizintechnik"),
    ("DONAU MEDIZINTECHNIK", "donaumedizintechnik"),
    ("ACME Ltd.", "acme"),
    ("Rossi S.p.A.", "rossi"),
    ("Müller & Söhne KG", "mullersohne"),
    ("GmbH", "gmbh"),  # nothing left without the legal form: the name itself, not nothing
    (None, None),
])
def test_company_name(name: str | None, folded: str | None) -> None:
    assert company_name(name) == folded


def test_an_accounts_domain_is_its_website_else_its_contacts_company_mail() -> None:
    import duckdb
    import pandas as pd

    from crmmigrate.match.features import account_features

    accounts = pd.DataFrame({"_source": "s", "_source_key": ["1", "2", "3", "4"], "_department": "sales",
                             "name": ["Donau GmbH", "Donau", "Isar AG", "Ems KG"],
                             "website": ["https://www.donau.de/kontakt", None, None, None],
                             "tax_id": ["de 123.456", None, None, None]})
    contacts = pd.DataFrame({"_source": "s", "_source_key": ["2", "3", "4"],
                             "email": ["a@donau.de", "b@gmx.de", None]})
    con = duckdb.connect()
    account_features(con, accounts, contacts)
    rows = con.execute("SELECT name, domain, tax_id FROM features ORDER BY unique_id").fetchall()
    assert rows == [("donau", "donau.de", "DE123456"), ("donau", "donau.de", None), ("isar", None, None),
                    ("ems", None, None)]


@pytest.mark.parametrize(("first", "last", "email", "named"), [
    ("Jürgen", "Müller", "j.mueller@gmx.de", True),
    ("Jürgen", "Müller", "mueller.juergen7@web.de", True),
    ("Jürgen", "Müller", "JMULLER@firma.de", True),
    ("Jürgen", "Müller", "hexe77@gmx.de", False),
    ("Anna", "Lee", "info@lee-bau.de", False),
])
def test_a_local_part_made_of_the_name_is_known(first: str, last: str, email: str, named: bool) -> None:
    import duckdb
    import pandas as pd

    from crmmigrate.match.features import contact_features

    con = duckdb.connect()
    contact_features(con, pd.DataFrame({"_source": ["s"], "_source_key": ["1"], "_department": ["d"],
                                        "first_name": [first], "last_name": [last], "email": [email]}), pd.DataFrame())
    assert con.execute("SELECT email_local_named FROM features").fetchall() == [(named,)]


def test_a_name_split_in_two_places_is_one_full_name() -> None:
    import duckdb
    import pandas as pd

    from crmmigrate.match.features import contact_features

    con = duckdb.connect()
    contact_features(con, pd.DataFrame({"_source": "s", "_source_key": ["1", "2"], "_department": "d",
                                        "first_name": ["Tobias", "tobias de la"], "last_name": ["De La Cruz", "cruz"]}),
                     pd.DataFrame())
    assert con.execute("SELECT DISTINCT full_name FROM features").fetchall() == [("tobiasdelacruz",)]


def test_a_legal_form_written_out_is_taken_off_too() -> None:
    assert company_name("Clark Immobilien Gesellschaft mit beschränkter Haftung") == "clarkimmobilien"
    assert company_name("Zenit Logistics Besloten Vennootschap") == "zenitlogistics"
