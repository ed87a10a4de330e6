"""Where the demo's people live: cities of Germany, Austria and Switzerland, streets, regions.

cp1252-safe on purpose (see ``names.py``). Postcodes are real ones of each city; area codes are
the cities' own, so a landline drawn here is a valid number in phonenumbers' plan.
"""

from __future__ import annotations

from typing import NamedTuple


class City(NamedTuple):
    """A city with some of its postcodes, its landline area code (no trunk 0), region and size."""

    name: str
    postcodes: tuple[str, ...]
    country: str
    area: str
    region: str
    thousands: int  # inhabitants, which weigh how many customers live there


CITIES: tuple[City, ...] = tuple(City(*c) for c in (
    ("Berlin", ("10115", "10178", "10557", "10999", "12043", "12159", "13353", "13585"), "DE", "30", "Berlin", 3700),
    ("Hamburg", ("20095", "20249", "21073", "22081", "22765"), "DE", "40", "Hamburg", 1900),
    ("München", ("80331", "80469", "80797", "81541", "81675"), "DE", "89", "Bayern", 1500),
    ("Köln", ("50667", "50823", "50935", "51063"), "DE", "221", "Nordrhein-Westfalen", 1080),
    ("Frankfurt am Main", ("60311", "60487", "60596"), "DE", "69", "Hessen", 770),
    ("Stuttgart", ("70173", "70372", "70469"), "DE", "711", "Baden-Württemberg", 630),
    ("Düsseldorf", ("40213", "40477", "40545"), "DE", "211", "Nordrhein-Westfalen", 620),
    ("Leipzig", ("04109", "04177", "04315"), "DE", "341", "Sachsen", 600),
    ("Dortmund", ("44135", "44137", "44263"), "DE", "231", "Nordrhein-Westfalen", 590),
    ("Essen", ("45127", "45130", "45239"), "DE", "201", "Nordrhein-Westfalen", 580),
    ("Bremen", ("28195", "28203", "28359"), "DE", "421", "Bremen", 570),
    ("Dresden", ("01067", "01069", "01099", "01307"), "DE", "351", "Sachsen", 560),
    ("Hannover", ("30159", "30161", "30519"), "DE", "511", "Niedersachsen", 540),
    ("Nürnberg", ("90402", "90419", "90461"), "DE", "911", "Bayern", 520),
    ("Duisburg", ("47051", "47057", "47169"), "DE", "203", "Nordrhein-Westfalen", 500),
    ("Bochum", ("44787", "44791"), "DE", "234", "Nordrhein-Westfalen", 365),
    ("Wuppertal", ("42103", "42275"), "DE", "202", "Nordrhein-Westfalen", 355),
    ("Bielefeld", ("33602", "33615"), "DE", "521", "Nordrhein-Westfalen", 335),
    ("Bonn", ("53111", "53113", "53175"), "DE", "228", "Nordrhein-Westfalen", 330),
    ("Münster", ("48143", "48149", "48153"), "DE", "251", "Nordrhein-Westfalen", 320),
    ("Mannheim", ("68159", "68161", "68167"), "DE", "621", "Baden-Württemberg", 315),
    ("Karlsruhe", ("76133", "76135", "76185"), "DE", "721", "Baden-Württemberg", 310),
    ("Augsburg", ("86150", "86152", "86159"), "DE", "821", "Bayern", 300),
    ("Wiesbaden", ("65183", "65185", "65193"), "DE", "611", "Hessen", 280),
    ("Mönchengladbach", ("41061", "41063"), "DE", "2161", "Nordrhein-Westfalen", 260),
    ("Aachen", ("52062", "52064", "52066"), "DE", "241", "Nordrhein-Westfalen", 250),
    ("Braunschweig", ("38100", "38102"), "DE", "531", "Niedersachsen", 250),
    ("Kiel", ("24103", "24105"), "DE", "431", "Schleswig-Holstein", 245),
    ("Chemnitz", ("09111", "09126"), "DE", "371", "Sachsen", 245),
    ("Halle (Saale)", ("06108", "06114"), "DE", "345", "Sachsen-Anhalt", 240),
    ("Magdeburg", ("39104", "39106"), "DE", "391", "Sachsen-Anhalt", 235),
    ("Freiburg im Breisgau", ("79098", "79102", "79104"), "DE", "761", "Baden-Württemberg", 230),
    ("Mainz", ("55116", "55118"), "DE", "6131", "Rheinland-Pfalz", 220),
    ("Lübeck", ("23552", "23554"), "DE", "451", "Schleswig-Holstein", 215),
    ("Erfurt", ("99084", "99096"), "DE", "361", "Thüringen", 215),
    ("Rostock", ("18055", "18057"), "DE", "381", "Mecklenburg-Vorpommern", 210),
    ("Kassel", ("34117", "34119"), "DE", "561", "Hessen", 200),
    ("Potsdam", ("14467", "14469"), "DE", "331", "Brandenburg", 185),
    ("Saarbrücken", ("66111", "66113"), "DE", "681", "Saarland", 180),
    ("Oldenburg", ("26122", "26123"), "DE", "441", "Niedersachsen", 170),
    ("Osnabrück", ("49074", "49076"), "DE", "541", "Niedersachsen", 165),
    ("Heidelberg", ("69117", "69120"), "DE", "6221", "Baden-Württemberg", 160),
    ("Darmstadt", ("64283", "64285"), "DE", "6151", "Hessen", 160),
    ("Regensburg", ("93047", "93049"), "DE", "941", "Bayern", 155),
    ("Würzburg", ("97070", "97072"), "DE", "931", "Bayern", 128),
    ("Ulm", ("89073", "89075"), "DE", "731", "Baden-Württemberg", 126),
    ("Göttingen", ("37073", "37075"), "DE", "551", "Niedersachsen", 118),
    ("Erlangen", ("91052", "91054"), "DE", "9131", "Bayern", 113),
    ("Jena", ("07743", "07745"), "DE", "3641", "Thüringen", 110),
    ("Trier", ("54290", "54292"), "DE", "651", "Rheinland-Pfalz", 110),
    ("Cottbus", ("03044", "03046"), "DE", "355", "Brandenburg", 98),
    ("Schwerin", ("19053", "19055"), "DE", "385", "Mecklenburg-Vorpommern", 96),
    ("Tübingen", ("72070", "72072"), "DE", "7071", "Baden-Württemberg", 91),
    ("Flensburg", ("24937", "24939"), "DE", "461", "Schleswig-Holstein", 90),
    ("Konstanz", ("78462", "78464"), "DE", "7531", "Baden-Württemberg", 85),
    ("Bamberg", ("96047", "96049"), "DE", "951", "Bayern", 77),
    ("Lüneburg", ("21335", "21337"), "DE", "4131", "Niedersachsen", 77),
    ("Bayreuth", ("95444", "95447"), "DE", "921", "Bayern", 74),
    ("Kempten (Allgäu)", ("87435", "87437"), "DE", "831", "Bayern", 69),
    ("Fulda", ("36037", "36039"), "DE", "661", "Hessen", 68),
    ("Weimar", ("99423", "99425"), "DE", "3643", "Thüringen", 65),
    ("Rosenheim", ("83022", "83024"), "DE", "8031", "Bayern", 63),
    ("Stralsund", ("18435", "18437"), "DE", "3831", "Mecklenburg-Vorpommern", 59),
    ("Frankfurt (Oder)", ("15230", "15232"), "DE", "335", "Brandenburg", 57),
    ("Görlitz", ("02826",), "DE", "3581", "Sachsen", 56),
    ("Passau", ("94032", "94036"), "DE", "851", "Bayern", 52),
    ("Bautzen", ("02625",), "DE", "3591", "Sachsen", 38),
    ("Wernigerode", ("38855",), "DE", "3943", "Sachsen-Anhalt", 32),
    ("Garmisch-Partenkirchen", ("82467",), "DE", "8821", "Bayern", 27),
    ("Husum", ("25813",), "DE", "4841", "Schleswig-Holstein", 23),
    ("Wien", ("1010", "1020", "1030", "1070", "1100", "1150", "1210"), "AT", "1", "Wien", 2000),
    ("Graz", ("8010", "8020", "8045"), "AT", "316", "Steiermark", 300),
    ("Linz", ("4020", "4040"), "AT", "732", "Oberösterreich", 210),
    ("Salzburg", ("5020",), "AT", "662", "Salzburg", 155),
    ("Innsbruck", ("6020",), "AT", "512", "Tirol", 132),
    ("Klagenfurt am Wörthersee", ("9020",), "AT", "463", "Kärnten", 102),
    ("Villach", ("9500",), "AT", "4242", "Kärnten", 65),
    ("St. Pölten", ("3100",), "AT", "2742", "Niederösterreich", 56),
    ("Dornbirn", ("6850",), "AT", "5572", "Vorarlberg", 50),
    ("Zürich", ("8001", "8004", "8050"), "CH", "44", "Zürich", 420),
    ("Genève", ("1201", "1205"), "CH", "22", "Genève", 200),
    ("Basel", ("4051", "4056"), "CH", "61", "Basel-Stadt", 175),
    ("Lausanne", ("1003", "1004"), "CH", "21", "Vaud", 140),
    ("Bern", ("3011", "3013"), "CH", "31", "Bern", 135),
    ("Winterthur", ("8400", "8404"), "CH", "52", "Zürich", 115),
    ("Luzern", ("6003", "6004"), "CH", "41", "Luzern", 83),
    ("St. Gallen", ("9000",), "CH", "71", "St. Gallen", 76),
    ("Lugano", ("6900",), "CH", "91", "Ticino", 63),
))

