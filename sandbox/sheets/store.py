"""State of the Sheets emulator: spreadsheets, worksheets and cell values, in memory or SQLite.

Rows are kept as lists (one list per sheet row, never one record per cell) so a 100,000-row
sheet reads and writes quickly. With a database path, each changed row is also saved to SQLite
as a JSON list and everything is loaded back on start.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sandbox.sheets.a1 import A1Range, format_range

__all__ = [
    "Cell",
    "Formula",
    "GridLimitError",
    "Sheet",
    "SheetNotFound",
    "Spreadsheet",
    "Store",
    "parse_user_entered",
    "render",
]

DEFAULT_ROWS = 1000
DEFAULT_COLS = 26


@dataclass(frozen=True, slots=True)
class Formula:
    """A cell holding a formula (entered with USER_ENTERED). The emulator does not compute it."""

    text: str


Cell = str | int | float | bool | Formula

_NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def parse_user_entered(value: Any) -> Cell:
    """What Sheets stores when a person types `value`: formulas, numbers and booleans parsed."""
    if not isinstance(value, str):
        return value  # type: ignore[no-any-return]
    if value.startswith("="):
        return Formula(value)
    if value.startswith("'"):
        return value[1:]
    stripped = value.strip()
    if _NUMBER_RE.match(stripped):
        number = float(stripped)
        return int(number) if number.is_integer() and abs(number) < 1e15 else number
    if stripped.upper() in ("TRUE", "FALSE"):
        return stripped.upper() == "TRUE"
    return value


def render(cell: Cell, option: str) -> Any:
    """A cell as a values response shows it for a valueRenderOption."""
    if isinstance(cell, Formula):
        # Formulas are not evaluated; their computed value reads as empty.
        return cell.text if option == "FORMULA" else ""
    if option == "FORMATTED_VALUE":
        if isinstance(cell, bool):
            return "TRUE" if cell else "FALSE"
        if isinstance(cell, float) and cell.is_integer():
            return str(int(cell))
        return str(cell)
    return cell


class SheetNotFound(LookupError):
    """A range names a sheet the spreadsheet does not have."""


class GridLimitError(ValueError):
    """A write reaches past the sheet's rows or columns."""


