"""Readers on small literal files: every physical record comes out exactly once, as values or as a
reject with its line; `count_records()` (a second, independent route) agrees; iterating twice
gives the same records."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from crmmigrate.errors import SourceError
from crmmigrate.extract.readers import RawRecord, Reader, as_text, open_reader, unique_header
from crmmigrate.spec.model import CsvSource, JsonSource, SqlSource, XlsxSource


def read(reader: Reader) -> list[RawRecord]:
    """All records, checked against the reader's invariants first."""
    first = list(reader.records())
    assert reader.count_records() == len(first), "records in != extracted + rejected"
    assert list(reader.records()) == first, "a second iteration differs"
    return first


def rows(records: list[RawRecord]) -> list[tuple[int, list[str | None] | None, str | None]]:
    return [(r.row_number, r.values, None if r.reason is None else str(r.reason)) for r in records]


def csv_reader(tmp_path: Path, data: bytes, **spec: object) -> Reader:
    path = tmp_path / "in.csv"
    path.write_bytes(data)
    return open_reader(path, CsvSource(format="csv", path="in.csv", key=("ID",), **spec), 2)


@pytest.mark.parametrize("eol", [b"\n", b"\r\n"])
def test_csv_line_endings(tmp_path: Path, eol: bytes) -> None:
    reader = csv_reader(tmp_path, eol.join([b"ID,NAME", b"1,Ann", b"2,Bob", b""]))
    assert reader.header == ["ID", "NAME"]
    assert rows(read(reader)) == [(2, ["1", "Ann"], None), (3, ["2", "Bob"], None)]


def test_csv_last_line_without_newline(tmp_path: Path) -> None:
    assert rows(read(csv_reader(tmp_path, b"ID,NAME\n1,Ann\n2,Bob"))) == [(2, ["1", "Ann"], None), (3, ["2", "Bob"], None)]


def test_csv_quoted_embedded_newline_keeps_its_first_line_number(tmp_path: Path) -> None:
    data = b'ID,NOTE\r\n1,"two\r\nlines"\r\n2,"say ""hi"""\r\n3,"a ""quote""\nacross, lines"\r\n4,end\r\n'
    assert rows(read(csv_reader(tmp_path, data))) == [
        (2, ["1", "two\r\nlines"], None),
        (4, ["2", 'say "hi"'], None),
        (5, ["3", 'a "quote"\nacross, lines'], None),
        (7, ["4", "end"], None),
    ]


def test_csv_stray_quote_inside_a_field_is_text(tmp_path: Path) -> None:
    # A quote that does not start a field is literal (as in Python's csv module); it must not
    # swallow the following records into one reject.
    data = b'ID,ITEM\n1,5" screen\n2,Bob\n3,Carl\n'
    assert rows(read(csv_reader(tmp_path, data))) == [
        (2, ["1", '5" screen'], None), (3, ["2", "Bob"], None), (4, ["3", "Carl"], None)]


def test_csv_ragged_rows_are_malformed_with_their_line(tmp_path: Path) -> None:
    records = read(csv_reader(tmp_path, b"ID,NAME\n1,Ann\n2\n3,Carl,extra\n4,Dora\n"))
    assert rows(records) == [
        (2, ["1", "Ann"], None), (3, None, "malformed_row"), (4, None, "malformed_row"), (5, ["4", "Dora"], None)]
    assert records[1].message == "record has 1 fields, the header has 2"
    assert records[2].message == "record has 3 fields, the header has 2"
    assert records[2].raw == "3,Carl,extra\n"


def test_csv_blank_line_and_unterminated_quote(tmp_path: Path) -> None:
    records = read(csv_reader(tmp_path, b'ID,NAME\n1,Ann\n\n2,"Bob\n'))
    assert rows(records) == [(2, ["1", "Ann"], None), (3, None, "malformed_row"), (4, None, "malformed_row")]
    assert records[1].message == "blank line"


def test_csv_empty_field_is_missing(tmp_path: Path) -> None:
    assert rows(read(csv_reader(tmp_path, b'ID,NAME,CITY\n1,,""\n'))) == [(2, ["1", None, None], None)]


