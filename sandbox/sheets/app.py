"""The Google Sheets v4 emulator: the values and metadata calls gspread makes, quotas, faults.

Served paths (what gspread 6 calls):

* ``GET  /v4/spreadsheets/{id}``                       metadata (sheets[].properties)
* ``POST /v4/spreadsheets/{id}:batchUpdate``           addSheet, appendDimension, updateSheetProperties
* ``GET  /v4/spreadsheets/{id}/values/{range}``        values.get
* ``PUT  /v4/spreadsheets/{id}/values/{range}``        values.update (valueInputOption required)
* ``POST /v4/spreadsheets/{id}/values/{range}:append`` values.append (grows the grid)
* ``POST /v4/spreadsheets/{id}/values/{range}:clear``  values.clear
* ``GET  /v4/spreadsheets/{id}/values:batchGet``       values.batchGet
* ``POST /v4/spreadsheets/{id}/values:batchUpdate``    values.batchUpdate
* ``POST /v4/spreadsheets/{id}/values:batchClear``     values.batchClear

Errors use Google's envelope ``{"error": {"code", "message", "status"}}``. Each user (the bearer
token, or ``anonymous`` without one) has a read quota (GET) and a write quota (everything else)
per window, 60 each per minute by default, answering 429 RESOURCE_EXHAUSTED when spent. Tokens
are not checked: any token is a user. USER_ENTERED writes are parsed as if typed (a leading
``=`` makes a formula, which the emulator stores but does not compute); RAW writes are stored
as given.

``POST /token`` answers a service account's OAuth2 JWT-bearer grant (signature not checked), so
the real google-auth flow works with ``token_uri`` pointed at the emulator.

Control surface (never faulted, never rate limited), under ``/_sandbox/``:
``POST spreadsheets``, ``GET spreadsheets/{id}/values/{sheet}``, ``GET writes``,
``GET|PUT limits``, ``GET|PUT faults``, ``GET stats``, ``POST stats/reset``, ``POST reset``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox._faults import FaultConfig, FaultInjector, Receive, Scope, Send
from sandbox.sheets.a1 import A1Range, RangeError, format_range, parse_range
from sandbox.sheets.store import (
    Formula,
    GridLimitError,
    Sheet,
    SheetNotFound,
    Spreadsheet,
    Store,
    render,
)

__all__ = ["Limits", "SheetsEmulator", "SheetsSandboxApp", "create_app"]

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
}

_PATH_RE = re.compile(r"^/v4/spreadsheets/([^/:]+)(.*)$")
_RENDER_OPTIONS = ("FORMATTED_VALUE", "UNFORMATTED_VALUE", "FORMULA")
_INPUT_OPTIONS = ("RAW", "USER_ENTERED")


class ApiError(Exception):
    """An error answer in Google's envelope."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def response(self) -> JSONResponse:
        status = _STATUS_NAMES.get(self.code, "UNKNOWN")
        body = {"error": {"code": self.code, "message": self.message, "status": status}}
        return JSONResponse(body, status_code=self.code)


class Limits(BaseModel):
    """Per-user quotas; None lifts a quota. Setting limits starts fresh windows."""

    model_config = ConfigDict(extra="forbid")

    reads_per_minute: int | None = Field(default=60, ge=0)
    writes_per_minute: int | None = Field(default=60, ge=0)
    window_seconds: float = Field(
        default=60.0, gt=0, le=3600, description="Length of a quota window (60 = per minute)."
    )


def _one_empty_sheet() -> dict[str, list[list[Any]]]:
    return {"Sheet1": []}


class _CreateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = "Untitled spreadsheet"
    sheets: dict[str, list[list[Any]]] = Field(default_factory=_one_empty_sheet)


def route_key(method: str, path: str) -> str:
    """``"<METHOD> <route template>"`` for a request path, as counted in stats."""
    m = _PATH_RE.match(path)
    if not m:
        return f"{method} {path}"
    rest = m.group(2)
    if rest == "":
        template = "/v4/spreadsheets/{id}"
    elif rest == ":batchUpdate":
        template = "/v4/spreadsheets/{id}:batchUpdate"
    elif rest.startswith("/values:"):
        template = "/v4/spreadsheets/{id}" + rest
    elif rest.startswith("/values/"):
        suffix = next((s for s in (":append", ":clear") if rest.endswith(s)), "")
        template = "/v4/spreadsheets/{id}/values/{range}" + suffix
    else:
        template = "/v4/spreadsheets/{id}" + rest
    return f"{method} {template}"


