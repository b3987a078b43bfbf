"""Campaign statuses written back onto a worksheet: one read, one batched RAW write of the changes."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable
from typing import Any, Literal

import gspread
from gspread.urls import SPREADSHEET_VALUES_URL
from gspread.utils import quote

from connectors._tabular import (
    NoHeaderError,
    StatusColumns,
    UpdateIndex,
    find_column,
    normalize_headers,
    plan_row,
)
from connectors.leads import MappingError, StatusUpdate, WriteResult
from connectors.sheets.calls import RequestPacer, RetryPolicy, SheetsCaller
from connectors.sheets.worksheet import (
    a1,
    cell_range,
    check_location,
    fetch_worksheet,
    grid_size_from_range,
)

__all__ = ["SheetsStatusSink"]


def _blocks(
    changes: dict[int, dict[int, str]],
) -> list[tuple[int, int, int, int, list[list[str | None]]]]:
    """Group changed cells into rectangles of consecutive rows.

    Cells inside a rectangle that do not change are sent as null, which the API skips, so one
    range covers a run of rows even when they change different columns.
    """
    out: list[tuple[int, int, int, int, list[list[str | None]]]] = []
    run: list[int] = []

    def flush() -> None:
        if not run:
            return
        # map() keeps the per-row and per-cell steps in C (about 1 us a row less).
        cells = list(map(changes.__getitem__, run))
        c1 = min(map(min, cells))
        c2 = max(map(max, cells))
        columns = range(c1, c2 + 1)
        values: list[list[str | None]] = [list(map(row.get, columns)) for row in cells]
        out.append((run[0], c1, run[-1], c2, values))
        run.clear()

    for row in sorted(changes):
        if run and row != run[-1] + 1:
            flush()
        run.append(row)
    flush()
    return out


def _values_get(http: Any, spreadsheet_id: str, cells: str, params: dict[str, str]) -> Any:
    """gspread's ``values_get``, parsing the body with the response's bytes already let go.

    ``values_get`` returns ``response.json()``, so the body's bytes, its text and the parsed
    values are alive at once; here the bytes are freed before the text is parsed (a whole
    worksheet of 50,000 rows is about 6 MB of JSON). Errors are gspread's (``http.request``).
    """
    response = http.request(
        "get", SPREADSHEET_VALUES_URL % (spreadsheet_id, quote(cells)), params=params
    )
    text = response.content.decode("utf-8")
    del response
    return json.loads(text)


class SheetsStatusSink:
    """Writes ColdSend statuses onto the rows they came from (implements `StatusSink`).

    Each `write_statuses` call makes one values read of the whole worksheet, computes the
    cells that must change (statuses never move backwards: a cell holding ``REPLIED`` keeps it
    when ``SENT`` arrives; flags only move from FALSE to TRUE), adds missing status headers,
    and sends every change in **one** ``values:batchUpdate`` with ``valueInputOption=RAW``
    (so a value starting with ``=``, ``+``, ``-`` or ``@`` is stored as text, never run as a
    formula). Nothing to change means no write request at all.

    Extra requests happen only when needed: one metadata read when `worksheet` is a tab index
    (a title needs none), and, the first time status columns are added to a sheet whose grid
    has no spare columns, one metadata read and one grid resize.

    Rows are matched on the `match_by` column: by email (normalised, case-insensitive) when
    `match_value` is ``"email"``, or by `StatusUpdate.source_id` against a key column when it
    is ``"source_id"``. Every row holding a matched key is updated; the update is counted once.

    Args:
        client: A `gspread.Client`, e.g. from `SheetsConnection.client()`.
        spreadsheet_id: The id in the sheet's URL.
        worksheet: Worksheet title (cheapest), or 0-based tab index.
        match_by: Header of the column rows are matched on.
        match_value: Which `StatusUpdate` field to compare with that column.
        columns: Status and flag column names (missing ones are added to the header).
        header_row: 1-based sheet row holding the header.
        max_cells_per_request: Splits the write only for enormous change sets beyond this.
        retry: Retry policy for 429, 5xx and transport failures (default 5 retries).
        pacer: Client-side pacing (default 60 requests a minute).
        sleep: Sleep used between retries (injectable for tests).
    """

    def __init__(
        self,
        client: gspread.Client,
        *,
        spreadsheet_id: str,
        worksheet: str | int,
        match_by: str = "Email",
        match_value: Literal["email", "source_id"] = "email",
        columns: StatusColumns | None = None,
        header_row: int = 1,
        max_cells_per_request: int = 500_000,
        retry: RetryPolicy | None = None,
        pacer: RequestPacer | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        check_location(spreadsheet_id, header_row)
        if match_value not in ("email", "source_id"):
            raise ValueError(f"match_value must be 'email' or 'source_id', got {match_value!r}")
        self.spreadsheet_id = spreadsheet_id
        self.worksheet = worksheet
        self.match_by = match_by
        self.match_value = match_value
        self.columns = columns or StatusColumns()
        self.header_row = header_row
        self.max_cells_per_request = max_cells_per_request
        self.caller = SheetsCaller(client, retry=retry, pacer=pacer, sleep=sleep, rng=rng)
        self._title: str | None = worksheet if isinstance(worksheet, str) else None
        self._sheet_id: int | None = None

    def __repr__(self) -> str:
        return (
            f"SheetsStatusSink(spreadsheet_id={self.spreadsheet_id!r}, "
            f"worksheet={self.worksheet!r}, match_by={self.match_by!r})"
        )

    def _resolve(self) -> None:
        info = fetch_worksheet(self.caller, self.spreadsheet_id, self.worksheet)
        self._title, self._sheet_id = info.title, info.sheet_id

    def write_statuses(self, updates: Iterable[StatusUpdate]) -> WriteResult:
        """Apply `updates` to the worksheet; see the class docstring for the request budget.

        Returns:
            Counts per outcome; ``requests`` is every HTTP request made, retries included.
            Updates whose key no row holds are listed in ``not_found``; updates with no usable
            key (an invalid email, no source id) in ``failures``.

        Raises:
            NoHeaderError: the sheet is empty or its header row is blank.
            MappingError: the `match_by` column is not in the header.
            SheetsAPIError: the API refused a call (after retries for 429 / 5xx).
        """
        index = UpdateIndex(updates, match_value=self.match_value)
        result = index.new_result()
        if not index.by_key:
            return result
        start = self.caller.requests
        try:
            self._write(index, result)
        finally:
            result.requests = self.caller.requests - start
        return result

    def _write(self, index: UpdateIndex, result: WriteResult) -> None:
        if self._title is None:
            self._resolve()
        assert self._title is not None
        title = self._title
        where = f"worksheet {title!r} of spreadsheet {self.spreadsheet_id}"
        data: Any = self.caller.call(
            "values.get",
            self.spreadsheet_id,
            lambda: _values_get(
                self.caller.http,
                self.spreadsheet_id,
                a1(title),
                params={"valueRenderOption": "FORMATTED_VALUE"},
            ),
        )
        rows: list[list[str]] = data.get("values", [])
        h = self.header_row - 1
        if len(rows) <= h or not any(str(c).strip() for c in rows[h]):
            raise NoHeaderError(f"{where} has no header in row {self.header_row}")
        raw_header = rows[h]
        header = normalize_headers(raw_header)
        try:
            match_col = find_column(header, self.match_by, source=where)
        except MappingError as exc:
            raise MappingError(f"cannot match rows: {exc}") from None

        # New columns go right of every used cell, so data without a header is never hit.
        next_free = max(len(r) for r in rows)
        changes: dict[int, dict[int, str]] = {}
        col_of: dict[str, int] = {}
        for name in self.columns.names():
            try:
                col_of[name] = find_column(header, name, source=where)
            except MappingError:
                col_of[name] = next_free
                changes.setdefault(h, {})[next_free] = name
                next_free += 1
        cols = self.columns
        status_col = col_of[cols.status]
        flag_cols = (
            col_of[cols.opened] if cols.opened else None,
            col_of[cols.replied] if cols.replied else None,
            col_of[cols.unsubscribed] if cols.unsubscribed else None,
            col_of[cols.bounced] if cols.bounced else None,
        )
        by_key = index.by_key
        key_of = index.key_of
        matched: set[str] = set()
        for r in range(h + 1, len(rows)):
            row = rows[r]
            if match_col >= len(row):
                continue
            key = key_of(row[match_col])
            if key is None:
                continue
            statuses = by_key.get(key)
            if statuses is None:
                continue
            first_match = key not in matched
            matched.add(key)
            row_changes = plan_row(
                row,
                statuses,
                status_col=status_col,
                flag_cols=flag_cols,
                result=result,
                count=first_match,
            )
            if row_changes:
                changes[r] = dict(row_changes)
        for key, statuses in by_key.items():
            if key not in matched:
                result.not_found.extend([key] * len(statuses))
        grid = grid_size_from_range(str(data.get("range", "")))
        # The sheet's values are no longer needed: free them before the write is built.
        del data, rows
        if not any(r != h for r in changes):
            # Only headers would change: nothing worth a write (they are added with data).
            return
        if grid is not None and next_free > grid[1]:
            self._grow_columns(next_free - grid[1])
        self._send(title, _blocks(changes))

    def _grow_columns(self, extra: int) -> None:
        if self._sheet_id is None:
            self._resolve()
        body = {
            "requests": [
                {
                    "appendDimension": {
                        "sheetId": self._sheet_id,
                        "dimension": "COLUMNS",
                        "length": extra,
                    }
                }
            ]
        }
        self.caller.call(
            "spreadsheets.batchUpdate",
            self.spreadsheet_id,
            lambda: self.caller.http.batch_update(self.spreadsheet_id, body),
        )

    def _send(
        self, title: str, blocks: list[tuple[int, int, int, int, list[list[str | None]]]]
    ) -> None:
        batch: list[dict[str, Any]] = []
        cells = 0
        for r1, c1, r2, c2, values in blocks:
            size = (r2 - r1 + 1) * (c2 - c1 + 1)
            if batch and cells + size > self.max_cells_per_request:
                self._post(batch)
                batch, cells = [], 0
            batch.append({"range": cell_range(title, r1, c1, r2, c2), "values": values})
            cells += size
        if batch:
            self._post(batch)

    def _post(self, data: list[dict[str, Any]]) -> None:
        body = {"valueInputOption": "RAW", "data": data}
        self.caller.call(
            "values.batchUpdate",
            self.spreadsheet_id,
            lambda: self.caller.http.values_batch_update(self.spreadsheet_id, body),
        )
