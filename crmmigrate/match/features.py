"""The columns a model compares, computed once per record in DuckDB.

Mapped values are already clean (E.164 phones, lower-case emails, real dates); matching needs
their comparable forms on top: names folded (`Jürgen` = `jurgen`), a first name's formal forms
(Bill → William, from the kept `nicknames` dataset), a street split into number and name with
its common abbreviations written out, the birth date with day and month swapped. Python folds
each distinct text once and DuckDB joins the result, so the cost follows the number of distinct
names, not of records.

Records are numbered in (source, key) order before anything else: the same records in another
order give the same table, so the same model and the same clusters.
"""

from __future__ import annotations

import re
from functools import cache

import duckdb
import pandas as pd
from cleanco import basename

from crmmigrate.match.keys import fold

# A street's house number: digits with an optional letter (`115b`, `12 A`), or a range (`3-5`).
_NUMBER = re.compile(r"\b(\d+(?:\s*[-/]\s*\d+)?(?:\s*[a-z]\b)?)", re.IGNORECASE)
# Written-out forms of street abbreviations, per word; German compounds end in `str`.
_STREET_WORDS = {"str": "strasse", "st": "street", "rd": "road", "ave": "avenue", "av": "avenue",
                 "pl": "platz", "bd": "boulevard", "blvd": "boulevard", "ln": "lane", "dr": "drive"}
_COMPOUND_SUFFIX = (("str", "strasse"), ("pl", "platz"))

CONTACT_FIELDS = ("first_name", "middle_name", "last_name", "birth_date", "email", "phone", "mobile", "tax_id")
ADDRESS_FIELDS = ("street", "postcode", "city", "region", "country")
# Typed in SQL, since a column no source filled arrives without a type.
TEXT_COLUMNS = tuple(c for c in CONTACT_FIELDS + ADDRESS_FIELDS if c != "birth_date")


@cache
def _nicknames() -> dict[str, tuple[str, ...]]:
    """Folded nickname → the folded formal names it may stand for, itself included."""
    from nicknames import NickNamer

    table: dict[str, set[str]] = {}
    for nick, formal in NickNamer().canonical_lookup.items():
        key = fold(nick)
        if key:
            table.setdefault(key, {key}).update(f for f in map(fold, formal) if f)
    return {k: tuple(sorted(v)) for k, v in table.items()}


def nickname_forms(name: str | None) -> tuple[str, ...] | None:
    """`bill` → (bill, robert, will, william, willis): two first names agree as nicknames when these meet."""
    if name is None:
        return None
    return _nicknames().get(name, (name,))


def split_street(street: str | None) -> tuple[str | None, str | None]:
    """`Hauptstr. 41a` → (`41a`, `hauptstrasse`); `12 Baker St` → (`12`, `bakerstreet`)."""
    if street is None or street != street:
        return None, None
    found = _NUMBER.search(street)
    number = re.sub(r"\s+", "", found.group(1)).lower() if found else None
    rest = _NUMBER.sub(" ", street) if found else street
    words = [_STREET_WORDS.get(w, w) for w in (fold(w) for w in re.split(r"[\s.]+", rest)) if w]
    name = "".join(words)
    for short, long in _COMPOUND_SUFFIX:
        if name.endswith(short):
            name = name[: -len(short)] + long
    return number, name or None


# Legal forms written out, which cleanco's list has only abbreviated.
_LONG_FORMS = [(re.compile(long, re.IGNORECASE), short) for long, short in (
    (r"gesellschaft mit beschr(ä|ae|a)nkter haftung", "GmbH"), (r"aktiengesellschaft", "AG"),
    (r"kommanditgesellschaft", "KG"), (r"offene handelsgesellschaft", "OHG"),
    (r"soci(é|e)t(é|e) anonyme", "SA"), (r"soci(é|e)t(é|e) (à|a) responsabilit(é|e) limit(é|e)e", "SARL"),
    (r"besloten vennootschap", "BV"), (r"naamloze vennootschap", "NV"), (r"limited", "Ltd"),
    (r"incorporated", "Inc"), (r"corporation", "Corp"))]


def company_name(name: str | None) -> str | None:
    """A company's name without its legal form (GmbH, Ltd, S.A., … from `cleanco`'s kept list), folded."""
    if name is None or name != name:
        return None
    text = str(name)
    for long, short in _LONG_FORMS:
        text = long.sub(short, text)
    return fold(basename(text)) or fold(name)


