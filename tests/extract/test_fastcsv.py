"""The DuckDB CSV route against the per-record Python route: on every file the two must write the
same rows (values, keys, line numbers, hashes) and the same rejects, and well-formed files must
actually take the DuckDB route (else the comparison would hold trivially)."""

from __future__ import annotations

import random
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmmigrate.extract import extract_source, fastcsv
from crmmigrate.extract.csvfile import CsvReader
from crmmigrate.extract.lineage import key_sql, row_hash, row_hash_sql, row_hashes, source_key
from crmmigrate.sqltext import WHITESPACE
from crmmigrate.spec import load_project
from crmmigrate.spec.model import CsvSource
from tests.extract.test_csvfile import CASES, GENERATOR


def project_for(folder: Path, data: bytes, key: str = "[ID]", extra: str = "") -> object:
    (folder / "crmmigrate.yml").write_text("spec_version: 1\nkind: project\nname: t\nchunk_rows: 3\n")
    (folder / "mappings").mkdir(exist_ok=True)
    (folder / "mappings" / "shop.yml").write_text(
        "spec_version: 1\nkind: mapping\nsystem: shop\ndepartment: sales\n"
        f"sources:\n  people:\n    format: csv\n    path: people.csv\n    key: {key}\n{extra}"
        "entities:\n  - entity: account\n    from: people\n    fields:\n      name: ID\n")
    (folder / "people.csv").write_bytes(data)
    return load_project(folder)


@pytest.fixture
def routes(monkeypatch: pytest.MonkeyPatch):
    """Extract with each route; returns (fast stats, fast rows, fast rejects, slow ..., took DuckDB route)."""
    taken: list[bool] = []
    real = fastcsv.read_csv

    def spy(*args, **kwargs):
        result = real(*args, **kwargs)
        taken.append(result is not None)
        return result

    monkeypatch.setattr(fastcsv, "read_csv", spy)

    def run(folder: Path, data: bytes, **kw: str):
        project = project_for(folder, data, **kw)
        outcomes = []
        for fast in (True, False):
            out = folder / ("fast" if fast else "slow")
            out.mkdir(exist_ok=True)
            stats = extract_source(project, project.mappings["shop"], "people", out, fast=fast)
            rows = pd.read_parquet(out / "shop.people.parquet").sort_values("_row_number", ignore_index=True)
            rejects = pd.read_parquet(out / "rejects" / "shop.people.parquet").sort_values(
                "_row_number", ignore_index=True)
            outcomes.append((stats, rows, rejects))
        (fast_stats, fast_rows, fast_rejects), (slow_stats, slow_rows, slow_rejects) = outcomes
        assert fast_stats == slow_stats
        pd.testing.assert_frame_equal(fast_rows, slow_rows)
        pd.testing.assert_frame_equal(fast_rejects, slow_rejects)
        return fast_stats, fast_rows, fast_rejects, bool(taken) and taken[-1]

    return run


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_files_read_the_same_by_both_routes(routes, tmp_path: Path, name: str) -> None:
    case = next(c for c in GENERATOR.cases() if c["name"] == name)
    extra = "".join(f"    {k}: {v!r}\n" for k, v in case["spec"].items())
    routes(tmp_path, case["data"], extra=extra)


def test_a_well_formed_file_with_bad_records_takes_the_duckdb_route(routes, tmp_path: Path) -> None:
    data = (b"ID,NAME,NOTE\r\n"
            b"1,Ann,plain\r\n"             # 2
            b"2,Bob\r\n"                    # 3: too few fields
            b' ,Cy,"a,b"\r\n'              # 4: blank key
            b'3,"Dee ""D""",\r\n'          # 5
            b"4,Eve,x,y\r\n"               # 6: too many fields
            b"5,\xc3\x9cmit,=SUM(A1)\r\n"  # 7
            b'6,"",""\r\n'                 # 8: quoted empties are missing values
            b"7,  Gus  ,tail")             # 9: no final line break
    stats, rows, rejects, fast = routes(tmp_path, data)
    assert fast
    assert rows["_row_number"].tolist() == [2, 5, 7, 8, 9]
    assert rows["NAME"].tolist() == ["Ann", 'Dee "D"', "Ümit", None, "  Gus  "]
    assert rows["NOTE"].tolist() == ["plain", None, "=SUM(A1)", None, "tail"]
    assert rejects[["_row_number", "reason_code"]].values.tolist() == [
        [3, "malformed_row"], [4, "missing_key"], [6, "malformed_row"]]
    assert rejects["raw"].tolist()[1] == ' ,Cy,"a,b"\r\n'
    assert (stats["records_in"], stats["extracted"], stats["rejected"]) == (8, 5, 3)


