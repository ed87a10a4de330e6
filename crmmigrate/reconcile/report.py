"""The stakeholder report: one self-contained HTML file, no network, every value escaped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from crmmigrate.errors import mask_secrets
from crmmigrate.spec.reasons import ReasonCode

EXAMPLES = 5


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
    """Values dropped by `on_invalid: null`, per (source, entity, field, reason), with examples."""
    if nulled.empty:
        return []
    return [{"source": source, "entity": entity, "field": field, "reason_code": code, "count": len(rows),
             "examples": [{"key": k, "value": v} for k, v in
                          zip(rows["_source_key"].head(EXAMPLES), rows["value"].head(EXAMPLES))]}
            for (source, entity, field, code), rows in nulled.groupby(["_source", "entity", "field", "reason_code"],
                                                                       sort=True)]


def render(path: Path, context: dict[str, Any]) -> None:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined,
    )
    env.filters["num"] = lambda n: "" if n is None or n != n else f"{int(n):,}"
    env.filters["words"] = lambda name: str(name).replace("_", " ")
    # Masked as a whole, as run.json is: no source location or message may carry a URL's password.
    path.write_text(mask_secrets(env.get_template("report.html.j2").render(**context)), encoding="utf-8")