def _lookup(con: duckdb.DuckDBPyConnection, name: str, values: pd.Series, fn, columns: list[str]) -> None:
    """Register *name*(value, *columns*) holding fn(value) for every distinct non-null value."""
    distinct = pd.Series(values.dropna().unique(), dtype=object)
    results = [fn(v) for v in distinct]
    if len(columns) == 1:
        frame = pd.DataFrame({"value": distinct, columns[0]: results})
    else:
        frame = pd.DataFrame(results, columns=columns, dtype=object) if results else pd.DataFrame(columns=columns)
        frame.insert(0, "value", distinct)
    con.register(name, frame)


def canonical_order(records: pd.DataFrame) -> pd.DataFrame:
    out = records.sort_values(["_source", "_source_key"], kind="stable").reset_index(drop=True)
    out.insert(0, "unique_id", range(len(out)))
    return out


def contact_features(con: duckdb.DuckDBPyConnection, contacts: pd.DataFrame, addresses: pd.DataFrame,
                     table: str = "features") -> pd.DataFrame:
    """Create *table* in *con*: one row per contact record, with its own address's fields.

    Returns the (source, key, department, rank-free) index of the records in unique_id order.
    """
    records = canonical_order(contacts)
    for column in CONTACT_FIELDS:
        if column not in records:
            records[column] = None
    home = _own_address(records, addresses)
    for column in ADDRESS_FIELDS:
        records[column] = home[column].to_numpy() if column in home else None
    con.register("_records", records[["unique_id", "_source", "_source_key", *CONTACT_FIELDS, *ADDRESS_FIELDS]])
    names = pd.concat([records["first_name"], records["middle_name"], records["last_name"], records["city"],
                       records["region"]])
    _lookup(con, "_folded", names, fold, ["folded"])
    _lookup(con, "_nicks", records["first_name"], lambda v: list(nickname_forms(fold(v)) or ()), ["forms"])
    _lookup(con, "_streets", records["street"], split_street, ["number", "name"])
    con.execute(f"""
        CREATE OR REPLACE TABLE {table} AS
        SELECT r.unique_id,
               fn.folded AS first_name, mn.folded AS middle_name, ln.folded AS last_name,
               nullif(CAST(nk.forms AS VARCHAR[]), []) AS first_forms,
               -- one system's `Tobias de la | Cruz` is another's `Tobias | De La Cruz`
               CASE WHEN fn.folded IS NOT NULL AND ln.folded IS NOT NULL THEN fn.folded || ln.folded END AS full_name,
               left(fn.folded, 1) AS first_initial,
               strftime(r.birth_date, '%Y-%m-%d') AS birth_date,
               CASE WHEN day(r.birth_date) <= 12 AND day(r.birth_date) <> month(r.birth_date)
                    THEN strftime(make_date(year(r.birth_date), day(r.birth_date), month(r.birth_date)), '%Y-%m-%d')
               END AS birth_date_swapped,
               year(r.birth_date) AS birth_year,
               nullif(lower(trim(r.email)), '') AS email,
               nullif(split_part(lower(trim(r.email)), '@', 1), '') AS email_local,
               -- `j.mueller7`: a local part made of the name says nothing the name does not
               regexp_replace(replace(replace(replace(regexp_replace(strip_accents(
                   split_part(lower(trim(r.email)), '@', 1)), '[^a-z0-9]', '', 'g'), 'ae', 'a'), 'oe', 'o'), 'ue', 'u'),
                   '[0-9]+$', '') IN (fn.folded || ln.folded, ln.folded || fn.folded, left(fn.folded, 1) || ln.folded,
                                      ln.folded || left(fn.folded, 1), fn.folded || left(ln.folded, 1), ln.folded,
                                      fn.folded) AS email_local_named,
               r.phone, r.mobile,
               nullif(regexp_replace(upper(r.tax_id), '[^0-9A-Z]', '', 'g'), '') AS tax_id,
               st.number AS street_number, st.name AS street_name,
               nullif(regexp_replace(upper(r.postcode), '\\s', '', 'g'), '') AS postcode,
               ci.folded AS city, rg.folded AS region, upper(r.country) AS country
        FROM (SELECT unique_id, CAST(birth_date AS DATE) AS birth_date,
                     {", ".join(f"CAST({c} AS VARCHAR) AS {c}" for c in TEXT_COLUMNS)} FROM _records) r
        LEFT JOIN _folded fn ON fn.value = r.first_name
        LEFT JOIN _folded mn ON mn.value = r.middle_name
        LEFT JOIN _folded ln ON ln.value = r.last_name
        LEFT JOIN _folded ci ON ci.value = r.city
        LEFT JOIN _folded rg ON rg.value = r.region
        LEFT JOIN _nicks nk ON nk.value = r.first_name
        LEFT JOIN _streets st ON st.value = r.street
        ORDER BY r.unique_id
    """)
    for name in ("_records", "_folded", "_nicks", "_streets"):
        con.unregister(name)
    return records[["unique_id", "_source", "_source_key", "_department"]]


