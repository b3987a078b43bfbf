"""A worksheet's rows read a page at a time, so memory follows the page size, not the sheet's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from gspread.urls import SPREADSHEET_VALUES_URL
from gspread.utils import quote

from connectors.sheets.calls import SheetsCaller
from connectors.sheets.worksheet import WorksheetInfo, a1, fetch_worksheet, grid_size_from_range

__all__ = ["RowPages"]

_PARAMS = {"valueRenderOption": "FORMATTED_VALUE", "majorDimension": "ROWS"}


def _values_get(http: Any, spreadsheet_id: str, cells: str) -> Any:
    """gspread's ``values_get``, parsing the body with the response's bytes already let go.

    ``values_get`` returns ``response.json()``, so the body's bytes, its text and the parsed
    values are alive at once; here the bytes are freed before the text is parsed (a page of
    10,000 rows of 9 columns is about 1.2 MB of JSON). Errors are gspread's (``http.request``).
    """
    response = http.request(
        "get", SPREADSHEET_VALUES_URL % (spreadsheet_id, quote(cells)), params=_PARAMS
    )
    text = response.content.decode("utf-8")
    del response
    return json.loads(text)


class RowPages:
    """Reads a worksheet's rows as shown (``FORMATTED_VALUE``), one values request per page.

    The API leaves out the trailing blank rows of a range, so a short page does not mean the
    sheet has ended: pages are read down to the grid's last row. When the grid's size is not
    known beforehand (`info` is None), the first request asks for one row past its page; a
    read reaching past the grid is answered for the part inside it, so a response whose
    ``range`` stops short of the request shows where the grid ends. Otherwise (the grid goes
    on, or the range does not say) one metadata request tells.

    Each page's list is emptied when the next page is asked for, so only one page of rows is
    alive at a time: keep the rows you need (the header, say) in your own variables.

    Args:
        caller: Runs and counts the requests.
        spreadsheet_id: The spreadsheet.
        title: The worksheet's title.
        info: The worksheet's metadata when already fetched (then no request is needed to find
            the grid's size).

    Attributes:
        info: The worksheet's metadata, when given or read.
        grid: The grid's (rows, columns) once known: after the first page.
    """

    def __init__(
        self,
        caller: SheetsCaller,
        spreadsheet_id: str,
        title: str,
        *,
        info: WorksheetInfo | None = None,
    ) -> None:
        self.caller = caller
        self.spreadsheet_id = spreadsheet_id
        self.title = title
        self.info = info
        self.grid: tuple[int, int] | None = (
            (info.row_count, info.col_count) if info is not None else None
        )

    def read(
        self, first: int, first_last: int, page_rows: int
    ) -> Iterator[tuple[int, list[list[str]]]]:
        """Yield ``(sheet row number of rows[0], rows)`` from row `first` to the grid's end.

        Rows are lists of strings with trailing blank cells left out; a blank row inside a
        page is an empty list. Nothing is yielded when the grid ends above `first`.

        Args:
            first: 1-based sheet row to start at.
            first_last: Last sheet row of the first page.
            page_rows: Rows in each later page.
        """
        if page_rows < 1 or first_last < first:
            raise ValueError("pages need page_rows >= 1 and first_last >= first")
        if self.grid is None:
            # One row past the page: a grid ending exactly at the page's end is then seen to end.
            last = first_last + 1
        else:
            if first > self.grid[0]:
                return  # the API refuses a range that starts below the grid
            last = min(first_last, self.grid[0])
        while True:
            rows, reported = self._get(first, last)
            if self.grid is None:
                self._learn_grid(reported, last)
            yield first, rows
            rows.clear()
            del rows
            assert self.grid is not None
            if last >= self.grid[0]:
                return
            first, last = last + 1, min(self.grid[0], last + page_rows)

    def _get(self, first: int, last: int) -> tuple[list[list[str]], str]:
        cells = a1(self.title, f"{first}:{last}")
        data: Any = self.caller.call(
            "values.get",
            self.spreadsheet_id,
            lambda: _values_get(self.caller.http, self.spreadsheet_id, cells),
        )
        rows: list[list[str]] = data.get("values", [])
        return rows, str(data.get("range", ""))

    def _learn_grid(self, reported: str, asked_last: int) -> None:
        size = grid_size_from_range(reported)
        if size is not None and size[0] < asked_last:
            # The answer stops short of the request: the grid ends there.
            self.grid = size
            return
        # The grid reaches the request's end (or the range does not say): ask the metadata.
        self.info = fetch_worksheet(self.caller, self.spreadsheet_id, self.title)
        self.grid = (self.info.row_count, self.info.col_count)
