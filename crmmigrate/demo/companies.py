"""The companies the demo's people work for, and how each department writes their names.

The pool grows with the number of people (one company per ~6 people, a few large customers
and a long tail of small ones), so account matching meets as many distinct companies as a real
customer base has. Every name carries a legal form that departments write in full, abbreviated,
with a variant spelling or not at all (``Bergmann Logistik GmbH``, ``BERGMANN LOGISTIK G.M.B.H.``,
``Bergmann Logistik``). cp1252-safe (the sales export is cp1252; see ``names.py``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from crmmigrate.demo import names
from crmmigrate.demo.weighted import Weighted

# Legal form -> the other ways people write it.
LEGAL_FORMS: dict[str, tuple[str, ...]] = {
    "GmbH": ("Gmbh", "G.m.b.H.", "GmbH.", "Gesellschaft mit beschränkter Haftung"),
    "AG": ("Aktiengesellschaft", "A.G."),
    "GmbH & Co. KG": ("GmbH & Co KG", "GmbH u. Co. KG", "GmbH&Co.KG"),
    "KG": ("Kommanditgesellschaft",),
    "OHG": ("oHG",),
    "e.K.": ("e. K.", "eK"),
    "UG (haftungsbeschränkt)": ("UG", "UG (haftungsbeschraenkt)"),
    "Ltd": ("Ltd.", "Limited", "LTD"),
    "Inc.": ("Inc", "Incorporated"),
    "LLC": ("L.L.C.",),
    "S.A.": ("SA", "S. A."),
    "SARL": ("S.à r.l.", "Sàrl"),
    "S.L.": ("SL",),
    "S.p.A.": ("SpA",),
    "B.V.": ("BV",),
}
# (country, its web domain's ending, legal forms with weights) of the companies
COUNTRIES: tuple[tuple[str, str, tuple[tuple[str, int], ...]], ...] = (
    ("DE", "de", (("GmbH", 55), ("GmbH & Co. KG", 12), ("AG", 5), ("KG", 5), ("OHG", 3), ("e.K.", 5),
                  ("UG (haftungsbeschränkt)", 5))),
    ("AT", "at", (("GmbH", 70), ("AG", 10), ("KG", 10))),
    ("CH", "ch", (("AG", 55), ("GmbH", 30), ("SARL", 5), ("S.A.", 10))),
    ("GB", "co.uk", (("Ltd", 100),)),
    ("US", "com", (("Inc.", 70), ("LLC", 30))),
    ("ES", "es", (("S.A.", 50), ("S.L.", 50))),
    ("FR", "fr", (("SARL", 60), ("S.A.", 40))),
    ("IT", "it", (("S.p.A.", 100),)),
    ("NL", "nl", (("B.V.", 100),)),
)
_COUNTRY = Weighted(COUNTRIES, (70, 10, 8, 4, 3, 1, 2, 1, 1))
_FORMS = {country: Weighted([f for f, _ in forms], [w for _, w in forms]) for country, _, forms in COUNTRIES}

TRADES_DE: tuple[str, ...] = (
    "Logistik", "Software", "Maschinenbau", "Immobilien", "Gartenbau", "Elektrotechnik", "Bau",
    "Medizintechnik", "Consulting", "Druckerei", "Feinmechanik", "Versicherungsmakler", "Handel",
    "Holzbau", "Metallbau", "Autohaus", "Sanitär", "Steuerberatung", "IT-Service", "Spedition",
    "Verpackungen", "Kunststofftechnik", "Lebensmittel", "Getränke", "Textil", "Werkzeuge",
    "Energietechnik", "Solartechnik", "Reisen", "Gebäudereinigung", "Personalservice", "Optik",
)
TRADES_EN: tuple[str, ...] = (
    "Logistics", "Software", "Engineering", "Trading", "Consulting", "Analytics", "Systems",
    "Holdings", "Foods", "Energy", "Solutions", "Instruments", "Media", "Partners", "Labs",
)
FANCY: tuple[str, ...] = (
    "Nordlicht", "Alpenblick", "Rheinwerk", "Hansa", "Elbtal", "Grünwald", "Schwarzwald", "Donau",
    "Spreeblick", "Isar", "Fjord", "Bergland", "Sonnental", "Weitblick", "Lichtblick", "Seeblick",
    "Brightwater", "Lakeside", "Silverline", "Northstar", "Bluepeak", "Redwood", "Ironbridge",
    "Meridian", "Horizon", "Vertex", "Quantum", "Atlas", "Orion", "Helios", "Nova", "Terra",
    "Aurora", "Phoenix", "Polaris", "Zenit", "Optima", "Primus", "Vita", "Aqua", "Ferro", "Lumen",
)
_ASCII = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss"})


@dataclass(frozen=True)
class Company:
    """One true company: ``cid`` is its id in truth.json, ``domain`` its web domain."""

    cid: str
    name: str  # without the legal form
    form: str
    country: str
    domain: str

    @property
    def official(self) -> str:
        return f"{self.name} {self.form}"


def _surnames() -> tuple[str, ...]:
    pool = names.SURNAMES_DE + names.SURNAMES_EN
    return tuple(s for s in pool if s.encode("cp1252", errors="replace").decode("cp1252") == s)


def make_companies(count: int, rng: random.Random) -> list[Company]:
    """Draw *count* companies with ids ``A00001`` upwards and unique web domains."""
    surnames, taken, out = _surnames(), set(), []
    for i in range(1, count + 1):
        country, tld, _ = _COUNTRY.draw(rng)
        form = _FORMS[country].draw(rng)
        german = tld in ("de", "at", "ch")
        trade = rng.choice(TRADES_DE if german else TRADES_EN)
        shape = rng.random()
        if shape < 0.45:
            name = f"{rng.choice(surnames)} {trade}"
        elif shape < 0.8:
            name = f"{rng.choice(FANCY)} {trade}"
        elif shape < 0.9:
            name = f"{rng.choice(surnames)} & {rng.choice(('Partner', 'Söhne', 'Co.') if german else ('Sons', 'Partners'))}"
        else:
            name = f"{rng.choice(surnames)} & {rng.choice(surnames)}"
        out.append(Company(f"A{i:05d}", name, form, country, _domain(name, tld, taken)))
    return out


def _domain(name: str, tld: str, taken: set[str]) -> str:
    words = [w for w in name.translate(_ASCII).lower().replace("&", " ").replace(".", " ").split()]
    slug = "-".join("".join(c for c in w if c.isalnum()) for w in words[:3]).strip("-")
    domain, n = f"{slug}.{tld}", 1
    while domain in taken:  # two companies may share a name, never a domain
        n += 1
        domain = f"{slug}-{n}.{tld}"
    taken.add(domain)
    return domain


# How each department writes a company name: (full legal name, legal form spelt another way,
# without the legal form) with weights.
STYLES: dict[str, tuple[int, int, int]] = {"sales": (60, 15, 25), "billing": (85, 15, 0), "support": (20, 10, 70)}
_STYLE = {department: Weighted(("official", "variant", "bare"), w) for department, w in STYLES.items()}


def written_name(company: Company, department: str, rng: random.Random) -> str:
    """The company's name as *department* happens to write it this time."""
    style = _STYLE[department].draw(rng)
    if style == "bare":
        return company.name
    if style == "variant" and LEGAL_FORMS[company.form]:
        return f"{company.name} {rng.choice(LEGAL_FORMS[company.form])}"
    return company.official


def website(company: Company, rng: random.Random) -> str:
    """The web address as a sales rep types it: with or without scheme and ``www.``."""
    return rng.choice((company.domain, f"www.{company.domain}", f"https://www.{company.domain}",
                       f"http://{company.domain}/"))
