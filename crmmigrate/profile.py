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
from pydantic import TypeAdapter

from crmmigrate.crm.models import entity_fields
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
    "last_name": ("lastname", "last_name", "surname", "family", "nachname"),
    "tax_id": ("tax", "vat", "tax_id", "taxid", "ustid"), "owner_name": ("owner", "rep", "agent"),
}
FULL_NAME = ("name", "full_name", "fullname", "customer_name", "contact_name")
CHANGED = ("modif", "updated", "changed", "geaendert", "last_change")
SHARE = 0.95  # a guess needs 95% of the non-empty sample to agree
CSV_ONLY = ("encoding", "fallback_encoding", "delimiter", "quotechar")


@dataclass
class Profile:
    source: dict[str, Any]
    rows: int
    columns: pd.DataFrame
    findings: list[str] = field(default_factory=list)
    rejects: dict[str, int] = field(default_factory=dict)


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
    for name, pattern in SHAPES.items():
        if present.str.match(pattern).mean() >= SHARE:
            return name, None
    return "text", None


def profile_source(path: str | Path, format: str | None = None, sample_rows: int = 100_000,
                   **options: Any) -> Profile:
    """Profile the file at *path*: columns, guessed types, null rates, samples, candidate keys.

    ``format`` defaults from the file extension; ``options`` are the source settings a
    mapping would declare (``encoding``, ``delimiter``, ``sheet``…).
    """
    path = Path(path)
    options = {k: v for k, v in options.items() if v not in ("", None)}  # notebook parameters left empty
    fmt = format or {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json",
                     ".xlsx": "xlsx", ".sqlite": "sql", ".db": "sql"}.get(path.suffix.lower(), "csv")
    if fmt != "csv":  # the notebook's CSV defaults mean nothing to another format
        options = {k: v for k, v in options.items() if k not in CSV_ONLY}
    settings = {"format": fmt, "path": str(path), "key": "row_number", **options}
    if fmt == "json" and path.suffix.lower() == ".jsonl":
        settings.setdefault("lines", True)
    spec = TypeAdapter(SourceSpec).validate_python(settings)
    reader = open_reader(path, spec, chunk_rows=10_000)
    rows, rejects = [], Counter()
    for record in reader.records():
        if record.values is None:
            rejects[str(record.reason)] += 1
        else:
            rows.append(record.values)
        if len(rows) + sum(rejects.values()) >= sample_rows:
            break
    reader.close()
    frame = pd.DataFrame(rows, columns=reader.header, dtype=object)
    return Profile(settings, len(frame), _columns(frame), _findings(frame, rejects, reader), dict(rejects))


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
        normal = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
        tokens = set(normal.split("_")) | {normal, normal.replace("_", "")}
        for target, words in HINTS.items():
            if target in targets and target not in fields and tokens & set(words):
                spec: dict[str, Any] = {"column": name}
                if target in ("email", "phone"):
                    spec["transform"] = [target]
                else:
                    spec["transform"] = ["trim"]
                fields[target] = spec
                break
    full = next((c for c in columns.index if c.lower().replace(" ", "_") in FULL_NAME), None)
    if full and "last_name" in targets and "last_name" not in fields:
        order = "surname_comma" if profile.columns.set_index("column").at[full, "samples"] and all(
            "," in str(v) for v in columns.at[full, "samples"]) else "given_first"
        for target, part in (("first_name", "given"), ("last_name", "surname")):
            if target not in fields:
                fields[target] = {"column": full, "transform": [{"split_name": {"part": part, "order": order}}]}
    changed = [c for c in columns.index if columns.at[c, "guessed_type"] in ("date", "datetime")
               and any(w in c.lower() for w in CHANGED)]
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
    head = (f"# Draft mapping for {profile.source['path']}, written by crmmigrate.profile.\n"
            "# Check every field, map or keep the ignored columns, then run `crmmigrate validate`.\n")
    return head + yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
