"""`map_frame` on small inline tables: every row lands in exactly one of mapped / rejects /
skipped; a record is rejected once with every failure; strict by default."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest

from crmmigrate.map.mapper import MapResult, map_frame
from crmmigrate.schemas import LINEAGE_NAMES
from crmmigrate.spec.model import MappingSpec

UTC = dt.timezone.utc


def spec(entities: list[dict[str, Any]], **extra: Any) -> MappingSpec:
    return MappingSpec.model_validate({
        "spec_version": 1, "kind": "mapping", "system": "s", "department": "sales",
        "sources": {
            "rows": {"format": "csv", "path": "r.csv", "key": ["ID"], **extra.pop("source", {})},
            "other": {"format": "csv", "path": "o.csv", "key": ["ID"]},
        },
        "entities": entities, **extra,
    })


def table(header: list[str], *rows: list[str | None], source: str = "s.rows") -> pd.DataFrame:
    """Extracted rows as the extract stage writes them: raw text columns plus lineage."""
    frame = pd.DataFrame([list(r) for r in rows], columns=header, dtype=object)
    frame["_source"] = source
    frame["_department"] = "sales"
    frame["_source_key"] = frame["ID"]
    frame["_row_number"] = range(2, len(frame) + 2)
    frame["_row_hash"] = "hash"
    return frame


def run(frame: pd.DataFrame, mapping: MappingSpec, entity: int = 0) -> MapResult:
    result = map_frame(frame, mapping.entities[entity], mapping)
    # The ledger invariant, on every call: each row in exactly one output.
    keys = (result.mapped["_source_key"].tolist() + result.rejects["_source_key"].tolist()
            + result.skipped["_source_key"].tolist())
    assert sorted(keys) == sorted(frame["_source_key"]), "rows in != mapped + rejects + skipped"
    return result


def failures(result: MapResult) -> dict[str, list[tuple[str, str, str | None]]]:
    """Source key → [(field, reason_code, value)] of each rejected row."""
    return {k: [(f["field"], f["reason_code"], f["value"]) for f in fs]
            for k, fs in zip(result.rejects["_source_key"], result.rejects["failures"])}


CONTACT = {"entity": "contact", "from": "rows",
           "fields": {"last_name": {"column": "NAME", "transform": ["trim"]},
                      "email": {"column": "EMAIL", "transform": ["email"]},
                      "phone": {"column": "PHONE", "transform": ["phone"]}}}


def test_good_rows_are_mapped_with_lineage() -> None:
    result = run(table(["ID", "NAME", "EMAIL", "PHONE"], ["1", " Ann ", "ANN@X.DE", "030 1234567"]), spec([CONTACT]))
    assert result.rejects.empty and result.skipped.empty
    row = result.mapped.iloc[0].to_dict()
    assert {k: row[k] for k in ("last_name", "email", "phone")} == {
        "last_name": "Ann", "email": "ann@x.de", "phone": "+49301234567"}
    assert {k: row[k] for k in LINEAGE_NAMES} == {"_source": "s.rows", "_department": "sales", "_source_key": "1",
                                                   "_row_number": 2, "_row_hash": "hash"}
    assert row["_last_modified"] is None


def test_two_failed_rules_give_one_reject_listing_both() -> None:
    frame = table(["ID", "NAME", "EMAIL", "PHONE"],
                  ["1", "Ann", "<script>x</script>", "abc"], ["2", "Bob", "b@x.de", None])
    strict = {**CONTACT, "fields": {k: {**v, "on_invalid": "reject"} if isinstance(v, dict) else v
                                    for k, v in CONTACT["fields"].items()}}
    result = run(frame, spec([strict]))
    assert result.mapped["_source_key"].tolist() == ["2"]
    assert len(result.rejects) == 1
    assert failures(result) == {"1": [("email", "invalid_email", "<script>x</script>"), ("phone", "invalid_phone", "abc")]}
    reject = result.rejects.iloc[0]
    assert reject["reason_code"] == "invalid_email"  # the first failure names the row
    assert reject["category"] == "data"
    assert reject["entity"] == "contact"
    assert reject["message"] == "email: '<script>x</script>' refused by email; phone: 'abc' refused by phone"
    assert reject["raw"] == '{"ID":"1","NAME":"Ann","EMAIL":"<script>x</script>","PHONE":"abc"}'
    assert reject["_row_number"] == 2


def test_required_missing_and_blank() -> None:
    result = run(table(["ID", "NAME", "EMAIL", "PHONE"], ["1", None, None, None], ["2", "   ", None, None]), spec([CONTACT]))
    assert failures(result) == {"1": [("last_name", "missing_required", None)],
                                "2": [("last_name", "missing_required", "   ")]}
    assert result.rejects["message"].tolist() == ["last_name: a value is required"] * 2


def test_a_refused_value_is_not_also_reported_missing() -> None:
    mapping = spec([{"entity": "contact", "from": "rows",
                     "fields": {"last_name": {"column": "NAME", "transform": ["email"]}}}])
    result = run(table(["ID", "NAME"], ["1", "not-an-email"]), mapping)
    assert failures(result) == {"1": [("last_name", "invalid_email", "not-an-email")]}


INVOICE = {"entity": "invoice", "from": "rows", "links": {"contact": "self"},
           "fields": {"invoice_number": "ID",
                      "issued_on": {"column": "ISSUED", "formats": ["%d.%m.%Y"]},
                      "amount": {"column": "AMOUNT"},
                      "tax_rate": {"column": "TAX"},
                      "currency": {"constant": "EUR"},
                      "status": {"column": "STATUS", "map": {"PAID": "paid", "OPEN": "open"}}}}
INVOICE_HEADER = ["ID", "ISSUED", "AMOUNT", "TAX", "STATUS"]


def test_typed_values() -> None:
    result = run(table(INVOICE_HEADER, ["I1", "31.01.2024", "12.5", "19", "PAID"]), spec([INVOICE]))
    row = result.mapped.iloc[0]
    assert row["issued_on"] == dt.date(2024, 1, 31)
    assert row["amount"] == Decimal("12.50") and str(row["amount"]) == "12.50"
    assert str(row["tax_rate"]) == "19.00"
    assert (row["currency"], row["status"]) == ("EUR", "paid")
    assert (row["_link_contact_source"], row["_link_contact_key"]) == ("s.rows", "I1")


def test_strict_invalid_date_is_a_reject_never_a_null() -> None:
    result = run(table(INVOICE_HEADER, ["I1", "31.02.2024", "1", None, "PAID"], ["I2", "2024-01-31", "1", None, "PAID"]),
                 spec([INVOICE]))
    assert result.mapped.empty
    assert failures(result) == {"I1": [("issued_on", "invalid_date", "31.02.2024")],
                                "I2": [("issued_on", "invalid_date", "2024-01-31")]}
    assert result.rejects["message"].iloc[0] == "issued_on: '31.02.2024' is not a valid date (formats: %d.%m.%Y)"
    assert result.rejects["category"].iloc[0] == "coercion"


def test_blank_text_from_a_database_is_missing_not_invalid() -> None:
    # SQL and spreadsheet readers pass '' through; for a typed field it is an absent value.
    result = run(table(INVOICE_HEADER, ["I1", "", "1", " ", "PAID"]), spec([INVOICE]))
    assert failures(result) == {"I1": [("issued_on", "missing_required", "")]}


def test_value_map_miss_is_unmapped_and_required_is_not_repeated() -> None:
    result = run(table(INVOICE_HEADER, ["I1", "01.01.2024", "1", None, "VOID"], ["I2", "01.01.2024", "1", None, None]),
                 spec([INVOICE]))
    assert failures(result) == {"I1": [("status", "unmapped_value", "VOID")],
                                "I2": [("status", "missing_required", None)]}
    assert result.rejects["message"].iloc[0] == "status: 'VOID' is not in the value map (PAID, OPEN)"


def test_value_map_to_a_typed_value() -> None:
    consent = {"entity": "marketing_consent", "from": "rows", "links": {"contact": "self"},
               "fields": {"channel": {"constant": "email"}, "opted_in": {"column": "OPT", "map": {"Y": True, "N": False}}}}
    result = run(table(["ID", "OPT"], ["1", "Y"], ["2", "N"], ["3", "y"]), spec([consent]))
    assert result.mapped["opted_in"].tolist() == [True, False]
    assert failures(result) == {"3": [("opted_in", "unmapped_value", "y")]}


@pytest.mark.parametrize(("amount", "expected"), [
    ("12.345", None), ("1e-3", None), ("abc", None), ("NaN", None), ("12", Decimal("12.00")), ("-0.5", Decimal("-0.50")),
])
def test_decimals_with_too_many_places_are_refused(amount: str, expected: Decimal | None) -> None:
    result = run(table(INVOICE_HEADER, ["I1", "01.01.2024", amount, None, "PAID"]), spec([INVOICE]))
    if expected is None:
        assert failures(result) == {"I1": [("amount", "invalid_number", amount)]}
    else:
        assert result.mapped["amount"].tolist() == [expected]


def test_cents() -> None:
    invoice = {**INVOICE, "fields": {**INVOICE["fields"], "amount": {"column": "AMOUNT", "cents": True}}}
    result = run(table(INVOICE_HEADER, ["I1", "01.01.2024", "1250", None, "PAID"], ["I2", "01.01.2024", "12.5", None, "PAID"],
                       ["I3", "01.01.2024", "-7", None, "PAID"]), spec([invoice]))
    assert result.mapped["amount"].tolist() == [Decimal("12.50"), Decimal("-0.07")]
    assert failures(result) == {"I2": [("amount", "invalid_number", "12.5")]}


def test_too_long_text_is_refused() -> None:
    address = {"entity": "address", "from": "rows", "links": {"contact": "self"},
               "fields": {"kind": {"constant": "home"}, "country": {"column": "C", "on_invalid": "reject"}}}
    result = run(table(["ID", "C"], ["1", "DE"], ["2", "DEU"]), spec([address]))
    assert result.mapped["country"].tolist() == ["DE"]
    assert failures(result) == {"2": [("country", "too_long", "DEU")]}


def test_timestamps_are_read_in_the_source_zone_and_stored_in_utc() -> None:
    case = {"entity": "support_case", "from": "rows", "links": {"contact": "self"},
            "fields": {"case_number": "ID", "status": {"constant": "open"},
                       "opened_at": {"column": "OPENED", "formats": ["%d.%m.%Y %H:%M", "iso"]}}}
    mapping = spec([case], timezone="Europe/Berlin",
                   source={"last_modified": {"column": "CHANGED", "formats": ["%d.%m.%Y %H:%M"]}})
    frame = table(["ID", "OPENED", "CHANGED"], ["1", "15.01.2024 12:00", "01.07.2024 12:00"],
                  ["2", "2024-07-01T12:00:00+00:00", "01.07.2024 12:00"], ["3", "yesterday", "nope"])
    result = run(frame, mapping)
    assert result.mapped["opened_at"].tolist() == [dt.datetime(2024, 1, 15, 11, 0, tzinfo=UTC),   # CET, +1
                                                   dt.datetime(2024, 7, 1, 12, 0, tzinfo=UTC)]    # explicit offset kept
    assert result.mapped["_last_modified"].tolist() == [dt.datetime(2024, 7, 1, 10, 0, tzinfo=UTC)] * 2  # CEST, +2
    assert failures(result) == {"3": [("opened_at", "invalid_datetime", "yesterday"),
                                      ("_last_modified", "invalid_datetime", "nope")]}


def test_when_present_skips_rows_without_the_entity() -> None:
    account = {"entity": "account", "from": "rows", "when_present": ["COMPANY"], "fields": {"name": "COMPANY"}}
    result = run(table(["ID", "COMPANY"], ["1", "ACME"], ["2", None], ["3", "x" * 301], ["4", "  "], ["5", ""]),
                 spec([account]))
    assert result.mapped["name"].tolist() == ["ACME"]
    # A blank company is no company (`trim` would make it missing): skipped, not rejected as missing_required.
    assert result.skipped.to_dict("records") == [{
        "entity": "account", "_source": "s.rows", "_source_key": key, "reason_code": "not_applicable",
        "message": "COMPANY empty: no account in this record"} for key in ("2", "4", "5")]
    assert failures(result) == {"3": [("name", "too_long", "x" * 301)]}


def test_links_to_self_and_to_another_source() -> None:
    line = {"entity": "order_line", "from": "rows", "links": {"order": {"source": "other", "column": "ORDER"}},
            "fields": {"line_no": "LINE", "quantity": "QTY", "unit_price": "PRICE"}}
    frame = table(["ID", "ORDER", "LINE", "QTY", "PRICE"],
                  ["1", " O1 ", "1", "2", "9.99"], ["2", None, "2", "1", "1"], ["3", "O1", "x", "1.5", "1"])
    result = run(frame, spec([line]))
    mapped = result.mapped.iloc[0]
    assert (mapped["_link_order_source"], mapped["_link_order_key"]) == ("s.other", "O1")
    assert (mapped["line_no"], mapped["quantity"], mapped["unit_price"]) == (1, 2, Decimal("9.99"))
    assert failures(result) == {"2": [("order_id", "missing_parent", None)],
                                "3": [("line_no", "invalid_number", "x"), ("quantity", "invalid_number", "1.5")]}


def test_optional_link_left_empty() -> None:
    contact = {"entity": "contact", "from": "rows", "links": {"account": {"source": "other", "column": "ACC"}},
               "fields": {"last_name": "NAME"}}
    result = run(table(["ID", "NAME", "ACC"], ["1", "Ann", None], ["2", "Bob", "A9"]), spec([contact]))
    assert result.mapped["_link_account_key"].tolist() == [None, "A9"]
    assert result.mapped["_link_account_source"].tolist() == ["s.other", "s.other"]


def test_columns_are_joined_skipping_missing_parts() -> None:
    address = {"entity": "address", "from": "rows", "links": {"contact": "self"},
               "fields": {"kind": {"constant": "home"}, "street": {"columns": ["STREET", "NO"], "sep": " "}}}
    result = run(table(["ID", "STREET", "NO"], ["1", "Hauptstr.", "5"], ["2", "Ring", None], ["3", None, None]),
                 spec([address]))
    assert result.mapped["street"].tolist() == ["Hauptstr. 5", "Ring", None]


def test_a_transform_that_raises_rejects_the_chunk_and_loses_nothing() -> None:
    contact = {"entity": "contact", "from": "rows",
               "fields": {"last_name": {"column": "NAME", "transform": [{"zfill": {"width": "five"}}]}}}
    result = run(table(["ID", "NAME"], ["1", "12"], ["2", "Bob"]), spec([contact]))
    assert result.mapped.empty
    assert set(result.rejects["reason_code"]) == {"transform_error"}
    assert set(result.rejects["category"]) == {"spec"}


def test_empty_chunk() -> None:
    result = run(table(["ID", "NAME", "EMAIL", "PHONE"]), spec([CONTACT]))
    assert (len(result.mapped), len(result.rejects), len(result.skipped)) == (0, 0, 0)


def test_mapping_is_pure_and_repeatable() -> None:
    frame = table(["ID", "NAME", "EMAIL", "PHONE"], ["1", "Ann", "bad", None], ["2", "Bob", None, "030 1234567"])
    before = frame.copy()
    first, second = run(frame, spec([CONTACT])), run(frame, spec([CONTACT]))
    pd.testing.assert_frame_equal(frame, before)
    pd.testing.assert_frame_equal(first.mapped, second.mapped)
    pd.testing.assert_frame_equal(first.rejects, second.rejects)


def test_a_record_of_a_source_without_columns_is_rejected_with_an_empty_raw_record() -> None:
    frame = table(["ID"], ["1"], ["2"]).drop(columns=["ID"])
    mapping = spec([{"entity": "contact", "from": "rows", "fields": {
        "last_name": {"constant": "X"},
        "email": {"constant": "not-an-address", "transform": ["email"], "on_invalid": "reject"}}}])
    result = run(frame, mapping)
    assert result.rejects["raw"].tolist() == ["{}", "{}"]
    assert result.rejects["reason_code"].tolist() == ["invalid_email", "invalid_email"]


def test_every_value_a_transform_changed_is_counted_per_field_and_transform() -> None:
    """A trim that removed a space really there in the source is a value the CRM holds otherwise:
    counted per (field, transform) over the mapped records, each step of a chain on its own."""
    address = {"entity": "address", "from": "rows", "links": {"contact": "self"},
               "fields": {"kind": {"constant": "home"}, "city": {"column": "CITY", "transform": ["trim", "title"]},
                          "postcode": {"column": "ZIP", "transform": ["trim"]},
                          "country": {"column": "C", "transform": ["trim", "upper"], "on_invalid": "reject"}}}
    frame = table(["ID", "CITY", "ZIP", "C"],
                  ["1", "Berlin ", "10115", "DE"],    # city trimmed
                  ["2", "köln", " 50667", "de"],      # city title-cased, postcode trimmed, country upper-cased
                  ["3", "Wien", "1010", " AUT"],      # rejected (too long): its changes are not stored
                  ["4", "  ", "", "AT"])              # a blank city trimmed to nothing: changed too
    result = run(frame, spec([address]))
    assert result.mapped["_source_key"].tolist() == ["1", "2", "4"]
    assert result.transformed == {("city", "trim"): 2, ("city", "title"): 1, ("postcode", "trim"): 1,
                                  ("country", "upper"): 1}