@dataclass
class Sheet:
    """One worksheet: its properties and its rows (lists of cells, trailing cells may be absent)."""

    sheet_id: int
    title: str
    index: int
    row_count: int
    col_count: int
    rows: list[list[Cell]] = field(default_factory=list)
    # Cell formats and notes by (row, column), e.g. {"userEnteredFormat": {...}, "note": "..."}.
    cell_extras: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    # Other sheet properties set through updateSheetProperties: tabColorStyle, hidden,
    # gridProperties.frozenRowCount / frozenColumnCount / hideGridlines.
    extra: dict[str, Any] = field(default_factory=dict)

    def properties(self) -> dict[str, Any]:
        grid = {"rowCount": self.row_count, "columnCount": self.col_count}
        grid.update(self.extra.get("gridProperties", {}))
        props = {k: v for k, v in self.extra.items() if k != "gridProperties"}
        return {
            "sheetId": self.sheet_id,
            "title": self.title,
            "index": self.index,
            "sheetType": "GRID",
            "gridProperties": grid,
            **props,
        }

    def insert_dimension(self, rows: bool, start: int, count: int) -> None:
        """Insert `count` empty rows (or columns) before index `start`, growing the grid."""
        if rows:
            if start < len(self.rows):
                self.rows[start:start] = [[] for _ in range(count)]
            self.row_count += count
        else:
            for row in self.rows:
                if start < len(row):
                    row[start:start] = [""] * count
            self.col_count += count
        self._shift_extras(rows, start, count)

    def delete_dimension(self, rows: bool, start: int, end: int) -> None:
        """Delete rows (or columns) [start, end), shrinking the grid."""
        if rows:
            del self.rows[start:end]
            self.row_count -= end - start
        else:
            for row in self.rows:
                del row[start:end]
            self.col_count -= end - start
        axis = 0 if rows else 1
        self.cell_extras = {k: v for k, v in self.cell_extras.items() if not start <= k[axis] < end}
        self._shift_extras(rows, end, start - end)

    def _shift_extras(self, rows: bool, start: int, delta: int) -> None:
        axis = 0 if rows else 1
        moved: dict[tuple[int, int], dict[str, Any]] = {}
        for (r, c), extra in self.cell_extras.items():
            if (r, c)[axis] >= start:
                r, c = (r + delta, c) if rows else (r, c + delta)
            moved[(r, c)] = extra
        self.cell_extras = moved

    def bounds(self, rng: A1Range) -> tuple[int, int, int, int]:
        """Closed bounds of `rng` on this sheet, open sides clipped to the grid."""
        r1 = rng.row1 if rng.row1 is not None else 0
        c1 = rng.col1 if rng.col1 is not None else 0
        r2 = rng.row2 if rng.row2 is not None else self.row_count - 1
        c2 = rng.col2 if rng.col2 is not None else self.col_count - 1
        return r1, c1, max(r1, r2), max(c1, c2)

    def label(self, rng: A1Range) -> str:
        r1, c1, r2, c2 = self.bounds(rng)
        return format_range(
            self.title, r1, c1, min(r2, self.row_count - 1), min(c2, self.col_count - 1)
        )

    def read(self, rng: A1Range, option: str, major: str) -> list[list[Any]]:
        """Values in `rng`, trailing empty cells and rows trimmed, as the API returns them."""
        r1, c1, r2, c2 = self.bounds(rng)
        out: list[list[Any]] = []
        for row in self.rows[r1 : r2 + 1]:
            cells = [render(c, option) for c in row[c1 : c2 + 1]]
            while cells and cells[-1] == "":
                cells.pop()
            out.append(cells)
        while out and not out[-1]:
            out.pop()
        if major == "COLUMNS" and out:
            width = max(len(r) for r in out)
            cols = [[r[j] if j < len(r) else "" for r in out] for j in range(width)]
            for col in cols:
                while col and col[-1] == "":
                    col.pop()
            out = cols
        return out

    def write(self, rng: A1Range, values: Sequence[Sequence[Any]], raw: bool) -> set[int]:
        """Write a block of values at the top-left of `rng`; JSON nulls leave cells as they are.

        Returns:
            The 0-based indexes of the rows touched.

        Raises:
            GridLimitError: the block reaches past the grid or past a closed side of `rng`.
        """
        r1, c1, r2, c2 = self.bounds(rng)
        height = len(values)
        width = max((len(v) for v in values), default=0)
        if height == 0 or width == 0:
            return set()
        last_row, last_col = r1 + height - 1, c1 + width - 1
        # A one-cell range only anchors the block; a wider range bounds it.
        bounded = not rng.single
        if bounded and (
            (rng.row2 is not None and last_row > r2) or (rng.col2 is not None and last_col > c2)
        ):
            raise GridLimitError(
                f"Requested writing within range [{self.label(rng)}], but tried writing to "
                f"{format_range(self.title, last_row, last_col, last_row, last_col)}"
            )
        if last_row >= self.row_count or last_col >= self.col_count:
            raise GridLimitError(
                f"Range ({format_range(self.title, r1, c1, last_row, last_col)}) exceeds grid "
                f"limits. Max rows: {self.row_count}, max columns: {self.col_count}"
            )
        rows = self.rows
        if len(rows) <= last_row:
            rows.extend([] for _ in range(last_row + 1 - len(rows)))
        touched: set[int] = set()
        for i, block_row in enumerate(values):
            target = rows[r1 + i]
            for j, value in enumerate(block_row):
                if value is None:
                    continue
                col = c1 + j
                if len(target) <= col:
                    target.extend([""] * (col + 1 - len(target)))
                target[col] = value if raw else parse_user_entered(value)
            touched.add(r1 + i)
        return touched

    def clear(self, rng: A1Range) -> set[int]:
        r1, c1, r2, c2 = self.bounds(rng)
        touched: set[int] = set()
        for index in range(r1, min(r2 + 1, len(self.rows))):
            row = self.rows[index]
            for col in range(c1, min(c2 + 1, len(row))):
                row[col] = ""
            touched.add(index)
        return touched

    def row_span(self, index: int, lo: int, hi: int) -> tuple[int, int] | None:
        """First and last non-empty column of row `index` within [lo, hi], or None."""
        if index >= len(self.rows):
            return None
        row = self.rows[index]
        found = [c for c in range(lo, min(hi + 1, len(row))) if row[c] != ""]
        return (found[0], found[-1]) if found else None

    def find_table(self, r1: int, c1: int, r2: int, c2: int) -> tuple[int, int, int, int] | None:
        """The first table found in the search area [r1..r2] x [c1..c2], as Google's append
        finds it, as (top, left, bottom, right); None when the area holds no value.

        Its top row is the area's first row holding a value; its columns run between that
        row's first and last values in the area, widened by the values touching them. Each
        following row (past the area too) with a value in the table's columns extends it, and
        widens it the same way; the first row with none ends it.
        """
        top = next(
            (r for r in range(r1, min(r2 + 1, len(self.rows))) if self.row_span(r, c1, c2)),
            None,
        )
        if top is None:
            return None
        span = self.row_span(top, c1, c2)
        assert span is not None
        left, right = self._widen(top, *span)
        bottom = top
        while bottom + 1 < len(self.rows):
            nxt = self.row_span(bottom + 1, left, right)
            if nxt is None:
                break
            bottom += 1
            lo, hi = self._widen(bottom, *nxt)
            left, right = min(left, lo), max(right, hi)
        return top, left, bottom, right

    def _widen(self, index: int, lo: int, hi: int) -> tuple[int, int]:
        row = self.rows[index] if index < len(self.rows) else []
        while lo > 0 and lo - 1 < len(row) and row[lo - 1] != "":
            lo -= 1
        while hi + 1 < len(row) and row[hi + 1] != "":
            hi += 1
        return lo, hi

    def last_data_row(self) -> int:
        """0-based index of the last row holding any value, -1 when the sheet is empty."""
        for index in range(len(self.rows) - 1, -1, -1):
            if any(c != "" for c in self.rows[index]):
                return index
        return -1


