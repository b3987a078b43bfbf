"""Campaign statuses written back onto a worksheet: paged reads, one batched RAW write of changes."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

import gspread

from connectors._tabular import (
    NoHeaderError,
    StatusColumns,
    UpdateIndex,
    email_column,
    find_column,
    normalize_headers,
    plan_row,
)
from connectors.leads import FieldMapping, MappingError, StatusUpdate, WriteResult
from connectors.retry import RetryPolicy
from connectors.shared_budget import SharedBudget
from connectors.sheets.calls import RequestPacer, SheetsCaller
from connectors.sheets.pages import RowPages
from connectors.sheets.worksheet import WorksheetInfo, cell_range, check_location, fetch_worksheet

__all__ = ["SheetsStatusSink"]


_Plan = tuple[str | None, ...]
_Block = tuple[int, int, int, int, list[_Plan]]

# Missing status columns are planned at stand-in indexes from here (past the API's 18,278
# columns), and placed for real once every row has been seen.
_UNPLACED = 1 << 30


def _blocks(changes: dict[int, _Plan], positions: Sequence[int]) -> list[_Block]:
    """Group changed rows into rectangles of consecutive rows, emptying `changes` on the way.

    `changes` maps a 0-based row to the new text of each status column (None: unchanged), and
    `positions` gives those columns' 0-based indexes. Cells inside a rectangle that do not
    change are sent as null, which the API skips, so one range covers a run of rows even when
    they change different columns. Rows with the same plan share one line object: a run of
    50,000 rows holds a handful of distinct lines.
    """
    low = min(positions)
    span = max(positions) - low + 1
    out: list[_Block] = []
    run: list[int] = []

    def flush() -> None:
        if not run:
            return
        # map() keeps the per-row steps in C; the per-cell work is done once per distinct plan.
        plans = list(map(changes.pop, run))
        lines: dict[_Plan, list[str | None]] = {}
        for plan in set(plans):
            line: list[str | None] = [None] * span
            for position, value in zip(positions, plan, strict=True):
                line[position - low] = value
            lines[plan] = line
        # Leave out the columns no row of the run changes.
        used = [c for c in range(span) if any(line[c] is not None for line in lines.values())]
        c1, c2 = used[0], used[-1]
        cut = {plan: tuple(line[c1 : c2 + 1]) for plan, line in lines.items()}
        out.append((run[0], low + c1, run[-1], low + c2, list(map(cut.__getitem__, plans))))
        run.clear()

    for row in sorted(changes):
        if run and row != run[-1] + 1:
            flush()
        run.append(row)
    flush()
    return out


class SheetsStatusSink:
    """Writes ColdSend statuses onto the rows they came from (implements `StatusSink`).

    Each `write_statuses` call reads the worksheet in pages of `page_rows` rows, computes the
    cells that must change (statuses never move backwards: a cell holding ``REPLIED`` keeps it
    when ``SENT`` arrives; flags only move from FALSE to TRUE), adds missing status headers,
    and sends every change in **one** ``values:batchUpdate`` with ``valueInputOption=RAW``
    (so a value starting with ``=``, ``+``, ``-`` or ``@`` is stored as text, never run as a
    formula). Nothing to change means no write request at all. Only one page of the sheet is
    held at a time, plus the changes planned so far.

    Requests: one values read and one write when the grid has at most ``header_row +
    page_rows`` rows (the read's reported range shows the grid ending inside it). A larger grid
    costs one metadata read (for its row count) and one values read per further `page_rows`
    rows. Extra requests happen only when needed: one metadata read when `worksheet` is a tab
    index (a title needs none; that read also gives the row count), and, the first time status
    columns are added to a sheet whose grid has no spare columns, one metadata read (unless
    already made) and one grid resize.

    Rows are matched on the `match_by` column: by email (normalised, case-insensitive) when
    `match_value` is ``"email"``, or by `StatusUpdate.source_id` against a key column when it
    is ``"source_id"``. Every row holding a matched key is updated; the update is counted once.

    Args:
        client: A `gspread.Client`, e.g. from `SheetsConnection.client()`.
        spreadsheet_id: The id in the sheet's URL.
        worksheet: Worksheet title (cheapest), or 0-based tab index.
        match_by: Header of the column rows are matched on; None means the column the
            source reads emails from under `mapping` (the sync's match key), so the sync and
            the write-back of a store always agree on it.
        mapping: The store's field mapping (None: the default, recognising the headers).
        match_value: Which `StatusUpdate` field to compare with that column.
        columns: Status and flag column names (missing ones are added to the header).
        header_row: 1-based sheet row holding the header.
        max_cells_per_request: Splits the write only for enormous change sets beyond this.
        page_rows: Rows per values request; bounds the memory a read takes.
        retry: Retry policy for 429, 5xx and transport failures (default 5 retries).
        pacer: Client-side pacing (default 60 requests a minute).
        budget: A request budget shared with other processes using the same Google user.
        sleep: Sleep used between retries (injectable for tests).
    """

    def __init__(
        self,
        client: gspread.Client,
        *,
        spreadsheet_id: str,
        worksheet: str | int,
        match_by: str | None = None,
        mapping: FieldMapping | None = None,
        match_value: Literal["email", "source_id"] = "email",
        columns: StatusColumns | None = None,
        header_row: int = 1,
        max_cells_per_request: int = 500_000,
        page_rows: int = 10_000,
        retry: RetryPolicy | None = None,
        pacer: RequestPacer | None = None,
        budget: SharedBudget | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        check_location(spreadsheet_id, header_row)
        if match_value not in ("email", "source_id"):
            raise ValueError(f"match_value must be 'email' or 'source_id', got {match_value!r}")
        if page_rows < 1:
            raise ValueError(f"page_rows must be >= 1, got {page_rows}")
        self.spreadsheet_id = spreadsheet_id
        self.worksheet = worksheet
        if match_by is None and match_value != "email":
            raise ValueError("match_value 'source_id' needs match_by: the key column's header")
        self.match_by = match_by
        self.mapping = mapping
        self.match_value = match_value
        self.columns = columns or StatusColumns()
        self.header_row = header_row
        self.max_cells_per_request = max_cells_per_request
        self.page_rows = page_rows
        self.caller = SheetsCaller(
            client, retry=retry, pacer=pacer, budget=budget, sleep=sleep, rng=rng
        )
        self._title: str | None = worksheet if isinstance(worksheet, str) else None
        self._sheet_id: int | None = None

    def __repr__(self) -> str:
        return (
            f"SheetsStatusSink(spreadsheet_id={self.spreadsheet_id!r}, "
            f"worksheet={self.worksheet!r}, match_by={self.match_by!r})"
        )

    def _resolve(self) -> WorksheetInfo:
        info = fetch_worksheet(self.caller, self.spreadsheet_id, self.worksheet)
        self._title, self._sheet_id = info.title, info.sheet_id
        return info

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
        # The metadata read for a tab index also gives the grid's size: pass it on.
        info = self._resolve() if self._title is None else None
        assert self._title is not None
        title = self._title
        where = f"worksheet {title!r} of spreadsheet {self.spreadsheet_id}"
        h = self.header_row - 1
        names = self.columns.names()
        cols = self.columns
        by_key = index.by_key
        key_of = index.key_of
        # Keys no row has matched yet (the index's own key objects: no copies kept per row).
        unmatched = dict.fromkeys(by_key)
        # Per changed row, the new text of each status column (None: unchanged), in `names`
        # order: where a missing column goes is only known once every row has been seen.
        changes: dict[int, _Plan] = {}
        shared: dict[_Plan, _Plan] = {}  # one object per distinct plan, however many rows
        placed: list[int] | None = None
        slot_of: dict[int, int] = {}
        match_col = status_col = 0
        flag_cols: tuple[int | None, int | None, int | None, int | None] = (None,) * 4
        blank: list[str | None] = [None] * len(names)
        width = 0  # the widest row: new columns go right of every used cell
        reader = RowPages(self.caller, self.spreadsheet_id, title, info=info)
        for first, rows in reader.read(1, self.header_row + self.page_rows, self.page_rows):
            if rows:
                width = max(width, max(map(len, rows)))
            base = first - 1  # 0-based sheet row of rows[0]
            if placed is None:  # the first page, which starts at row 1
                if len(rows) <= h or not any(str(c).strip() for c in rows[h]):
                    raise NoHeaderError(f"{where} has no header in row {self.header_row}")
                match_col, placed = self._find_columns(rows[h], where)
                slot_of = {col: slot for slot, col in enumerate(placed)}
                col_at = dict(zip(names, placed, strict=True))
                status_col = col_at[cols.status]
                flag_cols = (
                    col_at[cols.opened] if cols.opened else None,
                    col_at[cols.replied] if cols.replied else None,
                    col_at[cols.unsubscribed] if cols.unsubscribed else None,
                    col_at[cols.bounced] if cols.bounced else None,
                )
            for i in range(max(0, h + 1 - base), len(rows)):
                row = rows[i]
                if match_col >= len(row):
                    continue
                key = key_of(row[match_col])
                if key is None:
                    continue
                statuses = by_key.get(key)
                if statuses is None:
                    continue
                first_match = key in unmatched
                if first_match:
                    del unmatched[key]
                row_changes = plan_row(
                    row,
                    statuses,
                    status_col=status_col,
                    flag_cols=flag_cols,
                    result=result,
                    count=first_match,
                )
                if row_changes:
                    cells = blank.copy()
                    for col, text in row_changes:
                        cells[slot_of[col]] = text
                    plan = tuple(cells)
                    changes[base + i] = shared.setdefault(plan, plan)
        if placed is None:
            raise NoHeaderError(f"{where} has no header in row {self.header_row}")
        for key in unmatched:
            result.not_found.extend([key] * len(by_key[key]))
        if not changes:
            # Only headers would change: nothing worth a write (they are added with data).
            return
        self._place_and_send(
            title, changes, names=names, placed=placed, width=width, header=h, reader=reader
        )

    def _place_and_send(
        self,
        title: str,
        changes: dict[int, _Plan],
        *,
        names: Sequence[str],
        placed: Sequence[int],
        width: int,
        header: int,
        reader: RowPages,
    ) -> None:
        """Put the columns not in the header right of the widest row, then send every change.

        `placed` holds each of `names`' column, or ``_UNPLACED + slot`` for a missing one; the
        header cells of missing columns go in with the data (row index `header`).
        """
        positions: list[int] = []
        header_cells: list[str | None] = []
        next_free = width
        for name, col in zip(names, placed, strict=True):
            if col >= _UNPLACED:
                header_cells.append(name)
                col, next_free = next_free, next_free + 1
            else:
                header_cells.append(None)
            positions.append(col)
        if next_free > width:
            changes[header] = tuple(header_cells)
        if reader.info is not None:
            self._sheet_id = reader.info.sheet_id
        grid = reader.grid
        if grid is not None and next_free > grid[1]:
            self._grow_columns(next_free - grid[1])
        self._send(title, _blocks(changes, positions))

    def _find_columns(self, header_cells: list[str], where: str) -> tuple[int, list[int]]:
        """The match column's index, and each status column's (a stand-in when missing)."""
        header = normalize_headers(header_cells)
        try:
            match_col = (
                find_column(header, self.match_by, source=where)
                if self.match_by
                else email_column(header, self.mapping, source=where)
            )
        except MappingError as exc:
            raise MappingError(f"cannot match rows: {exc}") from None
        placed: list[int] = []
        for slot, name in enumerate(self.columns.names()):
            try:
                placed.append(find_column(header, name, source=where))
            except MappingError:
                # Past any row, so the row's cell reads as blank; placed once all rows are seen.
                placed.append(_UNPLACED + slot)
        return match_col, placed

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

    def _send(self, title: str, blocks: list[_Block]) -> None:
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