def test_csv_undecodable_bytes_reject_only_their_record(tmp_path: Path) -> None:
    records = read(csv_reader(tmp_path, b"ID,NAME\n1,J\xfcrgen\n2,Bob\n"))
    assert rows(records) == [(2, None, "undecodable"), (3, ["2", "Bob"], None)]
    assert records[0].message == "not valid utf-8 at byte 3"
    assert records[0].raw == "1,J\\xfcrgen\n"


def test_csv_cp1252_and_semicolons(tmp_path: Path) -> None:
    data = "ID;NAME;NOTE\n1;Müller, Jürgen;€ 5\n".encode("cp1252")
    reader = csv_reader(tmp_path, data, encoding="cp1252", delimiter=";")
    assert rows(read(reader)) == [(2, ["1", "Müller, Jürgen", "€ 5"], None)]


def test_csv_utf8_bom_is_not_part_of_the_first_column(tmp_path: Path) -> None:
    reader = csv_reader(tmp_path, "ID,NAME\n1,Ann\n".encode("utf-8-sig"))
    assert reader.header == ["ID", "NAME"]
    assert rows(read(reader)) == [(2, ["1", "Ann"], None)]


def test_csv_duplicate_header_names(tmp_path: Path) -> None:
    reader = csv_reader(tmp_path, b"ID, NAME ,NAME,NAME\n1,a,b,c\n")
    assert reader.header == ["ID", "NAME", "NAME~2", "NAME~3"]
    assert rows(read(reader)) == [(2, ["1", "a", "b", "c"], None)]


def test_csv_header_only_and_empty_file(tmp_path: Path) -> None:
    reader = csv_reader(tmp_path, b"ID,NAME\r\n")
    assert reader.header == ["ID", "NAME"]
    assert read(reader) == []
    reader = csv_reader(tmp_path, b"")
    assert reader.header == []
    assert read(reader) == []


def test_missing_file_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="file not found"):
        open_reader(tmp_path / "nope.csv", CsvSource(format="csv", path="nope.csv", key=("ID",)), 10)


# -- SQLite ------------------------------------------------------------------------------

def sqlite_file(tmp_path: Path) -> Path:
    path = tmp_path / "in.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE CUSTOMERS (ID INTEGER, NAME TEXT, AMOUNT REAL, PAID INTEGER, RAW BLOB)")
    con.executemany("INSERT INTO CUSTOMERS VALUES (?, ?, ?, ?, ?)", [
        (1, "Ann", 12.5, 1, b"\x01\xff"), (2, None, 3.0, 0, None), (3, "Jürgen", None, None, None)])
    con.commit()
    con.close()
    return path


@pytest.mark.parametrize("chunk_rows", [1, 2, 100])
def test_sqlite_table(tmp_path: Path, chunk_rows: int) -> None:
    reader = open_reader(sqlite_file(tmp_path), SqlSource(format="sql", path="x", key=("ID",), table="CUSTOMERS"), chunk_rows)
    assert reader.header == ["ID", "NAME", "AMOUNT", "PAID", "RAW"]
    records = read(reader)
    assert rows(records) == [
        (1, ["1", "Ann", "12.5", "1", "01ff"], None),
        (2, ["2", None, "3", "0", None], None),
        (3, ["3", "Jürgen", None, None, None], None),
    ]
    assert json.loads(records[2].raw) == [3, "Jürgen", None, None, None]


def test_sqlite_query(tmp_path: Path) -> None:
    spec = SqlSource(format="sql", path="x", key=("ID",), query="SELECT ID, NAME AS N FROM CUSTOMERS WHERE ID > 1")
    reader = open_reader(sqlite_file(tmp_path), spec, 10)
    assert reader.header == ["ID", "N"]
    assert rows(read(reader)) == [(1, ["2", None], None), (2, ["3", "Jürgen"], None)]


def test_sqlite_problems_are_source_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="database file not found"):
        open_reader(tmp_path / "nope.sqlite", SqlSource(format="sql", path="x", key=("ID",), table="T"), 10)
    with pytest.raises(SourceError, match="no such table"):
        open_reader(sqlite_file(tmp_path), SqlSource(format="sql", path="x", key=("ID",), table="NOPE"), 10)