# ISO 3166-2 codes of the regions above: what the shipping system writes instead of the name.
REGION_CODES: dict[str, str] = {
    "Berlin": "DE-BE", "Hamburg": "DE-HH", "Bayern": "DE-BY", "Nordrhein-Westfalen": "DE-NW",
    "Hessen": "DE-HE", "Baden-Württemberg": "DE-BW", "Sachsen": "DE-SN", "Bremen": "DE-HB",
    "Niedersachsen": "DE-NI", "Schleswig-Holstein": "DE-SH", "Sachsen-Anhalt": "DE-ST",
    "Rheinland-Pfalz": "DE-RP", "Thüringen": "DE-TH", "Mecklenburg-Vorpommern": "DE-MV",
    "Brandenburg": "DE-BB", "Saarland": "DE-SL", "Wien": "AT-9", "Steiermark": "AT-6",
    "Oberösterreich": "AT-4", "Salzburg": "AT-5", "Tirol": "AT-7", "Kärnten": "AT-2",
    "Niederösterreich": "AT-3", "Vorarlberg": "AT-8", "Zürich": "CH-ZH", "Genève": "CH-GE",
    "Basel-Stadt": "CH-BS", "Vaud": "CH-VD", "Bern": "CH-BE", "Luzern": "CH-LU",
    "St. Gallen": "CH-SG", "Ticino": "CH-TI",
}

