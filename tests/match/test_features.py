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
