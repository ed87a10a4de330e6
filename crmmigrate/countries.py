"""Countries as legacy systems write them → ISO 3166-1 alpha-2, read through pycountry.

`alpha2(text)` reads

1. every country's alpha-2 and alpha-3 code, as written but for case and surrounding spaces
   (`de`, ` DEU `; `N/A` is no Namibia, nor `D.E.` Germany);

and, after folding case, accents, punctuation and spacing away (`fold`), its names:

2. the English ones in pycountry: `name`, `official_name`, `common_name` (`Germany`,
   `Federal Republic of Germany`, `South Korea`);
3. ALIASES, a short list of names in everyday use that pycountry lacks (`UK`, `Turkey`);
4. its names in pycountry's own translations (the `iso3166-1` gettext catalogs in
   `pycountry.LOCALES_DIR`) in LANGUAGES, the languages of Europe's states (`Deutschland`,
   `Österreich`, `Suisse`, `Česká republika`, `Magyarország`).

A name that a later group gives to another country than an earlier one keeps the earlier reading;
a name that folds to another country's code is not read (were Vietnamese read, its `Áo` for
Austria would fold to Angola's `AO`); a name one group gives to two countries is read as
neither: the catalogs have a few such errors (Czech and Slovak give Gambia's official name as
Slovakia's). Numeric codes (`276`), historic countries (`Czechoslovakia`) and fuzzy guesses are
not read.

The SQL half (`code_key_sql`, `fold_sql`, `lookup_sql`) is exact where `sql_foldable` holds:
DuckDB's lower() and strip_accents() then fold each character as `fold` does
(tests/test_countries.py checks every character of SQL_BLOCKS), and the lookup reads the same table.
"""

from __future__ import annotations

import functools
import gettext
import re
import unicodedata

import pycountry

from crmmigrate.sqlpipe import _WS, _class, _full, quote_str

# The languages of Europe's states that pycountry has a catalog for (Luxembourgish and Romansh
# have none; Luxembourg and Switzerland are read in German, French and Italian).
LANGUAGES = ("be", "bg", "bs", "ca", "cs", "da", "de", "el", "es", "et", "fi", "fr", "ga", "hr", "hu", "is", "it",
             "lt", "lv", "mk", "mt", "nb_NO", "nl", "nn", "pl", "pt", "ro", "ru", "sk", "sl", "sq", "sr", "sr@latin",
             "sv", "tr", "uk")

# Names in everyday use that neither pycountry nor a catalog of LANGUAGES reads (checked by the
# tests: each alias is needed and none contradicts pycountry).
ALIASES = {
    # GB is "United Kingdom" in pycountry; addresses also name its constituent countries (ISO 3166-2:GB).
    "UK": "GB", "Great Britain": "GB", "Großbritannien": "GB",
    "England": "GB", "Scotland": "GB", "Wales": "GB", "Northern Ireland": "GB",
    "Turkey": "TR",  # ISO's name since 2022 is Türkiye
    # ISO's names are "Côte d'Ivoire", "Cabo Verde", "Timor-Leste", "Holy See (Vatican City State)", "Palestine, State of"
    "Ivory Coast": "CI", "Cape Verde": "CV", "East Timor": "TL", "Vatican City": "VA", "Holy See": "VA",
    "Palestine": "PS",
    "Slovenská republika": "SK",  # Slovakia's official name: the cs and sk catalogs give it to Gambia too
}


def fold(text: str) -> str:
    """The lower-case letters and digits of *text*, accents taken off: `Česká  Republika` →
    `ceskarepublika`, `U.K.` → `uk`, `STRASSE` and `Straße` → `strasse`.

    NFKD before case folding splits compatibility characters (`ﬁ`, `Ｄ`) so their parts are
    folded too; NFKD after it splits off the accents of what folding produced. Both are defined
    per character (the accents they reorder are dropped), so the SQL half can fold alike."""
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    return "".join(c for c in decomposed if c.isalnum())


def _english(country: object) -> list[str]:
    return [getattr(country, a) for a in ("name", "official_name", "common_name") if hasattr(country, a)]


def _local() -> dict[str, set[str]]:
    names: dict[str, set[str]] = {}
    for language in LANGUAGES:
        catalog = gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[language])
        for country in pycountry.countries:
            for english in _english(country):
                names.setdefault(fold(catalog.gettext(english)), set()).add(country.alpha_2)
    return names


@functools.cache
def codes() -> dict[str, str]:
    """Every alpha-2 and alpha-3 code → its alpha-2."""
    return {code: country.alpha_2 for country in pycountry.countries for code in (country.alpha_2, country.alpha_3)}


