"""`load_project` / `load_mapping` / `check_columns`: every problem at once, each with file, 1-based line,
key path and a suggestion; the exact text is the contract."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest
import yaml

from crmmigrate.errors import MappingSpecError
from crmmigrate.spec import FieldSpec, MappingSpec, load_mapping, load_project
from crmmigrate.spec.model import CsvSource
from crmmigrate.spec.load import check_columns
from crmmigrate.transforms import transform_names

REPO = Path(__file__).resolve().parents[2]

SETTINGS = """\
spec_version: 1
kind: project
name: t
"""

# Line numbers below are 1-based and counted in this text.
GOOD = """\
spec_version: 1
kind: mapping
system: crm
department: sales
sources:
  people:
    format: csv
    path: people.csv
    key: [ID]
    last_modified: {column: CHANGED, formats: ["%Y-%m-%d"]}
entities:
  - entity: contact
    from: people
    fields:
      last_name: NAME
      email: {column: EMAIL, transform: [email]}
"""


def project(tmp_path: Path, **mappings: str) -> Path:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "crmmigrate.yml").write_text(SETTINGS)
    (tmp_path / "mappings").mkdir()
    for name, text in mappings.items():
        (tmp_path / "mappings" / f"{name}.yml").write_text(dedent(text))
    return tmp_path


def problems(root: Path) -> list[str]:
    with pytest.raises(MappingSpecError) as info:
        load_project(root)
    return [str(p) for p in info.value.problems]


def allowed() -> str:
    return ", ".join(transform_names())


def test_a_good_project_loads(tmp_path: Path) -> None:
    loaded = load_project(project(tmp_path, x=GOOD))
    assert list(loaded.mappings) == ["crm"]
    assert loaded.files == {"crm": "mappings/x.yml"}
    assert loaded.sources() == [(loaded.mappings["crm"], "people")]
    assert loaded.path("people.csv") == tmp_path / "people.csv"


def test_unknown_transform_names_file_line_key_path_and_suggestion(tmp_path: Path) -> None:
    text = GOOD.replace("transform: [email]", "transform: [lowr]")
    assert problems(project(tmp_path, x=text)) == [
        f"mappings/x.yml:16 entities[0].fields.email.transform[0]: unknown transform 'lowr' "
        f"(did you mean 'lower'?); allowed: {allowed()}"
    ]
    assert "lower" in allowed()


def test_transform_in_block_list_points_at_its_own_line(tmp_path: Path) -> None:
    text = GOOD.replace("email: {column: EMAIL, transform: [email]}",
                        "email:\n        column: EMAIL\n        transform:\n          - trim\n          - lowr\n")
    found = problems(project(tmp_path, x=text))
    assert len(found) == 1
    assert found[0].startswith("mappings/x.yml:20 entities[0].fields.email.transform[1]: unknown transform 'lowr'")


def test_bad_transform_arguments_are_a_problem(tmp_path: Path) -> None:
    text = GOOD.replace("transform: [email]", "transform: [{zfill: {wdth: 5}}]")
    assert problems(project(tmp_path, x=text)) == [
        "mappings/x.yml:16 entities[0].fields.email.transform[0]: bad arguments for transform 'zfill': "
        "missing a required argument: 'width'"
    ]
    text = GOOD.replace("transform: [email]", "transform: [{zfill: {width: 5, fill: x}}]")
    assert problems(project(tmp_path / "b", x=text)) == [
        "mappings/x.yml:16 entities[0].fields.email.transform[0]: bad arguments for transform 'zfill': "
        "got an unexpected keyword argument 'fill'"
    ]


def test_unknown_key_is_reported_at_its_line(tmp_path: Path) -> None:
    text = GOOD.replace("    from: people\n", "    from: people\n    colour: red\n")
    assert problems(project(tmp_path, x=text)) == ["mappings/x.yml:14 entities[0].colour: unknown key"]


def test_missing_required_key(tmp_path: Path) -> None:
    text = GOOD.replace("department: sales\n", "")
    assert problems(project(tmp_path, x=text)) == ["mappings/x.yml:1 department: required key is missing"]


def test_missing_key_in_a_source_points_at_the_source(tmp_path: Path) -> None:
    text = GOOD.replace("    path: people.csv\n", "")
    assert problems(project(tmp_path, x=text)) == ["mappings/x.yml:6 sources.people.path: required key is missing"]


def test_duplicate_key_names_both_lines(tmp_path: Path) -> None:
    text = GOOD + "      last_name: OTHER\n"
    assert problems(project(tmp_path, x=text)) == [
        "mappings/x.yml:17 entities[0].fields.last_name: duplicate key (first defined on line 15)"
    ]


def test_yaml_syntax_error_has_one_based_line(tmp_path: Path) -> None:
    text = GOOD.replace("      last_name: NAME\n", "      last_name: [NAME\n")
    (found,) = problems(project(tmp_path, x=text))
    # PyYAML's problem_mark is zero-based; the report must not be. The bracket left open is on
    # line 15, though PyYAML finds it out on line 16.
    assert found.startswith("mappings/x.yml:15: YAML syntax error:")


def test_one_entity_mapped_twice_from_one_source_is_refused(tmp_path: Path) -> None:
    """Two entries would write the same outputs and ledger keys: one would be lost (it was, silently)."""
    text = GOOD + "  - entity: contact\n    from: people\n    fields:\n      last_name: OTHER\n"
    assert problems(project(tmp_path, x=text)) == [
        "mappings/x.yml:17 entities[1].entity: 'contact' is already mapped from 'people' (entities[0]); a source "
        "record becomes at most one 'contact': map its other fields in that entry"
    ]


def test_unknown_field_and_entity_source_and_link(tmp_path: Path) -> None:
    text = GOOD.replace("      last_name: NAME\n", "      last_name: NAME\n      emial: E\n") + (
        "  - entity: address\n"
        "    from: peple\n"
        "    links: {contact: self}\n"
        "    fields:\n"
        "      kind: {constant: home}\n"
    )
    found = problems(project(tmp_path, x=text))
    assert found[0] == ("mappings/x.yml:16 entities[0].fields.emial: 'contact' has no field 'emial' "
                        "(did you mean 'email'?); allowed: first_name, middle_name, last_name, birth_date, email, phone, mobile, "
                        "tax_id, owner_name")
    assert found[1] == "mappings/x.yml:19 entities[1].from: unknown source 'peple' (did you mean 'people'?); allowed: people"
    assert found[2] == "mappings/x.yml:20 entities[1].links.contact: no 'contact' is mapped from that source in this file"
    assert len(found) == 3


def test_required_crm_field_not_mapped(tmp_path: Path) -> None:
    text = GOOD.replace("      last_name: NAME\n", "")
    assert problems(project(tmp_path, x=text)) == [
        "mappings/x.yml:14 entities[0].fields: required field 'last_name' of 'contact' is not mapped"
    ]


def test_problems_in_several_files_are_reported_together(tmp_path: Path) -> None:
    a = GOOD.replace("transform: [email]", "transform: [lowr]")
    b = GOOD.replace("system: crm", "system: erp").replace("department: sales\n", "")
    c = GOOD.replace("system: crm", "system: old").replace("    key: [ID]\n", "    key: [ID]\n    key: [X]\n")
    with pytest.raises(MappingSpecError) as info:
        load_project(project(tmp_path, a=a, b=b, c=c))
    shown = str(info.value).splitlines()
    assert shown[0] == "3 problem(s) in mapping files:"
    assert [p.file for p in info.value.problems] == ["mappings/a.yml", "mappings/b.yml", "mappings/c.yml"]
    assert [p.line for p in info.value.problems] == [16, 1, 10]
    assert shown[3] == "mappings/c.yml:10 sources.people.key: duplicate key (first defined on line 9)"
    assert info.value.attrs()["problems"][1] == {
        "file": "mappings/b.yml", "line": 1, "key_path": "department", "message": "required key is missing"}


def test_the_same_system_in_two_files(tmp_path: Path) -> None:
    assert problems(project(tmp_path, a=GOOD, b=GOOD)) == [
        "mappings/b.yml:3 system: system 'crm' is also defined in mappings/a.yml"
    ]


def test_match_settings_name_their_place(tmp_path: Path) -> None:
    root = project(tmp_path, x=GOOD)
    (root / "crmmigrate.yml").write_text(SETTINGS + "match:\n  contact:\n    unique: [tax_id, taxid]\n    rules: []\n")
    assert problems(root) == [
        "crmmigrate.yml:7 match.contact.rules: unknown key",
    ]
    (root / "crmmigrate.yml").write_text(SETTINGS + "match:\n  contact:\n    unique:\n      - tax_id\n      - taxid\n")
    assert problems(root) == [
        "crmmigrate.yml:8 match.contact.unique[1]: unknown field 'taxid' (did you mean 'tax_id'?); "
        "allowed: first_name, middle_name, last_name, birth_date, email, phone, mobile, tax_id, owner_name"
    ]
    (root / "crmmigrate.yml").write_text(SETTINGS + "match:\n  contact:\n    link: 0.5\n    review: 0.9\n")
    assert problems(root) == ["crmmigrate.yml:5 match.contact: review (0.9) must be below link (0.5)"]


def test_missing_settings_and_no_mappings(tmp_path: Path) -> None:
    with pytest.raises(MappingSpecError, match="project settings file not found"):
        load_project(tmp_path)
    (tmp_path / "crmmigrate.yml").write_text(SETTINGS)
    (tmp_path / "mappings").mkdir()
    (found,) = problems(tmp_path)
    assert found.endswith("mappings: no mapping files (*.yml) found")


def test_dates_in_yaml_stay_strings(tmp_path: Path) -> None:
    path = tmp_path / "x.yml"
    path.write_text(GOOD.replace("transform: [email]}", "transform: [email]}\n      tax_id: {constant: 2024-01-31}"))
    spec, doc = load_mapping(path, "x.yml")
    assert doc.problems == []
    assert spec is not None
    assert spec.entities[0].fields["tax_id"].constant == "2024-01-31"
    assert spec.sources["people"].last_modified.formats == ("%Y-%m-%d",)


def test_load_mapping_leaves_problems_on_the_doc(tmp_path: Path) -> None:
    path = tmp_path / "x.yml"
    path.write_text(GOOD.replace("kind: mapping", "kind: mapp"))
    spec, doc = load_mapping(path, "x.yml")
    assert spec is None
    assert [str(p) for p in doc.problems] == ["x.yml:2 kind: input should be 'mapping' (got 'mapp')"]


def test_check_columns_against_a_real_header(tmp_path: Path) -> None:
    loaded = load_project(project(tmp_path, x=GOOD))
    assert check_columns(loaded, {"crm.people": ["ID", "NAME", "EMAIL", "CHANGED"]}) == []
    found = [str(p) for p in check_columns(loaded, {"crm.people": ["ID", "NAME", "E_MAIL", "CHANGED"]})]
    assert found == ["mappings/x.yml:16 entities[0].fields.email: column 'EMAIL' is not in source 'crm.people' "
                     "(did you mean 'E_MAIL'?); allowed: ID, NAME, E_MAIL, CHANGED"]
    found = [str(p) for p in check_columns(loaded, {"crm.people": ["NAME", "EMAIL", "CHANGED"]})]
    assert found == ["mappings/x.yml:9 sources.people.key: column 'ID' is not in source 'crm.people'; "
                     "allowed: NAME, EMAIL, CHANGED"]
    # A source whose header is not known is not checked.
    assert check_columns(loaded, {}) == []


@pytest.mark.parametrize("path", sorted((REPO / "mappings").glob("*.yml")), ids=lambda p: p.name)
def test_every_shipped_mapping_round_trips(path: Path) -> None:
    spec, doc = load_mapping(path)
    assert [str(p) for p in doc.problems] == []
    assert spec is not None
    assert MappingSpec.model_validate(spec.model_dump(by_alias=True)) == spec


def test_the_demo_project_loads() -> None:
    loaded = load_project(REPO)
    assert set(loaded.mappings) == {"billing", "marketing", "sales", "shipping", "support"}


def test_on_invalid_null_on_a_required_field_is_a_problem(tmp_path: Path) -> None:
    # `last_name` is NOT NULL in the CRM; `email` is optional but says `required: true`.
    text = GOOD.replace("      last_name: NAME\n", "      last_name: {column: NAME, on_invalid: null}\n")
    assert problems(project(tmp_path / "crm", x=text)) == [
        "mappings/x.yml:15 entities[0].fields.last_name.on_invalid: `on_invalid: null` would leave 'last_name' "
        "empty, but it is a required field of 'contact' (NOT NULL in the CRM); a required field cannot be left "
        "empty: remove `on_invalid: null`"
    ]
    text = GOOD.replace("      email: {column: EMAIL, transform: [email]}\n",
                        "      email:\n        column: EMAIL\n        required: true\n        on_invalid: null\n")
    assert problems(project(tmp_path / "explicit", x=text)) == [
        "mappings/x.yml:19 entities[0].fields.email.on_invalid: `on_invalid: null` would leave this field empty, "
        "but it is `required: true`; a required field cannot be left empty: remove one of the two"
    ]
    text = GOOD.replace("transform: [email]}", "transform: [email], on_invalid: drop}")
    assert problems(project(tmp_path / "typo", x=text)) == [
        "mappings/x.yml:16 entities[0].fields.email.on_invalid: input should be 'reject' or 'null' (got 'drop')"
    ]


@pytest.mark.parametrize("spelling", ["null", "~", "'null'", '"null"', "Null"])
def test_on_invalid_null_round_trips_between_yaml_and_python(tmp_path: Path, spelling: str) -> None:
    path = tmp_path / "x.yml"
    path.write_text(GOOD.replace("transform: [email]}", f"transform: [email], on_invalid: {spelling}}}"))
    spec, doc = load_mapping(path, "x.yml")
    assert doc.problems == []
    assert spec is not None
    email = spec.entities[0].fields["email"]
    assert email.on_invalid == "null"
    assert email == FieldSpec(column="EMAIL", transform=("email",), on_invalid="null")
    assert spec.entities[0].fields["last_name"].on_invalid is None  # unsaid: required, so it rejects
    dumped = spec.model_dump(by_alias=True)
    assert dumped["entities"][0]["fields"]["email"]["on_invalid"] == "null"
    assert MappingSpec.model_validate(dumped) == spec
    # Written back as YAML (where the text 'null' is quoted) and read again: the same spec.
    path.write_text(yaml.safe_dump(spec.model_dump(by_alias=True, mode="json"), sort_keys=False))
    again, doc = load_mapping(path, "x.yml")
    assert doc.problems == [] and again == spec


def test_on_invalid_null_with_required_false_or_an_optional_field_loads(tmp_path: Path) -> None:
    text = GOOD.replace("      last_name: NAME\n", "      last_name: {column: NAME, required: false, on_invalid: null}\n")
    assert load_project(project(tmp_path, x=text)).mappings["crm"].entities[0].fields["last_name"].on_invalid == "null"


CONSENT = """\
  - entity: marketing_consent
    from: people
    links: {{contact: self}}
    fields:
      channel: {{constant: email}}
      opted_in: {{constant: true}}
      consented_on: {{column: CHANGED, formats: {formats}}}
