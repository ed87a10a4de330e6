"""Coverage: required fields, column use and picklist gaps, measured on the real source, and
printed by `crmmigrate validate` without changing its exit code."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from crmmigrate.cli import main
from crmmigrate.coverage import (
    entity_coverage,
    format_coverage,
    mapping_coverage,
    project_coverage,
    source_coverage,
    used_columns,
)
from crmmigrate.spec.load import load_project

SETTINGS = "spec_version: 1\nkind: project\nname: t\ntarget: sqlite:///crm.sqlite\n"
CSV = """\
ID,NAME,MAIL,STATE,NOTE,FAX
1,Ann Lee,ann@example.com,Open ,x,
2,Bob Roe,bob@example.com,CLOSED,,
3,Cy Poe,cy@example.com,won,,1
4,Di Fox,di@example.com,Lost,,
5,Ed Orr,ed@example.com,won,,
"""
MAPPING = """\
spec_version: 1
kind: mapping
system: crm
department: sales
sources:
  people:
    format: csv
    path: people.csv
    key: [ID]
    ignore_columns: [NOTE]
entities:
  - entity: contact
    from: people
    fields:
      last_name: {column: NAME, transform: [{split_name: {part: surname}}]}
      email: MAIL
  - entity: support_case
    from: people
    links: {contact: self}
    fields:
      case_number: ID
      status: {column: STATE, transform: [trim, lower], map: {open: open, closed: closed}}
"""


@pytest.fixture
def small(tmp_path: Path) -> Path:
    (tmp_path / "crmmigrate.yml").write_text(SETTINGS)
    (tmp_path / "people.csv").write_text(CSV)
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "crm.yml").write_text(dedent(MAPPING))
    return tmp_path


def test_used_columns_count_keys_fields_and_links(small: Path) -> None:
    mapping = load_project(small).mappings["crm"]
    assert used_columns(mapping, "people") == {"ID", "NAME", "MAIL", "STATE"}


def test_entity_coverage_names_required_and_unmapped_fields(small: Path) -> None:
    contact = entity_coverage(load_project(small).mappings["crm"].entities[0])
    assert contact.required == ("last_name",) and contact.required_mapped == ("last_name",)
    assert contact.required_percent == 100.0
    assert contact.unmapped == ("first_name", "middle_name", "birth_date", "phone", "mobile", "tax_id", "owner_name")


def test_unused_columns_exclude_ignored_ones(small: Path) -> None:
    project = load_project(small)
    sc = source_coverage(project, project.mappings["crm"], "people")
    assert sc.source == "crm.people" and sc.ignored == ("NOTE",)
    assert sc.unused == ("FAX",)
    assert round(sc.percent) == 83  # 5 of 6


def test_picklist_gaps_are_counted_after_the_transforms(small: Path) -> None:
    project = load_project(small)
    sc = source_coverage(project, project.mappings["crm"], "people")
    assert sc.records_scanned == 5
    (gap,) = sc.picklists
    assert (gap.entity, gap.field, gap.columns) == ("support_case", "status", ("STATE",))
    assert gap.values == (("won", 2), ("lost", 1))  # 'Open ' and 'CLOSED' are covered once trimmed and lowered


def test_the_scan_stops_at_sample_rows(small: Path) -> None:
    project = load_project(small)
    sc = source_coverage(project, project.mappings["crm"], "people", sample_rows=2)
    assert sc.records_scanned == 2 and sc.picklists == ()  # rows 1-2 are all in the map


def test_format_lists_sources_entities_and_gaps(small: Path) -> None:
    project = load_project(small)
    lines = format_coverage([mapping_coverage(project, "crm")], 100)
    assert lines == [
        "Coverage (picklist values checked on the first 100 records of each source):",
        "  crm (mappings/crm.yml)",
        "    crm.people: 5/6 columns used or ignored (83%); unused: FAX",
        "      contact: required fields 1/1 (100%), all fields 2/9; not mapped: first_name, middle_name, birth_date, "
        "phone, mobile, tax_id, owner_name",
        "      support_case: required fields 2/2 (100%), all fields 2/6; not mapped: subject, priority, channel, "
        "opened_at",
        "      support_case.status map: 2 values in STATE not covered: 'won' (2 records), 'lost' (1 record)",
    ]


def test_demo_project_is_fully_covered(demo_project: tuple[Path, dict]) -> None:
    project = load_project(demo_project[0])
    report = {sc.source: sc for mc in project_coverage(project) for sc in mc.sources}
    assert len(report) == 8
    assert {s: sc.unused for s, sc in report.items() if sc.unused} == {}
    assert all(not sc.picklists for sc in report.values())
    assert report["support.tickets"].records_scanned > 0


def test_validate_prints_coverage_and_still_exits_0_with_gaps(demo_project: tuple[Path, dict],
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    project, _ = demo_project
    path = project / "mappings" / "support.yml"
    path.write_text(path.read_text().replace(", closed: closed}", "}").replace("    ignore_columns: [requester.id]\n", ""))
    assert main(["validate", "--project", str(project), "--sample-rows", "1000"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("OK: 5 mapping files, 8 sources")
    assert out[1] == "Coverage (picklist values checked on the first 1,000 records of each source):"
    assert "    support.tickets: 12/13 columns used or ignored (92%); unused: requester.id" in out
    gap = next(line for line in out if "support_case.status map:" in line)
    assert gap.startswith("      support_case.status map: 1 value in status not covered: 'closed' (")
