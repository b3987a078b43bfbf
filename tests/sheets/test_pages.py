"""RowPages: a worksheet's rows a page at a time, through the real gspread and the emulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connectors.sheets import SheetsConnection
from connectors.sheets.calls import SheetsCaller
from connectors.sheets.pages import RowPages
from connectors.sheets.worksheet import fetch_worksheet
from sandbox.sheets.fixtures import SheetsSandbox


def _copies(pages: Iterator[tuple[int, list[list[str]]]]) -> list[tuple[int, list[list[str]]]]:
    """Each page copied as it comes (the reader empties a page when the next is asked for)."""
    return [(first, list(rows)) for first, rows in pages]


def _sheet(box: SheetsSandbox, rows: list[list[Any]], grid_rows: int) -> str:
    sid = box.create_spreadsheet("S", {"Sheet1": rows})
    box.client().open_by_key(sid).sheet1.resize(rows=grid_rows)
    return sid


def test_pages_run_to_the_grid_end_and_each_is_emptied_when_the_next_is_read(
    sheets_sandbox: SheetsSandbox, conn: SheetsConnection
) -> None:
    sid = _sheet(sheets_sandbox, [["h"], ["a"], [], [], [], [], ["b"]], grid_rows=8)
    caller = SheetsCaller(conn.client())
    reader = RowPages(caller, sid, "Sheet1")
    pages = reader.read(1, 2, 3)
    first, rows = next(pages)
    # Rows 1-3 asked (one past the page): rows 3 and the blank ones after are left out.
    assert (first, rows) == (1, [["h"], ["a"]])
    assert reader.grid == (8, 26) and reader.info is not None  # the grid went on: metadata
    second = next(pages)
    assert rows == []  # the first page was let go before the second was read
    assert second == (4, [])  # rows 4-6 are blank; the API leaves them all out
    assert _copies(pages) == [(7, [["b"]])]
    assert caller.requests == 1 + 1 + 2


def test_a_grid_ending_inside_the_first_read_needs_no_metadata(
    sheets_sandbox: SheetsSandbox, conn: SheetsConnection
) -> None:
    sid = _sheet(sheets_sandbox, [["h"], ["a"]], grid_rows=2)
    caller = SheetsCaller(conn.client())
    reader = RowPages(caller, sid, "Sheet1")
    assert _copies(reader.read(1, 2, 10)) == [(1, [["h"], ["a"]])]
    assert reader.grid == (2, 26) and reader.info is None
    assert caller.requests == 1


def test_known_grid_bounds_every_read_and_nothing_is_read_below_it(
    sheets_sandbox: SheetsSandbox, conn: SheetsConnection
) -> None:
    sid = _sheet(sheets_sandbox, [["h"], ["a"], ["b"]], grid_rows=3)
    caller = SheetsCaller(conn.client())
    info = fetch_worksheet(caller, sid, "Sheet1")
    reader = RowPages(caller, sid, "Sheet1", info=info)
    assert _copies(reader.read(2, 10, 10)) == [(2, [["a"], ["b"]])]
    assert _copies(reader.read(4, 10, 10)) == []  # the API would refuse rows 4-10
    assert caller.requests == 1 + 1
    with pytest.raises(ValueError, match="page_rows"):
        list(reader.read(1, 5, 0))
