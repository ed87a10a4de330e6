"""The map stage's two routes on the demo's five systems: DuckDB for the rows its SQL is sure of
plus `map_frame` for the rest must write exactly what `map_frame` alone writes, file by file."""

from __future__ import annotations

import csv
import io
import random
import tempfile
from pathlib import Path

import yaml

import duckdb
import pandas as pd
import pytest

from conftest import make_project
from crmmigrate import map as map_stage
from crmmigrate.map.duckdb import doubtful, passes
from crmmigrate.extract import run_extract
from crmmigrate.map.duckdb import compile_entity
from crmmigrate.rundir import RunDir
from crmmigrate.spec import load_project
from tests.map.test_sql import HOSTILE, MAPPINGS, NUMBERS
from tests.test_edge_cases import MAPPING, SETTINGS, project


def without_routes(counts: dict) -> dict:
    """The counts both routes must agree on: all but which route took the rows."""
    return {pair: {k: v for k, v in c.items() if k != "route"} for pair, c in counts.items()}


def map_both_routes(project_dir: Path, run_dir: Path) -> dict:
    project = load_project(project_dir)
    run = RunDir(run_dir)
    run_extract(run, project)
    outs, routes = {}, {}
    for compiled in (True, False):
        out = run.path / ("compiled" if compiled else "reference")
        counts = {}
        for mapping in project.mappings.values():
            for table in mapping.sources:  # as run_map does: a source's entities share one pass
                ems = [em for em in mapping.entities if em.from_ == table]
                if ems:
                    for em, c in zip(ems, map_stage.map_entities(run, project, mapping, ems, out, compiled=compiled)):
                        counts[(mapping.source_id(table), em.entity)] = c
        outs[compiled] = (out, without_routes(counts))
        routes[compiled] = {pair: c["route"] for pair, c in counts.items()}
    return {"project": project, "outs": outs, "routes": routes}


