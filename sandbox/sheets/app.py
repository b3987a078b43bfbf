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
from sandbox.sheets.a1 import A1Range, RangeError, parse_range
from sandbox.sheets.store import (
    Formula,
    GridLimitError,
    Sheet,
    SheetNotFound,
    Spreadsheet,
    Store,
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
        cells = sum(1 for row in values for v in row if v is not None)
        self._record(api, book, text, option, cells)
        width = max((len(r) for r in values), default=0)
        return {
            "spreadsheetId": book.spreadsheet_id,
            "updatedRange": sheet.label(rng),
            "updatedRows": len(values),
            "updatedColumns": width,
            "updatedCells": cells,
        }

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
            return book.metadata()
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
                return self._batch_clear(book, [unquote(raw_range[: -len(":clear")])])
            text = unquote(raw_range)
            if method == "GET":
                return self._value_range(book, text, params)
            if method == "PUT":
                self._write_seq += 1
                option = self._input_option(params.get("valueInputOption"))
                return self._write("values.update", book, text, self._values(body), option)
        raise ApiError(404, f"Method not found: {method} {path}")

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
        return {
            "spreadsheetId": book.spreadsheet_id,
            "totalUpdatedRows": sum(r["updatedRows"] for r in responses),
            "totalUpdatedColumns": sum(r["updatedColumns"] for r in responses),
            "totalUpdatedCells": sum(r["updatedCells"] for r in responses),
            "totalUpdatedSheets": len({r["updatedRange"].split("!")[0] for r in responses}),
            "responses": responses,
        }

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
        sheet, rng = self._range(book, text)
        values = self._values(body)
        start = sheet.last_data_row() + 1
        needed = start + len(values)
        if needed > sheet.row_count:
            sheet.row_count = needed
        target = A1Range(sheet.title, start, rng.col1 or 0, None, None)
        self._write_seq += 1
        try:
            touched = sheet.write(target, values, raw=option == "RAW")
        except GridLimitError as exc:
            raise ApiError(400, str(exc)) from None
        self.store.save(book, [(sheet, touched)])
        cells = sum(1 for row in values for v in row if v is not None)
        self._record("values.append", book, text, option, cells)
        return {
            "spreadsheetId": book.spreadsheet_id,
            "tableRange": sheet.label(A1Range(sheet.title, 0, 0, max(start - 1, 0), None)),
            "updates": {
                "spreadsheetId": book.spreadsheet_id,
                "updatedRange": sheet.label(
                    A1Range(
                        sheet.title,
                        start,
                        rng.col1 or 0,
                        start + len(values) - 1,
                        (rng.col1 or 0) + max((len(r) for r in values), default=1) - 1,
                    )
                ),
                "updatedRows": len(values),
                "updatedCells": cells,
            },
        }

    def _batch_update_sheets(self, book: Spreadsheet, body: Mapping[str, Any]) -> Any:
        replies: list[dict[str, Any]] = []
        for index, request in enumerate(body.get("requests", [])):
            if "appendDimension" in request:
                spec = request["appendDimension"]
                sheet = self._sheet_by_id(book, spec.get("sheetId", 0))
                length = int(spec.get("length", 0))
                if length < 1:
                    raise ApiError(400, f"Invalid requests[{index}].appendDimension: length")
                if spec.get("dimension") == "COLUMNS":
                    sheet.col_count += length
                else:
                    sheet.row_count += length
                replies.append({})
            elif "updateSheetProperties" in request:
                props = request["updateSheetProperties"].get("properties", {})
                sheet = self._sheet_by_id(book, props.get("sheetId", 0))
                grid = props.get("gridProperties", {})
                sheet.row_count = int(grid.get("rowCount", sheet.row_count))
                sheet.col_count = int(grid.get("columnCount", sheet.col_count))
                sheet.title = str(props.get("title", sheet.title))
                replies.append({})
            elif "addSheet" in request:
                props = request["addSheet"].get("properties", {})
                grid = props.get("gridProperties", {})
                new = Sheet(
                    sheet_id=max(s.sheet_id for s in book.sheets) + 1,
                    title=str(props.get("title", f"Sheet{len(book.sheets) + 1}")),
                    index=len(book.sheets),
                    row_count=int(grid.get("rowCount", 1000)),
                    col_count=int(grid.get("columnCount", 26)),
                )
                if any(s.title == new.title for s in book.sheets):
                    raise ApiError(
                        400,
                        f'Invalid requests[{index}].addSheet: A sheet with the name "{new.title}" already exists.',
                    )
                book.sheets.append(new)
                replies.append({"addSheet": {"properties": new.properties()}})
            else:
                kind = next(iter(request), "?")
                raise ApiError(400, f"Invalid requests[{index}]: {kind} is not emulated")
        self.store.save(book)
        return {"spreadsheetId": book.spreadsheet_id, "replies": replies}

    @staticmethod
    def _sheet_by_id(book: Spreadsheet, sheet_id: object) -> Sheet:
        try:
            return book.sheet_by_id(int(str(sheet_id)))
        except (SheetNotFound, ValueError):
            raise ApiError(400, f"No grid with id: {sheet_id}") from None

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
