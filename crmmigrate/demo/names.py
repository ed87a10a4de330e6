"""Embedded word lists for the demo data generator: people's names and their nicknames.

Each pool is listed most common first: the generator draws from it with Zipf-like weights, so
a few names are frequent and most are rare, as in a real population. Places and companies live
in ``places.py`` and ``companies.py``; the sales export is cp1252, and only its ``NAME`` column
is meant to lose characters there, so those two modules hold cp1252-safe text only.
"""

from __future__ import annotations

from functools import cache

# Given names by origin and sex. German-speaking names dominate; the English ones are the
# share whose nicknames the `nicknames` package knows.
GIVEN: dict[tuple[str, str], tuple[str, ...]] = {
    ("de", "m"): (
        "Michael", "Thomas", "Andreas", "Peter", "Stefan", "Klaus", "Wolfgang", "Jürgen", "Frank",
        "Christian", "Markus", "Uwe", "Martin", "Bernd", "Matthias", "Günter", "Hans", "Dieter", "Horst",
        "Werner", "Manfred", "Alexander", "Sebastian", "Tobias", "Daniel", "Jan", "Florian", "Tim",
        "Lukas", "Jonas", "Felix", "Maximilian", "Paul", "Leon", "Niklas", "Johannes", "Karl-Heinz",
        "Heinz", "Gerhard", "Helmut", "Rainer", "Ralf", "Holger", "Jörg", "Dirk", "Sven", "Torsten",
        "Olaf", "Björn", "Sören", "Friedrich", "Joachim", "Norbert", "Hans-Peter", "Josef", "Franz",
        "Georg", "Karl", "Walter", "Kurt", "Ulrich", "Volker", "Axel", "Carsten", "Marco", "Patrick",
        "Dennis", "Philipp", "Simon", "Moritz", "Jakob", "Benedikt", "Konstantin", "Lars", "Kai",
        "Hubert", "Ludwig", "Gottfried", "Reinhard", "Erwin", "Rudolf", "Oliver", "Fabian", "Julian",
        "Till", "Henrik", "Bernhard", "Dietmar", "Hartmut", "Siegfried", "Arne", "Jens", "Malte",
        "Leopold", "Valentin", "Korbinian", "Vinzenz", "Quirin", "Anton", "Emil", "Theo", "Elias",
    ),
    ("de", "f"): (
        "Sabine", "Andrea", "Susanne", "Petra", "Claudia", "Nicole", "Stefanie", "Birgit", "Monika",
        "Ursula", "Karin", "Gabriele", "Heike", "Anja", "Katrin", "Christina", "Julia", "Anna", "Maria",
        "Laura", "Lena", "Sophie", "Hannah", "Mia", "Lea", "Emma", "Sarah", "Katharina", "Elisabeth",
        "Margarete", "Renate", "Ingrid", "Helga", "Gisela", "Brigitte", "Erika", "Elke", "Silke",
        "Martina", "Sandra", "Melanie", "Tanja", "Daniela", "Kerstin", "Bettina", "Jutta", "Doris",
        "Marion", "Angelika", "Christa", "Dagmar", "Ines", "Käthe", "Marie-Luise", "Annegret",
        "Hildegard", "Waltraud", "Franziska", "Johanna", "Charlotte", "Clara", "Greta", "Ida", "Luise",
        "Antonia", "Theresa", "Veronika", "Miriam", "Jana", "Vanessa", "Lisa", "Carina", "Nadine",
        "Simone", "Ulrike", "Cornelia", "Beate", "Annette", "Rosemarie", "Liselotte", "Friederike",
        "Regina", "Edeltraud", "Gudrun", "Irmgard", "Sieglinde", "Hannelore", "Wiebke", "Frauke",
        "Svenja", "Maike", "Merle", "Pia", "Paula", "Mathilda", "Rosalie", "Magdalena", "Ottilie",
    ),
    ("en", "m"): (
        "James", "John", "Robert", "William", "Richard", "David", "Charles", "Joseph", "Thomas",
        "Daniel", "Matthew", "Christopher", "Andrew", "Edward", "Anthony", "Steven", "Patrick",
        "Samuel", "Benjamin", "Nicholas", "Jonathan", "Timothy", "Theodore", "Frederick", "Gregory",
        "Lawrence", "Raymond", "Jeffrey", "Kenneth", "Ronald", "Donald", "Gerald", "Douglas",
    ),
    ("en", "f"): (
        "Margaret", "Elizabeth", "Jennifer", "Catherine", "Katherine", "Susan", "Deborah", "Patricia",
        "Rebecca", "Victoria", "Alexandra", "Abigail", "Jessica", "Samantha", "Rachel", "Jacqueline",
        "Dorothy", "Barbara", "Christine", "Eleanor", "Frances", "Harriet", "Josephine", "Pamela",
        "Kimberly", "Cynthia", "Melissa", "Judith", "Theresa", "Virginia", "Gwendolyn",
    ),
    ("xx", "m"): (
        "Mehmet", "Mustafa", "Ahmet", "Emre", "Hüseyin", "Ümit", "Łukasz", "Paweł", "Krzysztof",
        "Piotr", "Đorđe", "Jiří", "Tomáš", "André", "René", "Søren", "Giuseppe", "Luca", "Marco",
        "Ivan", "Dmitri", "João", "Pedro", "Javier", "Nikola", "Dragan", "Ioannis", "Bogdan",
    ),
    ("xx", "f"): (
        "Ayşe", "Elif", "Fatma", "Zeynep", "Emine", "Małgorzata", "Agnieszka", "Katarzyna", "Renée",
        "Chloé", "Hélène", "Zoë", "Åsa", "Francesca", "Giulia", "Sofia", "Olga", "Natalia", "Ana",
        "Carmen", "Lucía", "Ioana", "Milena", "Jelena", "Dragana", "Eleni", "Aleksandra", "Irina",
    ),
}