@pytest.fixture(scope="module", params=["small", "full"])
def both_routes(request: pytest.FixtureRequest, demo_template: tuple[Path, dict],
                tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The tests' small demo, and the README's 500 people: only the larger one has doubtful rows
    of several kinds interleaved within one batch."""
    if request.param == "small":
        project_dir = demo_template[0]
    else:
        project_dir = tmp_path_factory.mktemp("demo-500") / "project"
        make_project(project_dir, people=500, seed=7)
    return map_both_routes(project_dir, tmp_path_factory.mktemp("map-routes") / "run")


INTERLEAVED = """\
spec_version: 1
kind: mapping
system: s
department: marketing
default_region: GB
sources:
  c: {format: csv, path: c.csv, key: [ID]}
entities:
  - entity: contact
    from: c
    fields:
      last_name: {column: NAME, transform: [trim, title]}
      phone: {column: PHONE, transform: [phone]}
  - entity: marketing_consent
    from: c
    links: {contact: self}
    fields:
      channel: {column: CH, map: {E: email, P: post}}
      opted_in: {constant: true}
"""


@pytest.mark.parametrize("batch_rows", [16, None])
def test_doubtful_rows_of_different_kinds_keep_their_own_values(tmp_path: Path, batch_rows: int | None,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows the SQL doubts for different fields alternate: each must get its own sure values back
    (also when they are looked up again in many small groups)."""
    if batch_rows:
        monkeypatch.setattr(doubtful, "SQL_BATCH_ROWS", batch_rows)
    lines = ["ID,NAME,PHONE,CH"]
    for i in range(300):
        phone = ["020 7946 0%03d" % i, "+44 (0)20 7946 0%03d" % i, "tel 0%d" % i][i % 3]  # 2nd: phonenumbers
        name = f"ßn{i}" if i % 4 == 1 else f"  name{i} "  # a leading ß: only Python title-cases it
        lines.append(f"{i},{name},{phone},{'EPX'[i % 3 if i % 2 else 0]}")
    routes = map_both_routes(project(tmp_path, "\n".join(lines) + "\n", INTERLEAVED), tmp_path / "run")
    (compiled, _), (reference, _) = routes["outs"][True], routes["outs"][False]
    assert_same_files(compiled, reference)
    contacts = _read(compiled / "mapped" / "contact" / "s.c.parquet")
    plain = contacts["_source_key"].astype(int) % 4 != 1
    assert (contacts.loc[plain, "last_name"] == "Name" + contacts.loc[plain, "_source_key"]).all()
    assert plain.sum() > 100 and (~plain).sum() > 30


def test_entities_sharing_a_pass_write_what_each_writes_alone(tmp_path: Path) -> None:
    """The source's two entities in one DuckDB pass (their columns side by side in each batch, the
    lineage and the self link shared) write exactly what two passes of one entity each write."""
    lines = ["ID,NAME,PHONE,CH"] + [f"{i},  name{i} ,020 7946 0{i:03d},{'EPX'[i % 3]}" for i in range(200)]
    project_dir = project(tmp_path, "\n".join(lines) + "\n", INTERLEAVED)
    loaded = load_project(project_dir)
    run = RunDir(tmp_path / "run")
    run_extract(run, loaded)
    mapping = next(iter(loaded.mappings.values()))
    together = map_stage.map_entities(run, loaded, mapping, list(mapping.entities), run.path / "together")
    alone = [map_stage.map_entities(run, loaded, mapping, [em], run.path / "alone")[0] for em in mapping.entities]
    assert together == alone and together[1]["rejects"] > 50  # `X` is not in the channel map
    assert all(compile_entity(em, mapping) is not None for em in mapping.entities)
    assert_same_files(run.path / "together", run.path / "alone")


def test_a_pass_over_wide_rows_may_use_more_memory(tmp_path: Path) -> None:
    """DuckDB works on 2,048 rows at a time whatever their width: rows of 15 KB ran out of memory
    under the usual 128 MB."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    narrow = pa.table({"a": [f"{n:040d}" for n in range(1000)]})
    wide = pa.table({f"c{i}": [f"{n:0100d}" for n in range(1000)] for i in range(150)})
    pq.write_table(narrow, tmp_path / "narrow.parquet", use_dictionary=False)  # as the extract writes raw text
    pq.write_table(wide, tmp_path / "wide.parquet", use_dictionary=False)
    assert passes._memory_limit(tmp_path / "narrow.parquet") == "128MB"  # noqa: SLF001
    assert int(passes._memory_limit(tmp_path / "wide.parquet")[:-2]) > 256  # noqa: SLF001


def _read(path: Path) -> pd.DataFrame:
    frame = pd.read_parquet(path)
    order = [c for c in ("_source", "_source_key", "_row_number", "field") if c in frame]
    return frame.sort_values(order, ignore_index=True) if len(frame) else frame


def assert_same_files(compiled: Path, reference: Path) -> None:
    files = sorted(p.relative_to(reference) for p in reference.rglob("*.parquet"))
    assert files == sorted(p.relative_to(compiled) for p in compiled.rglob("*.parquet"))
    for rel in files:
        pd.testing.assert_frame_equal(_read(compiled / rel), _read(reference / rel), obj=str(rel))


def test_compiled_route_writes_what_map_frame_writes(both_routes: dict) -> None:
    (compiled, compiled_counts), (reference, reference_counts) = both_routes["outs"][True], both_routes["outs"][False]
    assert compiled_counts == reference_counts
    assert_same_files(compiled, reference)


def test_mapped_rows_are_working_copies_and_rejects_are_compressed(both_routes: dict) -> None:
    """Mapped, skipped, nulled and changed rows are read whole by the next stage (rundir.WORKING_CODEC);
    rejects are read and kept by people, and their raw records shrink several times."""
    import pyarrow.parquet as pq

    codecs: dict[str, set[str]] = {}
    for route in (True, False):
        out = both_routes["outs"][route][0]
        for path in out.rglob("*.parquet"):
            meta = pq.ParquetFile(path).metadata
            kind = codecs.setdefault(path.relative_to(out).parts[0], set())
            kind |= {meta.row_group(g).column(i).compression
                     for g in range(meta.num_row_groups) for i in range(meta.num_columns)}
    assert codecs.pop("rejects") == {"SNAPPY", "UNCOMPRESSED"}  # (`_row_hash` is never compressed)
    assert codecs.keys() == {"mapped", "skipped", "nulled", "changed"} and set().union(*codecs.values()) == {"UNCOMPRESSED"}


def test_most_demo_entities_compile(both_routes: dict) -> None:
    """Else the comparison above would hold trivially: every entity would take map_frame alone."""
    project = both_routes["project"]
    entities = [(m, em) for m in project.mappings.values() for em in m.entities]
    compiled = [em.entity for m, em in entities if compile_entity(em, m) is not None]
    assert len(compiled) >= len(entities) // 2, compiled


CERTAIN = """\
spec_version: 1
kind: mapping
system: s
department: marketing
default_region: GB
sources:
  c: {format: csv, path: c.csv, key: [ID]}
entities:
  - entity: support_case
    from: c
    fields:
      case_number: {column: NUM, transform: [trim]}
      status: {column: ST, map: {O: open, C: closed, "{value}": odd}, on_invalid: reject}
      channel: {column: CH, map: {E: email, P: phone}, on_invalid: null}
      priority: {column: PRI, transform: [upper], map: {H: high, L: low}, required: false, on_invalid: reject}
      opened_at: {column: AT, formats: ['%d.%m.%Y %H:%M', '%Y-%m-%d %H:%M'], on_invalid: reject}
  - entity: contact
    from: c
    fields:
      last_name: {column: ID}
  - entity: marketing_consent
    from: c
    links: {contact: self}
    fields:
      channel: {column: CH, map: {E: email, P: post}, on_invalid: reject}
      opted_in: {constant: true}
      consented_on: {column: AT, transform: [trim], formats: ['%d.%m.%Y %H:%M', '%Y%m%d'], on_invalid: reject}
"""


def test_rejects_the_sql_is_sure_of_are_written_as_map_frame_writes_them(tmp_path: Path) -> None:
    """Unmapped codes and blank required values, alone and together, beside a lenient field's miss
    (nulled, not rejected) and a value the SQL doubts (`ß` upper-cases differently): the compiled
    route writes these rejects from SQL, and they must equal map_frame's."""
    rows = [
        ("1", "A1", "O", "E", "h", "05.01.2024 10:00"),      # mapped
        ("2", "A2", "X", "E", "h", "2024-01-05 10:00"),      # status unmapped
        ("3", " ", "O", "E", "h", ""),                       # case_number blank: missing_required
        ("4", "", "Q", "Z", "zz", "31.04.2024 10:00"),       # four failures (31 April), one lenient: rejected
        ("5", "A5", "O", "Z", "L", " 20240105 "),            # a lenient miss, and a datetime in neither format
        ("6", "A6", "", "E", "h", "soon"),                   # status missing, opened_at refused
        ("7", "A7", "Y", "E", "ß", "05.01.2024 10:00"),      # unmapped, but priority in doubt: map_frame decides
        ("8", "A8", "{value}x", "E", "", "2024-13-01 10:00"),  # a template-looking code, month 13
        ("9", "A9", "O", "E", "h", "05.01.2024 1O:00"),      # a letter O in the hour: refused
        ("10", "A10", "O", "E", "h", "05.01.2024 10:00 é"),  # not ASCII: map_frame decides the date
    ]
    lines = ["ID,NUM,ST,CH,PRI,AT"] + [",".join(r) for r in rows]
    routes = map_both_routes(project(tmp_path, "\n".join(lines) + "\n", CERTAIN), tmp_path / "run")
    (compiled, _), (reference, _) = routes["outs"][True], routes["outs"][False]
    assert_same_files(compiled, reference)
    rejects = _read(compiled / "rejects" / "support_case" / "s.c.parquet").set_index("_source_key")
    assert sorted(rejects.index, key=int) == ["2", "3", "4", "5", "6", "7", "8", "9", "10"]
    assert rejects.loc["4", "message"] == (
        "case_number: a value is required; status: 'Q' is not in the value map (O, C, Q); "
        "channel: 'Z' is not in the value map (E, P); priority: 'zz' is not in the value map (H, L); "
        "opened_at: '31.04.2024 10:00' is not a valid datetime (formats: %d.%m.%Y %H:%M, %Y-%m-%d %H:%M)")
    assert rejects.loc["8", "message"].startswith("status: '{value}x' is not in the value map (O, C, {value}x); ")
    assert rejects.loc["2", "raw"] == '{"ID":"2","NUM":"A2","ST":"X","CH":"E","PRI":"h","AT":"2024-01-05 10:00"}'
    consents = _read(compiled / "rejects" / "marketing_consent" / "s.c.parquet").set_index("_source_key")
    assert consents.loc["9", "message"] == \
        "consented_on: '05.01.2024 1O:00' is not a valid date (formats: %d.%m.%Y %H:%M, %Y%m%d)"

    mapping = next(iter(routes["project"].mappings.values()))
    extract = tmp_path / "run" / "extract" / "s.c.parquet"

    def flags(entity: int) -> dict[str, tuple[bool, bool]]:
        sql = compile_entity(mapping.entities[entity], mapping)
        assert sql is not None
        table = f"read_parquet('{extract}')"
        return {i: (s, r) for i, s, r in duckdb.sql(
            f"SELECT ID, {sql.sure}, {sql.reject} FROM {sql.over(table)}").fetchall()}

    sure, certain, doubt = (True, False), (False, True), (False, False)
    assert flags(0) == {"1": sure, "2": certain, "3": certain, "4": certain, "5": certain, "6": certain,
                        "7": doubt, "8": certain, "9": certain, "10": doubt}
    assert flags(2) == {"1": sure, "2": certain, "3": sure, "4": certain, "5": certain, "6": certain, "7": sure,
                        "8": certain, "9": certain, "10": doubt}


TYPED = """\
spec_version: 1
kind: mapping
system: s
department: sales
default_region: GB
sources:
  c: {format: csv, path: c.csv, key: [ID]}
entities:
  - entity: contact
    from: c
    fields:
      last_name: {column: ID}
  - entity: order
    from: c
    fields:
      order_number: {column: ID}
      ordered_on: {constant: 2024-01-05}
  - entity: order_line
    from: c
    links: {order: {source: c, column: ID}}
    fields:
      line_no: {column: N}
      quantity: {column: Q}
      unit_price: {column: P, decimal_mark: ","}
  - entity: marketing_consent
    from: c
    links: {contact: self}
    fields:
      channel: {constant: email}
      opted_in: {column: B}
"""


def test_numbers_and_flags_the_sql_refuses_are_written_as_map_frame_writes_them(tmp_path: Path) -> None:
    """Integers, decimals without a digit and ASCII non-flags are certain rejects, written by SQL;
    a decimal with too many places and a non-ASCII flag are left to map_frame."""
    rows = [
        ("1", "1", "2", "12,50", "ja"),        # mapped
        ("2", "x", "2", "1,5", "yes"),         # line_no refused
        ("3", "1", "2.5", "n/a", "nein"),      # quantity and unit_price refused
        ("4", "1", "1", "12,345", "maybe"),    # unit_price needs rounding (map_frame decides); opted_in refused
        ("5", "٣", "1", "1", ""),              # a non-ASCII digit refused; opted_in missing
        ("6", " 7 ", "+3", "-", "İ"),          # unit_price refused; a non-ASCII flag (map_frame decides)
    ]
    lines = ["ID,N,Q,P,B"] + [",".join(f'"{v}"' for v in r) for r in rows]
    routes = map_both_routes(project(tmp_path, "\n".join(lines) + "\n", TYPED), tmp_path / "run")
    (compiled, _), (reference, _) = routes["outs"][True], routes["outs"][False]
    assert_same_files(compiled, reference)
    lines_out = _read(compiled / "rejects" / "order_line" / "s.c.parquet").set_index("_source_key")
    assert sorted(lines_out.index, key=int) == ["2", "3", "4", "5", "6"]
    assert lines_out.loc["3", "message"] == ("quantity: '2.5' is not a valid int; "
                                             "unit_price: 'n/a' is not a valid Decimal")

    mapping = next(iter(routes["project"].mappings.values()))
    table = f"read_parquet('{tmp_path / 'run' / 'extract' / 's.c.parquet'}')"

    def flags(entity: int) -> dict[str, tuple[bool, bool]]:
        sql = compile_entity(mapping.entities[entity], mapping)
        assert sql is not None
        return {i: (s, r) for i, s, r in duckdb.sql(
            f"SELECT ID, {sql.sure}, {sql.reject} FROM {sql.over(table)}").fetchall()}

    sure, certain, doubt = (True, False), (False, True), (False, False)
    assert flags(2) == {"1": sure, "2": certain, "3": certain, "4": doubt, "5": certain, "6": certain}
    assert flags(3) == {"1": sure, "2": sure, "3": sure, "4": certain, "5": certain, "6": doubt}


# Values that land on every kind of row: sure, certainly rejected (each reason), and in doubt.
VALUES = [v for v in HOSTILE if v is not None and "\x00" not in v] + NUMBERS + [
    "E", "P", "O", "C", "H", "L", "AC", "x", "p", "o", "ja", "nein", "1", "2", "true", "05.01.2024 10:00",
    "2024-01-05 10:00", "20240105", "31/01/2024", "2024-01-31", "31.03.2024 02:30", "27.10.2024 02:30"]


@pytest.mark.parametrize("seed", [1, 2])
def test_any_table_the_compiled_route_writes_what_map_frame_writes(seed: int) -> None:
    """Certain rejects are claims about map_frame: on generated hostile tables every file (mapped,
    rejects with their failures and raw records, skipped, nulled) must equal the reference's."""
    rng = random.Random(seed)
    for mapping, columns in ((CERTAIN, ["NUM", "ST", "CH", "PRI", "AT"]), (TYPED, ["N", "Q", "P", "B"]),
                             (INTERLEAVED, ["NAME", "PHONE", "CH"])):
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(["ID", *columns])
        writer.writerows([str(i), *(rng.choice(VALUES) for _ in columns)] for i in range(400))
        with tempfile.TemporaryDirectory() as tmp:
            routes = map_both_routes(project(Path(tmp), text.getvalue(), mapping), Path(tmp) / "run")
            (compiled, compiled_counts), (reference, reference_counts) = routes["outs"][True], routes["outs"][False]
            assert compiled_counts == reference_counts
            assert_same_files(compiled, reference)


def _spec_project(folder: Path, index: int, rng: random.Random) -> Path:
    """test_sql.MAPPINGS[index] as a project (with the parent entities its links need) over
    generated hostile `r.csv` and `o.csv`."""
    doc = MAPPINGS[index].model_dump(mode="json", by_alias=True, exclude_none=True)
    froms = {e["from"] for e in doc["entities"]}
    links = [link for e in doc["entities"] for link in (e.get("links") or {}).values()]
    if any(link.get("source") == "other" for link in links) and "other" not in froms:
        doc["entities"].append({"entity": "contact", "from": "other", "fields": {"last_name": {"column": "ID"}}})
    elif "other" not in froms:
        doc["sources"].pop("other")
    if any(link.get("source") == "self" for link in links) and all(e["entity"] != "contact" for e in doc["entities"]):
        doc["entities"].append({"entity": "contact", "from": "rows", "fields": {"last_name": {"column": "ID"}}})
    (folder / "mappings").mkdir(parents=True)
    (folder / "crmmigrate.yml").write_text(SETTINGS)
    (folder / "mappings" / "s.yml").write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    for name in ("r.csv", "o.csv"):
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(["ID", "A", "B", "C", "D"])
        writer.writerows([str(i), *(rng.choice(VALUES) for _ in range(4))] for i in range(200))
        (folder / name).write_text(text.getvalue())
    return folder


@pytest.mark.parametrize("index", range(len(MAPPINGS)))
def test_any_table_the_compiled_route_writes_what_map_frame_writes_for_every_rule(tmp_path: Path, index: int) -> None:
    """The same, for the mappings test_sql checks row by row: split names, decimals in cents and
    with a decimal comma, dates, naive times in Europe/Berlin, zfill, splits, links."""
    routes = map_both_routes(_spec_project(tmp_path / "project", index, random.Random(index)), tmp_path / "run")
    (compiled, compiled_counts), (reference, reference_counts) = routes["outs"][True], routes["outs"][False]
    assert compiled_counts == reference_counts
    assert_same_files(compiled, reference)


def test_raw_columns_that_differ_only_in_case_are_mapped_not_a_crash(tmp_path: Path) -> None:
    # DuckDB's names ignore case: `NAME` and `name` would be one column to it (struct_pack refused them).
    contact = MAPPING.split("  - entity: support_case")[0]  # the edge cases' mapping, its contact alone
    mapping = contact.replace("      email: {column: MAIL, transform: [email]}\n", "      first_name: name\n")
    routes = map_both_routes(project(tmp_path, "ID,name,NAME,Id\n1,a,b,x\n2,,c,y\n", mapping), tmp_path / "run")
    (compiled, _), (reference, _) = routes["outs"][True], routes["outs"][False]
    assert_same_files(compiled, reference)
    mapped = _read(compiled / "mapped" / "contact" / "s.c.parquet").sort_values("_source_key")
    assert mapped[["last_name", "first_name"]].values.tolist() == [["b", "a"], ["c", None]]


def test_both_routes_count_the_values_each_transform_changed(both_routes: dict) -> None:
    """(The counts of both routes are held equal above.) The demo's sales names are upper-case
    surnames title-cased, its e-mails are lower-cased: so each route must have counted some."""
    counts = both_routes["outs"][True][1][("sales.contacts", "contact")]["transformed"]
    assert counts["last_name/title"] > 0 and counts["email/email"] > 0
    assert all(n > 0 for n in counts.values())


PYTHON_ONLY = """\
spec_version: 1
kind: mapping
system: s
department: sales
sources:
  c: {format: csv, path: c.csv, key: [ID]}
entities:
  - entity: contact
    from: c
    fields:
      last_name: {column: NAME, transform: [trim, title]}
      first_name: {column: FIRST, transform: [reverse_for_test]}
      email: {column: MAIL, transform: [email]}
"""


def test_a_rule_with_only_python_costs_its_field_not_its_entity_and_says_so(tmp_path: Path) -> None:
    """A user's transform has no SQL half: its field is mapped by map_frame on every row, with the
    other fields handed over as DuckDB computed them; run.json's route names the field and why."""
    from crmmigrate.transforms import _REGISTRY, register_transform

    @register_transform("reverse_for_test", changed="reversed")
    def reverse(values: pd.Series) -> pd.Series:
        return values.map(lambda v: v[::-1], na_action="ignore")

    try:
        lines = ["ID,NAME,FIRST,MAIL"] + [f"{i}, smith{i} ,ann{i},A{i}@X.DE" for i in range(300)] + ["300,x,,bad"]
        routes = map_both_routes(project(tmp_path, "\n".join(lines) + "\n", PYTHON_ONLY), tmp_path / "run")
    finally:
        del _REGISTRY["reverse_for_test"]
    (compiled, compiled_counts), (reference, reference_counts) = routes["outs"][True], routes["outs"][False]
    assert compiled_counts == reference_counts
    assert_same_files(compiled, reference)
    route = routes["routes"][True][("s.c", "contact")]
    assert route["engine"] == "duckdb" and list(route["python_fields"]) == ["first_name"]
    assert "reverse_for_test" in route["python_fields"]["first_name"]
    assert (route["sure"], route["doubtful"]) == (0, 301)  # every row waits for its first name
    assert routes["routes"][False][("s.c", "contact")] == {"engine": "python",
                                                           "reason": "the reference route was asked for"}
    counts = compiled_counts[("s.c", "contact")]["transformed"]
    assert counts == {"email/email": 300, "first_name/reverse_for_test": 300, "last_name/title": 301,
                      "last_name/trim": 300}


PHONES = """\
spec_version: 1
kind: mapping
system: s
department: sales
default_region: US
sources:
  c: {format: csv, path: c.csv, key: [ID]}
entities:
  - entity: contact
    from: c
    fields:
      last_name: {column: NAME, transform: [trim]}
      first_name: {column: FIRST, map: {a: Ann, b: Bob}}
      email: {column: MAIL, transform: [email]}
      phone: {column: TEL, transform: [phone]}
      tax_id: {column: TAX, transform: [phone], on_invalid: reject}
  - entity: support_case
    from: c
    fields:
      case_number: {column: ID}
      status: {column: FIRST, map: {a: open, b: closed, x: open}, on_invalid: reject}
      subject: {column: TEL, transform: [phone]}
      opened_at: {column: AT, formats: ['%d.%m.%Y %H:%M']}
"""
# Phones in the US: valid (sure), certainly invalid (refused by the SQL), and in doubt (letters,
# too few digits, a `+` whose digits phonenumbers reads again).
VALID_PHONES = ["(212) 316-5076", "+44 20 8537 9740", "1-212-555-0100", ""]
INVALID_PHONES = ["452.116.5076", "+28 1234 5678", "011 28 1234 5678", "+0 123 4567", "030 1234567"]
DOUBTFUL_PHONES = ["+1 (800) FLOWERS", "12", "+011 49 30 1234567", "tel 555"]


def test_phones_the_sql_refuses_are_nulled_or_rejected_as_map_frame_writes_them(tmp_path: Path) -> None:
    """A lenient phone the SQL knows phonenumbers refuses makes a sure row with the phone empty,
    and its nulled row is written from SQL; the same refusal of a strict field is a certain
    reject listing every failure (the lenient ones too) and then no nulled row. Mixed with a
    lenient value map's miss (certain too), an invalid e-mail (in doubt) and a datetime no format
    reads (certain); each file must equal map_frame's."""
    rows = [
        ("1", "N", "a", "a@b.de", "452.116.5076", "(212) 316-5076", "05.01.2024 10:00"),  # phone nulled
        ("2", "N", "z", "a@b.de", "+28 1234 5678", "", "soon"),              # two nulled; opened_at nulled
        ("3", "N", "a", "a@b.de", "(212) 316-5076", "452.116.5076", "x"),    # tax_id refused: rejected
        ("4", " ", "z", "a@b.de", "030 1234567", "+0 123 4567", ""),         # rejected with every failure
        ("5", "N", "a", "not mail", "452.116.5076", "", ""),                 # e-mail in doubt: map_frame
        ("6", "N", "b", "a@b.de", "+1 (800) FLOWERS", "", ""),               # phone in doubt: map_frame
        ("7", "N", "q", "a@b.de", "12", "011 28 1234 5678", ""),             # rejected, a phone in doubt
    ]
    rng = random.Random(7)
    phones = VALID_PHONES + INVALID_PHONES + DOUBTFUL_PHONES
    for i in range(8, 400):  # every mixture
        rows.append((str(i), rng.choice(["N", " ", "Ann"]), rng.choice(["a", "b", "z", ""]),
                     rng.choice(["a@b.de", "x", ""]), rng.choice(phones), rng.choice(phones + [""] * 6),
                     rng.choice(["05.01.2024 10:00", "soon", ""])))
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows([("ID", "NAME", "FIRST", "MAIL", "TEL", "TAX", "AT"), *rows])
    routes = map_both_routes(project(tmp_path, text.getvalue(), PHONES), tmp_path / "run")
    (compiled, compiled_counts), (reference, reference_counts) = routes["outs"][True], routes["outs"][False]
    assert compiled_counts == reference_counts
    assert_same_files(compiled, reference)
    nulled = _read(compiled / "nulled" / "contact" / "s.c.parquet")
    first = nulled[nulled["_source_key"].isin(["1", "2"])]
    assert first[["_source_key", "field", "rule", "value", "reason_code", "category", "message"]].values.tolist() == [
        ["1", "phone", "phone", "452.116.5076", "invalid_phone", "data", "'452.116.5076' refused by phone"],
        ["2", "first_name", "map", "z", "unmapped_value", "data", "'z' is not in the value map (a, b)"],
        ["2", "phone", "phone", "+28 1234 5678", "invalid_phone", "data", "'+28 1234 5678' refused by phone"]]
    rejects = _read(compiled / "rejects" / "contact" / "s.c.parquet").set_index("_source_key")
    assert rejects.loc["4", "message"] == (
        "last_name: a value is required; first_name: 'z' is not in the value map (a, b); "
        "phone: '030 1234567' refused by phone; tax_id: '+0 123 4567' refused by phone")
    assert rejects.loc["4", "reason_code"] == "missing_required"
    assert rejects.loc["3", "reason_code"] == "invalid_phone"

    mapping = next(iter(routes["project"].mappings.values()))
    table = f"read_parquet('{tmp_path / 'run' / 'extract' / 's.c.parquet'}')"

    def flags(entity: int) -> dict[str, tuple[bool, bool]]:
        sql = compile_entity(mapping.entities[entity], mapping)
        assert sql is not None
        return {i: (s, r) for i, s, r in duckdb.sql(
            f"SELECT ID, {sql.sure}, {sql.reject} FROM {sql.over(table)} WHERE ID::INT < 8").fetchall()}

    sure, certain, doubt = (True, False), (False, True), (False, False)
    assert flags(0) == {"1": sure, "2": sure, "3": certain, "4": certain, "5": doubt, "6": doubt, "7": doubt}
    assert flags(1) == {"1": sure, "2": certain, "3": sure, "4": certain, "5": sure, "6": doubt, "7": doubt}
    counts = compiled_counts[("s.c", "contact")]
    assert counts["nulled"] > 100 and counts["rejects"] > 100 and counts["mapped"] > 50
