"""`crmmigrate.preview` and `crmmigrate preview`: the first records mapped in memory, nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import crmmigrate
from crmmigrate.cli import main
from crmmigrate.errors import MappingSpecError, SettingsError
from crmmigrate.spec.load import load_project


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


def test_preview_by_system_name_maps_the_first_records(demo_project: tuple[Path, dict]) -> None:
    project, _ = demo_project
    before = files_under(project)
    result = crmmigrate.preview("sales", n=20, project=project)
    assert result.system == "sales" and result.read == {"sales.contacts": 20}
    assert [e.entity for e in result.entities] == ["account", "contact", "address"]
    for ep in result.entities:
        # Every row lands once: mapped, rejected, skipped, or as a repeat of an earlier key.
        assert ep.records + len(result.repeats["sales.contacts"]) == 20 - len(result.unreadable["sales.contacts"])
    contact = result["contact"]
    assert {"first_name", "last_name", "email", "_source_key", "_row_hash"} <= set(contact.mapped.columns)
    assert files_under(project) == before  # no run folder, no CRM


def test_rejects_carry_reasons_like_a_run(demo_project: tuple[Path, dict]) -> None:
    project, _ = demo_project
    result = crmmigrate.preview("sales", n=1000, project=project, entity="contact")
    rejects = result["contact"].rejects
    assert len(rejects) > 0  # the demo data has planted bad dates, emails and phones
    assert set(rejects.columns) >= {"_row_number", "_source_key", "reason_code", "category", "message", "raw"}
    assert rejects["message"].str.len().gt(0).all()


def test_preview_by_file_finds_its_project(demo_project: tuple[Path, dict]) -> None:
    project, _ = demo_project
    result = crmmigrate.preview(project / "mappings" / "support.yml", n=5)
    assert result.read == {"support.tickets": 5}
    assert len(result["support_case"].mapped) + len(result["support_case"].rejects) == 5


def test_preview_of_a_spec_object_needs_the_project_for_relative_paths(demo_project: tuple[Path, dict]) -> None:
    project, _ = demo_project
    spec = load_project(project).mappings["billing"]
    result = crmmigrate.preview(spec, n=3, project=project, entity="invoice")
    assert result.read == {"billing.invoices": 3} and [e.entity for e in result.entities] == ["invoice"]
    account, contact = spec.entities[:2]  # billing names the company (an account) before the contact
    broken = spec.model_copy(update={"entities": (account, contact.model_copy(
        update={"fields": {**contact.fields, "tax_id": contact.fields["tax_id"].model_copy(
            update={"column": "TAXID"})}}),)})
    with pytest.raises(MappingSpecError, match=r"mapping `billing` sources.customers: column 'TAXID' is not in "
                                               r"source 'billing.customers' \(did you mean 'TAX_ID'\?\)"):
        crmmigrate.preview(broken, n=3, project=project)


def test_a_missing_column_is_located_in_the_file(demo_project: tuple[Path, dict]) -> None:
    project, _ = demo_project
    path = project / "mappings" / "billing.yml"
    path.write_text(path.read_text().replace("column: TAX_ID", "column: TAXID"))
    with pytest.raises(MappingSpecError, match=r"^mappings/billing.yml:\d+ entities\[1\].fields.tax_id: column 'TAXID'"):
        crmmigrate.preview(path, n=3)


def test_unknown_system_and_entity_suggest_the_right_name(demo_project: tuple[Path, dict]) -> None:
    project, _ = demo_project
    with pytest.raises(SettingsError, match="no mapping for system 'sale' .*did you mean 'sales'"):
        crmmigrate.preview("sale", project=project)
    with pytest.raises(SettingsError, match="In mapping `sales`: no entity 'contacts' .*did you mean 'contact'"):
        crmmigrate.preview("sales", project=project, entity="contacts")


def test_preview_command_prints_counts_rows_and_rejects(demo_project: tuple[Path, dict],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    project, _ = demo_project
    assert main(["preview", "--project", str(project), "--mapping", "sales", "--entity", "contact",
                 "-n", "1000", "--show", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Preview of mapping `sales`: the first 1,000 records of each source, nothing written."
    assert out[1].startswith("sales.contacts: ") and out[1].endswith(" unreadable")
    head = next(i for i, line in enumerate(out) if line.startswith("contact from sales.contacts: "))
    assert out[head + 1].split() == ["key", "first_name", "last_name", "email", "phone", "mobile", "birth_date",
                                     "owner_name"]
    assert any(line.startswith("  rejected row ") for line in out)


def test_preview_command_accepts_a_file_relative_to_the_project(demo_project: tuple[Path, dict],
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    project, _ = demo_project
    assert main(["preview", "--project", str(project), "--mapping", "mappings/support.yml", "-n", "3"]) == 0
    assert "support.tickets: 3 records read, 0 unreadable" in capsys.readouterr().out
    assert main(["preview", "--project", str(project), "--mapping", "nope"]) == 2
    assert "no mapping for system 'nope'" in capsys.readouterr().err


def test_the_entry_point_is_lazy() -> None:
    code = ("import sys, crmmigrate; assert 'pandas' not in sys.modules, 'import crmmigrate loaded pandas'; "
            "assert callable(crmmigrate.preview) and 'crmmigrate.previewing' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize(("policy", "differing"), [("reject", "rejected: duplicate_key"), ("keep_first", "merged")])
def test_repeated_keys_are_mapped_once_as_in_a_run(tmp_path: Path, policy: str, differing: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mappings").mkdir()
    (tmp_path / "crmmigrate.yml").write_text("spec_version: 1\nkind: project\nname: t\n")
    (tmp_path / "mappings" / "s.yml").write_text(f"""\