def test_files_the_duckdb_route_may_not_read_take_the_python_route(routes, tmp_path: Path) -> None:
    for i, data in enumerate([b'ID,N\n1,a, "b"\n', b"ID,N\n1,a\n\n2,b\n", b'ID,N\n1,"x\ny"\n',
                              b"ID,N\n1,a\rb\n", b"ID,N\n1,\xff\n", b"ID,N\n1,a\x00\n"]):
        folder = tmp_path / str(i)
        folder.mkdir()
        assert not routes(folder, data)[3], data


def test_row_number_keys_and_many_refused_lines(routes, tmp_path: Path) -> None:
    rng = random.Random(5)
    lines = [b"ID,NAME"]
    for i in range(1, 400):
        lines.append(b"%d,n%d" % (i, i) if rng.random() > 0.2 else b"%d" % i)
    stats, rows, _, fast = routes(tmp_path, b"\n".join(lines) + b"\n", key="row_number")
    assert fast
    assert rows["_source_key"].tolist() == [str(n) for n in rows["_row_number"]]


FIELD = st.one_of(
    st.text(st.sampled_from(list("ab ,\"'\t|;=-+@é€\u00a0\u3000<>") + ["\U0001f600"]), max_size=6),
    st.sampled_from(["", " ", "1", "007", "x" * 3000]))


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    width = draw(st.integers(1, 4))
    eol = draw(st.sampled_from([b"\n", b"\r\n"]))
    rows = [[f"C{i}" for i in range(width)]]
    for _ in range(draw(st.integers(0, 12))):
        n = draw(st.sampled_from([width, width, width, width - 1, width + 1]))
        rows.append([draw(FIELD) for _ in range(max(n, 1))])
    quoted = draw(st.booleans())

    def cell(v: str) -> str:
        if quoted or any(c in v for c in ',"\r\n'):
            return '"' + v.replace('"', '""') + '"'
        return v

    raw = draw(st.booleans())  # unquoted stray quotes and all: mostly Python-route files
    text = [",".join(v if raw else cell(v) for v in row) for row in rows]
    return eol.join(t.encode("utf-8") for t in text) + (eol if draw(st.booleans()) else b"")


@settings(max_examples=250, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=csv_files())
def test_generated_files_read_the_same_by_both_routes(routes, tmp_path_factory: pytest.TempPathFactory,
                                                      data: bytes) -> None:
    routes(tmp_path_factory.mktemp("gen"), data, key="[C0]")


@pytest.mark.parametrize("data, problem", [
    (b'ID,N\r\n1,"a,b"\r\n2,"c""d"\r\n3,x', None),
    (b'ID,N\r\n1,"a,b"\r\n2,"c\r\nd"\r\n3,x', "a quote that does not enclose a whole field, or a line break inside quotes"),
    (b"ID,N\n1,a,\n", "an empty last field too many (DuckDB would drop it)"),
    (b"ID,N\n1,a,\"\"", "an empty last field too many (DuckDB would drop it)"),
])
def test_line_scan_does_not_depend_on_block_boundaries(tmp_path: Path, data: bytes, problem: str | None) -> None:
    (tmp_path / "f.csv").write_bytes(data)
    reader = CsvReader(tmp_path / "f.csv", CsvSource(format="csv", path="f.csv", key=("ID",)))
    whole, bytewise = fastcsv.LineScan(reader), fastcsv.LineScan(reader)
    whole.feed(data)
    for i in range(len(data)):
        bytewise.feed(data[i:i + 1])
    whole.finish(), bytewise.finish()
    assert whole.problem == bytewise.problem == problem
    if problem is None:
        assert whole.lines == bytewise.lines == 4


