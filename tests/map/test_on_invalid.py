"""`on_invalid: null`: an optional field's invalid value is dropped, never silently. The record is
mapped with the field empty and the value lands in `nulled` with its reason; any strict failure
still rejects the record, listing the lenient failure too."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import pytest

from crmmigrate.map.mapper import MapResult, map_frame
from crmmigrate.schemas import LINEAGE_NAMES, MAP_NULLED
from crmmigrate.spec.model import FieldSpec, MappingSpec

from tests.map.test_mapper import failures, run, spec, table

LENIENT_PHONE = {"entity": "contact", "from": "rows",
                 "fields": {"last_name": {"column": "NAME", "transform": ["trim"]},
                            "phone": {"column": "PHONE", "transform": ["phone"], "on_invalid": "null"},
                            "email": {"column": "EMAIL", "transform": ["email"]}}}
HEADER = ["ID", "NAME", "PHONE", "EMAIL"]


def nulled(result: MapResult) -> list[dict[str, Any]]:
    assert list(result.nulled.columns) == MAP_NULLED.names
    return result.nulled.drop(columns=["_department", "_row_hash"]).to_dict("records")


def test_an_invalid_lenient_phone_keeps_the_record_and_records_the_value() -> None:
    result = run(table(HEADER, ["1", "Ann", "junk", "ann@x.de"], ["2", "Bob", "030 1234567", None]), spec([LENIENT_PHONE]))
    assert result.rejects.empty
    assert result.mapped["_source_key"].tolist() == ["1", "2"]
    assert result.mapped["phone"].tolist() == [None, "+49301234567"]
    assert result.mapped["email"].tolist() == ["ann@x.de", None]
    assert nulled(result) == [{
        "_source": "s.rows", "_source_key": "1", "_row_number": 2, "entity": "contact", "field": "phone",
        "rule": "phone", "value": "junk", "reason_code": "invalid_phone", "category": "data",
        "message": "'junk' refused by phone"}]


def test_a_strict_failure_still_rejects_and_lists_the_lenient_one_too() -> None:
    strict_email = {**LENIENT_PHONE, "fields": {**LENIENT_PHONE["fields"], "email": {
        "column": "EMAIL", "transform": ["email"], "on_invalid": "reject"}}}
    result = run(table(HEADER, ["1", "Ann", "junk", "not-an-email"]), spec([strict_email]))
    assert result.mapped.empty
    # Both failures, in field order, so a fixed replay sees everything; no nulled row (nothing was mapped).
    assert failures(result) == {"1": [("phone", "invalid_phone", "junk"), ("email", "invalid_email", "not-an-email")]}
    assert result.nulled.empty
    reject = result.rejects.iloc[0]
    assert (reject["reason_code"], reject["category"]) == ("invalid_email", "data")  # what rejected the record
    assert reject["message"] == "phone: 'junk' refused by phone; email: 'not-an-email' refused by email"


def test_an_unmapped_picklist_value_is_dropped() -> None:
    address = {"entity": "address", "from": "rows", "links": {"contact": "self"},
               "fields": {"kind": {"constant": "home"},
                          "country": {"column": "LAND", "map": {"Deutschland": "DE", "Österreich": "AT"},
                                      "on_invalid": "null"}}}
    result = run(table(["ID", "LAND"], ["1", "Deutschland"], ["2", "Narnia"], ["3", None]), spec([address]))
    assert result.rejects.empty
    assert result.mapped["country"].tolist() == ["DE", None, None]
    assert [(r["_source_key"], r["field"], r["rule"], r["value"], r["reason_code"]) for r in nulled(result)] == [
        ("2", "country", "map", "Narnia", "unmapped_value")]
    assert nulled(result)[0]["message"] == "'Narnia' is not in the value map (Deutschland, Österreich)"


def test_type_and_length_failures_are_dropped_with_their_reasons() -> None:
    consent = {"entity": "marketing_consent", "from": "rows", "links": {"contact": "self"},
               "fields": {"channel": {"constant": "email"}, "opted_in": {"column": "OPT", "map": {"Y": True, "N": False}},
                          "consented_on": {"column": "DAY", "formats": ["%d.%m.%Y"], "on_invalid": "null"}}}
    frame = table(["ID", "OPT", "DAY"], ["1", "Y", "31.02.2024"], ["2", "N", "15.01.2024"], ["3", "?", "soon"])
    result = run(frame, spec([consent]))
    assert result.mapped["_source_key"].tolist() == ["1", "2"]
    assert result.mapped["consented_on"].tolist() == [None, dt.date(2024, 1, 15)]
    assert [(r["_source_key"], r["rule"], r["value"], r["reason_code"], r["category"]) for r in nulled(result)] == [
        ("1", "type", "31.02.2024", "invalid_date", "coercion")]
    assert nulled(result)[0]["message"] == "'31.02.2024' is not a valid date (formats: %d.%m.%Y)"
    # 3 is rejected for its unmapped flag; its date is listed with it, and not nulled.
    assert failures(result) == {"3": [("opted_in", "unmapped_value", "?"), ("consented_on", "invalid_date", "soon")]}

    address = {"entity": "address", "from": "rows", "links": {"contact": "self"},
               "fields": {"kind": {"constant": "home"}, "country": {"column": "C", "on_invalid": "null"}}}
    result = run(table(["ID", "C"], ["1", "DEU"]), spec([address]))
    assert result.mapped["country"].tolist() == [None]
    assert [(r["rule"], r["value"], r["reason_code"]) for r in nulled(result)] == [("length", "DEU", "too_long")]


def test_several_lenient_fields_of_one_record_give_one_row_each() -> None:
    contact = {"entity": "contact", "from": "rows",
               "fields": {"last_name": "NAME",
                          "phone": {"column": "PHONE", "transform": ["phone"], "on_invalid": "null"},
                          "email": {"column": "EMAIL", "transform": ["email"], "on_invalid": "null"}}}
    frame = table(HEADER, ["1", "Ann", "junk", "nope"], ["2", "Bob", None, "bad"], ["3", "Cy", None, None])
    result = run(frame, spec([contact]))
    assert result.rejects.empty and len(result.mapped) == 3
    assert [(r["_source_key"], r["_row_number"], r["field"], r["value"]) for r in nulled(result)] == [
        ("1", 2, "phone", "junk"), ("1", 2, "email", "nope"), ("2", 3, "email", "bad")]


def test_a_missing_required_value_is_not_affected() -> None:
    # Lenient fields never make a required one lenient, and a missing value is not an invalid one.
    result = run(table(HEADER, ["1", None, "junk", None]), spec([LENIENT_PHONE]))
    assert failures(result) == {"1": [("last_name", "missing_required", None), ("phone", "invalid_phone", "junk")]}
    assert result.rejects["reason_code"].tolist() == ["missing_required"]
    assert result.nulled.empty


def test_a_required_field_is_strict_even_if_the_spec_says_null() -> None:
    # The loader refuses this (see tests/spec); a spec put together without it must not drop a required value.
    m = spec([LENIENT_PHONE])
    em = m.entities[0]
    bent = em.model_copy(update={"fields": {**em.fields, "last_name": em.fields["last_name"].model_copy(
        update={"transform": em.fields["phone"].transform, "on_invalid": "null"})}})
    result = map_frame(table(HEADER, ["1", "junk", None, None]), bent, m)
    assert result.mapped.empty and result.nulled.empty
    assert failures(result) == {"1": [("last_name", "invalid_phone", "junk")]}


def test_a_transform_that_raises_still_rejects() -> None:
    contact = {"entity": "contact", "from": "rows",
               "fields": {"last_name": "NAME",
                          "tax_id": {"column": "TAX", "transform": [{"zfill": {"width": "five"}}], "on_invalid": "null"}}}
    result = run(table(["ID", "NAME", "TAX"], ["1", "Ann", "12"]), spec([contact]))
    assert result.rejects["reason_code"].tolist() == ["transform_error"]
    assert result.nulled.empty


def test_skipped_records_give_no_nulled_rows() -> None:
    contact = {**LENIENT_PHONE, "when_present": ["NAME"]}
    result = run(table(HEADER, ["1", None, "x", None], ["2", "Ann", "y", None]), spec([contact]))
    assert result.skipped["_source_key"].tolist() == ["1"]
    assert [(r["_source_key"], r["value"]) for r in nulled(result)] == [("2", "y")]


@pytest.mark.parametrize("rows", [[], [["1", "Ann", "junk", None]] * 3])
def test_records_in_equal_mapped_rejected_skipped_and_nulled_rows_are_not_records(rows: list[list[str]]) -> None:
    frame = table(HEADER, *rows)
    frame["_source_key"] = [str(i) for i in range(len(frame))]
    result = run(frame, spec([LENIENT_PHONE]))  # `run` asserts in = mapped + rejected + skipped
    assert len(result.mapped) == len(frame)
    assert len(result.nulled) == len(frame)
    assert set(result.nulled["_source_key"]) <= set(result.mapped["_source_key"])


def test_nulled_rows_carry_the_lineage_of_their_record() -> None:
    frame = table(HEADER, ["1", "Ann", "ok?", None], ["2", "Bob", "junk", None])
    frame.index = [10, 20]  # the map stage drops repeated keys, so labels need not be 0..n
    result = run(frame, spec([LENIENT_PHONE]))
    assert result.nulled[LINEAGE_NAMES].to_dict("records") == frame[LINEAGE_NAMES].to_dict("records")
    assert result.nulled.index.tolist() == [0, 1]


def test_pure_and_repeatable() -> None:
    frame = table(HEADER, ["1", "Ann", "junk", None], ["2", "Bob", "junk", "bad"])
    before = frame.copy()
    mapping: MappingSpec = spec([LENIENT_PHONE])
    first, second = run(frame, mapping), run(frame, mapping)
    pd.testing.assert_frame_equal(frame, before)
    pd.testing.assert_frame_equal(first.nulled, second.nulled)


def test_by_default_an_optional_fields_bad_value_is_dropped_and_a_required_ones_rejects() -> None:
    """One malformed phone must not lose a customer (and defer their invoices): an optional field
    drops it, recorded with its reason; a required field still rejects; `reject` still can be said."""
    assert FieldSpec(column="X").on_invalid is None
    plain = {**LENIENT_PHONE, "fields": {**LENIENT_PHONE["fields"], "phone": {"column": "PHONE", "transform": ["phone"]}}}
    result = run(table(HEADER, ["1", "Ann", "junk", None], ["2", "", "030 1234567", None]), spec([plain]))
    assert result.mapped["_source_key"].tolist() == ["1"] and result.mapped["phone"].tolist() == [None]
    assert [(n["_source_key"], n["field"], n["value"], n["reason_code"]) for n in nulled(result)] == [
        ("1", "phone", "junk", "invalid_phone")]
    assert failures(result) == {"2": [("last_name", "missing_required", "")]}
    strict = {**plain, "fields": {**plain["fields"], "phone": {"column": "PHONE", "transform": ["phone"],
                                                                 "on_invalid": "reject"}}}
    result = run(table(HEADER, ["1", "Ann", "junk", None]), spec([strict]))
    assert failures(result) == {"1": [("phone", "invalid_phone", "junk")]} and result.nulled.empty


DST_CASE = {"entity": "support_case", "from": "rows", "links": {"contact": "self"},
            "fields": {"case_number": "ID", "status": {"constant": "open"},
                       "opened_at": {"column": "AT", "formats": ["%Y-%m-%d %H:%M"]}}}
DST_ROWS = [["1", "2024-03-31 02:30", "2024-03-31 02:30"],   # skipped by the spring change in Berlin
            ["2", "2024-10-27 02:30", "2024-10-27 02:30"],   # repeated by the autumn change
            ["3", "2024-10-27 03:30", "2024-10-27 03:30"]]   # an ordinary time


def dst_run(**policy: str) -> MapResult:
    return run(table(["ID", "AT", "CHANGED"], *DST_ROWS), spec(
        [DST_CASE], timezone="Europe/Berlin",
        source={"last_modified": {"column": "CHANGED", "formats": ["%Y-%m-%d %H:%M"]}, **policy}))


def test_a_wall_time_daylight_saving_skips_or_repeats_follows_the_sources_policy() -> None:
    utc = dt.timezone.utc
    result = dst_run()  # the defaults: shift_forward, first
    assert result.rejects.empty
    assert result.mapped["opened_at"].tolist() == [
        dt.datetime(2024, 3, 31, 1, 0, tzinfo=utc),   # 03:00 CEST: the first time after the gap
        dt.datetime(2024, 10, 27, 0, 30, tzinfo=utc),  # the first 02:30 (CEST)
        dt.datetime(2024, 10, 27, 2, 30, tzinfo=utc)]
    assert result.mapped["_last_modified"].tolist() == result.mapped["opened_at"].tolist()
    changed = result.changed.drop(columns=["_department", "_row_hash"]).to_dict("records")
    assert [(c["_source_key"], c["field"], c["rule"], c["before"], c["after"]) for c in changed] == [
        ("1", "opened_at", "nonexistent: shift_forward", "2024-03-31 02:30", "2024-03-31 01:00:00+00:00"),
        ("1", "_last_modified", "nonexistent: shift_forward", "2024-03-31 02:30", "2024-03-31 01:00:00+00:00"),
        ("2", "opened_at", "ambiguous: first", "2024-10-27 02:30", "2024-10-27 00:30:00+00:00"),
        ("2", "_last_modified", "ambiguous: first", "2024-10-27 02:30", "2024-10-27 00:30:00+00:00")]
    second = dst_run(ambiguous="second")
    assert second.mapped["opened_at"].tolist()[1] == dt.datetime(2024, 10, 27, 1, 30, tzinfo=utc)
    strict = dst_run(nonexistent="reject", ambiguous="reject")
    # The change time is the source's, strict: it rejects; the optional field's failure is listed too.
    assert failures(strict) == {
        "1": [("opened_at", "invalid_datetime", "2024-03-31 02:30"), ("_last_modified", "invalid_datetime", "2024-03-31 02:30")],
        "2": [("opened_at", "invalid_datetime", "2024-10-27 02:30"), ("_last_modified", "invalid_datetime", "2024-10-27 02:30")]}
    assert [(n["_source_key"], n["field"]) for n in nulled(strict)] == []  # rejected rows leave no nulled row