# -- JSON --------------------------------------------------------------------------------

def test_json_nested_objects_become_dotted_columns(tmp_path: Path) -> None:
    path = tmp_path / "in.json"
    path.write_text(json.dumps([
        {"id": 1, "requester": {"name": "Ann", "email": "a@x.de"}, "tags": ["a", "b"], "vip": True},
        "not an object",
        {"id": 2, "requester": {"name": "Jürgen", "phone": None}, "score": 1.5},
        [1, 2],
    ], ensure_ascii=False), encoding="utf-8")
    reader = open_reader(path, JsonSource(format="json", path="x", key=("id",)), 10)
    assert reader.header == ["id", "requester.name", "requester.email", "tags", "vip", "requester.phone", "score"]
    records = read(reader)
    assert rows(records) == [
        (1, ["1", "Ann", "a@x.de", '["a", "b"]', "true", None, None], None),
        (2, None, "malformed_row"),
        (3, ["2", "Jürgen", None, None, None, None, "1.5"], None),
        (4, None, "malformed_row"),
    ]
    assert records[1].message == "array item is a str, not an object"
    assert records[1].raw == '"not an object"'


@pytest.mark.parametrize(("text", "message"), [("{\"a\": 1}", "not an array"), ("nope", "not a readable JSON")])
def test_json_that_is_not_an_array(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "in.json"
    path.write_text(text)
    with pytest.raises(SourceError, match=message):
        open_reader(path, JsonSource(format="json", path="x", key=("id",)), 10)


# -- XLSX --------------------------------------------------------------------------------

def xlsx_file(tmp_path: Path) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Subscribers"
    sheet.append(["Title line, not the header"])
    sheet.append(["Name", "Signed Up", "Postcode", "Seen", "Score", None])
    sheet.append(["Ann", dt.date(2024, 1, 31), 1067, dt.datetime(2024, 2, 1, 9, 30), 2.5, None])
    sheet.append([None, None, None, None, None, None])  # an empty row is not a record
    sheet.append(["Bob", dt.datetime(2024, 3, 1), "01067", None, 3.0, None])
    book.save(tmp_path / "in.xlsx")
    return tmp_path / "in.xlsx"


def test_xlsx_dates_and_numbers_as_text(tmp_path: Path) -> None:
    reader = open_reader(xlsx_file(tmp_path), XlsxSource(format="xlsx", path="x", key="row_number",
                                                         sheet="Subscribers", header_row=2), 10)
    assert reader.header == ["Name", "Signed Up", "Postcode", "Seen", "Score"]
    records = read(reader)
    assert rows(records) == [
        (3, ["Ann", "2024-01-31", "1067", "2024-02-01T09:30:00", "2.5"], None),
        (5, ["Bob", "2024-03-01", "01067", None, "3"], None),
    ]
    reader.book.close()


def test_xlsx_values_beyond_the_header_are_malformed(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "S"
    sheet.append(["A", "B"])
    sheet.append(["1", "2"])
    sheet.append(["3", None])
    sheet["D3"] = "stray"
    book.save(tmp_path / "in.xlsx")
    reader = open_reader(tmp_path / "in.xlsx", XlsxSource(format="xlsx", path="x", key="row_number", sheet="S"), 10)
    # Rows come back padded to the sheet's width (4); the header is the named cells only.
    assert reader.header == ["A", "B"]
    records = read(reader)
    assert rows(records) == [(2, ["1", "2"], None), (3, None, "malformed_row")]
    assert records[1].message == "values beyond the header's 2 columns"
    assert records[1].raw == '["3", null, null, "stray"]'
    reader.book.close()


def test_xlsx_unnamed_header_cell_between_named_ones(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "S"
    sheet.append(["A", None, "C"])
    sheet.append([1, 2, 3])
    book.save(tmp_path / "in.xlsx")
    reader = open_reader(tmp_path / "in.xlsx", XlsxSource(format="xlsx", path="x", key="row_number", sheet="S"), 10)
    assert reader.header == ["A", "column_2", "C"]
    assert rows(read(reader)) == [(2, ["1", "2", "3"], None)]
    reader.book.close()


def test_xlsx_unknown_sheet(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no sheet named 'Nope'; sheets: Subscribers"):
        open_reader(xlsx_file(tmp_path), XlsxSource(format="xlsx", path="x", key="row_number", sheet="Nope"), 10)


# -- helpers -----------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "text"), [
    (None, None), (True, "true"), (False, "false"), (3.0, "3"), (2.5, "2.5"), (7, "7"), ("", ""),
    (dt.datetime(2024, 1, 2), "2024-01-02"), (dt.datetime(2024, 1, 2, 3, 4), "2024-01-02T03:04:00"),
    (dt.date(2024, 1, 2), "2024-01-02"), (b"\x00\xff", "00ff"), ({"b": 1, "a": "ü"}, '{"a": "ü", "b": 1}'),
])
def test_as_text(value: object, text: str | None) -> None:
    assert as_text(value) == text


def test_unique_header() -> None:
    assert unique_header(["A", "B", "A", " A", "B"]) == ["A", "B", "A~2", "A~3", "B~2"]
    # A made-up name never takes a real column's, and lineage names are crmmigrate's own.
    assert unique_header(["ID", "a~2", "a", "a"]) == ["ID", "a~2", "a", "a~3"]
    assert unique_header(["ID", "_source_key", "_row_hash"]) == ["ID", "_source_key~2", "_row_hash~2"]
    # A blank name is made up from its position, and never takes a real one.
    assert unique_header(["id", "", " "]) == ["id", "column_2", "column_3"]
    assert unique_header(["id", "", "column_2"]) == ["id", "column_2~2", "column_2"]


# -- failures met while reading ------------------------------------------------------------

def test_xlsx_cell_openpyxl_cannot_read_is_an_error_naming_its_row(tmp_path: Path) -> None:
    import zipfile

    book = openpyxl.Workbook()
    book.active.title = "S"
    for row in (["Id", "Postcode"], ["1", 800], ["2", 801]):
        book.active.append(row)
    book.save(tmp_path / "ok.xlsx")
    with zipfile.ZipFile(tmp_path / "ok.xlsx") as src, zipfile.ZipFile(tmp_path / "in.xlsx", "w") as dst:
        for item in src.infolist():  # the number cell of row 3 holds text no number parser reads
            data = src.read(item.filename)
            dst.writestr(item, data.replace(b"<v>801</v>", b"<v>abc</v>") if "worksheets/" in item.filename else data)
    reader = open_reader(tmp_path / "in.xlsx", XlsxSource(format="xlsx", path="x", key=("Id",), sheet="S"), 10)
    with pytest.raises(SourceError, match=r"in.xlsx`: sheet 'S': a row after row 2 cannot be read \(ValueError"):
        list(reader.records())


def test_xlsx_empty_header_row_above_values_is_an_error(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    book.active.title = "S"
    for row in (["Report"], [None], ["Id", "Name"], ["1", "Ann"]):
        book.active.append(row)
    book.save(tmp_path / "in.xlsx")
    with pytest.raises(SourceError, match=r"row 2 \(`header_row`\) is empty, but rows below it hold values"):
        open_reader(tmp_path / "in.xlsx", XlsxSource(format="xlsx", path="x", key="row_number", sheet="S",
                                                     header_row=2), 10)


def test_sql_row_the_query_refuses_mid_read_is_an_error_naming_the_row(tmp_path: Path) -> None:
    path = tmp_path / "in.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE T (ID TEXT, J TEXT)")
    con.executemany("INSERT INTO T VALUES (?, ?)", [("1", '{"x": 1}'), ("2", "not json"), ("3", '{"x": 3}')])
    con.commit()
    con.close()
    spec = SqlSource(format="sql", path="x", key=("ID",), query="SELECT ID, json_extract(J, '$.x') AS X FROM T")
    reader = open_reader(path, spec, 1)
    with pytest.raises(SourceError, match=r"in.sqlite`: cannot read query: malformed JSON \(after [01] rows were read\)"):
        list(reader.records())


def test_json_keys_named_like_lineage_or_blank_are_renamed(tmp_path: Path) -> None:
    path = tmp_path / "in.json"
    path.write_text('[{"id": "1", "_source_key": "evil", "_row_number": 5, "": "blank"}]')
    reader = open_reader(path, JsonSource(format="json", path="x", key=("id",)), 10)
    assert reader.header == ["id", "_source_key~2", "_row_number~2", "column_4"]
    assert rows(read(reader)) == [(1, ["1", "evil", "5", "blank"], None)]


def test_json_array_lone_surrogate_escapes_are_undecodable_rejects(tmp_path: Path) -> None:
    """ijson's C parser turned `\\ud800` into `?`, joined `\\ud800\\u0041` into U+10041 and
    stopped at `\\udc00`; every record must come out, those three as rejects."""
    path = tmp_path / "in.json"
    path.write_text('[{"id": "1", "name": "\\ud800"}, {"id": "2", "name": "\\ud800\\u0041"},\n'
                    '{"id": "3", "name": "\\udc00x"}, {"id": "4", "name": "\\ud83d\\ude00"}, {"id": "5", "name": "ok"}]')
    records = read(open_reader(path, JsonSource(format="json", path="x", key=("id",)), 10))
    assert rows(records) == [(1, None, "undecodable"), (2, None, "undecodable"), (3, None, "undecodable"),
                             (4, ["4", "\U0001f600"], None), (5, ["5", "ok"], None)]


def test_lone_surrogate_scan_reads_pairs_across_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import crmmigrate.extract.jsonfile as jsonfile

    monkeypatch.setattr(jsonfile, "_SCAN_BLOCK", 256)  # small blocks: every position near an edge, quickly
    path = tmp_path / "in.json"
    cases = [("\\ud83d\\ude00", False), ("\\ud83d", True), ("\\ude00", True), ("\\uD83D\\uDE00", False),
             ("\\ud83d\\u0041", True), ("\\\\ud800\\udc00", True),  # text `\ud800`, then a lone low half
             ("\\\\ud800", False), ("\\\\\\ud83d\\ude00", False), ("\\u0041\\udc00", True),
             # long runs of backslashes astride an edge: their count decides what is an escape
             ("\\" * 100 + "\\ud800x", True), ("\\" * 102 + "ud800\\udc00", True), ("\\" * 100 + "\\ud83d\\ude00", False)]
    for text, lone in cases:
        for pad in range(300):  # the escapes astride each block edge
            for tail in (0, 3, 40):  # and near the end of the file
                path.write_bytes(b" " * pad + text.encode() + b" " * tail)
                assert jsonfile._has_lone_surrogate(path) is lone, (text, pad, tail)  # noqa: SLF001


@pytest.mark.parametrize("lines", [False, True])
def test_json_key_given_twice_or_flattening_onto_another_is_a_reject(tmp_path: Path, lines: bool) -> None:
    objects = ['{"id": "1", "name": "A", "name": "B"}', '{"id": "2", "a.b": "flat", "a": {"b": "nested"}}',
               '{"id": "3", "x": {"k": 1, "k": 2}}', '{"id": "4", "name": "ok"}']
    path = tmp_path / "in.json"
    path.write_text("\n".join(objects) if lines else "[" + ",\n".join(objects) + "]")
    records = read(open_reader(path, JsonSource(format="json", path="x", key=("id",), lines=lines), 10))
    assert [(r.row_number, r.reason is None) for r in records] == [(1, False), (2, False), (3, False), (4, True)]
    assert "key 'name' appears twice in one object" in str(records[0].message)
    assert "key 'k' appears twice" in str(records[2].message)
    assert "column 'a.b'" in str(records[1].message)
    assert records[3].values is not None and "ok" in records[3].values


def test_a_json_key_that_holds_an_object_says_so(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('{"id": {"a": 1, "b": 2}}\n{"id": "2"}\n{"id": {}}\n', encoding="utf-8")
    records = read(open_reader(path, JsonSource(format="json", path="x", key=("id",), lines=True), 10))
    assert records[0].values is None and str(records[0].reason) == "missing_key"
    assert records[0].message == ("key 'id' holds an object, not a value; its fields are columns id.a, id.b: "
                                  "name one of them as the key")
    assert records[1].values is not None and records[2].values is not None  # (an empty object: no value, no fields)


@pytest.mark.parametrize("block", [1 << 20, 3])
def test_json_lines_ended_by_cr_alone_are_records(tmp_path: Path, block: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Old Mac tools end lines with CR: without any LF in the file, each CR ends a record (before,
    the whole file was one reject and records in counted 1)."""
    import crmmigrate.extract.jsonfile as jsonfile

    original = jsonfile._cr_lines  # noqa: SLF001

    def small_blocks(fh: Any) -> Any:  # lines cut across blocks anywhere
        class Slow:
            def read(self, _: int) -> bytes:
                return fh.read(block)
        return original(Slow())

    monkeypatch.setattr(jsonfile, "_cr_lines", small_blocks)
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"id":"1","n":"a\\rb"}\r\r{"id":"2"}\r{bad\r{"id":"3"}')
    reader = open_reader(path, JsonSource(format="json", path="x", key=("id",), lines=True), 10)
    records = read(reader)
    assert reader.count_records() == 4 and [r.row_number for r in records] == [1, 3, 4, 5]
    assert records[0].values == ["1", "a\rb"] and records[1].values == ["2", None]
    assert records[2].values is None and records[2].message.startswith("line 4 is not valid JSON")
    assert records[3].values == ["3", None]
    # One LF anywhere: lines end in LF, and a CR is JSON whitespace or part of a bad line.
    path.write_bytes(b'{"id":"1"}\r{"id":"2"}\n')
    (record,) = read(open_reader(path, JsonSource(format="json", path="x", key=("id",), lines=True), 10))
    assert record.values is None and record.row_number == 1


@pytest.mark.parametrize("tail", [";", "; -- every row", " ;\n\n-- note\n", "; /* block */ ", ";;"])
def test_a_query_ending_in_semicolon_and_comments_is_counted(tmp_path: Path, tail: str) -> None:
    spec = SqlSource(format="sql", path="x", key=("ID",), query=f"SELECT ID, '--x;' AS T FROM CUSTOMERS{tail}")
    assert rows(read(open_reader(sqlite_file(tmp_path), spec, 10)))[0] == (1, ["1", "--x;"], None)


def test_whole_floats_lose_their_point_until_digits_would_be_invented() -> None:
    assert (as_text(4915112345678.0), as_text(2.0 ** 53 + 2), as_text(1e16)) == (
        "4915112345678", "9007199254740994", "10000000000000000")
    assert (as_text(1e300), as_text(3.4e38)) == ("1e+300", "3.4e+38")  # not 301 digits nobody wrote


def test_queries_with_semicolons_in_literals_and_many_comments(tmp_path: Path) -> None:
    import time

    path = sqlite_file(tmp_path)
    for query, value in [("SELECT ID, 'a; --x' AS V FROM CUSTOMERS", "a; --x"),
                         ("SELECT ID, 1 AS \"a;--\" FROM CUSTOMERS", "1"),
                         ("SELECT ID,\n" + "".join(f"/* col{i}; */\n" for i in range(40)) + "2 AS V FROM CUSTOMERS;", "2")]:
        started = time.monotonic()
        records = read(open_reader(path, SqlSource(format="sql", path="x", key=("ID",), query=query), 10))
        assert records[0].values == ["1", value]
        assert time.monotonic() - started < 5  # (40 comments once took minutes: exponential backtracking)


def test_xlsx_excel_error_cells_reject_their_row(tmp_path: Path) -> None:
    import zipfile

    book = openpyxl.Workbook()
    book.active.title = "S"
    for row in (["Id", "Name"], ["1", "Ann"], ["2", "ERRHERE"], ["3", "#N/A typed as text"]):
        book.active.append(row)
    book.save(tmp_path / "ok.xlsx")
    with zipfile.ZipFile(tmp_path / "ok.xlsx") as src, zipfile.ZipFile(tmp_path / "in.xlsx", "w") as dst:
        for item in src.infolist():  # B3 becomes an error cell, as Excel writes a failed formula
            data = src.read(item.filename)
            if "worksheets/" in item.filename:
                data = data.replace(b'<c r="B3" t="inlineStr"><is><t>ERRHERE</t></is></c>',
                                    b'<c r="B3" t="e"><f>1/0</f><v>#DIV/0!</v></c>')
            dst.writestr(item, data)
    assert b"#DIV/0!" in zipfile.ZipFile(tmp_path / "in.xlsx").read("xl/worksheets/sheet1.xml")
    records = read(open_reader(tmp_path / "in.xlsx", XlsxSource(format="xlsx", path="x", key=("Id",), sheet="S"), 10))
    assert rows(records) == [(2, ["1", "Ann"], None), (3, None, "malformed_row"), (4, ["3", "#N/A typed as text"], None)]
    assert records[1].message == "Excel error value in B3 #DIV/0! (a formula that failed)"


def test_xlsx_formulas_without_a_saved_value_reject_their_row(tmp_path: Path) -> None:
    """openpyxl (like many exporters) writes formulas without computing them: read back, they
    are empty. A row of them is a reject naming the cells, not a record with silent nulls."""
    book = openpyxl.Workbook()
    book.active.title = "S"
    for row in (["Id", "Name", "Calc"], ["1", "Ann", "=A2*2"], ["2", "Bob", 5], [None, None, "=1+1"],
                ["4", "Cy", '=""']):
        book.active.append(row)
    book.save(tmp_path / "in.xlsx")
    records = read(open_reader(tmp_path / "in.xlsx", XlsxSource(format="xlsx", path="x", key=("Id",), sheet="S"), 10))
    assert rows(records) == [(2, None, "malformed_row"), (3, ["2", "Bob", "5"], None), (4, None, "malformed_row"),
                             (5, None, "malformed_row")]
    assert records[0].message.startswith("formula without a saved value in C2: the file was written by a tool")
    import zipfile  # the same file with the value Excel would have saved for C2: read as data

    with zipfile.ZipFile(tmp_path / "in.xlsx") as src, zipfile.ZipFile(tmp_path / "saved.xlsx", "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            dst.writestr(item, data.replace(b"<f>A2*2</f><v /></c>", b"<f>A2*2</f><v>2</v></c>")
                         if "worksheets/" in item.filename else data)
    records = read(open_reader(tmp_path / "saved.xlsx", XlsxSource(format="xlsx", path="x", key=("Id",), sheet="S"), 10))
    assert rows(records)[0] == (2, ["1", "Ann", "2"], None)
    # Read in blocks of every small size, cells cut anywhere: the same cells are found.
    import crmmigrate.extract.readers as readers

    whole = readers._scan_sheet(tmp_path / "in.xlsx", "xl/worksheets/sheet1.xml")  # noqa: SLF001
    assert whole.uncomputed == {2: ["C2"], 4: ["C4"], 5: ["C5"]} and whole.disorder is None
    for size in range(1, 120):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(readers, "_XML_BLOCK", size)
            assert readers._scan_sheet(tmp_path / "in.xlsx", "xl/worksheets/sheet1.xml") == whole  # noqa: SLF001


def _rewrite_sheet(src: Path, dst: Path, edit: Any) -> None:
    import zipfile

    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            zout.writestr(item, edit(data.decode()).encode() if "worksheets/" in item.filename else data)


def _sheet_rows(xml: str) -> list[str]:
    import re

    return re.findall(r"<row .*?</row>", xml)


@pytest.mark.parametrize("edit,where", [
    # openpyxl skipped row 3 (k2) when it came after row 4, and row 5 (k4) when a second row 4 stood for it.
    (lambda x: x.replace(_sheet_rows(x)[2] + _sheet_rows(x)[3], _sheet_rows(x)[3] + _sheet_rows(x)[2]),
     "row 3 comes after row 4"),
    (lambda x: x.replace(_sheet_rows(x)[4], _sheet_rows(x)[4].replace('"5"', '"4"').replace("A5", "A4")
                         .replace("B5", "B4")), "row 4 comes after row 4"),
    # It kept one of two cells for A3 (k2 or zz), and dropped B3 when it came before A3.
    (lambda x: x.replace('<c r="B3"', '<c r="A3"', 1), "cell A3 of row 3 comes after column A"),
    (lambda x: x.replace('<c r="A3"', '<c r="C3"', 1), "cell B3 of row 3 comes after column C"),
    (lambda x: x.replace('<c r="A3"', '<c r="A4"', 1), "cell A4 is inside row 3"),
    # References as openpyxl also reads them: single quotes, spaces around `=`, lower case.
    (lambda x: x.replace('<row r="3">', "<row r='9'>"), "cell A3 is inside row 9"),
    (lambda x: x.replace('<row r="3">', '<row r = "9">').replace('"A3"', '"A9"').replace('"B3"', '"B9"'),
     "row 4 comes after row 9"),
    (lambda x: x.replace('<c r="A3"', '<c r="b3"').replace('<c r="B3"', '<c r="b3"'), "cell B3 of row 3 comes after column B"),
])
def test_xlsx_rows_or_cells_out_of_order_are_refused_not_lost(tmp_path: Path, edit: Any, where: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Invalid xlsx (some exporters write it): openpyxl would silently drop a row or a value, and its
    own count would agree. The source is refused, naming the place, whatever the scan's block size."""
    import crmmigrate.extract.readers as readers

    book = openpyxl.Workbook()
    book.active.title = "S"
    for row in (["id", "name"], *([f"k{i}", f"n{i}"] for i in range(1, 6))):
        book.active.append(row)
    book.save(tmp_path / "base.xlsx")
    _rewrite_sheet(tmp_path / "base.xlsx", tmp_path / "in.xlsx", edit)
    spec = XlsxSource(format="xlsx", path="x", key=("id",), sheet="S")
    for size in (7, 64, 1 << 20):
        monkeypatch.setattr(readers, "_XML_BLOCK", size)
        with pytest.raises(SourceError, match=f"sheet 'S': {where} in the file, which is not valid xlsx"):
            open_reader(tmp_path / "in.xlsx", spec, 10)
    # Rows and cells without a reference (OOXML allows it) follow the one before: in order.
    import re

    _rewrite_sheet(tmp_path / "base.xlsx", tmp_path / "plain.xlsx", lambda x: re.sub(r' r="[A-Z]*[0-9]+"', "", x))
    assert [r.values for r in read(open_reader(tmp_path / "plain.xlsx", spec, 10))][-1] == ["k5", "n5"]


@pytest.mark.parametrize("text", ['<![CDATA[<row r="1"><c r="A1">]]>', '<!-- <row r="1"> -->', '<?pi <c r="A1"?>'])
def test_xlsx_markup_inside_comments_cdata_and_instructions_is_not_read_as_rows(tmp_path: Path, text: str,
                                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Text that looks like rows, where XML says it is text: not refused, at any block boundary."""
    import crmmigrate.extract.readers as readers

    book = openpyxl.Workbook()
    book.active.title = "S"
    for row in (["id", "name"], *([f"k{i}", f"n{i}"] for i in range(1, 6))):
        book.active.append(row)
    book.save(tmp_path / "base.xlsx")
    if text.startswith("<!["):  # a value written as CDATA
        edit = lambda x: x.replace("<t>n3</t>", f"<t>{text}</t>")  # noqa: E731
    else:  # between rows
        edit = lambda x: x.replace('<row r="4"', f'{text}<row r="4"')  # noqa: E731
    _rewrite_sheet(tmp_path / "base.xlsx", tmp_path / "in.xlsx", edit)
    spec = XlsxSource(format="xlsx", path="x", key=("id",), sheet="S")
    for size in range(1, 160):
        monkeypatch.setattr(readers, "_XML_BLOCK", size)
        scan = readers._scan_sheet(tmp_path / "in.xlsx", "xl/worksheets/sheet1.xml")  # noqa: SLF001
        assert scan.disorder is None, size
    assert len(read(open_reader(tmp_path / "in.xlsx", spec, 10))) == 5


def test_xlsx_blank_header_cell_never_takes_a_real_column_name(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    book.active.title = "S"
    for row in (["A", None, "column_2"], [1, 2, 3]):
        book.active.append(row)
    book.save(tmp_path / "in.xlsx")
    reader = open_reader(tmp_path / "in.xlsx", XlsxSource(format="xlsx", path="x", key="row_number", sheet="S"), 10)
    assert reader.header == ["A", "column_2~2", "column_2"]