@functools.cache
def names() -> dict[str, str]:
    """Every folded name read → its alpha-2 (groups in the order of the module's docstring)."""
    english: dict[str, set[str]] = {}
    for country in pycountry.countries:
        for name in _english(country):
            english.setdefault(fold(name), set()).add(country.alpha_2)
    aliases: dict[str, set[str]] = {}
    for alias, code in ALIASES.items():
        aliases.setdefault(fold(alias), set()).add(code)
    table: dict[str, str] = {}
    folded_codes = {fold(code): alpha_2 for code, alpha_2 in codes().items()}
    for group in (english, aliases, _local()):
        for key, read in group.items():
            if len(read) > 1 or not key or key in table:
                continue  # two countries' in this group, nothing but punctuation, or an earlier group's
            (code,) = read
            if folded_codes.get(key, code) == code:
                table[key] = code
    return table


_CODE = re.compile("[A-Za-z]{2,3}")


@functools.lru_cache(maxsize=1 << 16)
def alpha2(text: str) -> str | None:
    """The ISO 3166-1 alpha-2 code of the country *text* names, or None where it names none."""
    stripped = text.strip()
    if _CODE.fullmatch(stripped) and (code := codes().get(stripped.upper())):
        return code
    return names().get(fold(stripped))


# --- the SQL half ----------------------------------------------------------------------------

# Latin, Greek, Cyrillic and their extensions, and general punctuation: on these DuckDB's lower()
# then strip_accents() fold each character as `fold` does (less its non-alphanumerics, which
# fold_sql removes as Python classes them), but for SQL_ODD, where Python's NFKD or case folding
# differs (`ª` → `a`, `ĳ` → `ij`, `ſ` → `s`, `ᾳ` → `αι`): text holding one is left to Python.
# SQL_REPLACED is folded by replace() first.
SQL_BLOCKS = ((0x1, 0x52F), (0x1E00, 0x1FFF), (0x2000, 0x206F), (0x3000, 0x3000))
SQL_ODD = ("ª²³µ¹º¼½¾ĲĳĿŀŉſǄǅǆǇǈǉǊǋǌǱǲǳȺȾʰʱʲʳʴʵʶʷʸˠˡˢˣˤ\u0345ͺϐϑϒϓϔϕϖϰϱϲϵϹẚẛ"
           "ᾀᾁᾂᾃᾄᾅᾆᾇᾈᾉᾊᾋᾌᾍᾎᾏᾐᾑᾒᾓᾔᾕᾖᾗᾘᾙᾚᾛᾜᾝᾞᾟᾠᾡᾢᾣᾤᾥᾦᾧᾨᾩᾪᾫᾬᾭᾮᾯᾲᾳᾴᾷᾼῂῃῄῇῌῲῳῴῷῼ")
SQL_REPLACED = {"ß": "ss", "ẞ": "ss", "ς": "σ"}
_FOLDABLE = _class(SQL_BLOCKS, SQL_ODD)
_ALNUM = _class(tuple((c, c) for lo, hi in SQL_BLOCKS for c in range(lo, hi + 1) if chr(c).isalnum()))


def sql_foldable(x: str) -> str:
    """SQL: whether `fold_sql(x)` is `fold` of the text *x* (NULL for NULL)."""
    return _full(x, f"[{_FOLDABLE}]*")


def fold_sql(x: str) -> str:
    """SQL: `fold` of the text *x* (a bound name), where `sql_foldable(x)` holds."""
    replaced = x
    for char, folded in SQL_REPLACED.items():
        replaced = f"replace({replaced}, {quote_str(char)}, {quote_str(folded)})"
    # replace() copies the text even where it finds nothing: only text holding one is replaced.
    text = f"CASE WHEN regexp_matches({x}, {quote_str('[' + ''.join(SQL_REPLACED) + ']')}) THEN {replaced} ELSE {x} END"
    return f"regexp_replace(strip_accents(lower({text})), {quote_str(f'[^{_ALNUM}]+')}, '', 'g')"


def code_key_sql(x: str) -> str:
    """SQL: the text *x* as `alpha2` looks it up among the codes (upper case, stripped), where it
    has a code's shape; NULL elsewhere."""
    return (f"CASE WHEN {_full(x, f'[{_WS}]*[A-Za-z]{{2,3}}[{_WS}]*')} "
            f"THEN upper(regexp_extract({x}, '[A-Za-z]{{2,3}}')) END")


@functools.cache
def _lists() -> tuple[str, str]:
    # Codes are upper case and folded names never are: one table serves both lookups.
    table = {**codes(), **names()}
    keys, read = zip(*sorted(table.items()))
    return quote_str(",".join(keys)), quote_str(",".join(read))  # neither a code nor a folded name holds a comma


def lookup_sql(key: str) -> str:
    """SQL: the alpha-2 that `codes()` or `names()` holds for *key* (a bound name), or NULL.

    A subquery, which DuckDB runs as a hash join of the distinct keys, over the table unnested
    from two literals: a MAP literal of the ~10,000 names is searched row by row (2 s per million
    rows against 0.3 s), and VALUES of them took 0.4 s to parse in every query."""
    keys, read = _lists()
    return (f"(SELECT __crm_code FROM (SELECT unnest(string_split({keys}, ',')) AS __crm_key, "
            f"unnest(string_split({read}, ',')) AS __crm_code) WHERE __crm_key = {key})")
