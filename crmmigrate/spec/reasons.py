"""The closed set of reject reason codes and the category each belongs to.

Reports group rejects by category; later stages add outcomes, never new meanings for a code.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, get_args

Category = Literal["data", "coercion", "spec", "load"]
Outcome = Literal["created", "updated", "unchanged", "merged", "rejected", "deferred", "skipped"]
OUTCOMES: tuple[str, ...] = get_args(Outcome)


class ReasonCode(StrEnum):
    # extract: the physical record could not be read as a row
    UNDECODABLE = "undecodable"
    MALFORMED_ROW = "malformed_row"
    MISSING_KEY = "missing_key"
    # map: a value failed its field rule
    MISSING_REQUIRED = "missing_required"
    INVALID_EMAIL = "invalid_email"
    INVALID_PHONE = "invalid_phone"
    INVALID_DATE = "invalid_date"
    INVALID_DATETIME = "invalid_datetime"
    INVALID_NUMBER = "invalid_number"
    INVALID_BOOLEAN = "invalid_boolean"
    UNMAPPED_VALUE = "unmapped_value"
    TOO_LONG = "too_long"
    TRANSFORM_ERROR = "transform_error"
    # map/merge: relations between records
    MISSING_PARENT = "missing_parent"
    DUPLICATE_KEY = "duplicate_key"
    NOT_APPLICABLE = "not_applicable"  # the mapping's `when_present` says this record has no such entity
    # load: the target refused the row
    LOAD_ERROR = "load_error"

    @property
    def category(self) -> Category:
        return _CATEGORY[self]


_CATEGORY: dict[ReasonCode, Category] = {
    ReasonCode.UNDECODABLE: "coercion",
    ReasonCode.MALFORMED_ROW: "data",
    ReasonCode.MISSING_KEY: "data",
    ReasonCode.MISSING_REQUIRED: "data",
    ReasonCode.INVALID_EMAIL: "data",
    ReasonCode.INVALID_PHONE: "data",
    ReasonCode.INVALID_DATE: "coercion",
    ReasonCode.INVALID_DATETIME: "coercion",
    ReasonCode.INVALID_NUMBER: "coercion",
    ReasonCode.INVALID_BOOLEAN: "coercion",
    ReasonCode.UNMAPPED_VALUE: "data",
    ReasonCode.TOO_LONG: "data",
    ReasonCode.TRANSFORM_ERROR: "spec",
    ReasonCode.MISSING_PARENT: "data",
    ReasonCode.DUPLICATE_KEY: "data",
    ReasonCode.NOT_APPLICABLE: "spec",
    ReasonCode.LOAD_ERROR: "load",
}
