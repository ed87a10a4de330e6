"""What the department systems hold besides people: free-mail domains, sales reps, ticket
subjects, carriers and the product catalogue. All of it is cp1252-safe (see ``names.py``)."""

from __future__ import annotations

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
