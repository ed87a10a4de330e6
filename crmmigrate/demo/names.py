"""Embedded word lists for the demo data generator.

Everything except the given names and surnames is Windows-1252-safe on purpose: the sales
export is cp1252, and only the ``NAME`` column is meant to lose characters there.
"""

from __future__ import annotations

GIVEN_NAMES: tuple[str, ...] = (
    "Jürgen", "Jörg", "Björn", "Sören", "Günter", "Uwe", "Klaus", "Peter", "Thomas", "Michael",
    "Andreas", "Stefan", "Johannes", "Friedrich", "Wolfgang", "Alexander", "Robert", "William",
    "Matthias", "Sebastian", "Florian", "Tobias", "Lukas", "Felix", "Jonas", "Maximilian",
    "Katherine", "Elisabeth", "Margarete", "Christina", "Stefanie", "Susanne", "Sabine", "Anna",
    "Maria", "Julia", "Laura", "Lena", "Sophie", "Hannah", "Mia", "Claudia", "Petra", "Monika",
    "Ursula", "Birgit", "Käthe", "Renée", "Chloé", "André", "René", "Hélène", "Zoë", "Søren",
    "Åsa", "Ümit", "Ayşe", "Łukasz", "Paweł", "Małgorzata", "Đorđe", "Jiří", "Tomáš",
    "Mehmet", "Elif", "Niklas", "Marie-Luise", "Karl-Heinz", "Dagmar", "Heike", "Ines", "Jan",
)

SURNAMES: tuple[str, ...] = (
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz",
    "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann",
    "Schwarz", "Zimmermann", "Braun", "Krüger", "Hofmann", "Hartmann", "Lange", "Schmitt",
    "Werner", "Krause", "Meier", "Lehmann", "Weiß", "Groß", "Köhler", "Jäger", "Böhm", "Vogt",
    "Huber", "Gruber", "Steiner", "Moser", "Brunner", "Frei", "Keller", "Baumgartner",
    "Lefèvre", "Jørgensen", "Öztürk", "Dvořák", "Şahin", "Nowak", "Wiśniewski", "Kowalczyk",
    "Petrović", "Yılmaz", "Novák", "Ćosić", "Łęcki", "von Bülow", "de la Cruz", "O'Brien",
    "Dąbrowski", "Kühn", "Förster", "Weißenböck",
)

# formal given name -> common nickname (only formal names that occur above)
NICKNAMES: dict[str, str] = {
    "William": "Bill", "Katherine": "Kate", "Johannes": "Hans", "Alexander": "Alex",
    "Elisabeth": "Lisa", "Friedrich": "Fritz", "Margarete": "Grete", "Thomas": "Tom",
    "Michael": "Micha", "Christina": "Tina", "Robert": "Bob", "Stefanie": "Steffi",
    "Wolfgang": "Wolf", "Maximilian": "Max", "Matthias": "Matze", "Susanne": "Susi",
}

STREETS: tuple[str, ...] = (
    "Hauptstraße", "Bahnhofstraße", "Schillerstraße", "Goethestraße", "Lindenallee",
    "Am Mühlbach", "Königsweg", "Gartenstraße", "Friedrichstraße", "Rosenweg", "Kirchplatz",
    "Parkstraße", "Schloßallee", "Bergstraße", "Wiesenweg", "Düsseldorfer Straße",
    "Mozartgasse", "Seestrasse", "Bahnhofplatz", "Münchner Straße", "Eichendorffweg",
    "Ringstraße", "Talstraße", "Uferweg", "Marktplatz", "Brückenstraße", "Schulstraße",
)