"""


def test_a_format_strptime_cannot_read_is_a_problem_before_any_row_moves(tmp_path: Path) -> None:
    # Every value of the column would be rejected: a mistake in the mapping, not in the data.
    text = GOOD.replace('formats: ["%Y-%m-%d"]', 'formats: ["%d.%m.%Q", iso]') + CONSENT.format(formats="[dd.mm.yyyy]")
    assert problems(project(tmp_path, x=text)) == [
        "mappings/x.yml:10 sources.people.last_modified.formats: format '%d.%m.%Q': '%Q' is not a strptime "
        "directive (e.g. %Y %m %d %H %M %S %b; or iso / epoch)",
        "mappings/x.yml:23 entities[1].fields.consented_on.formats: format 'dd.mm.yyyy' has no % directive, so it "
        "reads only that very text (did you mean '%d.%m.%Y'?)",
    ]


@pytest.mark.parametrize(("given", "suggested"), [
    ("YYYY-MM-DD HH:mm:ss", "%Y-%m-%d %H:%M:%S"), ("dd/MM/yy", "%d/%m/%y"), ("mm/dd/yyyy", "%m/%d/%Y")])
def test_a_date_pattern_of_another_tool_gets_its_strptime_spelling(given: str, suggested: str) -> None:
    with pytest.raises(ValueError, match=f"did you mean '{suggested}'"):
        FieldSpec(column="x", formats=(given,))


@pytest.mark.parametrize("fmt", ["%Y-%m-%d %", "%s", "%:z"])
def test_a_lone_percent_or_an_unknown_directive_is_refused(fmt: str) -> None:
    with pytest.raises(ValueError, match="format"):
        FieldSpec(column="x", formats=(fmt,))


def test_formats_on_a_field_that_is_no_date_and_epoch_on_a_date(tmp_path: Path) -> None:
    text = GOOD.replace("      last_name: NAME\n", "      last_name: {column: NAME, formats: ['%Y']}\n") \
        + CONSENT.format(formats="[iso, epoch]")
    assert problems(project(tmp_path, x=text)) == [
        "mappings/x.yml:15 entities[0].fields.last_name.formats: 'last_name' of 'contact' is not a date or a "
        "time, so `formats` would never be used: remove it",
        "mappings/x.yml:23 entities[1].fields.consented_on.formats: 'consented_on' of 'marketing_consent' is a "
        "date: `epoch` (seconds) reads date-times only",
    ]


def test_encodings_and_delimiters_are_checked_where_they_are_written(tmp_path: Path) -> None:
    text = GOOD.replace("    key: [ID]\n", "    key: [ID]\n    encoding: utf-99\n    fallback_encoding: utf-8\n"
                                          "    delimiter: ';;'\n")
    assert problems(project(tmp_path, x=text)) == [
        "mappings/x.yml:10 sources.people.encoding: unknown encoding 'utf-99' (e.g. utf-8, cp1252, latin-1, cp850)",
        "mappings/x.yml:11 sources.people.fallback_encoding: fallback encoding 'utf-8' is not a single-byte "
        "encoding (one byte, one character: e.g. cp1252, latin-1, cp850)",
        "mappings/x.yml:12 sources.people.delimiter: delimiter must be exactly one character other than a line "
        "break (got ';;')",
    ]


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1", "cp850", "koi8-r", "iso8859-15"])
def test_single_byte_fallbacks_are_accepted(tmp_path: Path, encoding: str) -> None:
    text = GOOD.replace("    key: [ID]\n", f"    key: [ID]\n    fallback_encoding: {encoding}\n")
    assert load_project(project(tmp_path, x=text)).mappings["crm"].sources["people"].fallback_encoding == encoding


def test_ignored_columns_are_checked_against_the_header(tmp_path: Path) -> None:
    text = GOOD.replace("    key: [ID]\n", "    key: [ID]\n    ignore_columns: [NOTES, Bemerkung~3]\n")
    loaded = load_project(project(tmp_path, x=text))
    found = [str(p) for p in check_columns(loaded, {"crm.people": ["ID", "NAME", "EMAIL", "CHANGED", "NOTES",
                                                                   "Bemerkung~2"]})]
    assert found == ["mappings/x.yml:10 sources.people.ignore_columns[1]: column 'Bemerkung~3' is not in source "
                     "'crm.people' (did you mean 'Bemerkung~2'?); allowed: ID, NAME, EMAIL, CHANGED, NOTES, "
                     "Bemerkung~2"]


def test_a_header_read_as_one_column_names_the_delimiter_once(tmp_path: Path) -> None:
    loaded = load_project(project(tmp_path, x=GOOD))
    found = [str(p) for p in check_columns(loaded, {"crm.people": ["ID;NAME;EMAIL;CHANGED"]})]
    assert found == ["mappings/x.yml:6 sources.people.delimiter: the header reads as one column "
                     "('ID;NAME;EMAIL;CHANGED'): its delimiter looks like ';'; declare `delimiter: \";\"`"]
    # The suggestion is YAML that reads back as that character, a tab included.
    found = [str(p) for p in check_columns(loaded, {"crm.people": ["ID\tNAME\tEMAIL"]})]
    assert found[0].endswith("declare `delimiter: \"\\t\"`")
    assert yaml.safe_load('delimiter: "\\t"') == {"delimiter": "\t"}
    # A one-column file whose columns are all there is not questioned.
    one = GOOD.replace("      email: {column: EMAIL, transform: [email]}\n", "").replace(
        "    last_modified: {column: CHANGED, formats: [\"%Y-%m-%d\"]}\n", "").replace("key: [ID]", "key: [NAME]")
    loaded = load_project(project(tmp_path / "one", x=one))
    assert check_columns(loaded, {"crm.people": ["NAME"]}) == []


def test_a_utf8_file_read_as_cp1252_is_told_so(tmp_path: Path) -> None:
    text = GOOD.replace("    key: [ID]\n", "    key: [ID]\n    encoding: cp1252\n")
    loaded = load_project(project(tmp_path, x=text))
    found = [str(p) for p in check_columns(loaded, {"crm.people": ["\u00ef\u00bb\u00bfID", "NAME", "EMAIL", "CHANGED"]})]
    assert found == ["mappings/x.yml:10 sources.people.encoding: the file starts with a UTF-8 byte-order mark, but "
                     "is read as cp1252 (its first column reads 'ï»¿ID'): declare `encoding: utf-8` and "
                     "`fallback_encoding: cp1252` for lines that are not"]


def test_a_source_with_no_column_names_is_one_problem(tmp_path: Path) -> None:
    loaded = load_project(project(tmp_path, x=GOOD))
    assert [str(p) for p in check_columns(loaded, {"crm.people": []})] == [
        "mappings/x.yml:6 sources.people: no column names could be read from source 'crm.people': is it empty, "
        "or broken before its first record? (`crmmigrate preview` shows how it reads)"]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32", "cp037"])
def test_an_encoding_whose_lines_cannot_be_split_as_bytes_is_refused(encoding: str) -> None:
    with pytest.raises(ValueError, match="does not write ASCII as single bytes.*iconv"):
        CsvSource(format="csv", path="x.csv", key=("ID",), encoding=encoding)


def test_a_flag_in_the_value_map_of_a_text_field_is_a_problem(tmp_path: Path) -> None:
    # YAML reads `yes` and `true` as flags: on a text field that crashed the map stage.
    text = GOOD.replace("      last_name: NAME\n", "      last_name: {column: NAME, map: {a: A, b: yes}}\n")
    assert problems(project(tmp_path, x=text)) == [
        "mappings/x.yml:15 entities[0].fields.last_name.map.b: 'last_name' of 'contact' is text, but the map gives "
        "'b' the flag true: quote it ('true') for the text"]
