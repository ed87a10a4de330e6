"""Profiling a new source and drafting its mapping."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmmigrate.errors import MappingSpecError
from crmmigrate.extract import source_header
from crmmigrate.profile import draft_mapping, profile_source
from crmmigrate.spec.load import check_columns, load_project


def test_profile_guesses_types_keys_and_hazards(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text("id;Full Name;E-Mail;zip;joined;changed_at;note\r\n"
                    "1;Ann Lee;ann@x.org;01067;01.02.2024;2024-02-01 10:00:00;=SUM(A1)\r\n"
                    "2;Bo Berg;;80331;03.04.2024;2024-04-03 11:00:00;ok\r\n"
                    "3;Cy Dahl;cy@y.org;10115;05.06.2024;2024-06-05 12:00:00;\r\n", encoding="utf-8")
    profile = profile_source(path, delimiter=";")
    cols = profile.columns.set_index("column")
    assert cols.loc["id", ["guessed_type", "candidate_key"]].tolist() == ["integer", True]
    assert cols.loc["joined", ["guessed_type", "format"]].tolist() == ["date", "%d.%m.%Y"]
    assert cols.loc["E-Mail", "guessed_type"] == "email" and cols.loc["E-Mail", "null_rate"] == pytest.approx(0.333, abs=1e-3)
    assert cols.loc["note", "samples"] == ["=SUM(A1)", "ok"]
    assert any("formulas" in f and "'note'" in f for f in profile.findings)
    assert any("leading zeros" in f and "'zip'" in f for f in profile.findings)


def test_draft_mapping_validates_against_the_real_header(tmp_path: Path, demo_project: tuple[Path, dict]) -> None:
    project, _ = demo_project
    profile = profile_source(project / "data/demo/shipping/orders.csv")
    text = draft_mapping(profile, "webshop", "e-commerce")
    draft = tmp_path / "p"
    (draft / "mappings").mkdir(parents=True)
    (draft / "crmmigrate.yml").write_text("spec_version: 1\nkind: project\nname: draft\n")
    (draft / "mappings" / "webshop.yml").write_text(text.replace(str(project / "data"), str(project / "data")))
    loaded = load_project(draft)
    mapping = loaded.mappings["webshop"]
    assert mapping.sources["main"].key == ("order_id",)
    assert mapping.sources["main"].last_modified.column == "updated_at"
    fields = mapping.entities[0].fields
    assert fields["email"].column == "customer_email" and fields["first_name"].transform[0].args["part"] == "given"
    header = source_header(loaded, mapping, "main")
    assert check_columns(loaded, {"webshop.main": header}) == []
    assert set(mapping.sources["main"].ignore_columns) == set(header) - {"order_id", "updated_at", "customer_email",
                                                                          "customer_name"}


def test_a_required_field_without_a_candidate_is_left_for_the_consultant(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("code,amount\nA,1\nB,2\n")
    text = draft_mapping(profile_source(path), "t")
    project = tmp_path / "p"
    (project / "mappings").mkdir(parents=True)
    (project / "crmmigrate.yml").write_text("spec_version: 1\nkind: project\nname: t\n")
    (project / "mappings" / "t.yml").write_text(text)
    loaded = load_project(project)
    problems = check_columns(loaded, {"t.main": ["code", "amount"]})
    assert [p.message for p in problems] == ["column 'CHOOSE_A_COLUMN' is not in source 't.main'; allowed: code, amount"]
    assert str(MappingSpecError(problems)).startswith("mappings/t.yml:")


def test_a_date_column_with_an_impossible_date_is_still_a_date_column(tmp_path: Path) -> None:
    # One value in eight (31.02.) is no date: below the 95% a guess needs, but every value has the
    # date's shape. A date column, whose bad value the map stage will reject; not a phone column.
    days = ["01.03.2024", "02.03.2024", "31.02.2024", "04.03.2024", "05.03.2024", "06.03.2024", "07.03.2024",
            "08.03.2024"]
    path = tmp_path / "x.csv"
    path.write_text("id,Geaendert,phone,digits\n" + "".join(
        f"{i},{d},+49 30 12345{i},{20240100 + i * 7}\n" for i, d in enumerate(days)), encoding="utf-8")
    cols = profile_source(path).columns.set_index("column")
    assert cols.loc["Geaendert", ["guessed_type", "format"]].tolist() == ["date", "%d.%m.%Y"]
    assert cols.loc["phone", "guessed_type"] == "phone"
    assert cols.loc["digits", "guessed_type"] == "integer"  # half of them read as %Y%m%d, but digits are no date


def test_encoding_findings_name_the_setting_to_declare(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes("\ufeffid;name\n1;Müller\n".encode("utf-8") + "2;Jürgen\n".encode("cp1252"))
    strict = profile_source(path, encoding="utf-8", delimiter=";")
    assert strict.rejects == {"undecodable": 1}
    assert any("declare `fallback_encoding`" in f for f in strict.findings)
    mixed = profile_source(path, encoding="utf-8", fallback_encoding="cp1252", delimiter=";")
    assert mixed.rows == 2 and mixed.columns["samples"].tolist()[1] == ["Müller", "Jürgen"]
    single = profile_source(path, encoding="cp1252", delimiter=";")
    assert any("byte-order mark" in f and "`encoding: utf-8`" in f for f in single.findings)


def test_csv_settings_are_left_out_for_other_formats(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('[{"id": "1", "name": "Ann"}]', encoding="utf-8")
    profile = profile_source(path, encoding="utf-8", fallback_encoding="cp1252", delimiter=";")
    assert profile.rows == 1 and "encoding" not in profile.source



def test_day_first_dates_get_the_day_first_format(tmp_path: Path) -> None:
    # %m/%d/%Y reads 12 of these 20 (and swaps day and month); %d/%m/%Y reads them all.
    path = tmp_path / "x.csv"
    path.write_text("id,born\n" + "".join(f"{d},{d:02d}/{d % 12 + 1:02d}/1990\n" for d in range(1, 21)),
                    encoding="utf-8")
    cols = profile_source(path).columns.set_index("column")
    assert cols.loc["born", ["guessed_type", "format"]].tolist() == ["date", "%d/%m/%Y"]


# -- issue 17 item 12: databases, bad parameters, the row count, JSON and XLSX drafts -----------

def _draft_loads(tmp_path: Path, text: str, header: list[str]) -> dict:
    """The drafted mapping, loaded as a project would load it, with its columns checked against *header*."""
    project = tmp_path / "draft"
    (project / "mappings").mkdir(parents=True)
    (project / "crmmigrate.yml").write_text("spec_version: 1\nkind: project\nname: draft\n")
    (project / "mappings" / "new.yml").write_text(text)
    loaded = load_project(project)
    assert check_columns(loaded, {"new.main": header}) == []
    return loaded.mappings["new"]


def _legacy_db(tmp_path: Path) -> Path:
    import sqlite3

    path = tmp_path / "legacy.sqlite"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE kunden (kdnr INTEGER, Nachname TEXT, Vorname TEXT, EMail TEXT, geaendert TEXT)")
        con.executemany("INSERT INTO kunden VALUES (?, ?, ?, ?, ?)", [
            (1, "Lee", "Ann", "ann@x.org", "2024-02-01 10:00:00"), (2, "Berg", "Bo", "bo@y.org", "2024-03-01 11:00:00"),
            (3, "Dahl", "Cy", None, "2024-04-01 12:00:00")])
    return path


def test_a_database_table_or_query_is_profiled_and_drafted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = _legacy_db(tmp_path)
    table = profile_source(db, table="kunden", sample_rows=2)
    assert table.records_in == 3 and table.rows == 2  # counted in full, sampled as asked
    assert table.columns["column"].tolist() == ["kdnr", "Nachname", "Vorname", "EMail", "geaendert"]
    mapping = _draft_loads(tmp_path, draft_mapping(table, "new"), table.columns["column"].tolist())
    source = mapping.sources["main"]
    assert (source.format, source.table, source.key) == ("sql", "kunden", ("kdnr",))
    assert source.last_modified.column == "geaendert"
    fields = mapping.entities[0].fields
    assert (fields["last_name"].column, fields["first_name"].column, fields["email"].column) == (
        "Nachname", "Vorname", "EMail")

    # A server is named by the environment variable holding its URL: the URL is never a
    # parameter, and the drafted mapping names the variable, not the URL.
    monkeypatch.setenv("LEGACY_DB", f"sqlite:///{db}")
    query = profile_source("", url_env="LEGACY_DB", query="SELECT kdnr, Nachname FROM kunden WHERE kdnr > 1")
    assert query.records_in == query.rows == 2 and query.source["format"] == "sql"
    text = draft_mapping(query, "new")
    assert "url_env: LEGACY_DB" in text and str(db) not in text and "path" not in query.source


@pytest.mark.parametrize(("options", "named"), [
    ({"format": "sql"}, "`table` or `query`"),
    ({"format": "sql", "table": "kunden", "query": "SELECT 1"}, "`table` or `query`"),
    ({"format": "xml"}, "`format`"),
    ({"format": "csv", "quotechar": "ab"}, "`quotechar`"),
])
def test_a_bad_parameter_is_one_line_naming_it(tmp_path: Path, options: dict, named: str) -> None:
    from crmmigrate.errors import SettingsError

    with pytest.raises(SettingsError) as caught:
        profile_source(_legacy_db(tmp_path), **options)
    message = str(caught.value)
    assert named in message and "\n" not in message and "pydantic" not in message and "type=" not in message


def test_json_names_nested_or_camel_case_are_guessed(tmp_path: Path) -> None:
    import json

    path = tmp_path / "tickets.json"
    path.write_text(json.dumps([
        {"id": f"T-{i}", "updatedAt": f"2024-0{i}-01T10:00:00Z",
         "requester": {"name": name, "email": f"p{i}@x.org"},
         "customer": {"givenName": name.split()[0], "familyName": name.split()[1]}}
        for i, name in enumerate(["Ann Lee", "Bo Berg", "Cy Dahl"], start=1)]), encoding="utf-8")
    profile = profile_source(path)
    assert profile.records_in == 3
    mapping = _draft_loads(tmp_path, draft_mapping(profile, "new"), profile.columns["column"].tolist())
    fields = mapping.entities[0].fields
    assert (fields["last_name"].column, fields["first_name"].column) == ("customer.familyName", "customer.givenName")
    assert fields["email"].column == "requester.email"
    assert mapping.sources["main"].last_modified.column == "updatedAt"

    # Without separate name columns, a nested full name is split.
    path.write_text(json.dumps([{"id": 1, "contact": {"name": "Lee, Ann"}}, {"id": 2, "contact": {"name": "Berg, Bo"}}]))
    fields = _draft_loads(tmp_path / "2", draft_mapping(profile_source(path), "new"),
                          ["id", "contact.name"]).entities[0].fields
    assert fields["last_name"].column == "contact.name"
    assert fields["last_name"].transform[0].args == {"part": "surname", "order": "surname_comma"}


def test_an_xlsx_sheet_is_profiled_without_naming_it_and_its_names_guessed(tmp_path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Export 2024"
    sheet.append(["Kundennr", "FamilyName", "GivenName", "E-Mail-Adresse", "Zuletzt geändert"])
    for n, (family, given) in enumerate([("Lee", "Ann"), ("Berg", "Bo"), ("Dahl", "Cy")], start=1):
        sheet.append([n, family, given, f"{given.lower()}@x.org", f"0{n}.02.2024"])
    path = tmp_path / "kunden.xlsx"
    book.save(path)
    profile = profile_source(path)  # the first sheet, as a workbook opened in Excel shows it
    assert profile.source["sheet"] == "Export 2024" and profile.records_in == 3
    mapping = _draft_loads(tmp_path, draft_mapping(profile, "new"), profile.columns["column"].tolist())
    fields = mapping.entities[0].fields
    assert (fields["last_name"].column, fields["first_name"].column, fields["email"].column) == (
        "FamilyName", "GivenName", "E-Mail-Adresse")
    assert mapping.sources["main"].last_modified.column == "Zuletzt geändert"