# The most common German surnames, most common first (the head of the distribution).
SURNAMES_DE: tuple[str, ...] = (
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz",
    "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann",
    "Schwarz", "Zimmermann", "Braun", "Krüger", "Hofmann", "Hartmann", "Lange", "Schmitt", "Werner",
    "Schmitz", "Krause", "Meier", "Lehmann", "Schmid", "Schulze", "Maier", "Köhler", "Herrmann",
    "König", "Walter", "Mayer", "Huber", "Kaiser", "Fuchs", "Peters", "Lang", "Scholz", "Möller",
    "Weiß", "Jung", "Hahn", "Schubert", "Vogel", "Friedrich", "Keller", "Günther", "Frank", "Berger",
    "Winkler", "Roth", "Beck", "Lorenz", "Baumann", "Franke", "Albrecht", "Schuster", "Simon",
    "Ludwig", "Böhm", "Winter", "Kraus", "Martin", "Schumacher", "Krämer", "Vogt", "Stein", "Jäger",
    "Otto", "Sommer", "Groß", "Seidel", "Heinrich", "Brandt", "Haas", "Schreiber", "Graf",
    "Schulte", "Dietrich", "Ziegler", "Kuhn", "Kühn", "Pohl", "Engel", "Horn", "Busch", "Bergmann",
    "Thomas", "Voigt", "Sauer", "Arnold", "Wolff", "Pfeiffer", "Gruber", "Steiner", "Moser",
    "Brunner", "Frei", "Baumgartner", "Förster", "Weißenböck", "von Bülow", "Wimmer", "Egger",
)