class SheetsEmulator:
    """The emulator's state and request handling; `create_app` wires it into ASGI."""

    def __init__(self, *, db_path: str | Path | None, limits: Limits) -> None:
        self.store = Store(db_path)
        self.limits = limits
        self.initial_limits = limits
        self.writes: list[dict[str, Any]] = []
        self.stats: dict[str, int] = {"total": 0}
        self.injector: FaultInjector | None = None
        self._quota_lock = threading.Lock()
        self._windows: dict[tuple[str, str], tuple[float, int]] = {}
        self._write_seq = 0
        self.clock: Callable[[], float] = time.monotonic

    # -- quotas ------------------------------------------------------------------------------

    def _admit(self, user: str, kind: str) -> None:
        limit = self.limits.reads_per_minute if kind == "read" else self.limits.writes_per_minute
        if limit is None:
            return
        now = self.clock()
        window = self.limits.window_seconds
        with self._quota_lock:
            start, used = self._windows.get((user, kind), (now, 0))
            if now - start >= window:
                start, used = now, 0
            if used >= limit:
                # Counted like a route (present once it happened): suites assert it never does.
                self.stats["rate_limited"] = self.stats.get("rate_limited", 0) + 1
                label = "Read" if kind == "read" else "Write"
                raise ApiError(
                    429,
                    f"Quota exceeded for quota metric '{label} requests' and limit "
                    f"'{label} requests per minute per user' of service "
                    "'sheets.googleapis.com'.",
                )
            self._windows[(user, kind)] = (start, used + 1)

    def set_limits(self, limits: Limits) -> None:
        with self._quota_lock:
            self.limits = limits
            self._windows.clear()

    # -- helpers -----------------------------------------------------------------------------

    def _book(self, spreadsheet_id: str) -> Spreadsheet:
        book = self.store.spreadsheets.get(spreadsheet_id)
        if book is None:
            raise ApiError(404, "Requested entity was not found.")
        return book

    @staticmethod
    def _range(book: Spreadsheet, text: str) -> tuple[Sheet, A1Range]:
        try:
            rng = parse_range(text)
            return book.sheet(rng.sheet), rng
        except (RangeError, SheetNotFound):
            raise ApiError(400, f"Unable to parse range: {text}") from None

    def _record(self, api: str, book: Spreadsheet, label: str, option: str, cells: int) -> None:
        self.writes.append(
            {
                "request": self._write_seq,
                "api": api,
                "spreadsheet_id": book.spreadsheet_id,
                "range": label,
                "valueInputOption": option,
                "cells": cells,
            }
        )

    @staticmethod
    def _input_option(value: object) -> str:
        if value is None:
            raise ApiError(400, "'valueInputOption' is required but not specified")
        if value not in _INPUT_OPTIONS:
            raise ApiError(400, f"Invalid value at 'value_input_option' ({value})")
        return str(value)

    @staticmethod
    def _values(body: Mapping[str, Any]) -> list[list[Any]]:
        values = body.get("values", [])
        if not isinstance(values, list) or not all(isinstance(r, list) for r in values):
            raise ApiError(400, "Invalid value at 'data.values': expected a list of lists")
        if body.get("majorDimension", "ROWS") == "COLUMNS" and values:
            height = max(len(c) for c in values)
            return [[c[i] if i < len(c) else None for c in values] for i in range(height)]
        return values

    def _value_range(
        self, book: Spreadsheet, text: str, params: Mapping[str, str]
    ) -> dict[str, Any]:
        option = params.get("valueRenderOption", "FORMATTED_VALUE")
        if option not in _RENDER_OPTIONS:
            raise ApiError(400, f"Invalid value at 'value_render_option' ({option})")
        major = params.get("majorDimension", "ROWS")
        if major not in ("ROWS", "COLUMNS"):
            raise ApiError(400, f"Invalid value at 'major_dimension' ({major})")
        sheet, rng = self._range(book, text)
        r1, c1, _, _ = sheet.bounds(rng)
        if r1 >= sheet.row_count or c1 >= sheet.col_count:
            # As Google does: a read starting outside the grid is refused, while one running
            # past its edge is answered for the part inside (here the reported range is cut
            # at the edge; callers must not need that to find the grid's end).
            raise ApiError(
                400,
                f"Range ({text}) exceeds grid limits. Max rows: {sheet.row_count}, "
                f"max columns: {sheet.col_count}",
            )
        out: dict[str, Any] = {"range": sheet.label(rng), "majorDimension": major}
        values = sheet.read(rng, option, major)
        if values:
            out["values"] = values
        return out

    def _write(
        self, api: str, book: Spreadsheet, text: str, values: list[list[Any]], option: str
    ) -> dict[str, Any]:
        sheet, rng = self._range(book, text)
        try:
            touched = sheet.write(rng, values, raw=option == "RAW")
        except GridLimitError as exc:
            raise ApiError(400, str(exc)) from None
        self.store.save(book, [(sheet, touched)])
        r1, c1, _, _ = sheet.bounds(rng)
        result = _update_counts(book.spreadsheet_id, sheet, r1, c1, values)
        self._record(api, book, text, option, result.get("updatedCells", 0))
        return result

    # -- the API -----------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, params: Mapping[str, Any], body: Any, user: str
    ) -> Any:
        """Answer one Sheets API call (called with the store's lock held)."""
        m = _PATH_RE.match(path)
        if not m:
            raise ApiError(404, f"Method not found: {path}")
        self._admit(user, "read" if method == "GET" else "write")
        book = self._book(unquote(m.group(1)))
        rest = m.group(2)
        if method != "GET" and not isinstance(body, dict):
            raise ApiError(400, "Invalid JSON payload received: expected an object")
        if method == "GET" and rest == "":
            return self._metadata(book, params)
        if method == "GET" and rest == "/values:batchGet":
            ranges = params.get("ranges", [])
            return {
                "spreadsheetId": book.spreadsheet_id,
                "valueRanges": [self._value_range(book, r, params) for r in ranges],
            }
        if method == "POST" and rest == "/values:batchUpdate":
            return self._batch_update_values(book, body)
        if method == "POST" and rest == "/values:batchClear":
            ranges = body.get("ranges", [])
            if not isinstance(ranges, list) or not all(isinstance(r, str) for r in ranges):
                raise ApiError(400, "Invalid value at 'ranges': expected a list of strings")
            return self._batch_clear(book, ranges)
        if method == "POST" and rest == ":batchUpdate":
            return self._batch_update_sheets(book, body)
        if rest.startswith("/values/"):
            raw_range = rest[len("/values/") :]
            if method == "POST" and raw_range.endswith(":append"):
                return self._append(book, unquote(raw_range[: -len(":append")]), params, body)
            if method == "POST" and raw_range.endswith(":clear"):
                cleared = self._batch_clear(book, [unquote(raw_range[: -len(":clear")])])
                return {
                    "spreadsheetId": book.spreadsheet_id,
                    "clearedRange": cleared["clearedRanges"][0],
                }
            text = unquote(raw_range)
            if method == "GET":
                return self._value_range(book, text, params)
            if method == "PUT":
                self._write_seq += 1
                option = self._input_option(params.get("valueInputOption"))
                result = self._write("values.update", book, text, self._values(body), option)
                result.pop("_rows", None)
                result.pop("_cols", None)
                return self._with_values(book, result, params)
        raise ApiError(404, f"Method not found: {method} {path}")

    def _metadata(self, book: Spreadsheet, params: Mapping[str, Any]) -> dict[str, Any]:
        """spreadsheets.get; with includeGridData (or a fields mask naming sheets.data), the
        cells of `ranges` (every sheet without ranges): values, formats and notes."""
        meta = book.metadata()
        fields = str(params.get("fields", "")).replace("/", ".")
        wants_grid = str(params.get("includeGridData", "")).lower() == "true" or (
            "sheets.data" in fields
        )
        if not wants_grid:
            return meta
        ranges: list[str] = list(params.get("ranges") or [])
        by_sheet: dict[int, list[dict[str, Any]]] = {}
        targets = [self._range(book, r) for r in ranges] or [
            (s, A1Range(s.title)) for s in book.sheets
        ]
        # A fields mask naming CellData fields (sheets.data.rowData.values.note) keeps only those.
        keep = {m.group(1) for m in re.finditer(r"sheets\.data\.rowData\.values\.(\w+)", fields)}
        for sheet, rng in targets:
            by_sheet.setdefault(sheet.sheet_id, []).append(_grid_data(sheet, rng, keep))
        meta["sheets"] = [
            {"properties": s.properties(), "data": by_sheet[s.sheet_id]}
            for s in book.sheets
            if s.sheet_id in by_sheet
        ]
        return meta

    def _with_values(
        self, book: Spreadsheet, result: dict[str, Any], params: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Add ``updatedData`` when the caller asked for includeValuesInResponse."""
        if str(params.get("includeValuesInResponse", "")).lower() != "true":
            return result
        label = result.get("updatedRange")
        if not label:
            return result
        render = {"valueRenderOption": params.get("responseValueRenderOption", "FORMATTED_VALUE")}
        return {**result, "updatedData": self._value_range(book, label, render)}

    def _batch_update_values(self, book: Spreadsheet, body: Mapping[str, Any]) -> Any:
        option = self._input_option(body.get("valueInputOption"))
        data = body.get("data", [])
        if not isinstance(data, list):
            raise ApiError(400, "Invalid value at 'data': expected a list")
        # Validate every range before changing anything: the real API applies all or nothing.
        for index, item in enumerate(data):
            if not isinstance(item, dict) or "range" not in item:
                raise ApiError(400, f"Invalid data[{index}]: a range is required")
            self._range(book, str(item["range"]))
        self._write_seq += 1
        snapshot = [(s, [list(r) for r in s.rows]) for s in book.sheets]
        try:
            responses = [
                self._write(
                    "values.batchUpdate", book, str(item["range"]), self._values(item), option
                )
                for item in data
            ]
        except ApiError:
            for sheet, rows in snapshot:
                sheet.rows = rows
            raise
        # Totals count distinct rows and columns (per sheet), not the sum of each range's.
        touched_rows: set[tuple[str, int]] = set()
        touched_cols: set[tuple[str, int]] = set()
        for result in responses:
            touched_rows.update(result.pop("_rows", ()))
            touched_cols.update(result.pop("_cols", ()))
        out: dict[str, Any] = {"spreadsheetId": book.spreadsheet_id}
        cells = sum(r.get("updatedCells", 0) for r in responses)
        if cells:
            out.update(
                totalUpdatedRows=len(touched_rows),
                totalUpdatedColumns=len(touched_cols),
                totalUpdatedCells=cells,
                totalUpdatedSheets=len({title for title, _ in touched_rows}),
            )
        if str(body.get("includeValuesInResponse", "")).lower() == "true":
            options = {
                "includeValuesInResponse": "true",
                "responseValueRenderOption": body.get(
                    "responseValueRenderOption", "FORMATTED_VALUE"
                ),
            }
            responses = [self._with_values(book, r, options) for r in responses]
        out["responses"] = responses
        return out

    def _batch_clear(self, book: Spreadsheet, ranges: list[str]) -> Any:
        cleared = []
        for text in ranges:
            sheet, rng = self._range(book, text)
            self.store.save(book, [(sheet, sheet.clear(rng))])
            cleared.append(sheet.label(rng))
        return {"spreadsheetId": book.spreadsheet_id, "clearedRanges": cleared}

    def _append(
        self, book: Spreadsheet, text: str, params: Mapping[str, Any], body: Mapping[str, Any]
    ) -> Any:
        option = self._input_option(params.get("valueInputOption"))
        insert = params.get("insertDataOption", "OVERWRITE")
        if insert not in ("OVERWRITE", "INSERT_ROWS"):
            raise ApiError(400, f"Invalid value at 'insert_data_option' ({insert})")
        sheet, rng = self._range(book, text)
        values = self._values(body)
        # A one-cell range is itself the search area: a table starts there or nowhere.
        r1, c1, r2, c2 = sheet.bounds(rng)
        table = sheet.find_table(r1, c1, min(r2, sheet.row_count - 1), c2)
        start_row, start_col = (table[2] + 1, table[1]) if table else (r1, c1)
        height = len(values)
        self._write_seq += 1
        if insert == "INSERT_ROWS" and height:
            sheet.insert_dimension(True, start_row, height)
        elif start_row + height > sheet.row_count:
            # Appending past the end grows the sheet, as Google does for OVERWRITE too.
            sheet.row_count = start_row + height
        width = max((len(r) for r in values), default=0)
        if start_col + width > sheet.col_count:
            sheet.col_count = start_col + width
        target = A1Range(sheet.title, start_row, start_col, None, None)
        try:
            touched = sheet.write(target, values, raw=option == "RAW")
        except GridLimitError as exc:
            raise ApiError(400, str(exc)) from None
        if insert == "INSERT_ROWS" and height:
            self.store.save_all(book)
        else:
            self.store.save(book, [(sheet, touched)])
        updates = _update_counts(book.spreadsheet_id, sheet, start_row, start_col, values)
        updates.pop("_rows", None)
        updates.pop("_cols", None)
        self._record("values.append", book, text, option, updates.get("updatedCells", 0))
        out: dict[str, Any] = {"spreadsheetId": book.spreadsheet_id}
        if table is not None:
            out["tableRange"] = format_range(sheet.title, *table)
        out["updates"] = self._with_values(book, updates, params)
        return out

    def _batch_update_sheets(self, book: Spreadsheet, body: Mapping[str, Any]) -> Any:
        """spreadsheets.batchUpdate: all requests apply, or none (the first bad one answers 400)."""
        requests = body.get("requests", [])
        if not isinstance(requests, list) or not requests:
            raise ApiError(400, "Invalid requests: at least one request is required")
        kinds = {next(iter(r), "") for r in requests if isinstance(r, dict)}
        moves_rows = bool(kinds & _MOVES_ROWS)
        # Cells are copied only when a request may move them (the sink's appendDimension on a
        # 100,000-row sheet stays cheap); sheet properties always are.
        saved = _Snapshot(book, with_cells=moves_rows or bool(kinds & _CELL_EXTRAS))
        replies: list[dict[str, Any]] = []
        try:
            for index, request in enumerate(requests):
                if not isinstance(request, dict) or len(request) != 1:
                    raise ApiError(400, f"Invalid requests[{index}]: exactly one kind of request")
                ((kind, spec),) = request.items()
                handler = _SHEET_REQUESTS.get(kind)
                if handler is None:
                    raise ApiError(
                        400,
                        f"Invalid requests[{index}].{kind}: the Sheets sandbox does not emulate "
                        f"{kind} (it emulates {', '.join(sorted(_SHEET_REQUESTS))})",
                    )
                if not isinstance(spec, dict):
                    raise ApiError(400, f"Invalid requests[{index}].{kind}: expected an object")
                try:
                    replies.append(handler(self, book, spec))
                except _RequestError as exc:
                    raise ApiError(400, f"Invalid requests[{index}].{kind}: {exc}") from None
        except ApiError:
            saved.restore()
            raise
        if moves_rows:
            self.store.save_all(book)
        else:
            self.store.save(book)
        if kinds & (_MOVES_ROWS | _CELL_EXTRAS | {"updateSheetProperties"}):
            self.store.save_extras(book)
        return {"spreadsheetId": book.spreadsheet_id, "replies": replies}

    def _grid(self, book: Spreadsheet, spec: Mapping[str, Any]) -> tuple[Sheet, int, int, int, int]:
        """A GridRange's sheet and half-open bounds [r1, r2) x [c1, c2), checked against the grid."""
        if not isinstance(spec, Mapping):
            raise _RequestError("range must be a GridRange object")
        sheet = self._sheet_by_id(book, spec.get("sheetId", 0))
        r1 = int(spec.get("startRowIndex", 0))
        r2 = int(spec.get("endRowIndex", sheet.row_count))
        c1 = int(spec.get("startColumnIndex", 0))
        c2 = int(spec.get("endColumnIndex", sheet.col_count))
        if not (0 <= r1 <= r2 <= sheet.row_count and 0 <= c1 <= c2 <= sheet.col_count):
            raise _RequestError(
                f"range [{r1}:{r2}) x [{c1}:{c2}) is outside the grid of sheet {sheet.sheet_id} "
                f"({sheet.row_count} rows, {sheet.col_count} columns)"
            )
        return sheet, r1, r2, c1, c2

    def _dimension(
        self, book: Spreadsheet, spec: Mapping[str, Any], *, inserting: bool
    ) -> tuple[Sheet, bool, int, int]:
        rng = spec.get("range")
        if not isinstance(rng, Mapping):
            raise _RequestError("range (a DimensionRange) is required")
        sheet = self._sheet_by_id(book, rng.get("sheetId", 0))
        dim = rng.get("dimension")
        if dim not in ("ROWS", "COLUMNS"):
            raise _RequestError("range.dimension must be ROWS or COLUMNS")
        rows = dim == "ROWS"
        size = sheet.row_count if rows else sheet.col_count
        start = int(rng.get("startIndex", 0))
        end = int(rng.get("endIndex", size))
        if not 0 <= start < end or (start > size if inserting else end > size):
            raise _RequestError(
                f"range [{start}:{end}) does not fit the sheet's {size} {dim.lower()}"
            )
        return sheet, rows, start, end

    def _req_append_dimension(self, book: Spreadsheet, spec: Mapping[str, Any]) -> dict[str, Any]:
        sheet = self._sheet_by_id(book, spec.get("sheetId", 0))
        length = int(spec.get("length", 0))
        if length < 1:
            raise _RequestError("length must be at least 1")
        if spec.get("dimension") == "COLUMNS":
            sheet.col_count += length
        else:
            sheet.row_count += length
        return {}

    def _req_insert_dimension(self, book: Spreadsheet, spec: Mapping[str, Any]) -> dict[str, Any]:
        sheet, rows, start, end = self._dimension(book, spec, inserting=True)
        if spec.get("inheritFromBefore") and start == 0:
            raise _RequestError("cannot inherit from before the first row or column")
        sheet.insert_dimension(rows, start, end - start)
        return {}

    def _req_delete_dimension(self, book: Spreadsheet, spec: Mapping[str, Any]) -> dict[str, Any]:
        sheet, rows, start, end = self._dimension(book, spec, inserting=False)
        size = sheet.row_count if rows else sheet.col_count
        if start == 0 and end >= size:
            kind = "rows" if rows else "columns"
            raise _RequestError(f"You can't delete all the {kind} on the sheet.")
        sheet.delete_dimension(rows, start, end)
        return {}

    def _req_delete_sheet(self, book: Spreadsheet, spec: Mapping[str, Any]) -> dict[str, Any]:
        sheet = self._sheet_by_id(book, spec.get("sheetId"))
        if len(book.sheets) == 1:
            raise _RequestError("You can't remove all the sheets in a document.")
        book.sheets.remove(sheet)
        for index, other in enumerate(book.sheets):
            other.index = index
        return {}

    def _req_add_sheet(self, book: Spreadsheet, spec: Mapping[str, Any]) -> dict[str, Any]:
        props = spec.get("properties", {})
        grid = props.get("gridProperties", {})
        title = str(props.get("title") or f"Sheet{len(book.sheets) + 1}")
        if any(s.title == title for s in book.sheets):
            raise _RequestError(f'A sheet with the name "{title}" already exists.')
        new = Sheet(
            sheet_id=int(props.get("sheetId", max(s.sheet_id for s in book.sheets) + 1)),
            title=title,
            index=len(book.sheets),
            row_count=int(grid.get("rowCount", 1000)),
            col_count=int(grid.get("columnCount", 26)),
        )
        index = int(props.get("index", len(book.sheets)))
        book.sheets.insert(min(max(index, 0), len(book.sheets)), new)
        for position, other in enumerate(book.sheets):
            other.index = position
        return {"addSheet": {"properties": new.properties()}}

    def _req_update_sheet_properties(
        self, book: Spreadsheet, spec: Mapping[str, Any]
    ) -> dict[str, Any]:
        props = spec.get("properties", {})
        fields = spec.get("fields")
        if not isinstance(fields, str) or not fields:
            raise _RequestError("fields is required (a field mask such as 'title')")
        sheet = self._sheet_by_id(book, props.get("sheetId", 0))
        for mask in (f.strip().replace("/", ".") for f in fields.split(",")):
            if mask == "*":
                masks = ["title", "index", "gridProperties", "tabColorStyle", "hidden"]
            else:
                masks = [mask]
            for name in masks:
                _set_sheet_property(book, sheet, props, name)
        return {}

    def _req_cell_format(self, book: Spreadsheet, spec: Mapping[str, Any]) -> dict[str, Any]:
        """repeatCell: one CellData (format, note) over a range, limited by the fields mask."""
        sheet, r1, r2, c1, c2 = self._grid(book, spec.get("range", {}))
        cell = spec.get("cell", {})
        keys = _cell_mask(spec.get("fields"), cell)
        for r in range(r1, r2):
            for c in range(c1, c2):
                _apply_cell(sheet, r, c, cell, keys)
        return {}

    def _req_update_cells(self, book: Spreadsheet, spec: Mapping[str, Any]) -> dict[str, Any]:
        """updateCells: formats and notes cell by cell (rows[].values[]) from start or range."""
        if "range" in spec:
            sheet, r1, r2, c1, c2 = self._grid(book, spec["range"])
        else:
            start = spec.get("start", {})
            sheet = self._sheet_by_id(book, start.get("sheetId", 0))
            r1, c1 = int(start.get("rowIndex", 0)), int(start.get("columnIndex", 0))
            r2, c2 = sheet.row_count, sheet.col_count
        rows = spec.get("rows", [])
        fields = spec.get("fields")
        for i, row in enumerate(rows):
            for j, cell in enumerate(row.get("values", [])):
                r, c = r1 + i, c1 + j
                if r >= r2 or c >= c2:
                    raise _RequestError(f"rows[{i}].values[{j}] falls outside the range")
                keys = _cell_mask(fields, cell)
                if "userEnteredValue" in keys:
                    raise _RequestError(
                        "writing values through updateCells is not emulated: use values.update"
                    )
                _apply_cell(sheet, r, c, cell, keys)
        return {}

    @staticmethod
    def _sheet_by_id(book: Spreadsheet, sheet_id: object) -> Sheet:
        try:
            return book.sheet_by_id(int(str(sheet_id)))
        except (SheetNotFound, ValueError):
            raise ApiError(400, f"No grid with id: {sheet_id}") from None

    # -- Drive v3, the files calls gspread makes (open by title, create, delete, share) ------

    def drive(
        self, method: str, rest: str, params: Mapping[str, str], body: Any
    ) -> dict[str, Any] | None:
        """Answer a Drive v3 ``files`` call about spreadsheets (None: 204 No Content)."""
        parts = [p for p in rest.split("/") if p]
        if not parts or parts[0] != "files":
            raise ApiError(404, f"Method not found: drive/v3/{rest}")
        if len(parts) == 1 and method == "GET":
            query = params.get("q", "")
            wanted = re.search(r"name\s*=\s*(['\"])(.*?)\1", query)
            if "mimeType" in query and _SHEETS_MIME not in query:
                books: list[Spreadsheet] = []
            else:
                books = [
                    b
                    for b in self.store.spreadsheets.values()
                    if wanted is None or b.title == wanted.group(2)
                ]
            books.sort(key=lambda b: b.created, reverse=True)
            return {"kind": "drive#fileList", "files": [_drive_file(b) for b in books]}
        if len(parts) == 1 and method == "POST":
            if not isinstance(body, dict) or body.get("mimeType") != _SHEETS_MIME:
                raise ApiError(
                    400, f"The Sheets sandbox's Drive creates spreadsheets only ({_SHEETS_MIME})"
                )
            book = self.store.create(str(body.get("name") or "Untitled spreadsheet"), {})
            return _drive_file(book)
        book = self._book(parts[1])
        if len(parts) == 2 and method == "GET":
            return _drive_file(book)
        if len(parts) == 2 and method == "DELETE":
            self.store.delete(book.spreadsheet_id)
            return None
        if len(parts) >= 3 and parts[2] == "permissions":
            return self._permissions(book, method, parts[3:], body)
        raise ApiError(404, f"Method not found: {method} drive/v3/{rest}")

    @staticmethod
    def _permissions(
        book: Spreadsheet, method: str, rest: list[str], body: Any
    ) -> dict[str, Any] | None:
        if not rest and method == "GET":
            return {"kind": "drive#permissionList", "permissions": list(book.permissions)}
        if not rest and method == "POST":
            if not isinstance(body, dict) or body.get("role") not in _DRIVE_ROLES:
                raise ApiError(400, f"Invalid permission role: one of {', '.join(_DRIVE_ROLES)}")
            if body.get("type") not in ("user", "group", "domain", "anyone"):
                raise ApiError(400, "Invalid permission type")
            permission = {
                "kind": "drive#permission",
                "id": f"{len(book.permissions) + 1:020d}",
                **{k: body[k] for k in ("type", "role", "emailAddress", "domain") if k in body},
            }
            book.permissions.append(permission)
            return permission
        if len(rest) == 1 and method == "DELETE":
            kept = [p for p in book.permissions if p["id"] != rest[0]]
            if len(kept) == len(book.permissions):
                raise ApiError(404, f"Permission not found: {rest[0]}.")
            book.permissions[:] = kept
            return None
        raise ApiError(404, f"Method not found: {method} permissions")

    # -- control surface ---------------------------------------------------------------------

    def dump(self, spreadsheet_id: str, sheet_title: str) -> dict[str, Any]:
        book = self._book(spreadsheet_id)
        try:
            sheet = book.sheet(sheet_title)
        except SheetNotFound:
            raise ApiError(404, f"No sheet named {sheet_title!r}") from None
        rows = [
            [{"formula": c.text} if isinstance(c, Formula) else c for c in row]
            for row in sheet.rows
        ]
        return {
            "title": sheet.title,
            "sheetId": sheet.sheet_id,
            "rowCount": sheet.row_count,
            "columnCount": sheet.col_count,
            "values": rows,
        }

    def reset(self) -> None:
        with self.store.lock:
            self.store.reset()
            self.writes.clear()
            self._write_seq = 0
        self.set_limits(self.initial_limits)
        self.stats.clear()
        self.stats["total"] = 0
        if self.injector is not None:
            self.injector.configure(FaultConfig())


_SHEETS_MIME = "application/vnd.google-apps.spreadsheet"
_DRIVE_ROLES = ("owner", "organizer", "fileOrganizer", "writer", "commenter", "reader")


def _drive_file(book: Spreadsheet) -> dict[str, Any]:
    return {
        "kind": "drive#file",
        "id": book.spreadsheet_id,
        "name": book.title,
        "mimeType": _SHEETS_MIME,
        "createdTime": book.created,
        "modifiedTime": book.created,
    }


class _RequestError(Exception):
    """A spreadsheets.batchUpdate request that cannot apply (becomes a 400 naming it)."""


class _Snapshot:
    """A spreadsheet's sheets, rows and formats, to restore when a batchUpdate fails."""

    def __init__(self, book: Spreadsheet, *, with_cells: bool) -> None:
        self.book = book
        self.sheets = list(book.sheets)
        self.state = [
            (
                s,
                s.title,
                s.index,
                s.row_count,
                s.col_count,
                [list(r) for r in s.rows] if with_cells else s.rows,
                {k: dict(v) for k, v in s.cell_extras.items()} if with_cells else s.cell_extras,
                json.loads(json.dumps(s.extra)),
            )
            for s in book.sheets
        ]

    def restore(self) -> None:
        self.book.sheets[:] = self.sheets
        for sheet, title, index, nrows, ncols, rows, extras, extra in self.state:
            sheet.title, sheet.index, sheet.row_count, sheet.col_count = title, index, nrows, ncols
            sheet.rows, sheet.cell_extras, sheet.extra = rows, extras, extra


_CELL_KEYS = ("userEnteredFormat", "note", "userEnteredValue", "dataValidation")
_MOVES_ROWS = {"insertDimension", "deleteDimension", "deleteSheet"}
_CELL_EXTRAS = {"repeatCell", "updateCells"}


def _cell_mask(fields: object, cell: Mapping[str, Any]) -> set[str]:
    """The CellData fields a repeatCell/updateCells mask names (``*`` = those given)."""
    if not isinstance(fields, str) or not fields:
        raise _RequestError("fields is required (e.g. 'userEnteredFormat.textFormat.bold')")
    keys: set[str] = set()
    # Top-level names only: "userEnteredFormat(backgroundColor,textFormat),note".
    for part in re.sub(r"\([^)]*\)", "", fields.replace(" ", "")).split(","):
        top = part.split(".", 1)[0]
        if top == "*":
            keys.update(k for k in cell if k in _CELL_KEYS)
        elif top in _CELL_KEYS:
            keys.add(top)
        else:
            raise _RequestError(f"fields names {top!r}, which the sandbox does not keep")
    if "dataValidation" in keys:
        raise _RequestError("dataValidation is not emulated")
    return keys


def _apply_cell(sheet: Sheet, r: int, c: int, cell: Mapping[str, Any], keys: set[str]) -> None:
    extra = dict(sheet.cell_extras.get((r, c), {}))
    for key in keys:
        if key == "userEnteredFormat":
            merged = dict(extra.get(key, {}))
            merged.update(cell.get(key) or {})
            if merged and cell.get(key):
                extra[key] = merged
            else:
                extra.pop(key, None)
        elif cell.get(key) not in (None, ""):
            extra[key] = cell[key]
        else:
            extra.pop(key, None)
    if extra:
        sheet.cell_extras[(r, c)] = extra
    else:
        sheet.cell_extras.pop((r, c), None)


def _set_sheet_property(
    book: Spreadsheet, sheet: Sheet, props: Mapping[str, Any], name: str
) -> None:
    head, _, rest = name.partition(".")
    if head == "title":
        title = str(props.get("title") or "")
        if not title:
            raise _RequestError("title must not be empty")
        if any(s.title == title and s is not sheet for s in book.sheets):
            raise _RequestError(f'A sheet with the name "{title}" already exists.')
        sheet.title = title
    elif head == "index":
        index = min(max(int(props.get("index", 0)), 0), len(book.sheets) - 1)
        book.sheets.remove(sheet)
        book.sheets.insert(index, sheet)
        for position, other in enumerate(book.sheets):
            other.index = position
    elif head == "gridProperties":
        grid = props.get("gridProperties", {})
        names = [rest] if rest else list(grid)
        kept = dict(sheet.extra.get("gridProperties", {}))
        for key in names:
            if key == "rowCount":
                sheet.row_count = _positive(grid.get(key), key)
            elif key == "columnCount":
                sheet.col_count = _positive(grid.get(key), key)
            elif key in ("frozenRowCount", "frozenColumnCount", "hideGridlines"):
                if key in grid:
                    kept[key] = grid[key]
                else:
                    kept.pop(key, None)
            else:
                raise _RequestError(f"gridProperties.{key} is not emulated")
        sheet.extra["gridProperties"] = kept
    elif head in ("tabColorStyle", "tabColor", "hidden", "rightToLeft"):
        if head in props:
            sheet.extra[head] = props[head]
        else:
            sheet.extra.pop(head, None)
    else:
        raise _RequestError(f"fields names {name!r}, which the sandbox does not emulate")


def _positive(value: object, name: str) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise _RequestError(f"gridProperties.{name} must be a number") from None
    if number < 1:
        raise _RequestError(f"gridProperties.{name} must be at least 1")
    return number


_SHEET_REQUESTS: dict[
    str, Callable[[SheetsEmulator, Spreadsheet, Mapping[str, Any]], dict[str, Any]]
] = {
    "addSheet": SheetsEmulator._req_add_sheet,
    "appendDimension": SheetsEmulator._req_append_dimension,
    "deleteDimension": SheetsEmulator._req_delete_dimension,
    "deleteSheet": SheetsEmulator._req_delete_sheet,
    "insertDimension": SheetsEmulator._req_insert_dimension,
    "repeatCell": SheetsEmulator._req_cell_format,
    "updateCells": SheetsEmulator._req_update_cells,
    "updateSheetProperties": SheetsEmulator._req_update_sheet_properties,
}


def _cell_data(cell: Any, extra: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if cell != "" and cell is not None:
        if isinstance(cell, Formula):
            out["userEnteredValue"] = {"formulaValue": cell.text}
        elif isinstance(cell, bool):
            out["userEnteredValue"] = out["effectiveValue"] = {"boolValue": cell}
        elif isinstance(cell, int | float):
            out["userEnteredValue"] = out["effectiveValue"] = {"numberValue": cell}
        else:
            out["userEnteredValue"] = out["effectiveValue"] = {"stringValue": cell}
        out["formattedValue"] = render(cell, "FORMATTED_VALUE")
    out.update(extra)
    return out


def _grid_data(sheet: Sheet, rng: A1Range, keep: set[str]) -> dict[str, Any]:
    """A GridData block: rows of CellData, trailing empty cells and rows trimmed."""
    r1, c1, r2, c2 = sheet.bounds(rng)
    r2, c2 = min(r2, sheet.row_count - 1), min(c2, sheet.col_count - 1)
    last_row = max([len(sheet.rows) - 1] + [r for r, _ in sheet.cell_extras], default=-1)
    row_data: list[dict[str, Any]] = []
    for r in range(r1, min(r2, last_row) + 1):
        row = sheet.rows[r] if r < len(sheet.rows) else []
        width = max([len(row)] + [c + 1 for (rr, c) in sheet.cell_extras if rr == r], default=0)
        values = [
            _cell_data(row[c] if c < len(row) else "", sheet.cell_extras.get((r, c), {}))
            for c in range(c1, min(c2 + 1, width))
        ]
        if keep:
            values = [{k: v for k, v in cell.items() if k in keep} for cell in values]
        while values and not values[-1]:
            values.pop()
        row_data.append({"values": values} if values else {})
    while row_data and not row_data[-1]:
        row_data.pop()
    data: dict[str, Any] = {"rowData": row_data} if row_data else {}
    if r1:
        data["startRow"] = r1
    if c1:
        data["startColumn"] = c1
    return data


def _update_counts(
    spreadsheet_id: str, sheet: Sheet, r1: int, c1: int, values: list[list[Any]]
) -> dict[str, Any]:
    """An UpdateValuesResponse for `values` written at (r1, c1), counted as Google counts.

    updatedRange spans the block written; updatedRows/updatedColumns count the rows and
    columns where at least one cell was written (a JSON null skips a cell); updatedCells the
    cells written. The private ``_rows``/``_cols`` sets let batchUpdate total distinct ones.
    """
    rows: list[int] = []
    cols: set[int] = set()
    cells = 0
    for i, row in enumerate(values):
        if None in row:
            written = [j for j, v in enumerate(row) if v is not None]
        else:
            written = list(range(len(row)))
        if written:
            rows.append(r1 + i)
            cols.update(written)
            cells += len(written)
    height = len(values)
    width = max((len(r) for r in values), default=0)
    result: dict[str, Any] = {"spreadsheetId": spreadsheet_id}
    if height and width:
        result["updatedRange"] = format_range(sheet.title, r1, c1, r1 + height - 1, c1 + width - 1)
    else:
        result["updatedRange"] = format_range(sheet.title, r1, c1, r1, c1)
    if cells:
        result.update(updatedRows=len(rows), updatedColumns=len(cols), updatedCells=cells)
    result["_rows"] = [(sheet.title, r) for r in rows]
    result["_cols"] = [(sheet.title, c1 + c) for c in cols]
    return result


def _user(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else "anonymous"


def _params(request: Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query_params)
    params["ranges"] = request.query_params.getlist("ranges")
    return params


def _token_response(body: bytes) -> Response:
    """OAuth2 JWT-bearer grant, as a service account's ``token_uri`` receives it.

    The assertion's signature is not checked; the token names the account (its ``iss``) so
    each service account is its own quota user.
    """
    form = parse_qs(body.decode("utf-8", "replace"))
    assertion = (form.get("assertion") or [""])[0]
    if (form.get("grant_type") or [""])[0] != "urn:ietf:params:oauth:grant-type:jwt-bearer":
        return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
    try:
        payload = assertion.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        issuer = str(claims["iss"])
    except (IndexError, ValueError, KeyError, TypeError):
        return JSONResponse({"error": "invalid_grant"}, status_code=400)
    digest = hashlib.sha256(issuer.encode()).hexdigest()[:24]
    return JSONResponse(
        {"access_token": f"sandbox.{digest}", "expires_in": 3600, "token_type": "Bearer"}
    )


def _build_routes(emu: SheetsEmulator) -> list[Route]:
    async def api(request: Request) -> Response:
        raw: bytes = request.scope.get("raw_path") or request.url.path.encode()
        path = raw.decode("latin-1").split("?", 1)[0]
        body: Any = None
        if request.method != "GET":
            data = await request.body()
            try:
                body = json.loads(data) if data else {}
            except ValueError:
                return ApiError(400, "Invalid JSON payload received.").response()
        try:
            with emu.store.lock:
                result = emu.handle(request.method, path, _params(request), body, _user(request))
        except ApiError as exc:
            return exc.response()
        return JSONResponse(result)

    async def create(request: Request) -> Response:
        try:
            spec = _CreateBody.model_validate(await request.json())
        except (ValidationError, ValueError) as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)
        book = emu.store.create(spec.title, spec.sheets)
        return JSONResponse(
            {
                "spreadsheet_id": book.spreadsheet_id,
                "sheets": [s.properties() for s in book.sheets],
            },
            status_code=201,
        )

    async def dump(request: Request) -> Response:
        try:
            with emu.store.lock:
                return JSONResponse(
                    emu.dump(request.path_params["id"], request.path_params["sheet"])
                )
        except ApiError as exc:
            return exc.response()

    async def writes(request: Request) -> Response:
        with emu.store.lock:
            return JSONResponse({"writes": list(emu.writes)})

    async def limits(request: Request) -> Response:
        if request.method == "PUT":
            try:
                emu.set_limits(Limits.model_validate(await request.json()))
            except (ValidationError, ValueError) as exc:
                return JSONResponse({"detail": str(exc)}, status_code=422)
        return JSONResponse(emu.limits.model_dump())

    async def faults(request: Request) -> Response:
        assert emu.injector is not None
        if request.method == "PUT":
            try:
                emu.injector.configure(FaultConfig.model_validate(await request.json()))
            except (ValidationError, ValueError) as exc:
                return JSONResponse({"detail": str(exc)}, status_code=422)
        return JSONResponse(
            {"config": emu.injector.config.model_dump(), "injected": dict(emu.injector.injected)}
        )

    async def stats(request: Request) -> Response:
        return JSONResponse(dict(emu.stats))

    async def stats_reset(request: Request) -> Response:
        emu.stats.clear()
        emu.stats["total"] = 0
        return JSONResponse(dict(emu.stats))

    async def reset(request: Request) -> Response:
        emu.reset()
        return JSONResponse({"reset": True})

    async def token(request: Request) -> Response:
        return _token_response(await request.body())

    async def drive(request: Request) -> Response:
        body: Any = None
        if request.method in ("POST", "PATCH"):
            try:
                data = await request.body()
                body = json.loads(data) if data else {}
            except ValueError:
                return ApiError(400, "Invalid JSON payload received.").response()
        try:
            with emu.store.lock:
                result = emu.drive(
                    request.method, request.path_params["rest"], dict(request.query_params), body
                )
        except ApiError as exc:
            return exc.response()
        if result is None:
            return Response(status_code=204)
        return JSONResponse(result)

    return [
        Route("/_sandbox/spreadsheets", create, methods=["POST"]),
        Route("/_sandbox/spreadsheets/{id}/values/{sheet:path}", dump, methods=["GET"]),
        Route("/_sandbox/writes", writes, methods=["GET"]),
        Route("/_sandbox/limits", limits, methods=["GET", "PUT"]),
        Route("/_sandbox/faults", faults, methods=["GET", "PUT"]),
        Route("/_sandbox/stats", stats, methods=["GET"]),
        Route("/_sandbox/stats/reset", stats_reset, methods=["POST"]),
        Route("/_sandbox/reset", reset, methods=["POST"]),
        Route("/v4/spreadsheets/{rest:path}", api, methods=["GET", "PUT", "POST"]),
        Route("/token", token, methods=["POST"]),
        Route("/drive/v3/{rest:path}", drive, methods=["GET", "POST", "PATCH", "DELETE"]),
    ]


class SheetsSandboxApp:
    """The ASGI app `create_app` returns: counts requests, then faults, then the emulator."""

    def __init__(self, emulator: SheetsEmulator) -> None:
        self.emulator = emulator
        starlette = Starlette(routes=_build_routes(emulator))
        self.injector = FaultInjector(starlette)
        emulator.injector = self.injector

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw: bytes = scope.get("raw_path") or scope.get("path", "").encode()
            path = raw.decode("latin-1").split("?", 1)[0]
            if not path.startswith("/_sandbox"):
                key = route_key(scope["method"], path)
                stats = self.emulator.stats
                stats[key] = stats.get(key, 0) + 1
                stats["total"] = stats.get("total", 0) + 1
        await self.injector(scope, receive, send)


def create_app(
    *,
    db_path: str | Path | None = None,
    reads_per_minute: int | None = 60,
    writes_per_minute: int | None = 60,
) -> SheetsSandboxApp:
    """Build the Google Sheets emulator as an ASGI app.

    Args:
        db_path: SQLite file to keep spreadsheets in across restarts; None keeps them in memory.
        reads_per_minute: Per-user read quota (None = unlimited).
        writes_per_minute: Per-user write quota (None = unlimited).

    Returns:
        The app; serve it with `sandbox._server.start_server` or any ASGI server.

    Example:
        ```python
        from sandbox._server import serving
        with serving(create_app()) as server:
            print(server.url)
        ```
    """
    limits = Limits(reads_per_minute=reads_per_minute, writes_per_minute=writes_per_minute)
    return SheetsSandboxApp(SheetsEmulator(db_path=db_path, limits=limits))
