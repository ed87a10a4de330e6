"""The stakeholder report: one self-contained HTML file, no network, every value escaped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from crmmigrate.errors import mask_secrets
from crmmigrate.spec.reasons import ReasonCode
from crmmigrate.transforms import get_transform, transform_names
from crmmigrate.visible import visible

EXAMPLES = 5
SHOWN_CHARS = 300  # of one example value: a 40,000-character field would make the page that wide


def shown(value: object) -> object:
    """What the report prints for one value (applied to every ``{{ }}`` before escaping): no URL
    password, no invisible or reordering character, at most SHOWN_CHARS characters."""
    if not isinstance(value, str):
        return value
    text = mask_secrets(value)
    cut = text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS]
    shown_text = visible(cut)
    return shown_text if cut is text else shown_text + f"… ({len(text):,} characters)"


def reject_groups(ledger: pd.DataFrame) -> list[dict[str, Any]]:
    rejected = ledger[ledger["outcome"] == "rejected"]
    groups = []
    for (source, entity, code), rows in rejected.groupby(["_source", "entity", "reason_code"], sort=True):
        groups.append({
            "source": source, "entity": entity, "reason_code": code, "count": len(rows),
            "category": ReasonCode(code).category if code in ReasonCode.__members__.values() else "",
            "examples": [{"key": k, "message": m} for k, m in
                         zip(rows["_source_key"].head(EXAMPLES), rows["message"].head(EXAMPLES))],
        })
    return groups


def nulled_groups(nulled: pd.DataFrame) -> list[dict[str, Any]]:
    """Values dropped by lenient fields, per (source, entity, field, reason), with examples."""
    if nulled.empty:
        return []
    return [{"source": source, "entity": entity, "field": field, "reason_code": code, "count": len(rows),
             "examples": [{"key": k, "value": v} for k, v in
                          zip(rows["_source_key"].head(EXAMPLES), rows["value"].head(EXAMPLES))]}
            for (source, entity, field, code), rows in nulled.groupby(["_source", "entity", "field", "reason_code"],
                                                                       sort=True)]


def changed_groups(changed: pd.DataFrame) -> list[dict[str, Any]]:
    """Values a rule placed (a wall time daylight saving skips or repeats), per (source, entity,
    field, rule), with examples of the text read and the value stored."""
    if changed.empty:
        return []
    return [{"source": source, "entity": entity, "field": field.lstrip("_"), "rule": rule, "count": len(rows),
             "examples": [{"key": k, "before": b, "after": a} for k, b, a in
                          zip(rows["_source_key"].head(EXAMPLES), rows["before"].head(EXAMPLES),
                              rows["after"].head(EXAMPLES))]}
            for (source, entity, field, rule), rows in changed.groupby(["_source", "entity", "field", "rule"], sort=True)]


def transformed_rows(map_counts: dict[str, Any]) -> list[dict[str, Any]]:
    """Per (source, entity, field, transform), the values a transform changed (the map's counts),
    worded as the transform registered it: "city: 12 values trimmed"."""
    rows = []
    for pair, counts in sorted(map_counts.get("by_source_entity", {}).items()):
        source, _, entity = pair.rpartition("/")
        for key, n in counts.get("transformed", {}).items():
            field, _, name = key.partition("/")
            words = get_transform(name).changed if name in transform_names() else f"changed by {name}"
            rows.append({"source": source, "entity": entity, "field": field, "transform": name, "count": n,
                         "words": f"{n:,} value{'s' if n != 1 else ''} {words}"})
    return rows


def render(path: Path, context: dict[str, Any]) -> None:
    # Every value is masked and made visible before it is escaped (`finalize`): masking the
    # finished HTML instead could cut an escaped value's markup short.
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, finalize=shown,
    )
    env.filters["num"] = lambda n: "" if n is None or n != n else f"{int(n):,}"
    env.filters["words"] = lambda name: str(name).replace("_", " ")
    path.write_text(env.get_template("report.html.j2").render(**context), encoding="utf-8")
