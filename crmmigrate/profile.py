"""Profile a legacy source nobody has seen before, and draft its mapping file.

Reads a sample through the same readers the extract stage uses, so what the profile says
about encodings, bad rows and keys is what the migration will meet.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from pydantic import TypeAdapter, ValidationError

from crmmigrate.crm.models import entity_fields
from crmmigrate.errors import SettingsError
from crmmigrate.extract.readers import open_reader
from crmmigrate.spec.model import SourceSpec

DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%m/%d/%Y", "%d/%m/%Y", "%Y%m%d")
DATETIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%d.%m.%Y %H:%M", "%m/%d/%Y %H:%M", "%Y-%m-%dT%H:%M:%S")
SHAPES = {
    "integer": re.compile(r"^-?\d+$"),
    "decimal": re.compile(r"^-?\d+[.,]\d+$"),
    "email": re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$"),
    "phone": re.compile(r"^[+(]?[\d\s()./-]{6,}$"),
    "boolean": re.compile(r"^(?i:y|n|yes|no|true|false|ja|nein|0|1|x)$"),
}
# Column-name hints for the draft mapping: canonical field → words that suggest it.
HINTS = {
    "email": ("email", "e-mail", "mail"), "phone": ("phone", "tel", "mobile", "telefon"),
    "first_name": ("firstname", "first_name", "given", "vorname", "forename"),
    "last_name": ("lastname", "last_name", "surname", "family", "nachname", "familienname", "zuname"),
    "tax_id": ("tax", "vat", "tax_id", "taxid", "ustid"), "owner_name": ("owner", "rep", "agent"),
}
FULL_NAME = ("name", "full_name", "fullname", "customer_name", "contact_name")
# A nested `name` is a person's full name (`requester.name`), unless what it names is no person.
NOT_A_PERSON = ("company", "firma", "account", "organisation", "organization", "org", "business", "product", "item",
                "file", "user", "user_name", "username")
CHANGED = ("modif", "updated", "changed", "geaendert", "aenderung", "last_change")
SHARE = 0.95  # a guess needs 95% of the non-empty sample to agree
CSV_ONLY = ("encoding", "fallback_encoding", "delimiter", "quotechar")
SQL_ONLY = ("table", "query", "url_env")
FORMATS = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".xlsx": "xlsx",
           ".sqlite": "sql", ".sqlite3": "sql", ".db": "sql"}
# An ISO 8601 timestamp with a zone or fraction (`2024-01-07T20:07:28Z`), which no strptime
# format above reads; the mappings' built-in `iso` format does.
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$")


@dataclass
class Profile:
    source: dict[str, Any]
    rows: int
    columns: pd.DataFrame
    findings: list[str] = field(default_factory=list)
    rejects: dict[str, int] = field(default_factory=dict)
    #: Records in the whole source, counted apart from the sample (as the extract counts them).
    records_in: int = 0

    @property
    def summary(self) -> str:
        """One line: how many records the source holds and how many the profile read."""
        read = self.rows + sum(self.rejects.values())
        what = "all of them" if read >= self.records_in else f"the first {read:,}"
        return f"{self.records_in:,} records in the source; the profile read {what}."


def _shape(fmt: str) -> str:
    """A regex of the text *fmt* writes: `%d.%m.%Y` → `\\d{1,2}\\.\\d{1,2}\\.\\d{4}`."""
    widths = {"Y": r"\d{4}", "y": r"\d{2}", "m": r"\d{1,2}", "d": r"\d{1,2}", "H": r"\d{1,2}", "M": r"\d{2}",
              "S": r"\d{2}"}
    parts = re.split(r"(%.)", fmt)
    return "".join(widths[p[1]] if p.startswith("%") else re.escape(p) for p in parts)


def _guess(values: pd.Series) -> tuple[str, str | None]:
    present = values.dropna()
    present = present[present.str.strip() != ""]
    if present.empty:
        return "empty", None
    formats = DATE_FORMATS + DATETIME_FORMATS
    shares = {fmt: pd.to_datetime(present, format=fmt, errors="coerce").notna().mean() for fmt in formats}
    best = max(formats, key=shares.__getitem__)  # the first of equals: `%m/%d` before `%d/%m` only on a tie
    # A date column with a few impossible dates (31.02.) is still a date column: its bad values
    # become rejects, which is what the consultant should see, not a column of text. (Not for
    # `%Y%m%d`: its shape is any 6 to 8 digits.)
    if shares[best] >= SHARE or (shares[best] >= 0.5 and re.search(r"[^%\w]", best)
                                 and present.str.fullmatch(_shape(best)).mean() >= SHARE):
        return ("date" if best in DATE_FORMATS else "datetime"), best
    if present.str.fullmatch(ISO).mean() >= SHARE and pd.to_datetime(
            present, format="ISO8601", errors="coerce", utc=True).notna().mean() >= SHARE:
        return "datetime", "iso"
    for name, pattern in SHAPES.items():
        if present.str.match(pattern).mean() >= SHARE:
            return name, None
    return "text", None


def profile_source(path: str | Path = "", format: str | None = None, sample_rows: int = 100_000,
                   **options: Any) -> Profile:
    """Profile a source: columns, guessed types, null rates, samples, candidate keys, and the
    number of records it holds.

    *path* is a file, or an SQLite file holding the ``table`` or ``query`` to profile; a
    database server is named by ``url_env``, the environment variable holding its URL (the URL
    itself is never a parameter), with *path* left empty. ``format`` defaults from ``table``,
    ``query`` or ``url_env`` (sql), else from the file extension; ``options`` are the source
    settings a mapping would declare (``encoding``, ``delimiter``, ``sheet``…). An empty
    ``sheet`` means the workbook's first sheet.

    Raises
    ------
    SettingsError
        A setting the source cannot have, one line naming it.
    """
    options = {k: v for k, v in options.items() if v not in ("", None)}  # notebook parameters left empty
    settings = _settings(Path(path) if str(path) else None, format, options)
    spec = _validated(settings)
    reader = open_reader(Path(settings["path"]) if "path" in settings else None, spec, chunk_rows=10_000)
    try:
        rows, rejects = [], Counter()
        for record in reader.records():
            if record.values is None:
                rejects[str(record.reason)] += 1
            else:
                rows.append(record.values)
            if len(rows) + sum(rejects.values()) >= sample_rows:
                break
        records_in = reader.count_records()
    finally:
        reader.close()
    frame = pd.DataFrame(rows, columns=reader.header, dtype=object)
    return Profile(settings, len(frame), _columns(frame), _findings(frame, rejects, reader), dict(rejects), records_in)


def _settings(path: Path | None, format: str | None, options: dict[str, Any]) -> dict[str, Any]:
    """The source settings a mapping would declare for *path* and *options*."""
    guessed = "sql" if set(options) & set(SQL_ONLY) or path is None else FORMATS.get(path.suffix.lower(), "csv")
    fmt = format or guessed
    if fmt != "csv":  # the notebook's CSV defaults mean nothing to another format
        options = {k: v for k, v in options.items() if k not in CSV_ONLY}
    settings = {"format": fmt, **({"path": str(path)} if path is not None else {}), "key": "row_number", **options}
    if fmt == "json" and path is not None and path.suffix.lower() == ".jsonl":
        settings.setdefault("lines", True)
    if fmt == "xlsx" and "sheet" not in settings and path is not None and path.exists():
        settings["sheet"] = _first_sheet(path)
    return settings


def _first_sheet(path: Path) -> str | None:
    """The workbook's first sheet (None for a file openpyxl cannot open: the reader says why)."""
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True)
    except Exception:  # openpyxl raises many types for a bad file
        return None
    try:
        return book.sheetnames[0] if book.sheetnames else None
    finally:
        book.close()