STREETS: tuple[str, ...] = (
    "Hauptstraße", "Bahnhofstraße", "Schillerstraße", "Goethestraße", "Lindenallee", "Am Mühlbach",
    "Königsweg", "Gartenstraße", "Friedrichstraße", "Rosenweg", "Kirchplatz", "Parkstraße",
    "Schloßallee", "Bergstraße", "Wiesenweg", "Düsseldorfer Straße", "Mozartgasse", "Seestrasse",
    "Bahnhofplatz", "Münchner Straße", "Eichendorffweg", "Ringstraße", "Talstraße", "Uferweg",
    "Marktplatz", "Brückenstraße", "Schulstraße", "Waldstraße", "Dorfstraße", "Kirchstraße",
    "Feldweg", "Blumenstraße", "Amselweg", "Birkenweg", "Lessingstraße", "Beethovenstraße",
    "Kantstraße", "Poststraße", "Mühlenweg", "Am Sportplatz", "Industriestraße", "Sonnenhang",
    "Fliederweg", "Tulpenstraße", "Heinrich-Heine-Straße", "Karl-Marx-Allee", "Rathausgasse",
    "Landstrasse", "Untere Hauptstraße", "Obere Bachgasse", "Im Winkel", "Am Hang", "Zum Anger",
)

# Mobile prefixes per country code, with the subscriber number's length in that plan: a German
# 0151 number has 8 digits after the prefix, 0160 has 7 (phonenumbers refuses the others).
MOBILE_PREFIXES: dict[str, tuple[tuple[str, int], ...]] = {
    "49": (("151", 8), ("160", 7), ("170", 8), ("171", 8), ("176", 8), ("179", 7)),
    "43": (("664", 7), ("676", 7), ("699", 8)),
    "41": (("76", 7), ("78", 7), ("79", 7)),
}
COUNTRY_CODES: dict[str, str] = {"DE": "49", "AT": "43", "CH": "41"}
