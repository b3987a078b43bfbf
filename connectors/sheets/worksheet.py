"""Finding a worksheet in a spreadsheet's metadata, and writing A1 ranges for it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from gspread.utils import absolute_range_name

from connectors._tabular import column_letter
from connectors.sheets.calls import SheetsCaller
from connectors.sheets.errors import WorksheetNotFoundError

__all__ = [
    "WorksheetInfo",
    "a1",
    "cell_range",
    "check_location",
    "fetch_worksheet",
    "grid_size_from_range",
]


@dataclass(frozen=True, slots=True)
class WorksheetInfo:
    """A worksheet's identity and grid size, from the spreadsheet's metadata."""

    title: str
    sheet_id: int
    row_count: int
    col_count: int


def check_location(spreadsheet_id: str, header_row: int) -> None:
    """Refuse an empty spreadsheet id or a header row that is not a 1-based row number."""
    if not spreadsheet_id.strip():
        raise ValueError("spreadsheet_id must not be empty")
    if header_row < 1:
        raise ValueError(f"header_row is a 1-based row number, got {header_row}")


def fetch_worksheet(
    caller: SheetsCaller, spreadsheet_id: str, worksheet: str | int
) -> WorksheetInfo:
    """One metadata request, then the worksheet by title (exact) or 0-based tab index.

    Raises:
        WorksheetNotFoundError: no such worksheet; the message lists the ones there are.
    """
    meta: Any = caller.call(
        "spreadsheets.get",
        spreadsheet_id,
        lambda: caller.http.fetch_sheet_metadata(spreadsheet_id),
    )
    sheets = [s.get("properties", {}) for s in meta.get("sheets", [])]
    chosen: dict[str, Any] | None = None
    if isinstance(worksheet, int):
        if 0 <= worksheet < len(sheets):
            chosen = sheets[worksheet]
    else:
        chosen = next((p for p in sheets if p.get("title") == worksheet), None)
    if chosen is None:
        titles = ", ".join(repr(p.get("title")) for p in sheets) or "none"
        what = f"index {worksheet}" if isinstance(worksheet, int) else repr(worksheet)
        raise WorksheetNotFoundError(
            f"spreadsheet {spreadsheet_id} has no worksheet {what}; it has: {titles}"
        )
    grid = chosen.get("gridProperties", {})
    return WorksheetInfo(
        title=str(chosen.get("title", "")),
        sheet_id=int(chosen.get("sheetId", 0)),
        row_count=int(grid.get("rowCount", 0)),
        col_count=int(grid.get("columnCount", 0)),
    )


def a1(title: str, cells: str | None = None) -> str:
    """``'Title'!cells`` with the title quoted as the API requires (``'`` doubled)."""
    return absolute_range_name(title, cells)


_RANGE_END_RE = re.compile(r"!\$?([A-Za-z]+)\$?(\d+)?:\$?([A-Za-z]+)\$?(\d+)$")


def grid_size_from_range(label: str) -> tuple[int, int] | None:
    """The last (row, column) of a values response's ``range`` (e.g. ``Sheet1!A1:Z1000``).

    The API reports the requested range there, within the grid: for a read of whole rows the
    last column is the grid's, and a last row short of the one asked for is the grid's.
    """
    m = _RANGE_END_RE.search(label)
    if not m or not m.group(4):
        return None
    letters = m.group(3).upper()
    cols = 0
    for ch in letters:
        cols = cols * 26 + (ord(ch) - 64)
    return int(m.group(4)), cols


def cell_range(title: str, row: int, col1: int, row2: int, col2: int) -> str:
    """A1 range for 0-based inclusive bounds on the worksheet."""
    return a1(title, f"{column_letter(col1)}{row + 1}:{column_letter(col2)}{row2 + 1}")
