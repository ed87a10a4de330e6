"""The typed mapping spec. YAML files and Python objects are two ways to write it.

A mapping file describes one legacy system: where its tables are (``sources``), and how
each table becomes canonical CRM entities (``entities``). Every model is frozen and
forbids unknown keys, so a typo is an error that names its line, not a silently ignored key.
"""

from __future__ import annotations

import _strptime
import codecs
import re
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

SPEC_VERSION = 1
EntityName = Literal[
    "account", "contact", "address", "order", "order_line",
    "invoice", "shipment", "support_case", "marketing_consent",
]
ENTITY_NAMES: tuple[str, ...] = get_args(EntityName)
SourceFormat = Literal["csv", "sql", "json", "xlsx"]


class Spec(BaseModel):
    """Base of every spec model: frozen, unknown keys refused, fields settable by name or alias."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# Formats read by name, not by strptime.
BUILT_IN_FORMATS = ("iso", "epoch")
# What strptime reads after a `%` (besides `%%`): its own table, so the check follows the Python in use.
_DIRECTIVES = frozenset(_strptime._TimeRE_cache) - {"%"}
# Date patterns of other tools (`dd.mm.yyyy`, `YYYY-MM-DD HH:mm`), longest first, for a suggestion.
_FOREIGN = [("yyyy", "%Y"), ("YYYY", "%Y"), ("yy", "%y"), ("YY", "%y"), ("dd", "%d"), ("DD", "%d"),
            ("MM", "%m"), ("HH", "%H"), ("hh", "%I"), ("ss", "%S"), ("SS", "%S")]


def check_formats(formats: tuple[str, ...]) -> tuple[str, ...]:
    """Refuse a format that strptime cannot read or that reads no date at all: every value of the
    column would be rejected, so it is a mistake in the mapping, not in the data."""
    for fmt in formats:
        if fmt in BUILT_IN_FORMATS:
            continue
        directives = re.findall(r"%(.?)", fmt.replace("%%", ""))
        if bad := [d for d in directives if d not in _DIRECTIVES]:
            shown = "a lone '%' at the end" if bad[0] == "" else f"'%{bad[0]}' is not a strptime directive"
            raise ValueError(f"format {fmt!r}: {shown} (e.g. %Y %m %d %H %M %S %b; or {' / '.join(BUILT_IN_FORMATS)})")
        if not directives:
            raise ValueError(f"format {fmt!r} has no % directive, so it reads only that very text"
                             f"{_foreign_suggestion(fmt)}")
    return formats


def _foreign_suggestion(fmt: str) -> str:
    """`dd.mm.yyyy` → ` (did you mean '%d.%m.%Y'?)`; `mm` is minutes after an hour, else the month."""
    out, i = "", 0
    while i < len(fmt):
        hit = next(((a, b) for a, b in _FOREIGN if fmt.startswith(a, i)), None)
        if hit is None and fmt.startswith("mm", i):
            hit = ("mm", "%M" if re.search(r"%[HI]\W?$", out) else "%m")
        if hit is None:
            out += fmt[i]
            i += 1
        else:
            out += hit[1]
            i += len(hit[0])
    return f" (did you mean {out!r}?)" if out != fmt else ""


class LastModified(Spec):
    """Which column says when a record last changed, and how to read it."""

    column: str = Field(description="source column holding when the record last changed")
    formats: tuple[str, ...] = Field(
        ("iso",), description="strptime formats tried in order; `iso` and `epoch` (seconds) are built in"
    )

    @field_validator("formats")
    @classmethod
    def _formats(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return check_formats(value)


DuplicateKeys = Literal["reject", "keep_first"]
DUPLICATE_KEY_POLICIES: tuple[str, ...] = get_args(DuplicateKeys)
OnInvalid = Literal["reject", "null"]
Nonexistent = Literal["shift_forward", "reject"]
Ambiguous = Literal["first", "second", "reject"]
ON_INVALID_POLICIES: tuple[str, ...] = get_args(OnInvalid)


class SourceBase(Spec):
    """What every source declares, whatever its format."""

    key: tuple[str, ...] | Literal["row_number"] = Field(
        description="column(s) that identify a record, or `row_number` for sources with no id"
    )
    last_modified: LastModified | None = Field(
        None, description="when each record last changed; survivorship prefers the most recent value"
    )
    ignore_columns: tuple[str, ...] = Field(
        (), description="source columns deliberately not migrated (counted as covered by `crmmigrate validate`)"
    )
    duplicate_keys: DuplicateKeys = Field(
        "reject",
        description="records that repeat a key with *different* values: `reject` every repeat after the first "
                    "(reason `duplicate_key`); `keep_first` loads the first and ledgers the repeats as merged into it. "
                    "Identical repeats are always counted once: merged into the first, their row numbers kept. "
                    "*Identical* is judged per entity, on the columns that entity's mapping reads (its fields, "
                    "links and `when_present`; not `last_modified`): a helpdesk export that repeats a requester on "
                    "every ticket repeats the same contact, however its tickets differ. A repeat's ledger key is "
                    "`KEY (row N)`: the key and the repeat's own row (line) number.",
    )
    nonexistent: Nonexistent = Field(
        "shift_forward",
        description="a wall time the spring change of daylight saving skips (02:30 in Berlin on 31 March 2024), "
                    "in a date-time read in the mapping's `timezone`: `shift_forward` reads it as the first instant "
                    "after the gap (03:00), `reject` refuses it. Each value moved is recorded (`map/changed/`) and "
                    "counted in the report",
    )
    ambiguous: Ambiguous = Field(
        "first",
        description="a wall time the autumn change repeats (02:30 in Berlin on 27 October 2024): its `first` "
                    "(earlier) or `second` occurrence, or `reject`. Each value placed is recorded and counted",
    )


class FileSource(SourceBase):
    """A source read from one file."""

    path: str = Field(description="file path, relative to the project folder")


class CsvSource(FileSource):
    """Delimited text. Each physical record is decoded on its own, so one bad line costs one record."""

    format: Literal["csv"] = Field(description="`csv`: delimited text")
    encoding: str = Field("utf-8", description="encoding every record is tried in first (a UTF-8 BOM is accepted)")
    fallback_encoding: str | None = Field(
        None, description="single-byte encoding for records that are not valid in `encoding` (e.g. cp1252); "
                          "each such record is counted in run.json and the report"
    )
    delimiter: str | None = Field(None, description="field separator; omitted: sniffed from the header line")
    quotechar: str = Field('"', description="character that quotes a value holding the delimiter or a line break")

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        _codec(value)
        # Records are split on the byte of a line break before they are decoded, one by one.
        if _ASCII_SAMPLE.decode(value, "replace") != _ASCII_SAMPLE.decode("ascii"):
            raise ValueError(f"encoding {value!r} does not write ASCII as single bytes, so its lines cannot be "
                             "read one by one: convert the file first (e.g. `iconv -f utf-16 -t utf-8`)")
        return value

    @field_validator("fallback_encoding")
    @classmethod
    def _single_byte(cls, value: str | None) -> str | None:
        if value is not None:
            decode = _codec(value).incrementaldecoder
            # A lead byte of a multi-byte encoding decodes to nothing until its next byte arrives.
            if _ASCII_SAMPLE.decode(value, "replace") != _ASCII_SAMPLE.decode("ascii") or any(
                    decode(errors="replace").decode(bytes([b])) == "" for b in range(256)):
                raise ValueError(f"fallback encoding {value!r} is not a single-byte encoding "
                                 "(one byte, one character: e.g. cp1252, latin-1, cp850)")
        return value

    @field_validator("delimiter", "quotechar")
    @classmethod
    def _one_character(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and (len(value) != 1 or value in "\r\n"):
            raise ValueError(f"{info.field_name} must be exactly one character other than a line break (got {value!r})")
        return value

    @model_validator(mode="after")
    def _delimiter_is_not_the_quote(self) -> CsvSource:
        if self.delimiter is not None and self.delimiter == self.quotechar:
            raise ValueError(f"delimiter and quotechar are both {self.delimiter!r}")
        return self


_ASCII_SAMPLE = b"Id,name;\t\"x\"|0-9\r\n"


def _codec(name: str) -> codecs.CodecInfo:
    try:
        info = codecs.lookup(name)
    except LookupError:
        raise ValueError(f"unknown encoding {name!r} (e.g. utf-8, cp1252, latin-1, cp850)") from None
    if not info._is_text_encoding:  # e.g. `base64`, `rot13`: codecs, but not text encodings
        raise ValueError(f"{name!r} is not a text encoding (e.g. utf-8, cp1252, latin-1, cp850)")
    return info


class SqlSource(SourceBase):
    """A table or query in an SQLite file (`path`) or any SQLAlchemy database (`url_env`)."""

    format: Literal["sql"] = Field(description="`sql`: a database table or query")
    path: str | None = Field(None, description="SQLite file, relative to the project folder")
    url_env: str | None = Field(None, description="environment variable holding the database URL (never the URL itself)")
    table: str | None = Field(None, description="table to read in full (give `table` or `query`)")
    query: str | None = Field(None, description="SELECT whose rows are the records (give `table` or `query`)")

    @model_validator(mode="after")
    def _one_of_table_or_query(self) -> SqlSource:
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of `table` or `query`")
        if (self.path is None) == (self.url_env is None):
            raise ValueError("give exactly one of `path` (an SQLite file) or `url_env`")
        return self


class JsonSource(FileSource):
    """JSON: an array of objects, or JSON Lines; nested objects become dotted columns (`requester.email`)."""

    format: Literal["json"] = Field(description="`json`: an array of objects or JSON Lines")
    lines: bool = Field(False, description="JSON Lines: one object per line (lines end in LF or CRLF; in a file without any LF, in CR)")
    records: str = Field("", description="dotted path to the array of records inside the document; '' = the top level")


class XlsxSource(FileSource):
    """One worksheet of an Excel workbook; blank rows are not records."""

    format: Literal["xlsx"] = Field(description="`xlsx`: an Excel worksheet")
    sheet: str = Field(description="name of the worksheet to read")
    header_row: int = Field(1, ge=1, description="1-based row holding the column names; records start below it")


SourceSpec = Annotated[CsvSource | SqlSource | JsonSource | XlsxSource, Field(discriminator="format")]


class TransformCall(Spec):
    """One registered transform with its arguments: `trim`, or `{split_name: {part: given}}`."""

    name: str = Field(description="name of a registered transform")
    args: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of the transform")

    @model_validator(mode="before")
    @classmethod
    def _from_short_forms(cls, value: Any) -> Any:
        # `trim` or `{split_name: {part: given}}` in YAML.
        if isinstance(value, str):
            return {"name": value}
        if isinstance(value, dict) and len(value) == 1 and "name" not in value:
            (name, args), = value.items()
            return {"name": name, "args": args or {}}
        return value


class FieldSpec(Spec):
    """How one canonical field is filled from a source record."""

    column: str | None = Field(None, description="source column to read")
    columns: tuple[str, ...] | None = Field(None, description="source columns joined with `sep`")
    sep: str = Field(" ", description="separator between the values of `columns`; empty values are left out")
    constant: str | int | float | bool | None = Field(None, description="a fixed value")
    transform: tuple[TransformCall, ...] = Field((), description="registered transforms, applied in order")
    map: dict[str, str | bool | None] | None = Field(
        None, description="value map (picklist); a value not in it is rejected as `unmapped_value`"
    )
    formats: tuple[str, ...] | None = Field(
        None, description="strptime formats for dates and times, tried in order; `iso` is built in, and `epoch` "
                          "(seconds) for date-times")
    cents: bool = Field(False, description="decimal field stored as integer cents")
    decimal_mark: Literal[".", ","] = Field(
        ".", description="decimal separator of number text: `,` reads `1.234,56` (groups of three may use `.` or "
                         "a space); `.` reads `1,234.56`. Anything ambiguous is rejected, never guessed"
    )
    required: bool | None = Field(None, description="defaults to the CRM field being NOT NULL")
    on_invalid: OnInvalid | None = Field(
        None,
        # YAML reads a bare `null` as no value at all; here it can only mean the policy `null`. So the
        # policy left unsaid (None) is not written out: read back, it would say `null`.
        exclude_if=lambda value: value is None,
        json_schema_extra={"enum": ["reject", "null", None], "type": ["string", "null"]},
        description="a value this field's rules refuse (a transform refuses it, `map` lacks it, it is not of the "
                    "field's type, it is too long): `reject` rejects the whole record with every failure; `null` "
                    "(bare or quoted) leaves the field empty, maps the record and records the dropped value with "
                    "its reason (`map/nulled/`, counted in the report). Unsaid, an optional field is `null` (one "
                    "malformed phone must not lose a customer and defer their invoices) and a required field "
                    "`reject`; a required field cannot be `null`. A missing value is not an invalid one (a required "
                    "field still rejects it as `missing_required`), and a transform that raises still rejects the "
                    "record (`transform_error`)",
    )

    def lenient(self, required: bool) -> bool:
        """Whether a refused value is dropped (and recorded) rather than rejecting the record."""
        return not required and self.on_invalid != "reject"

    @model_validator(mode="before")
    @classmethod
    def _column_shorthand(cls, value: Any) -> Any:
        return {"column": value} if isinstance(value, str) else value

    @field_validator("formats")
    @classmethod
    def _formats(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if value is None else check_formats(value)

    @field_validator("on_invalid", mode="before")
    @classmethod
    def _yaml_null(cls, value: Any) -> Any:
        return "null" if value is None else value  # `on_invalid: null` in YAML is None, not the text 'null'

    @field_validator("on_invalid")
    @classmethod
    def _lenient_only_if_optional(cls, value: str, info: ValidationInfo) -> str:
        # A CRM field that is NOT NULL (`required` not given) is checked by spec.load.check_mapping.
        if value == "null" and info.data.get("required"):
            raise ValueError("`on_invalid: null` would leave this field empty, but it is `required: true`; "
                             "a required field cannot be left empty: remove one of the two")
        return value

    @model_validator(mode="after")
    def _one_input(self) -> FieldSpec:
        given = [k for k in ("column", "columns", "constant") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of `column`, `columns` or `constant` (got {given or 'none'})")
        return self


class LinkSpec(Spec):
    """A parent record: `self` (the same source record) or a key column into another source."""

    source: str = Field(description="`self`, or the name of the source holding the parent record")
    column: str | None = Field(None, description="column of this record holding the parent's key (when `source` is not `self`)")

    @model_validator(mode="before")
    @classmethod
    def _self_shorthand(cls, value: Any) -> Any:
        return {"source": "self"} if value == "self" else value


class EntityMapping(Spec):
    """How the records of one source become one kind of CRM entity."""

    entity: EntityName = Field(description="CRM entity the records become")
    from_: str = Field(alias="from", description="name of a table under `sources`")
    fields: dict[str, FieldSpec] = Field(description="canonical field name → how it is filled; a string is short for `{column: …}`")
    links: dict[str, LinkSpec] = Field(
        default_factory=dict, description="parent entity → where its record is: `self` or `{source, column}`"
    )
    when_present: tuple[str, ...] = Field(
        (), description="map a record only when one of these columns has a value (blank is no value); others are "
                   "skipped (with a ledger row)"
    )

    def read_columns(self) -> list[str]:
        """The source columns this entity reads, in the mapping's order (the source's `last_modified`
        is the source's, not the entity's)."""
        columns = [c for fs in self.fields.values() for c in ([fs.column] if fs.column else list(fs.columns or ()))]
        columns += [link.column for link in self.links.values() if link.column] + list(self.when_present)
        return list(dict.fromkeys(columns))


class MappingSpec(Spec):
    """One legacy system: its tables and how they become CRM entities."""

    spec_version: Literal[1] = Field(description="version of this file format; always 1")
    kind: Literal["mapping"] = Field(description="always `mapping`")
    system: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="short name of the legacy system; prefixes its source ids")
    department: str = Field(description="department that owns the data (survivorship `priority` in crmmigrate.yml)")
    timezone: str = Field("UTC", description="IANA zone of naive timestamps in this system")
    default_region: str = Field(
        "DE", description="ISO 3166 country the `phone` transform reads this system's numbers in: a number "
                          "without a country code (`030 1234567`) is a number of this country, and its trunk "
                          "prefix and international prefix (`00` here, `011` in the US) are this country's")
    sources: dict[str, SourceSpec] = Field(description="table name → where and how to read it")
    entities: tuple[EntityMapping, ...] = Field(description="which entities each table becomes")

    @field_validator("sources")
    @classmethod
    def _source_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not name.replace("_", "").isalnum():
                raise ValueError(f"source name {name!r} must be letters, digits and `_`")
        return value

    def source_id(self, table: str) -> str:
        """Run-folder id of one table: `<system>.<table>`."""
        return f"{self.system}.{table}"


class MatchTraining(Spec):
    """How the match model learns without labels."""

    recall: float = Field(0.6, gt=0, le=1, description=(
        "share of true pairs the deterministic rules (same first name, last name and birth date, email or "
        "phone) are thought to find: sets the prior probability that two records match"))
    max_pairs: int = Field(1_000_000, ge=1000, description=(
        "random record pairs sampled to learn how often values agree by chance (u); the main cost of training"))
    seed: int = Field(1, description="seed of that sampling, so the same records give the same model")
    min_records: int = Field(1000, ge=0, description=(
        "with fewer records than this a model learns little: crmmigrate's default model (trained on its "
        "generated demo systems) scores them instead"))


class MatchSpec(Spec):
    """Probabilistic matching of one entity (Splink): thresholds on the match probability."""

    link: float = Field(0.95, gt=0, lt=1, description="pairs at or above this probability are linked")
    review: float = Field(0.5, gt=0, lt=1, description=(
        "pairs from here up to `link` go to match/review.parquet for a consultant; below is no link"))
    unique: tuple[str, ...] = Field((), description=(
        "fields unique per person (a tax id): records sharing a value are one before any model, and two "
        "different values never end in one cluster. A shared email is evidence, never such a key"))
    training: MatchTraining = Field(MatchTraining(), description="how the model learns")

    @model_validator(mode="after")
    def _bands(self) -> MatchSpec:
        if self.review >= self.link:
            raise ValueError(f"review ({self.review}) must be below link ({self.link})")
        return self


MATCHED_ENTITIES = ("contact", "account")


class ProjectSpec(Spec):
    """`crmmigrate.yml` at the root of a project folder."""

    spec_version: Literal[1] = Field(description="version of this file format; always 1")
    kind: Literal["project"] = Field(description="always `project`")
    name: str = Field(description="name of the migration project")
    mappings: str = Field("mappings", description="folder of mapping files, relative to the project")
    runs: str = Field("runs", description="folder where run folders are created")
    target: str = Field("sqlite:///crm/crm.sqlite", description="SQLAlchemy URL without a password")
    target_env: str | None = Field(None, description="environment variable holding the target URL")
    priority: tuple[str, ...] = Field((), description="departments, most trusted first (survivorship tie-break)")
    match: dict[Literal["contact", "account"], MatchSpec] = Field(
        default_factory=dict,
        description="entity → how records of several systems are found to be the same; contact and account are "
                    "matched with the defaults below when not listed",
    )
    chunk_rows: int = Field(20_000, ge=1, description="rows per chunk when streaming a source")
    snapshot_retention_days: int | None = Field(
        None, ge=0, description="`crmmigrate purge` deletes source snapshots older than this (they hold personal data)"
    )
