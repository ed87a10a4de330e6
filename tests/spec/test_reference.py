"""The generated docs: committed copies are current, every spec field is documented, and the
JSON Schemas accept every shipped file and refuse the typos the loader refuses."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from crmmigrate.cli import main
from crmmigrate.spec import docs
from crmmigrate.spec.reasons import ReasonCode
from crmmigrate.spec.yamlsource import load_yaml
from crmmigrate.transforms import transform_names

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", list(docs.generated_files()))
def test_committed_docs_are_current(name: str) -> None:
    committed = REPO / "docs" / name
    generated = docs.generated_files()[name]
    assert committed.exists() and committed.read_text(encoding="utf-8") == generated, (
        f"docs/{name} is stale; regenerate with: {docs.REGENERATE}")


def test_every_spec_field_has_a_description() -> None:
    missing = docs.undocumented_fields()
    assert not missing, f"spec fields without a description in crmmigrate/spec/model.py: {', '.join(missing)}"


def test_every_spec_model_is_in_the_reference() -> None:
    reference = docs.reference_markdown()
    absent = [cls.__name__ for cls in docs.spec_models()
              if f"### {cls.__name__}\n" not in reference and cls not in docs.FOLDED]
    assert not absent, f"models missing from the reference: {absent}"


def test_reference_lists_vocabularies_transforms_and_reason_codes() -> None:
    text = docs.reference_markdown()
    assert "| duplicate_keys | `reject`, `keep_first` |" in text
    for name in transform_names():
        assert f"### `{name}`" in text
    assert "- arguments: `part`, `order` (default `given_first`)" in text
    assert "- filled in: `default_region` from the mapping's `default_region`" in text
    for code in ReasonCode:
        assert f"| `{code}` | {code.category} |" in text
    assert docs.reason_stages()[ReasonCode.UNDECODABLE].startswith("extract:")


def test_type_names_read_like_prose() -> None:
    from typing import Literal

    assert docs.type_name(tuple[str, ...] | Literal["row_number"]) == "list of text or `row_number`"
    assert docs.type_name(dict[str, str | bool | None]) == "map of text → text or true/false or null"
    assert docs.type_name(int | None) == "integer"


def schema_validator(kind: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((REPO / "docs" / f"{kind}.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("path", sorted((REPO / "mappings").glob("*.yml")), ids=lambda p: p.name)
def test_every_shipped_mapping_matches_the_schema(path: Path) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in schema_validator("mapping").iter_errors(load_yaml(path).data)]
    assert not errors


def test_project_settings_match_the_schema() -> None:
    assert not list(schema_validator("project").iter_errors(load_yaml(REPO / "crmmigrate.yml").data))


def test_schema_refuses_what_the_loader_refuses() -> None:
    data = load_yaml(REPO / "mappings" / "sales.yml").data
    contact = data["entities"][1]
    contact["fields"]["emial"] = "EMAIL"
    contact["fields"]["email"]["transform"] = ["emial"]
    contact["links"] = {"order": "self"}
    errors = {tuple(e.absolute_path): e.message for e in schema_validator("mapping").iter_errors(data)}
    assert "'emial' is not one of" in errors[("entities", 1, "fields")]
    assert ("entities", 1, "fields", "email") in errors
    assert "'order' is not one of ['account']" in errors[("entities", 1, "links")]


def test_schema_accepts_transform_short_forms_with_typed_arguments() -> None:
    data = load_yaml(REPO / "mappings" / "sales.yml").data
    fields = data["entities"][2]["fields"]
    fields["postcode"] = {"column": "ZIP", "transform": [{"zfill": {"width": 5}}]}
    assert not list(schema_validator("mapping").iter_errors(data))
    fields["postcode"] = {"column": "ZIP", "transform": [{"zfill": {"width": "five"}}]}
    assert list(schema_validator("mapping").iter_errors(data))


def test_schema_command_prints_and_writes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "--kind", "project"]) == 0
    assert json.loads(capsys.readouterr().out)["properties"]["kind"]["const"] == "project"
    assert main(["schema", "--reference"]) == 0
    assert capsys.readouterr().out == docs.reference_markdown()
    assert main(["schema", "--write", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(docs.generated_files())


def test_docstring_sections_are_left_out_of_the_prose() -> None:
    doc = "Do a thing.\n\nMore about it.\n\nParameters\n----------\nvalues\n    The values.\n"
    assert docs.doc_prose(doc) == "Do a thing.\n\nMore about it."
    assert docs.doc_prose(None) == ""


def test_schema_accepts_on_invalid_spelled_as_yaml_reads_it() -> None:
    data = load_yaml(REPO / "mappings" / "sales.yml").data
    email = data["entities"][1]["fields"]["email"]
    for value in (None, "null", "reject"):  # `on_invalid: null` is a YAML null
        email["on_invalid"] = value
        assert not list(schema_validator("mapping").iter_errors(data)), value
    email["on_invalid"] = "drop"
    assert list(schema_validator("mapping").iter_errors(data))