# Stems and endings that make the long tail of German surnames: compound surnames are the rule
# there (Berg+mann, Stein+hauser), and the tail is what keeps namesakes rare at a million people.
SURNAME_STEMS: tuple[str, ...] = (
    "Berg", "Stein", "Hof", "Linden", "Wald", "Brand", "Eich", "Feld", "Kirch", "Lang", "Kurz", "Neu",
    "Alt", "Hoch", "Tal", "Bach", "Brück", "Mühl", "Wies", "Acker", "Rosen", "Dorn", "Busch", "Holz",
    "Kamp", "Sand", "Moor", "Rieder", "Wein", "Korn", "Hammer", "Schmied", "Fleisch", "Brenn", "Kling",
    "Stroh", "Heu", "Birk", "Buch", "Erl", "Fichten", "Tannen", "Kolb", "Rauch", "Frisch", "Gold",
    "Silber", "Eisen", "Kupfer", "Ost", "West", "Süd", "Nord", "Kalt", "Warm", "Sonnen", "Mond",
    "Stern", "Morgen", "Abend", "Grün", "Roth", "Weiß", "Blau", "Wolfs", "Hasen", "Fuchs", "Bären",
    "Adler", "Falken", "Hahn", "Lind", "Ross", "Hirsch", "Reh", "Bieber", "Fried", "Ehren", "Lieb",
    "Gut", "Fromm", "Klug", "Kühl", "Breit", "Schön", "Hell", "Dunkel", "Wilden", "Stahl", "Glaser",
    "Ketten", "Ring", "Lauten", "Blumen", "Wasser", "Brunnen", "Quell", "Hügel", "Marx", "Ober",
    "Unter", "Vorder", "Hinter", "Mittel", "Kreuz", "Schloss", "Burg", "Turm", "Mauer", "Tor",
    "Ahorn", "Asch", "Baum", "Blum", "Born", "Brun", "Dach", "Damm", "Eck", "Fass", "Fels", "Fink",
    "Flach", "Forst", "Gais", "Gans", "Garten", "Geis", "Glock", "Grab", "Gries", "Grund", "Haber",
    "Hain", "Hart", "Haupt", "Heide", "Herz", "Hirt", "Horn", "Hub", "Kalk", "Kamm", "Kessel",
    "Kiefer", "Kirsch", "Kohl", "Kopf", "Kram", "Kropf", "Lamm", "Laub", "Lech", "Leit", "Loh",
    "Mark", "Matt", "Mohn", "Moos", "Nagel", "Nuss", "Pfaff", "Rain", "Rapp", "Reis", "Rhein",
    "Ried", "Rind", "Rott", "Salz", "Schaf", "Scheu", "Schilf", "Schwan", "See", "Sieg", "Speck",
    "Spitz", "Stock", "Storch", "Strauß", "Teich", "Veit", "Vogel", "Wend", "Wetter", "Wick",
    "Wind", "Winkel", "Zeh", "Zell", "Zorn", "Ebers", "Hohen", "Nieder", "Oster", "Pfann", "Rein",
)
SURNAME_ENDINGS: tuple[str, ...] = (
    "mann", "er", "hoff", "berger", "meier", "bauer", "hauser", "huber", "brink", "kamp", "ling",
    "inger", "stedt", "heim", "ke", "dorf", "schmidt", "wald", "busch", "hagen", "feld", "stein",
    "bach", "hofer", "müller", "reiter", "mayr", "egger", "wieser", "lechner", "moser", "graf",
    "beck", "becker", "hammer", "hardt", "wart", "böck", "rath", "maier", "schneider", "weber",
    "eder", "ert", "ler", "sberger", "bichler", "thaler", "gruber", "auer", "leitner", "hold",
    "wein", "rich", "bold", "mund", "hart", "brecht", "ing", "schläger", "macher", "gießer", "wirt",
    "knecht", "vogt", "kötter", "meyer", "mair", "holz", "gartner", "lehner", "brunner", "steiner",
    "felder", "wanger", "rieder", "seder", "hausen", "kirchner", "maurer", "singer",
)