def account_features(con: duckdb.DuckDBPyConnection, accounts: pd.DataFrame, contacts: pd.DataFrame,
                     table: str = "features") -> pd.DataFrame:
    """Create *table*: one row per account record. Its web domain is the website's host, else the
    e-mail domain of the contact mapped from the same source record (unless a free provider's)."""
    records = canonical_order(accounts)
    for column in ("website", "tax_id"):
        if column not in records:
            records[column] = None
    same_row = _same_record(records, contacts, "email")
    records["mail_domain"] = same_row.str.rpartition("@")[2].str.lower().where(same_row.notna(), None)
    con.register("_records", records[["unique_id", "name", "website", "tax_id", "mail_domain"]])
    _lookup(con, "_names", records["name"], company_name, ["folded"])
    free = ", ".join(f"'{d}'" for d in FREE_MAIL)
    con.execute(f"""
        CREATE OR REPLACE TABLE {table} AS
        SELECT r.unique_id, n.folded AS name,
               coalesce(nullif(regexp_extract(lower(r.website), '^(?:[a-z]+://)?(?:www\\.)?([^/:?#]+)', 1), ''),
                        CASE WHEN r.mail_domain NOT IN ({free}) THEN nullif(r.mail_domain, '') END) AS domain,
               nullif(regexp_replace(upper(r.tax_id), '[^0-9A-Z]', '', 'g'), '') AS tax_id
        FROM (SELECT unique_id, CAST(name AS VARCHAR) AS name, CAST(website AS VARCHAR) AS website,
                     CAST(tax_id AS VARCHAR) AS tax_id, CAST(mail_domain AS VARCHAR) AS mail_domain FROM _records) r
        LEFT JOIN _names n ON n.value = r.name
        ORDER BY r.unique_id""")
    con.unregister("_records")
    con.unregister("_names")
    return records[["unique_id", "_source", "_source_key", "_department"]]


# Mail providers whose domain says nothing about the company a person works for.
FREE_MAIL = ("gmail.com", "googlemail.com", "yahoo.com", "yahoo.de", "hotmail.com", "hotmail.de", "outlook.com",
             "outlook.de", "live.com", "live.de", "icloud.com", "me.com", "aol.com", "gmx.de", "gmx.net", "gmx.at",
             "gmx.ch", "web.de", "t-online.de", "freenet.de", "posteo.de", "mailbox.org", "bluewin.ch", "aon.at",
             "proton.me", "protonmail.com", "mail.de", "arcor.de")


def _same_record(records: pd.DataFrame, others: pd.DataFrame, column: str) -> pd.Series:
    """*column* of the *others* row mapped from each record's own source record."""
    if others is None or others.empty or column not in others:
        return pd.Series(None, index=records.index, dtype=object)
    own = others.drop_duplicates(["_source", "_source_key"]).set_index(["_source", "_source_key"])[column]
    return pd.Series(own.reindex(pd.MultiIndex.from_frame(records[["_source", "_source_key"]])).to_numpy(),
                     index=records.index, dtype=object)


def _own_address(records: pd.DataFrame, addresses: pd.DataFrame) -> pd.DataFrame:
    """Per record, the address mapped from the same source record (mailing first), else nothing."""
    if addresses.empty or "_link_contact_source" not in addresses:
        return pd.DataFrame(index=records.index)
    own = addresses[(addresses["_link_contact_source"] == addresses["_source"])
                    & (addresses["_link_contact_key"] == addresses["_source_key"])]
    kind_order = own["kind"].map({"mailing": 0, "billing": 1, "shipping": 2}).fillna(3) if "kind" in own else 0
    own = (own.assign(_kind_order=kind_order).sort_values(["_source", "_source_key", "_kind_order"], kind="stable")
           .drop_duplicates(["_source", "_source_key"]).set_index(["_source", "_source_key"]))
    index = pd.MultiIndex.from_frame(records[["_source", "_source_key"]])
    return own.reindex(index).reset_index(drop=True)