spec_version: 1
kind: mapping
system: s
department: sales
sources:
  c: {{format: csv, path: c.csv, key: [ID], duplicate_keys: {policy}}}
entities:
  - entity: contact
    from: c
    fields: {{last_name: NAME}}
""")
    (tmp_path / "c.csv").write_text("ID,NAME\n00123,Ann\n7,Bo\n00123,Ann\n00123,Anne\n0123,Cy\n")
    result = crmmigrate.preview("s", project=tmp_path)
    assert result["contact"].mapped["_source_key"].tolist() == ["00123", "7", "0123"]
    assert result.repeats["s.c"][["_row_number", "first_row_number", "identical", "outcome"]].values.tolist() == [
        [4, 2, True, "merged"], [5, 2, False, differing]]
    assert main(["preview", "--project", str(tmp_path), "--mapping", "s"]) == 0
    out = capsys.readouterr().out
    assert "s.c: 2 record(s) repeat an earlier key (mapped once, through the first)" in out
    assert f"row 5 (key 00123) repeats row 2 with different contact values: {differing}" in out


def contacts(folder: Path, fields: str, csv: str) -> None:
    """A project of one mapping: contacts with *fields* from `c.csv` holding *csv*."""
    (folder / "mappings").mkdir()
    (folder / "crmmigrate.yml").write_text("spec_version: 1\nkind: project\nname: t\n")
    (folder / "mappings" / "s.yml").write_text(f"""\
spec_version: 1
kind: mapping
system: s
department: sales
sources:
  c: {{format: csv, path: c.csv, key: [ID]}}
entities:
  - entity: contact
    from: c
    fields: {fields}
""")
    (folder / "c.csv").write_text(csv, encoding="utf-8")


def test_preview_escapes_what_a_console_cannot_show(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    contacts(tmp_path, "{last_name: NAME, email: {column: MAIL, transform: [email], on_invalid: reject}}",
             "ID,NAME,MAIL\n1,Zo\u00eb,zoe@example.com\n2,\u202eevil,eve@example.com\n3,Red,\x1b[31mred\n")
    console = io.TextIOWrapper(io.BytesIO(), encoding="ascii")  # as `PYTHONIOENCODING=ascii`, a C console
    monkeypatch.setattr(sys, "stdout", console)
    assert main(["preview", "--project", str(tmp_path), "--mapping", "s"]) == 0
    console.flush()
    out = console.buffer.getvalue().decode("ascii")
    assert "Zo<U+00EB>" in out
    assert "<U+202E>evil" in out and "<U+001B>[31mred" in out


def test_preview_shows_the_values_an_optional_field_dropped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad optional value no longer rejects its record: the preview shows the record kept and
    the value dropped, with its reason, as a run records it in map/nulled."""
    contacts(tmp_path, "{last_name: NAME, phone: {column: TEL, transform: [phone]}}",
             "ID,NAME,TEL\n1,Lee,030 1234567\n2,Roe,+453 3331 9991\n")
    result = crmmigrate.preview("s", project=tmp_path)
    assert result["contact"].mapped["phone"].tolist() == ["+49301234567", None]
    assert result["contact"].nulled[["_source_key", "field", "value"]].values.tolist() == [["2", "phone", "+453 3331 9991"]]
    assert main(["preview", "--project", str(tmp_path), "--mapping", "s"]) == 0
    out = capsys.readouterr().out
    assert ("value dropped, row 3 (key 2) kept: invalid_phone: phone: '+453 3331 9991' refused by phone" in out), out