def test_the_python_key_equals_the_sql_and_batches_hash_as_duckdb_reads_csv(tmp_path: Path) -> None:
    chars = [chr(c) for c in range(0x3000) if not 0xD800 <= c < 0xE000] + ["\U0001f600", 'a"b', "\\", " x\u3000"]
    rows = pa.table({"a": chars, "b": [None if i % 3 == 0 else c + "z" for i, c in enumerate(chars)]})
    con = duckdb.connect()
    got = con.execute(f"SELECT {key_sql(['a', 'b'])}, {key_sql(['b'])} FROM rows").fetchall()
    assert got == [(source_key({"a": a, "b": b}, ["a", "b"]), source_key({"b": b}, ["b"]))
                   for a, b in zip(rows["a"].to_pylist(), rows["b"].to_pylist())]
    assert set(WHITESPACE) == {chr(c) for c in range(0x110000) if chr(c).isspace()}
    # The per-record routes hash Arrow batches; the DuckDB route hashes what its CSV reader parsed.
    path = tmp_path / "rows.csv"
    con.execute(f"COPY rows TO '{path}' (FORMAT csv, HEADER)")
    read = con.execute(f"SELECT a, b, {row_hash_sql(['a', 'b'])} FROM read_csv('{path}', all_varchar=true)").fetchall()
    assert [(a, b) for a, b, _ in read] == list(zip(rows["a"].to_pylist(), rows["b"].to_pylist()))
    assert [h for _, _, h in read] == row_hashes([rows["a"], rows["b"]], rows.num_rows).to_pylist()
    assert row_hash(["a", None]) != row_hash(["a", ""]) != row_hash(["", "a"])



def test_wide_rows_hash_alike_in_sql_and_in_batches() -> None:
    """The per-record routes hand DuckDB one list column (binding thousands of arguments was slow)."""
    width = 3000
    rows = pa.table({f"c{i}": [None, "", str(i), "é" * (i % 3)] for i in range(width)})
    con = duckdb.connect()
    sql = [h for (h,) in con.execute(f"SELECT {row_hash_sql(rows.column_names)} FROM rows").fetchall()]
    assert sql == row_hashes(rows.columns, rows.num_rows).to_pylist() and len(set(sql)) == 4

def test_a_line_longer_than_duckdb_reads_is_read_by_python(routes, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fastcsv, "MAX_LINE_BYTES", 4096)
    monkeypatch.setattr(fastcsv, "BUFFER_BYTES", 16384)
    data = b"ID,NOTE\n" + b"".join(b"%d,%s\n" % (i, b"x" * (9000 if i == 3 else 10)) for i in range(1, 50))
    stats, rows, rejects, fast = routes(tmp_path, data)
    # DuckDB refuses the line, and was seen to hand the rows before it over last: the whole file is Python's.
    assert not fast and stats["extracted"] == 49 and rows["NOTE"].str.len().max() == 9000
    assert rows["_row_number"].tolist() == list(range(2, 51))


@pytest.mark.parametrize("data", [
    b"ID,N\n1,\r\nx\n3,c\n",      # after `\n`, DuckDB counts `1,\r\n` as two lines: later numbers off by one
    b'ID,N\n1,""\r\nx\n3,c\n',
    b"ID,N\r\n1,a\n2,b\r\n",
])
def test_a_file_mixing_crlf_and_lf_line_ends_is_read_by_python(routes, tmp_path: Path, data: bytes) -> None:
    stats, rows, rejects, fast = routes(tmp_path, data)
    assert not fast


