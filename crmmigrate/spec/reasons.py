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
    UNDECODABLE = "undecodable"  # not valid in the source's encoding nor in its fallback_encoding
    MALFORMED_ROW = "malformed_row"  # too few or too many fields, a broken quote, a blank line, a NUL byte, invalid JSON
    MISSING_KEY = "missing_key"  # a key column is empty
    # map: a value failed its field rule
    MISSING_REQUIRED = "missing_required"  # a required field has no value
    INVALID_EMAIL = "invalid_email"  # not an address the `email` transform accepts
    INVALID_PHONE = "invalid_phone"  # not a phone number of the default region or with a country code
    INVALID_COUNTRY = "invalid_country"  # no country code or name the `country` transform reads
    INVALID_DATE = "invalid_date"  # no format of the field reads it as a date
    INVALID_DATETIME = "invalid_datetime"  # no format reads it, or the local time is ambiguous or skipped (DST)
    INVALID_NUMBER = "invalid_number"  # not a number of the field's type, precision or decimal mark
    INVALID_BOOLEAN = "invalid_boolean"  # not one of the yes/no spellings the field reads
    UNMAPPED_VALUE = "unmapped_value"  # a value its value map (`map`) does not list
    TOO_LONG = "too_long"  # longer than the CRM column
    TRANSFORM_ERROR = "transform_error"  # a transform raised an error on the value
    # map/merge: relations between records
    MISSING_PARENT = "missing_parent"  # its parent record is not in the migration (deferred, not lost)
    DUPLICATE_KEY = "duplicate_key"  # a later record repeats a key with different values (`duplicate_keys: reject`)
    NOT_APPLICABLE = "not_applicable"  # the mapping's `when_present` says this record has no such entity
    # load: the target refused the row
    LOAD_ERROR = "load_error"  # e.g. a constraint of the CRM database

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
    ReasonCode.INVALID_COUNTRY: "data",
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
