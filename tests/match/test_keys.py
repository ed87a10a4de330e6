"""Folding and cluster ids: what every matcher agrees on."""

from __future__ import annotations

import uuid

import pytest

from crmmigrate.match.keys import cluster_uuid, fold


@pytest.mark.parametrize(("value", "folded"), [
    ("Jürgen-Ö.", "jurgeno"),
    ("Straße", "strasse"),
    ("STRASSE", "strasse"),
    ("  Ann.Lee@Example.DE ", "annleeexamplede"),
    ("Renée Lefèvre", "reneelefevre"),
    ("ﬁ", "fi"),
    ("10115", "10115"),
    ("--", None),
    ("", None),
    (None, None),
    (float("nan"), None),
])
def test_fold(value: object, folded: str | None) -> None:
    assert fold(value) == folded


def test_cluster_ids_are_derived_per_entity_and_stable() -> None:
    assert cluster_uuid("contact", "a", "1") != cluster_uuid("account", "a", "1")
    # Derived, not random: the same record gets the same id on every run (it becomes the CRM id).
    assert cluster_uuid("contact", "a", "1") == str(uuid.uuid5(uuid.UUID("6f1c2a51-8a0e-4c1b-9d83-2f6b1e3c7a10"),
                                                               "contact\x1fa\x1f1"))