def line_by_line(reader: CsvReader, data: bytes) -> str | None:
    """LineScan's rules stated plainly, one line at a time: the reference for its numpy form."""
    unterminated = bool(data) and not data.endswith(b"\n")
    if unterminated:
        data += b"\n"  # the last line, as LineScan.finish() closes it (its end is not counted as one)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "not valid UTF-8"
    if b"\x00" in data:
        return "NUL byte"
    ends = [line.endswith(b"\r") for line in data.split(b"\n")[:-1]][:-1 if unterminated else None]
    if any(ends) and not all(ends):
        return "both CRLF and LF line ends"
    lines = [line.removesuffix(b"\r") for line in data.split(b"\n")[:-1]]
    if any(len(line) + 2 > fastcsv.MAX_LINE_BYTES for line in lines):
        return f"a line over {fastcsv.MAX_LINE_BYTES:,} bytes"
    checks = [
        (lambda line: b"\r" in line, "carriage return inside a line"),
        (lambda line: line == b"", "blank line"),
        (lambda line: reader.quote in line and not (
            (line.count(reader.quote) == 2 and _two_quotes_enclose_a_field(line, reader.quote, reader.delimiter))
            or (line.count(reader.quote) != 2 and reader.closed_line.fullmatch(line))),
         "a quote that does not enclose a whole field, or a line break inside quotes"),
        (lambda line: line.endswith((reader.delimiter, reader.delimiter + reader.quote * 2))
         and reader.fields(line) != len(reader.header), "an empty last field too many (DuckDB would drop it)"),
    ]
    return next((problem for failed, problem in checks if any(failed(line) for line in lines)), None)


def _two_quotes_enclose_a_field(line: bytes, quote: bytes, delimiter: bytes) -> bool:
    first = line.index(quote)
    last = line.index(quote, first + 1)
    return (first == 0 or line[first - 1:first] == delimiter) and \
        (last == len(line) - 1 or line[last + 1:last + 2] == delimiter)


HOSTILE = st.sampled_from([b"\r", b"\n", b"\r\n", b"\x00", b"\xff", b'"', b',', b',""', b' "a"'])


@settings(max_examples=400, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=csv_files(), cuts=st.lists(st.tuples(st.integers(0, 10_000), HOSTILE), max_size=3),
       block=st.integers(1, 97))
def test_line_scan_decides_as_its_rules_stated_line_by_line(tmp_path: Path, data: bytes,
                                                             cuts: list[tuple[int, bytes]], block: int) -> None:
    if b"\n" not in data:
        data += b"\n"
    header_end = data.index(b"\n") + 1
    for at, bytes_ in cuts:  # a stray byte or two somewhere, past the header
        at = header_end + at % (len(data) - header_end + 1)
        data = data[:at] + bytes_ + data[at:]
    (tmp_path / "f.csv").write_bytes(data)
    reader = CsvReader(tmp_path / "f.csv", CsvSource(format="csv", path="f.csv", key=("C0",)))
    whole, pieces = fastcsv.LineScan(reader), fastcsv.LineScan(reader)
    whole.feed(data)
    for at in range(0, len(data), block):  # blocks that cut lines (and characters) anywhere
        pieces.feed(data[at:at + block])
    whole.finish(), pieces.finish()
    expected = line_by_line(reader, data)
    # Which problem is named may differ (the scan stops at the first block with one), not whether there is one.
    for scan in (whole, pieces):
        assert (scan.problem is None) == (expected is None), (scan.problem, expected)
    if expected is None:
        assert whole.lines == pieces.lines == data.count(b"\n") + (not data.endswith(b"\n"))


@pytest.mark.parametrize("data", [b'ID,N\n1,""\r,"\n0\n', b'ID,N\n\r,"\n"\n\n9\n', b"ID,N\n1,a\rb\n2,\r\n"])
def test_a_lone_carriage_return_is_counted_as_the_splitter_reads_it(routes, tmp_path: Path, data: bytes) -> None:
    # records_in is counted by the csv module, apart from the splitter; it ended a record at a lone CR.
    stats, *_ = routes(tmp_path, data)
    assert stats["records_in"] == stats["extracted"] + stats["rejected"]


@pytest.mark.parametrize("data", [b"ID,_source_key\n1,a\n", b"ID,a~2,a,a\n1,a,b,c\n", b"ID,Id,iD\n1,a,b\n"])
def test_headers_that_collide_with_made_up_or_lineage_names_are_read_not_a_crash(routes, tmp_path: Path,
                                                                                 data: bytes) -> None:
    stats, rows, _, _ = routes(tmp_path, data)
    assert stats["extracted"] == 1 and rows["ID"].tolist() == ["1"]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])
