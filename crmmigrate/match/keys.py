"""What every matcher agrees on: the folded form of a text and the id of a cluster."""

from __future__ import annotations

import re
import unicodedata
import uuid

# Cluster ids double as the CRM id of a golden record that is new to the CRM, so they are
# derived from the cluster's anchor record and stay the same on every run.
NAMESPACE = uuid.UUID("6f1c2a51-8a0e-4c1b-9d83-2f6b1e3c7a10")
_NOT_LETTER = re.compile(r"[^0-9a-z]+")
# Letters NFKD cannot split into base + accent; without this `Søren` would fold to `sren`.
_UNSPLITTABLE = str.maketrans({"ß": "ss", "ø": "o", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "æ": "ae",
                               "œ": "oe", "ı": "i", "ħ": "h", "ŧ": "t"})


def cluster_uuid(entity: str, source: str, key: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{entity}\x1f{source}\x1f{key}"))


def fold(value: object) -> str | None:
    """Case, accents, punctuation and spacing removed: `Jürgen-Ö.` → `jurgeno`; ß → ss, ø → o."""
    if value is None or value != value:
        return None
    text = unicodedata.normalize("NFKD", str(value).casefold().translate(_UNSPLITTABLE))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = _NOT_LETTER.sub("", text)
    return text or None
