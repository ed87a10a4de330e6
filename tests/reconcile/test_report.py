"""The report prints data values escaped, unmasked of nothing secret, visible and bounded."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from crmmigrate.reconcile.report import SHOWN_CHARS, reject_groups, render, shown


def context(rejects: list[dict]) -> dict:
    summary = {"records_in": 3, "persons": 1, "created": 1, "updated": 0, "rejected": 2, "deferred": 0,
               "conflicts": 0, "review_pairs": 0}
    return {"run_id": "r1", "project": "p", "target": "sqlite:///crm.sqlite", "generated_at": "now",
            "balanced": True, "summary": summary, "outcomes": [], "balance": [], "sources": [], "imbalances": [],
            "verification": [], "problems": [], "rejects": rejects, "conflicts": [], "nulled": [], "changed": [], "transformed": [],
            "review": []}


def test_shown_masks_passwords_shows_hidden_characters_and_cuts_long_values() -> None:
    assert shown("postgresql://ann:s3cr3t@db/crm") == "postgresql://ann:***@db/crm"
    assert shown("\u202eO-7777") == "<U+202E>O-7777"
    assert shown("\r=1+2\t") == "<U+000D>=1+2<U+0009>"
    assert shown("Ωμέγα مرحبا") == "Ωμέγα مرحبا"  # scripts are left alone, only control characters shown
    long = shown("x" * 40_000)
    assert long.startswith("x" * SHOWN_CHARS + "…") and "40,000 characters" in long
    assert shown(7) == 7
    many_tabs = shown("\t" * 400)  # cut before the tabs are spelt out: counted as read, no half <U+…>
    assert many_tabs == "<U+0009>" * SHOWN_CHARS + "… (400 characters)"
    assert shown("a\u00adb\U000e0041") == "a<U+00AD>b<U+E0041>"  # soft hyphen, tag character


def test_rejected_values_are_escaped_after_masking_and_the_rest_is_counted(tmp_path: Path) -> None:
    ledger = pd.DataFrame({
        "_source": "s.t", "entity": "contact", "outcome": "rejected", "reason_code": "invalid_email",
        "_source_key": ["T-1?token=abc", "<script>alert(1)</script>", "\u202ek", "4", "5", "6", "7"],
        "message": ["'x' is not an email"] * 7,
    })
    render(tmp_path / "report.html", context(reject_groups(ledger)))
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<code>T-1?token=***</code>" in html and "abc" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script" not in html
    assert "&lt;U+202E&gt;k" in html and "\u202e" not in html
    assert "… and 2 more" in html
    assert "2 rejected and 0 deferred" in html


SNAPSHOT = Path(__file__).parent / "snapshots" / "report.html"


def test_report_matches_its_snapshot(tmp_path: Path) -> None:
    """The whole page for a small literal run with hostile values, compared byte for byte.
    After a deliberate change: ``CRMMIGRATE_REGEN_SNAPSHOTS=1 pytest tests/reconcile/test_report.py``,
    then review the diff."""
    import os

    from crmmigrate.errors import Imbalance

    ledger = pd.DataFrame({
        "_source": "sales.contacts", "entity": "contact", "outcome": "rejected", "reason_code": "invalid_email",
        "_source_key": ["S-1", "=HYPERLINK(\"http://x\")", "\u202eS-3"], "message": ["email: '<b>x</b>' is not valid"] * 3,
    })
    ctx = context(reject_groups(ledger)) | {
        "balanced": False,
        "summary": {"records_in": 5, "persons": 1, "created": 1, "updated": 0, "rejected": 3, "deferred": 0,
                    "conflicts": 2, "review_pairs": 3},
        "review": [{"entity": "contact", "reason": "uncertain", "count": 2},
                   {"entity": "contact", "reason": "chaining guard", "count": 1}],
        "outcomes": ["created", "rejected"],
        "balance": [{"_department": "sales", "_source": "sales.contacts", "entity": "contact", "records_in": 5,
                     "created": 1, "rejected": 3, "ledger_rows": 4, "balanced": False}],
        "sources": [{"department": "sales", "source": "sales.contacts", "format": "csv", "path": "data/<x>.csv",
                     "records_in": 5, "rejected": 0, "fallback_decoded": 1, "repeats_identical": 0,
                     "repeats_differing": 0}],
        "imbalances": [Imbalance("sales.contacts", "contact", 5, 4, ["S-5"], ["S-1"])],
        "verification": [{"entity": "contact", "before": 0, "created": 1, "superseded": 0, "expected": 1, "actual": 1,
                          "ok": True}],
        "problems": ["contact: the CRM holds 2 rows, the ledger expects 1"],
        "conflicts": [{"entity": "contact", "field": "email", "count": 2}],
        "transformed": [{"source": "sales.contacts", "entity": "address", "field": "city", "transform": "trim",
                         "count": 1, "words": "1 value trimmed"}],
        "changed": [{"source": "sales.contacts", "entity": "contact", "field": "last_modified",
                     "rule": "nonexistent: shift_forward", "count": 1,
                     "examples": [{"key": "S-3", "before": "31.03.2024 02:30", "after": "2024-03-31 01:00:00+00:00"}]}],
        "nulled": [{"source": "sales.contacts", "entity": "contact", "field": "phone", "reason_code": "invalid_phone",
                    "count": 1, "examples": [{"key": "S-2", "value": "\tcall me"}]}],
    }
    render(tmp_path / "report.html", ctx)
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    if os.environ.get("CRMMIGRATE_REGEN_SNAPSHOTS") == "1":
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(html, encoding="utf-8")
    assert SNAPSHOT.exists(), "no snapshot yet: run with CRMMIGRATE_REGEN_SNAPSHOTS=1"
    assert html == SNAPSHOT.read_text(encoding="utf-8")