def test_a_byte_order_mark_inside_the_file_is_a_character(routes, tmp_path: Path, encoding: str) -> None:
    # Only the file's start may carry a BOM; in a record it is U+FEFF, whichever UTF-8 the source names.
    stats, rows, _, _ = routes(tmp_path, b"\xef\xbb\xbfID,N\n\xef\xbb\xbf1,a\n", extra=f"    encoding: {encoding}\n")
    assert rows["_source_key"].tolist() == ["\ufeff1"] and list(rows.columns[:2]) == ["ID", "N"]



def test_a_file_with_carriage_returns_for_line_ends_is_not_held_whole(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # Old Mac exports end lines with CR alone: for the scan that is one endless line.
    monkeypatch.setattr(fastcsv, "MAX_LINE_BYTES", 4096)
    (tmp_path / "f.csv").write_bytes(b"ID,N\n")
    reader = CsvReader(tmp_path / "f.csv", CsvSource(format="csv", path="f.csv", key=("ID",)))
    scan = fastcsv.LineScan(reader)
    for _ in range(100):
        scan.feed(b"1,a\r" * 500)
    assert scan.problem == "a line over 4,096 bytes" and scan._carry == b""


@pytest.mark.parametrize("width", [4094, 4095])
def test_the_longest_line_is_decided_alike_wherever_a_block_ends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  width: int) -> None:
    # A line of MAX_LINE_BYTES - 2 bytes is DuckDB's longest; one more is not, in any blocks (a block
    # ending between the line's \r and \n once counted the \r into the line).
    monkeypatch.setattr(fastcsv, "MAX_LINE_BYTES", 4096)
    data = b"ID,N\r\n" + b"1," + b"x" * (width - 2) + b"\r\n2,y\r\n"
    (tmp_path / "f.csv").write_bytes(data)
    reader = CsvReader(tmp_path / "f.csv", CsvSource(format="csv", path="f.csv", key=("ID",)))
    problems = set()
    for cut in range(len(data) + 1):
        scan = fastcsv.LineScan(reader)
        scan.feed(data[:cut]), scan.feed(data[cut:]), scan.finish()
        problems.add(scan.problem)
    assert problems == ({None} if width == 4094 else {"a line over 4,096 bytes"})


@pytest.mark.parametrize("lines", [3000, 2])
def test_wide_records_make_small_row_groups_on_both_routes(routes, tmp_path: Path, lines: int,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A row group is read whole (DuckDB allocates one block for it): its size follows the bytes of
    its rows, not a fixed row count. 100 columns of 40 characters in 65,536-row groups made the
    map stage run out of memory."""
    import pyarrow.parquet as pq

    import crmmigrate.rundir as rundir

    monkeypatch.setattr(rundir, "ROW_GROUP_BYTES", 64 << 10)
    monkeypatch.setattr(fastcsv, "ROW_GROUP_BYTES", 64 << 10)
    header = "ID," + ",".join(f"C{i}" for i in range(20))
    body = "".join(f"{n}," + ",".join(f"{n:05d}{'x' * 35}" for _ in range(20)) + "\n" for n in range(lines))
    routes(tmp_path, (header + "\n" + body).encode())
    for route in ("fast", "slow"):
        meta = pq.ParquetFile(tmp_path / route / "shop.people.parquet").metadata
        assert meta.num_rows == lines
        sizes = [meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)]
        assert max(sizes) < 2 * (64 << 10) and (lines < 100 or len(sizes) > 20), (route, sizes)
    if lines > 100:  # DuckDB's batches too: here at their floor
        assert fastcsv._batch_rows(tmp_path / "people.csv") == 1024  # noqa: SLF001


def test_very_long_lines_take_the_per_record_route_whose_memory_the_chunk_bounds(routes, tmp_path: Path) -> None:
    """DuckDB parses 2,048 rows at a time whatever their width: 60 KB lines would need ~700 MB."""
    body = "".join(f"{n}," + "y" * 60_000 + "\n" for n in range(20))
    *_, took_duckdb = routes(tmp_path, ("ID,TEXT\n" + body).encode())
    assert not took_duckdb
    assert not fastcsv.fits_memory(tmp_path / "people.csv")