@dataclass
class Spreadsheet:
    """A spreadsheet and its worksheets, in tab order."""

    spreadsheet_id: str
    title: str
    sheets: list[Sheet]
    permissions: list[dict[str, Any]] = field(default_factory=list)  # Drive sharing
    created: str = field(default_factory=lambda: _drive_now())

    def sheet(self, title: str | None) -> Sheet:
        if title is None:
            return self.sheets[0]
        for sheet in self.sheets:
            if sheet.title == title:
                return sheet
        raise SheetNotFound(title)

    def sheet_by_id(self, sheet_id: int) -> Sheet:
        for sheet in self.sheets:
            if sheet.sheet_id == sheet_id:
                return sheet
        raise SheetNotFound(str(sheet_id))

    def metadata(self) -> dict[str, Any]:
        return {
            "spreadsheetId": self.spreadsheet_id,
            "properties": {
                "title": self.title,
                "locale": "en_US",
                "autoRecalc": "ON_CHANGE",
                "timeZone": "Etc/GMT",
            },
            "sheets": [{"properties": s.properties()} for s in self.sheets],
            "spreadsheetUrl": f"https://docs.google.com/spreadsheets/d/{self.spreadsheet_id}/edit",
        }


def _drive_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + "000Z"


def _encode(cell: Cell) -> Any:
    return {"formula": cell.text} if isinstance(cell, Formula) else cell


def _decode(value: Any) -> Cell:
    if isinstance(value, dict):
        return Formula(str(value.get("formula", "")))
    return value  # type: ignore[no-any-return]