def _validated(settings: dict[str, Any]) -> Any:
    """The source spec of *settings*, or one line naming each parameter that is wrong: pydantic's
    own text names the union's internals and spans lines, which a notebook user cannot act on."""
    try:
        return TypeAdapter(SourceSpec).validate_python(settings)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = [str(p) for p in error["loc"][1:]]  # loc[0] is the union's tag
            message = str(error["msg"]).removeprefix("Value error, ")
            if error["type"] == "union_tag_invalid":
                message = f"parameter `format`: '{settings['format']}' is not one of csv, json, xlsx, sql"
            elif error["type"] == "extra_forbidden":
                message = f"parameter `{where[0]}` is not a {settings['format']} setting; leave it empty"
            elif where:
                message = f"parameter `{'.'.join(where)}`: {message}"
            problems.append(" ".join(message.split()))
        raise SettingsError(f"Profile of {settings.get('path') or settings.get('url_env') or 'the source'}: "
                            f"{'; '.join(problems)}") from None


def _columns(frame: pd.DataFrame) -> pd.DataFrame:
    out = []
    for name in frame.columns:
        values = frame[name]
        kind, fmt = _guess(values)
        present = values.dropna()
        out.append({
            "column": name, "guessed_type": kind, "format": fmt,
            "null_rate": round(1 - len(present) / len(values), 3) if len(values) else 1.0,
            "distinct": int(present.nunique()),
            "candidate_key": bool(len(present) == len(values) > 0 and present.is_unique),
            "max_length": int(present.str.len().max()) if len(present) else 0,
            "samples": list(present.drop_duplicates().head(5)),
        })
    return pd.DataFrame(out)


