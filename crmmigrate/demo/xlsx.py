"""The marketing system's XLSX file, written fast and with the same bytes every time."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable
from datetime import date, datetime
from xml.sax.saxutils import escape as xml_escape

from openpyxl import Workbook
from openpyxl.writer.excel import ExcelWriter

FIXED_STAMP = datetime(2026, 6, 30, 0, 0, 0)  # the demo's reference date; also END in model.py


def xlsx_bytes(title: str, rows: list[list]) -> bytes:
    """An XLSX workbook of one sheet *title* holding *rows* (text, int, date or None), stamped
    with the fixed date, so the same rows give the same bytes."""
    # openpyxl writes the workbook around the sheet (styles, properties) from the first two rows;
    # all rows are then written here as openpyxl writes them, 30x faster at a million people
    wb = Workbook()
    ws = wb.active
    ws.title = title
    ws.append(rows[0])
    ws.append(rows[1])  # holds a date: the workbook's second cell style (s="1") is the date format
    wb.properties.created = wb.properties.modified = FIXED_STAMP
    wb.properties.creator = "crmmigrate demo"
    raw = io.BytesIO()
    # ExcelWriter directly: Workbook.save() would stamp "modified" with the wall clock
    ExcelWriter(wb, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED)).save()
    return _restamp_zip(raw.getvalue(), {SHEET: lambda xml: _sheet_xml(xml, rows)})


SHEET = "xl/worksheets/sheet1.xml"
EXCEL_EPOCH = date(1899, 12, 30)


def _sheet_xml(shell: bytes, rows: list[list]) -> bytes:
    """openpyxl's sheet XML *shell* with its rows replaced by *rows*."""
    head, rest = shell.decode("utf-8").split("<sheetData>", 1)
    tail = rest.split("</sheetData>", 1)[1]
    head = re.sub(r'<dimension ref="[^"]*" />', f'<dimension ref="A1:{chr(64 + len(rows[0]))}{len(rows)}" />', head)
    body = "".join(f'<row r="{n}">{"".join(_cell(f"{chr(65 + k)}{n}", v) for k, v in enumerate(row))}</row>'
                   for n, row in enumerate(rows, 1))
    return f"{head}<sheetData>{body}</sheetData>{tail}".encode("utf-8")


def _cell(ref: str, value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, date):
        return f'<c r="{ref}" s="1" t="n"><v>{(value - EXCEL_EPOCH).days}</v></c>'
    if isinstance(value, int):
        return f'<c r="{ref}" t="n"><v>{value}</v></c>'
    text = str(value)
    space = ' xml:space="preserve"' if text != text.strip() else ""
    return f'<c r="{ref}" t="inlineStr"><is><t{space}>{xml_escape(text)}</t></is></c>'


def _restamp_zip(data: bytes, rewrite: dict[str, Callable[[bytes], bytes]]) -> bytes:
    """Rewrite a zip so every member carries the fixed timestamp instead of the wall clock, and
    the members named in *rewrite* are what their function makes of them."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            stamped = zipfile.ZipInfo(info.filename, date_time=FIXED_STAMP.timetuple()[:6])
            stamped.compress_type = zipfile.ZIP_DEFLATED
            member = src.read(info.filename)
            dst.writestr(stamped, rewrite[info.filename](member) if info.filename in rewrite else member)
    return out.getvalue()