class Store:
    """All spreadsheets, guarded by one lock; optionally persisted row by row to SQLite."""

    def __init__(self, db_path: str | Path | None = None) -> None:
        self.lock = threading.RLock()
        self.spreadsheets: dict[str, Spreadsheet] = {}
        self._db: sqlite3.Connection | None = None
        if db_path is not None:
            self._db = sqlite3.connect(str(db_path), check_same_thread=False)
            self._db.executescript(
                """
                CREATE TABLE IF NOT EXISTS sheets (
                    spreadsheet_id TEXT, spreadsheet_title TEXT, sheet_id INTEGER,
                    title TEXT, idx INTEGER, row_count INTEGER, col_count INTEGER,
                    PRIMARY KEY (spreadsheet_id, sheet_id));
                CREATE TABLE IF NOT EXISTS rows (
                    spreadsheet_id TEXT, sheet_id INTEGER, row_index INTEGER, cells TEXT,
                    PRIMARY KEY (spreadsheet_id, sheet_id, row_index));
                CREATE TABLE IF NOT EXISTS extras (
                    spreadsheet_id TEXT, sheet_id INTEGER, data TEXT,
                    PRIMARY KEY (spreadsheet_id, sheet_id));
                """
            )
            self._load()

    def _load(self) -> None:
        assert self._db is not None
        for sid, stitle, sheet_id, title, idx, nrows, ncols in self._db.execute(
            "SELECT * FROM sheets ORDER BY spreadsheet_id, idx"
        ):
            book = self.spreadsheets.setdefault(sid, Spreadsheet(sid, stitle, []))
            book.sheets.append(Sheet(sheet_id, title, idx, nrows, ncols))
        for sid, sheet_id, row_index, cells in self._db.execute(
            "SELECT * FROM rows ORDER BY spreadsheet_id, sheet_id, row_index"
        ):
            sheet = self.spreadsheets[sid].sheet_by_id(sheet_id)
            if len(sheet.rows) <= row_index:
                sheet.rows.extend([] for _ in range(row_index + 1 - len(sheet.rows)))
            sheet.rows[row_index] = [_decode(c) for c in json.loads(cells)]
        for sid, sheet_id, data in self._db.execute("SELECT * FROM extras"):
            if sid not in self.spreadsheets:
                continue
            try:
                sheet = self.spreadsheets[sid].sheet_by_id(sheet_id)
            except SheetNotFound:
                continue
            loaded = json.loads(data)
            sheet.extra = dict(loaded.get("extra", {}))
            sheet.cell_extras = {(r, c): v for r, c, v in loaded.get("cells", [])}

    def save(self, book: Spreadsheet, touched: Iterable[tuple[Sheet, Iterable[int]]] = ()) -> None:
        """Persist the spreadsheet's properties and the given rows (no-op without a database)."""
        if self._db is None:
            return
        with self._db:
            self._db.execute("DELETE FROM sheets WHERE spreadsheet_id = ?", (book.spreadsheet_id,))
            self._db.executemany(
                "INSERT INTO sheets VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        book.spreadsheet_id,
                        book.title,
                        s.sheet_id,
                        s.title,
                        s.index,
                        s.row_count,
                        s.col_count,
                    )
                    for s in book.sheets
                ],
            )
            for sheet, indexes in touched:
                self._db.executemany(
                    "INSERT OR REPLACE INTO rows VALUES (?, ?, ?, ?)",
                    [
                        (
                            book.spreadsheet_id,
                            sheet.sheet_id,
                            i,
                            json.dumps([_encode(c) for c in sheet.rows[i]]),
                        )
                        for i in indexes
                        if i < len(sheet.rows)
                    ],
                )

    def save_all(self, book: Spreadsheet) -> None:
        """Persist a spreadsheet whose rows moved (dimensions inserted or deleted, sheets gone)."""
        if self._db is None:
            return
        with self._db:
            self._db.execute("DELETE FROM rows WHERE spreadsheet_id = ?", (book.spreadsheet_id,))
        self.save(book, [(s, range(len(s.rows))) for s in book.sheets])

    def save_extras(self, book: Spreadsheet) -> None:
        """Persist formats, notes and extra sheet properties (no-op without a database)."""
        if self._db is None:
            return
        with self._db:
            self._db.execute("DELETE FROM extras WHERE spreadsheet_id = ?", (book.spreadsheet_id,))
            self._db.executemany(
                "INSERT INTO extras VALUES (?, ?, ?)",
                [
                    (
                        book.spreadsheet_id,
                        s.sheet_id,
                        json.dumps(
                            {
                                "extra": s.extra,
                                "cells": [[r, c, v] for (r, c), v in s.cell_extras.items()],
                            }
                        ),
                    )
                    for s in book.sheets
                ],
            )

    def delete(self, spreadsheet_id: str) -> None:
        """Forget a spreadsheet (Drive files.delete)."""
        with self.lock:
            self.spreadsheets.pop(spreadsheet_id, None)
            if self._db is not None:
                with self._db:
                    for table in ("sheets", "rows", "extras"):
                        self._db.execute(
                            f"DELETE FROM {table} WHERE spreadsheet_id = ?", (spreadsheet_id,)
                        )

    def create(self, title: str, sheets: dict[str, list[list[Any]]]) -> Spreadsheet:
        """A new spreadsheet; each sheet's grid is at least 1000 x 26, like a new Google sheet."""
        spreadsheet_id = secrets.token_urlsafe(33)[:44]
        built: list[Sheet] = []
        for index, (name, rows) in enumerate((sheets or {"Sheet1": []}).items()):
            # Seeded cells use the dump's form: {"formula": "=..."} is a formula cell.
            copied: list[list[Cell]] = [[_decode(c) for c in r] for r in rows]
            width = max((len(r) for r in copied), default=0)
            built.append(
                Sheet(
                    sheet_id=0 if index == 0 else 1000 + index,
                    title=name,
                    index=index,
                    row_count=max(DEFAULT_ROWS, len(copied)),
                    col_count=max(DEFAULT_COLS, width),
                    rows=copied,
                )
            )
        book = Spreadsheet(spreadsheet_id, title, built)
        with self.lock:
            self.spreadsheets[spreadsheet_id] = book
            self.save(book, [(s, range(len(s.rows))) for s in built])
        return book

    def reset(self) -> None:
        with self.lock:
            self.spreadsheets.clear()
            if self._db is not None:
                with self._db:
                    self._db.execute("DELETE FROM sheets")
                    self._db.execute("DELETE FROM rows")
                    self._db.execute("DELETE FROM extras")