def _findings(frame: pd.DataFrame, rejects: Counter, reader: Any) -> list[str]:
    notes = [f"{n} record(s) could not be read: {reason}" for reason, n in sorted(rejects.items())]
    fallback = getattr(reader, "fallback_records", 0)
    if fallback:
        notes.append(f"{fallback} record(s) were not valid in the declared encoding and were read with the fallback")
    if rejects.get("undecodable") and getattr(getattr(reader, "spec", None), "fallback_encoding", "") is None:
        notes.append("some records are not valid in the declared encoding: declare `fallback_encoding` "
                     "(e.g. cp1252) to read them, or check the encoding")
    if len(frame.columns) and str(frame.columns[0]).startswith("\u00ef\u00bb\u00bf"):
        notes.append("the file starts with a UTF-8 byte-order mark read as single bytes: it is UTF-8; declare "
                     "`encoding: utf-8`")
    if any("~" in c for c in frame.columns):
        notes.append("duplicate column names: later copies are addressed as NAME~2, NAME~3…")
    for name in frame.columns:
        present = frame[name].dropna()
        if present.str.match(r"^[=+\-@\t\r]").any() and not present.str.match(r"^[+\-]?[\d\s()./-]+$").all():
            notes.append(f"column '{name}' holds values that a spreadsheet would run as formulas (kept verbatim)")
        if present.str.match(r"^0\d+$").any():
            notes.append(f"column '{name}' has leading zeros: keep it as text")
    return notes


def _normal(name: str) -> str:
    """A column name as lower-case words joined by `_`: `customer.familyName` → `customer_family_name`,
    `Zuletzt geändert` → `zuletzt_geaendert` (JSON paths and camel case are how JSON and
    spreadsheet exports spell the names a CSV header spells with spaces)."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
    for umlaut, plain in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss")):
        spaced = spaced.replace(umlaut, plain)
    return re.sub(r"[^a-z0-9]+", "_", spaced).strip("_")


def _tokens(normal: str) -> set[str]:
    """The words of a normal name, each pair of neighbours (`first_name`, `firstname`), and the whole."""
    words = normal.split("_")
    pairs = list(zip(words, words[1:]))
    return set(words) | {f"{a}_{b}" for a, b in pairs} | {a + b for a, b in pairs} | {normal, normal.replace("_", "")}


def _full_name(column: str) -> bool:
    """Whether *column* names a person's full name: `Name`, `customer_name`, or a nested `requester.name`."""
    *prefix, last = column.split(".")
    if _normal(column) in FULL_NAME:
        return True
    return bool(prefix) and _normal(last) in FULL_NAME and not _tokens(_normal(".".join(prefix))) & set(NOT_A_PERSON)


def draft_mapping(profile: Profile, system: str, department: str | None = None, entity: str = "contact") -> str:
    """A first mapping file for *profile*'s source: obvious fields mapped by name, the rest listed
    under ``ignore_columns`` for the consultant to map or keep ignored. Passes validation."""
    columns = profile.columns.set_index("column")
    keys = list(columns.index[columns["candidate_key"]])
    source: dict[str, Any] = {k: v for k, v in profile.source.items() if k not in ("key",)}
    source["key"] = [keys[0]] if keys else "row_number"
    fields: dict[str, Any] = {}
    targets = entity_fields(entity)
    for name in columns.index:
        tokens = _tokens(_normal(name))
        for target, words in HINTS.items():
            if target in targets and target not in fields and tokens & set(words):
                spec: dict[str, Any] = {"column": name}
                if target in ("email", "phone"):
                    spec["transform"] = [target]
                else:
                    spec["transform"] = ["trim"]
                fields[target] = spec
                break
    full = next((c for c in columns.index if _full_name(c)), None)
    if full and "last_name" in targets and "last_name" not in fields:
        order = "surname_comma" if profile.columns.set_index("column").at[full, "samples"] and all(
            "," in str(v) for v in columns.at[full, "samples"]) else "given_first"
        for target, part in (("first_name", "given"), ("last_name", "surname")):
            if target not in fields:
                fields[target] = {"column": full, "transform": [{"split_name": {"part": part, "order": order}}]}
    changed = [c for c in columns.index if columns.at[c, "guessed_type"] in ("date", "datetime")
               and any(w in _normal(c) for w in CHANGED)]
    if changed:
        source["last_modified"] = {"column": changed[0], "formats": [columns.at[changed[0], "format"]]}
    for target, fdef in targets.items():
        if fdef.required and target not in fields:  # a placeholder validation will not let through unnoticed
            fields[target] = {"column": "CHOOSE_A_COLUMN"}
    used = {f["column"] for f in fields.values()} | set(source["key"] if isinstance(source["key"], list) else [])
    used |= {source["last_modified"]["column"]} if "last_modified" in source else set()
    source["ignore_columns"] = [c for c in columns.index if c not in used]
    document = {
        "spec_version": 1, "kind": "mapping", "system": system, "department": department or system,
        "timezone": "UTC", "sources": {"main": source},
        "entities": [{"entity": entity, "from": "main", "fields": fields}],
    }
    where = profile.source.get("path") or f"${profile.source.get('url_env')}"
    what = f"table {source['table']} in " if "table" in source else "a query of " if "query" in source else ""
    head = (f"# Draft mapping for {what}{where}, written by crmmigrate.profile.\n"
            "# Check every field, map or keep the ignored columns, then run `crmmigrate validate`.\n")
    return head + yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