SURNAMES_EN: tuple[str, ...] = (
    "Smith", "Jones", "Williams", "Brown", "Taylor", "Davies", "Wilson", "Evans", "Thomas", "Johnson",
    "Roberts", "Walker", "Wright", "Robinson", "Thompson", "White", "Hughes", "Edwards", "Green",
    "Hall", "Wood", "Harris", "Lewis", "Martin", "Jackson", "Clarke", "Clark", "Turner", "Hill",
    "Scott", "Cooper", "Morris", "Ward", "Moore", "King", "Watson", "Baker", "Harrison", "Morgan",
    "Patel", "Young", "Allen", "Mitchell", "James", "Anderson", "Phillips", "Lee", "Bell", "Parker",
    "O'Brien", "O'Connor", "McDonald", "MacLeod", "Fitzgerald", "Sullivan", "Murphy", "Kelly",
)
SURNAMES_XX: tuple[str, ...] = (
    "Yılmaz", "Kaya", "Demir", "Şahin", "Çelik", "Öztürk", "Aydın", "Arslan", "Doğan", "Kılıç",
    "Nowak", "Kowalski", "Wiśniewski", "Kowalczyk", "Wójcik", "Dąbrowski", "Łęcki", "Zieliński",
    "Petrović", "Jovanović", "Nikolić", "Ćosić", "Dvořák", "Novák", "Svoboda", "Lefèvre", "Dubois",
    "Jørgensen", "Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "de la Cruz",
    "García", "Fernández", "Martínez", "Silva", "Santos", "Pereira", "Ivanov", "Popescu", "Popa",
    "Papadopoulos", "Horvat", "Kovačević", "Nagy", "Tóth", "Szabó", "Hodžić", "Berisha", "Krasniqi",
)

# German short forms: the `nicknames` package knows English names only (Johannes -> John, not
# Hans), so the German share of the pool needs its own, and so will the matcher.
NICKNAMES_DE: dict[str, tuple[str, ...]] = {
    "Johannes": ("Hans", "Jo"), "Friedrich": ("Fritz",), "Margarete": ("Grete", "Margret"),
    "Elisabeth": ("Lisa", "Liesel", "Elli"), "Stefanie": ("Steffi",), "Susanne": ("Susi",),
    "Michael": ("Micha",), "Matthias": ("Matze", "Matthes"), "Wolfgang": ("Wolf",),
    "Maximilian": ("Max",), "Alexander": ("Alex",), "Thomas": ("Tom",), "Christina": ("Tina",),
    "Katharina": ("Kathi", "Katja"), "Josef": ("Sepp", "Beppo"), "Franziska": ("Franzi",),
    "Karl-Heinz": ("Kalle",), "Hans-Peter": ("Hape",), "Joachim": ("Achim", "Jochen"),
    "Gabriele": ("Gabi",), "Andreas": ("Andi",), "Sebastian": ("Basti",), "Christian": ("Chris",),
    "Johanna": ("Hanna",), "Magdalena": ("Lena", "Leni"), "Theresa": ("Resi",), "Ulrich": ("Uli",),
    "Bernhard": ("Bernd",), "Benedikt": ("Bene",), "Konstantin": ("Konny",), "Daniela": ("Dani",),
    "Valentin": ("Valle",), "Korbinian": ("Korbi",), "Vinzenz": ("Vinz",), "Cornelia": ("Conny",),
}


@cache
def english_nicknames() -> dict[str, tuple[str, ...]]:
    """Nicknames of the English given names above, from the `nicknames` package (title case).

    Read once: the package parses its CSV on every `NickNamer()`.
    """
    from nicknames import NickNamer

    namer = NickNamer()
    pool = GIVEN["en", "m"] + GIVEN["en", "f"]
    return {name: tuple(n.title() for n in sorted(namer.nicknames_of(name))) for name in pool
            if namer.nicknames_of(name)}


def nicknames_of(given: str, origin: str) -> tuple[str, ...]:
    """The short forms a clerk may write for *given*: English from the package, German from above."""
    if origin == "en":
        return english_nicknames().get(given, ())
    return NICKNAMES_DE.get(given, ())