# (city, postcodes, country, landline area code without trunk 0)
CITIES: tuple[tuple[str, tuple[str, ...], str, str], ...] = (
    ("Berlin", ("10115", "10178", "10557", "12043", "13353"), "DE", "30"),
    ("Hamburg", ("20095", "20249", "22765"), "DE", "40"),
    ("München", ("80331", "80469", "81541"), "DE", "89"),
    ("Köln", ("50667", "50823", "51063"), "DE", "221"),
    ("Frankfurt am Main", ("60311", "60487"), "DE", "69"),
    ("Stuttgart", ("70173", "70372"), "DE", "711"),
    ("Düsseldorf", ("40213", "40477"), "DE", "211"),
    ("Dresden", ("01067", "01069", "01099", "01307"), "DE", "351"),
    ("Leipzig", ("04109", "04177", "04315"), "DE", "341"),
    ("Chemnitz", ("09111", "09126"), "DE", "371"),
    ("Halle (Saale)", ("06108", "06114"), "DE", "345"),
    ("Erfurt", ("99084", "99096"), "DE", "361"),
    ("Nürnberg", ("90402", "90419"), "DE", "911"),
    ("Potsdam", ("14467", "14469"), "DE", "331"),
    ("Görlitz", ("02826",), "DE", "3581"),
    ("Wien", ("1010", "1070", "1100"), "AT", "1"),
    ("Graz", ("8010", "8020"), "AT", "316"),
    ("Zürich", ("8001", "8004", "8050"), "CH", "44"),
    ("Genève", ("1201", "1205"), "CH", "22"),
)

# Mobile prefixes per country code, with the subscriber number's length in that plan: a German
# 0151 number has 8 digits after the prefix, 0160 has 7 (phonenumbers refuses the others).
MOBILE_PREFIXES: dict[str, tuple[tuple[str, int], ...]] = {
    "49": (("151", 8), ("160", 7), ("170", 8), ("171", 8), ("176", 8), ("179", 7)),
    "43": (("664", 7), ("676", 7), ("699", 8)),
    "41": (("76", 7), ("78", 7), ("79", 7)),
}

COMPANIES: tuple[str, ...] = (
    "Müller & Söhne GmbH", "Nordlicht Logistik AG", "Bäckerei Schmidt", "Alpenblick Consulting GmbH",
    "Rheinwerk Software GmbH", "Hansa Maschinenbau KG", "Elbtal Immobilien GmbH",
    "Grünwald Gartenbau", "Schwarzwald Uhren OHG", "Donau Medizintechnik GmbH",
    "Brandenburger Bau AG", "Zürcher Treuhand AG", "Wiener Kaffeerösterei GmbH",
    "Spreeblick Media UG", "Lindner Elektro e.K.", "Fjord Handelsgesellschaft mbH",
    "Kölner Druckhaus GmbH", "Sächsische Feinmechanik GmbH", "Isar Versicherungsmakler",
    "Bergmann IT-Service",
)

FREE_MAIL: tuple[str, ...] = (
    "web.de", "gmx.de", "gmx.at", "t-online.de", "gmail.com", "posteo.de", "outlook.com",
    "bluewin.ch", "mailbox.org", "yahoo.de",
)

SALES_OWNERS: tuple[str, ...] = ("Anke Vogel", "Dirk Sommer", "Petra Lindqvist", "Marco Rossi")

TICKET_SUBJECTS: tuple[str, ...] = (
    "Rechnung doppelt erhalten", "Passwort zurücksetzen", "Lieferung verspätet",
    "Question about my invoice", "Cannot log in", "Änderung der Adresse",
    "Kündigung des Newsletters", "Falscher Artikel geliefert", "Rückerstattung beantragt",
    "Bitte Rückruf", "Update payment method", "Paket beschädigt", "Datenauskunft nach DSGVO",
)

CARRIERS: tuple[str, ...] = ("DHL", "DPD", "UPS", "Hermes", "GLS")

# (sku, description, unit price in cents)
PRODUCTS: tuple[tuple[str, str, int], ...] = (
    ("SKU-1001", "Kaffeebecher Steingut 350 ml", 1290),
    ("SKU-1002", "Notizbuch A5 liniert", 799),
    ("SKU-1003", "USB-C Ladekabel 2 m", 1499),
    ("SKU-1004", "Wanderrucksack 30 l", 8990),
    ("SKU-1005", "Thermoskanne Edelstahl", 2450),
    ("SKU-1006", "Bürostuhl Ergo Comfort", 24900),
    ("SKU-1007", "LED-Schreibtischlampe", 3999),
    ("SKU-1008", "Geschirrtuch Leinen 3er Set", 1850),
    ("SKU-1009", "Regenschirm Taschenformat", 1595),
    ("SKU-1010", "Bluetooth Lautsprecher Mini", 4900),
    ("SKU-1011", "Schreibtischunterlage Filz", 2200),
    ("SKU-1012", "Grußkarten 10 Stück", 650),
)
