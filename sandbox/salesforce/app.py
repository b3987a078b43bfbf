"""The Salesforce emulator's ASGI app: REST query/sObjects/composite, Bulk 2.0, OAuth, SOAP login.

Answers the requests simple-salesforce makes, with Salesforce's error shapes
(``[{"errorCode", "message"}]``), ``Sforce-Limit-Info`` headers, expiring tokens and a daily
request allocation. The ``/_sandbox/`` control surface seeds, inspects and reconfigures it.
"""

from __future__ import annotations

import base64
import html
import json
import random
import re
import secrets
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox._faults import FaultConfig, FaultInjector
from sandbox.salesforce.bulk import IngestJob, JobError, QueryJob
from sandbox.salesforce.db import OBJECTS, SANDBOX_USER_ID, Database, RecordError
from sandbox.salesforce.soql import SoqlError, format_datetime, parse

__all__ = ["PAGE_SIZE", "SalesforceSandboxApp", "SalesforceState", "create_app"]

PAGE_SIZE = 2000
_API = "/services/data/v{version}"
_MAX_CURSORS = 64

Handler = Callable[[Request], Awaitable[Response]]


def _error(
    status: int, code: str, message: str, fields: list[str] | None = None, **headers: str
) -> JSONResponse:
    body: dict[str, Any] = {"errorCode": code, "message": message}
    if fields is not None:
        body["fields"] = fields
    return JSONResponse([body], status, headers=headers)


class _Fail(Exception):
    def __init__(
        self, status: int, code: str, message: str, fields: list[str] | None = None
    ) -> None:
        super().__init__(message)
        self.response = _error(status, code, message, fields)

    @classmethod
    def record(cls, exc: RecordError, status: int = 400) -> _Fail:
        """A single-record call's answer to a record-level error (fields named)."""
        return cls(status, exc.code, exc.message, exc.fields)


@dataclass
class SalesforceState:
    """Everything the emulator holds besides records: credentials, tokens, limits, jobs, stats."""

    db: Database
    daily_limit: int
    token_ttl_seconds: float
    client_id: str
    client_secret: str
    username: str
    password: str
    security_token: str
    seed: int = 0
    used: int = 0
    tokens: dict[str, float] = field(default_factory=dict)
    cursors: OrderedDict[str, tuple[str, list[str], list[tuple[Any, ...]]]] = field(
        default_factory=OrderedDict
    )
    ingest_jobs: dict[str, IngestJob] = field(default_factory=dict)
    query_jobs: dict[str, QueryJob] = field(default_factory=dict)
    stats: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    injector: FaultInjector | None = None

    def issue_token(self) -> str:
        token = "00DSANDBOX0000001!" + secrets.token_urlsafe(24)
        self.tokens[token] = time.monotonic() + self.token_ttl_seconds
        return token


# ---------------------------------------------------------------------------------------------
# Control surface models
# ---------------------------------------------------------------------------------------------


class _SeedBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    object: str = "Lead"
    count: int = Field(ge=0, le=1_000_000)
    seed: int | None = None
    bad_every: int | None = Field(default=None, ge=2)


class _RecordsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    object: str = "Lead"
    records: list[dict[str, Any]]


class _LimitsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    daily_limit: int | None = Field(default=None, ge=0)
    token_ttl_seconds: float | None = Field(default=None, gt=0)
    used: int | None = Field(default=None, ge=0)


_FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Margaret", "Linus", "Radia", "Tim"]
_LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Hamilton", "Perlman"]
_COUNTRIES = ["US", "CA", "GB", "DE", "FR", "JP"]
_SOURCES = ["Web", "Phone Inquiry", "Partner Referral", "Trade Show"]


def _synthetic(
    obj_name: str, count: int, seed: int, bad_every: int | None, stamps: list[str]
) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for i in range(count):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        email: str | None = f"{first}.{last}.{seed}.{i}@example.com".lower()
        if bad_every and i % bad_every == bad_every - 1:
            kind = (i // bad_every) % 3
            if kind == 0:
                email = f"{first}.{last}.at.example.com"
            elif kind == 1:
                email = None
            elif out:
                email = out[-1]["Email"] or email
        rec: dict[str, Any] = {
            "FirstName": first,
            "LastName": last,
            "Email": email,
            "LeadSource": rng.choice(_SOURCES),
            "Country": rng.choice(_COUNTRIES),
            "Status": "Open - Not Contacted",
            "HasOptedOutOfEmail": 0,
            "ColdSend_Opened__c": 0,
            "ColdSend_Replied__c": 0,
            "ColdSend_Bounced__c": 0,
            "OwnerId": SANDBOX_USER_ID,
            "SystemModstamp": stamps[i],
            "CreatedDate": stamps[i],
            "LastModifiedDate": stamps[i],
        }
        if obj_name == "Lead":
            rec["Company"] = f"{last} {rng.choice(['Labs', 'Systems', 'Inc', 'GmbH'])}"
        out.append(rec)
    return out


# ---------------------------------------------------------------------------------------------
# App factory
# ---------------------------------------------------------------------------------------------


def create_app(
    *,
    db_path: str | None = None,
    seed: int = 0,
    daily_limit: int = 15_000,
    token_ttl_seconds: float = 3600,
    client_id: str = "sandbox-client",
    client_secret: str | None = None,
    username: str = "user@sandbox.example",
    password: str | None = None,
    security_token: str | None = None,
) -> SalesforceSandboxApp:
    """Build the emulator app, wrapped in a `FaultInjector`.

    Args:
        db_path: SQLite file to keep records in; in memory when None.
        seed: Default seed for synthetic records.
        daily_limit: Requests allowed per "day" before 403 REQUEST_LIMIT_EXCEEDED.
        token_ttl_seconds: Lifetime of issued access tokens.
        client_id / client_secret: Connected-app credentials for the OAuth token endpoint
            (a random secret when None; read it back from ``app.state.client_secret``).
        username / password / security_token: Credentials for password logins (SOAP and OAuth
            password grant); random password and token when None.

    Returns:
        The ASGI app; its live `SalesforceState` is ``app.state``.
    """
    state = SalesforceState(
        db=Database(db_path),
        daily_limit=daily_limit,
        token_ttl_seconds=token_ttl_seconds,
        client_id=client_id,
        client_secret=client_secret or secrets.token_urlsafe(24),
        username=username,
        password=password or secrets.token_urlsafe(12),
        security_token=security_token or secrets.token_hex(12),
        seed=seed,
    )

    def api(path: str, handler: Handler, methods: list[str]) -> Route:
        label_path = _API + path

        async def endpoint(request: Request) -> Response:
            label = f"{request.method} {label_path}"
            with state.lock:
                state.stats[label] += 1
            auth = request.headers.get("authorization", "")
            token = auth[7:] if auth.lower().startswith("bearer ") else ""
            expiry = state.tokens.get(token)
            if expiry is None or expiry < time.monotonic():
                return _error(401, "INVALID_SESSION_ID", "Session expired or invalid")
            with state.lock:
                if state.used >= state.daily_limit:
                    return _error(
                        403,
                        "REQUEST_LIMIT_EXCEEDED",
                        f"TotalRequests Limit exceeded. ({state.used}/{state.daily_limit})",
                        None,
                        **{"Sforce-Limit-Info": f"api-usage={state.used}/{state.daily_limit}"},
                    )
                state.used += 1
                usage = f"api-usage={state.used}/{state.daily_limit}"
            try:
                response = await handler(request)
            except _Fail as exc:
                response = exc.response
            except JobError as exc:
                response = _error(exc.status, exc.code, exc.message)
            except SoqlError as exc:
                response = _error(400, exc.code, exc.message)
            response.headers["Sforce-Limit-Info"] = usage
            return response

        return Route(label_path, endpoint, methods=methods)

    db = state.db

    def obj_or_404(name: str) -> Any:
        try:
            return db.object(name)
        except KeyError:
            raise _Fail(
                404, "NOT_FOUND", f"The requested resource does not exist: {name}"
            ) from None

    async def json_body(request: Request) -> Any:
        try:
            return json.loads(await request.body())
        except ValueError:
            raise _Fail(400, "JSON_PARSER_ERROR", "The request body is not valid JSON") from None

    # -- REST -----------------------------------------------------------------------------------

    async def sobjects(request: Request) -> Response:
        return JSONResponse(
            {
                "encoding": "UTF-8",
                "maxBatchSize": 200,
                "sobjects": [o.describe(version(request)) for o in OBJECTS.values()],
            }
        )

    async def describe(request: Request) -> Response:
        obj = obj_or_404(request.path_params["object"])
        return JSONResponse(
            {**obj.describe(version(request)), "fields": [f.describe() for f in obj.fields]}
        )

    async def sobject_root(request: Request) -> Response:
        # GET: the sObject's basic information (simple-salesforce's ``sf.Lead.metadata()``).
        if request.method == "POST":
            return await create_record(request)
        obj = obj_or_404(request.path_params["object"])
        recent = []
        for rid in db.updated_between(obj, "", "9999")[-10:][::-1]:
            url = f"/services/data/v{version(request)}/sobjects/{obj.name}/{rid}"
            rec = db.get(obj, rid) or {}
            shown = {k: rec.get(k) for k in ("Id", "Name") if k in obj.by_lower}
            recent.append({"attributes": {"type": obj.name, "url": url}, **shown})
        return JSONResponse(
            {"objectDescribe": obj.describe(version(request)), "recentItems": recent}
        )

    def utc_param(request: Request, name: str) -> str:
        raw = request.query_params.get(name)
        if not raw:
            raise _Fail(400, "MISSING_ARGUMENT", f"{name} must be specified")
        try:
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise _Fail(400, "INVALID_DATE_FORMAT", f"{name}: invalid date: {raw}") from None
        return format_datetime(parsed)

    async def updated(request: Request) -> Response:
        obj = obj_or_404(request.path_params["object"])
        start, end = utc_param(request, "start"), utc_param(request, "end")
        return JSONResponse({"ids": db.updated_between(obj, start, end), "latestDateCovered": end})

    async def deleted(request: Request) -> Response:
        obj = obj_or_404(request.path_params["object"])
        start, end = utc_param(request, "start"), utc_param(request, "end")
        rows, first = db.deleted_between(obj, start, end)
        found = [{"id": rid, "deletedDate": stamp} for rid, stamp in rows]
        earliest = first or end
        return JSONResponse(
            {
                "deletedRecords": found,
                "earliestDateAvailable": earliest,
                "latestDateCovered": end,
            }
        )

    def version(request: Request) -> str:
        return str(request.path_params["version"])

    def page_response(
        request: Request,
        obj_name: str,
        names: list[str],
        rows: list[tuple[Any, ...]],
        start: int,
        cursor: str | None,
    ) -> Response:
        obj = OBJECTS[obj_name]
        ver = version(request)
        chunk = rows[start : start + PAGE_SIZE]
        records = []
        for row in chunk:
            rec = db.to_api(obj, names, row)
            rid = rec.get("Id")
            url = f"/services/data/v{ver}/sobjects/{obj.name}/{rid}" if rid else None
            records.append({"attributes": {"type": obj.name, "url": url}, **rec})
        end = start + len(chunk)
        body: dict[str, Any] = {
            "totalSize": len(rows),
            "done": end >= len(rows),
            "records": records,
        }
        if end < len(rows) and cursor:
            body["nextRecordsUrl"] = f"/services/data/v{ver}/query/{cursor}-{end}"
        return JSONResponse(body)

    async def query(request: Request) -> Response:
        text = request.query_params.get("q")
        if not text:
            raise _Fail(400, "MALFORMED_QUERY", "A query string (q) is required")
        parsed = parse(text)
        obj, names, rows = db.run_query(parsed)
        if isinstance(rows, int):
            return JSONResponse({"totalSize": rows, "done": True, "records": []})
        cursor = None
        if len(rows) > PAGE_SIZE:
            cursor = "01g" + secrets.token_hex(8).upper()[:15]
            with state.lock:
                state.cursors[cursor] = (obj.name, names, rows)
                while len(state.cursors) > _MAX_CURSORS:
                    state.cursors.popitem(last=False)
        return page_response(request, obj.name, names, rows, 0, cursor)

    async def query_more(request: Request) -> Response:
        locator = str(request.path_params["locator"])
        cursor, _, offset = locator.rpartition("-")
        found = state.cursors.get(cursor)
        if found is None or not offset.isdigit():
            raise _Fail(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        obj_name, names, rows = found
        return page_response(request, obj_name, names, rows, int(offset), cursor)

    async def limits(request: Request) -> Response:
        return JSONResponse(
            {
                "DailyApiRequests": {
                    "Max": state.daily_limit,
                    "Remaining": max(0, state.daily_limit - state.used),
                }
            }
        )

    async def record(request: Request) -> Response:
        obj = obj_or_404(request.path_params["object"])
        rid = str(request.path_params["id"])
        if request.method == "GET":
            rec = db.get(obj, rid)
            if rec is None:
                raise _Fail(404, "NOT_FOUND", "The requested resource does not exist")
            wanted = request.query_params.get("fields")
            if wanted:
                keep = {n.strip().lower() for n in wanted.split(",")}
                rec = {k: v for k, v in rec.items() if k.lower() in keep or k == "Id"}
            url = f"/services/data/v{version(request)}/sobjects/{obj.name}/{rid}"
            return JSONResponse({"attributes": {"type": obj.name, "url": url}, **rec})
        if request.method == "DELETE":
            if not db.delete(obj, rid):
                raise _Fail(404, "ENTITY_IS_DELETED", "entity is deleted")
            return Response(status_code=204)
        body = await json_body(request)
        if not isinstance(body, dict):
            raise _Fail(400, "JSON_PARSER_ERROR", "expected a JSON object")
        body.pop("attributes", None)
        try:
            values = db.coerce(obj, body, from_csv=False)
            if db.get(obj, rid) is None:
                raise _Fail(404, "NOT_FOUND", "The requested resource does not exist")
            db.update(obj, rid, values)
            db.commit()
        except RecordError as exc:
            raise _Fail.record(exc) from None
        return Response(status_code=204)

    async def by_external_id(request: Request) -> Response:
        """``/sobjects/{object}/{field}/{value}``: get, upsert or delete by an external id."""
        obj = obj_or_404(request.path_params["object"])
        field_name = str(request.path_params["field"])
        # simple-salesforce quotes the value with quote_plus ("a b/c" -> "a+b%2Fc"): read it
        # from the raw path, where "+" still means a space and "%2B" a plus.
        raw = (request.scope.get("raw_path") or b"").decode("latin-1").split("?", 1)[0]
        segments = raw.split("/")
        key = unquote_plus("/".join(segments[7:])) if len(segments) > 7 else ""
        key = key or str(request.path_params["value"])
        spec = obj.by_lower.get(field_name.lower())
        if spec is None or not spec.id_lookup:
            raise _Fail(
                404,
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {field_name}",
            )
        matches = [key] if spec.name == "Id" and db.get(obj, key) else []
        if spec.name != "Id":
            matches = db.find_id_by(obj, spec.name, key)
        ver = version(request)
        if len(matches) > 1:
            urls = [f"/services/data/v{ver}/sobjects/{obj.name}/{m}" for m in matches]
            return JSONResponse(urls, 300)
        if request.method == "GET":
            if not matches:
                raise _Fail(404, "NOT_FOUND", "The requested resource does not exist")
            rec = db.get(obj, matches[0]) or {}
            url = f"/services/data/v{ver}/sobjects/{obj.name}/{matches[0]}"
            return JSONResponse({"attributes": {"type": obj.name, "url": url}, **rec})
        if request.method == "DELETE":
            if not matches or not db.delete(obj, matches[0]):
                raise _Fail(404, "NOT_FOUND", "The requested resource does not exist")
            return Response(status_code=204)
        body = await json_body(request)
        if not isinstance(body, dict):
            raise _Fail(400, "JSON_PARSER_ERROR", "expected a JSON object")
        body.pop("attributes", None)
        if spec.name == "Id" and not matches:
            raise _Fail(404, "NOT_FOUND", "The requested resource does not exist")
        if any(k.lower() == spec.name.lower() for k in body):
            raise _Fail(
                400,
                "INVALID_FIELD",
                f"The value of the external ID field in the URL and the body differ: {spec.name}",
                [spec.name],
            )
        try:
            values = db.coerce(obj, body, from_csv=False)
            if matches:
                db.update(obj, matches[0], values)
                db.commit()
                result = {"id": matches[0], "success": True, "errors": [], "created": False}
                return JSONResponse(result, 200)
            key_value = db.coerce(obj, {spec.name: key}, from_csv=False)
            (rid,) = db.insert(obj, [db.for_create(obj, {**values, **key_value})], raw=True)
        except RecordError as exc:
            raise _Fail.record(exc) from None
        return JSONResponse({"id": rid, "success": True, "errors": [], "created": True}, 201)

    async def composite(request: Request) -> Response:
        body = await json_body(request)
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list):
            raise _Fail(400, "JSON_PARSER_ERROR", "records must be a list")
        if len(records) > 200:
            raise _Fail(
                400,
                "EXCEEDED_ID_LIMIT",
                "record limit reached. cannot submit more than 200 records into this call",
            )
        all_or_none = bool(body.get("allOrNone", False))
        planned: list[tuple[str, Any, dict[str, Any] | None, RecordError | None]] = []
        for rec in records:
            rid = str(rec.get("id") or rec.get("Id") or "")
            typ = (rec.get("attributes") or {}).get("type")
            values = {k: v for k, v in rec.items() if k not in ("attributes", "id", "Id")}
            try:
                if not typ:
                    raise RecordError("INVALID_TYPE", "sObject type 'null' is not supported")
                try:
                    obj = db.object(str(typ))
                except KeyError:
                    raise RecordError(
                        "INVALID_TYPE", f"sObject type '{typ}' is not supported"
                    ) from None
                if len(rid) != 18 or not rid.startswith(obj.prefix):
                    raise RecordError(
                        "MALFORMED_ID", f"{obj.name} ID: id value of incorrect type: {rid}", ["Id"]
                    )
                coerced = db.coerce(obj, values, from_csv=False)
                if db.get(obj, rid) is None:
                    raise RecordError("ENTITY_IS_DELETED", "entity is deleted")
                planned.append((rid, obj, coerced, None))
            except RecordError as exc:
                planned.append((rid, None, None, exc))
        failed = any(err for *_, err in planned)
        results = []
        for rid, target, changes, err in planned:
            if err is not None:
                results.append({"id": rid or None, "success": False, "errors": [err.as_json()]})
            elif all_or_none and failed:
                rolled = RecordError(
                    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                    "Record rolled back because not all records were valid and the request was using AllOrNone header",
                )
                results.append({"id": rid, "success": False, "errors": [rolled.as_json()]})
            else:
                assert changes is not None
                db.update(target, rid, changes)
                results.append({"id": rid, "success": True, "errors": []})
        db.commit()
        return JSONResponse(results)

    def check_references(obj: Any, values: dict[str, Any]) -> None:
        # A Task's WhoId must name a Lead or Contact that exists (a deleted one is refused).
        who = values.get("WhoId")
        if obj.name == "Task" and who is not None:
            target = next((o for o in OBJECTS.values() if str(who).startswith(o.prefix)), None)
            if (
                target is None
                or target.name not in ("Lead", "Contact")
                or db.get(target, who) is None
            ):
                raise RecordError(
                    "INVALID_CROSS_REFERENCE_KEY",
                    "invalid cross reference id",
                    ["WhoId"],
                )

    def create_one(rec: Any) -> tuple[Any, dict[str, Any]]:
        """Validate one record of a create; (object, stored values) or RecordError."""
        if not isinstance(rec, dict):
            raise RecordError("JSON_PARSER_ERROR", "each record must be a JSON object")
        typ = (rec.get("attributes") or {}).get("type")
        if not typ:
            raise RecordError("INVALID_TYPE", "sObject type 'null' is not supported")
        try:
            obj = db.object(str(typ))
        except KeyError:
            raise RecordError("INVALID_TYPE", f"sObject type '{typ}' is not supported") from None
        if rec.get("id") or rec.get("Id"):
            raise RecordError("INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])
        values = {k: v for k, v in rec.items() if k != "attributes"}
        coerced = db.for_create(obj, db.coerce(obj, values, from_csv=False))
        check_references(obj, coerced)
        if obj.name == "Task":
            coerced.setdefault("OwnerId", SANDBOX_USER_ID)
            coerced.setdefault("Status", "Not Started")
        return obj, coerced

    async def composite_create(request: Request) -> Response:
        body = await json_body(request)
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list):
            raise _Fail(400, "JSON_PARSER_ERROR", "records must be a list")
        if len(records) > 200:
            raise _Fail(
                400,
                "EXCEEDED_ID_LIMIT",
                "record limit reached. cannot submit more than 200 records into this call",
            )
        all_or_none = bool(body.get("allOrNone", False))
        planned: list[tuple[Any, dict[str, Any] | None, RecordError | None]] = []
        for rec in records:
            try:
                planned.append((*create_one(rec), None))
            except RecordError as exc:
                planned.append((None, None, exc))
        failed = any(err for *_, err in planned)
        results: list[dict[str, Any]] = []
        for obj, values, err in planned:
            if err is not None:
                results.append({"id": None, "success": False, "errors": [err.as_json()]})
            elif all_or_none and failed:
                rolled = RecordError(
                    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                    "Record rolled back because not all records were valid and the request was using AllOrNone header",
                )
                results.append({"id": None, "success": False, "errors": [rolled.as_json()]})
            else:
                assert values is not None
                (rid,) = db.insert(obj, [values], raw=True)
                results.append({"id": rid, "success": True, "errors": []})
        return JSONResponse(results)

    async def composite_delete(request: Request) -> Response:
        ids = [i for i in request.query_params.get("ids", "").split(",") if i]
        if len(ids) > 200:
            raise _Fail(400, "EXCEEDED_ID_LIMIT", "cannot delete more than 200 records at once")
        results = []
        for rid in ids:
            obj = next((o for o in OBJECTS.values() if rid.startswith(o.prefix)), None)
            if obj is not None and db.delete(obj, rid):
                results.append({"id": rid, "success": True, "errors": []})
            else:
                err = RecordError("ENTITY_IS_DELETED", "entity is deleted")
                results.append({"id": rid, "success": False, "errors": [err.as_json()]})
        return JSONResponse(results)

    async def composite_route(request: Request) -> Response:
        if request.method == "POST":
            return await composite_create(request)
        if request.method == "DELETE":
            return await composite_delete(request)
        return await composite(request)

    async def create_record(request: Request) -> Response:
        obj = obj_or_404(request.path_params["object"])
        body = await json_body(request)
        if not isinstance(body, dict):
            raise _Fail(400, "JSON_PARSER_ERROR", "expected a JSON object")
        try:
            _, values = create_one({**body, "attributes": {"type": obj.name}})
        except RecordError as exc:
            raise _Fail.record(exc) from None
        (rid,) = db.insert(obj, [values], raw=True)
        return JSONResponse({"id": rid, "success": True, "errors": []}, 201)

    # -- Bulk 2.0 ---------------------------------------------------------------------------------

    def ingest_job(request: Request) -> IngestJob:
        job = state.ingest_jobs.get(str(request.path_params["job"]))
        if job is None:
            raise _Fail(404, "NOT_FOUND", "The requested resource does not exist")
        return job

    def query_job(request: Request) -> QueryJob:
        job = state.query_jobs.get(str(request.path_params["job"]))
        if job is None:
            raise _Fail(404, "NOT_FOUND", "The requested resource does not exist")
        return job

    async def ingest_create(request: Request) -> Response:
        body = await json_body(request)
        operation = body.get("operation")
        if operation not in ("insert", "update", "upsert", "delete", "hardDelete"):
            raise _Fail(400, "INVALIDJOB", f"Unsupported operation: {operation}")
        obj = obj_or_404(str(body.get("object", "")))
        external = body.get("externalIdFieldName")
        if operation == "upsert" and not external:
            raise _Fail(400, "INVALIDJOB", "externalIdFieldName is required for upsert")
        job = IngestJob(object_name=obj.name, operation=operation, external_id=external)
        state.ingest_jobs[job.id] = job
        return JSONResponse(job.info())

    async def ingest_batches(request: Request) -> Response:
        job = ingest_job(request)
        job.upload((await request.body()).decode("utf-8"))
        return Response(status_code=201)

    async def ingest_job_route(request: Request) -> Response:
        job = ingest_job(request)
        if request.method == "GET":
            return JSONResponse(job.info())
        if request.method == "DELETE":
            state.ingest_jobs.pop(job.id, None)
            return Response(status_code=204)
        body = await json_body(request)
        target = body.get("state")
        if target == "UploadComplete":
            if job.state != "Open":
                raise _Fail(409, "INVALIDJOBSTATE", f"Job {job.id} is {job.state}")
            job.state = "UploadComplete"
            job.run(db)
        elif target == "Aborted":
            job.state = "Aborted"
        else:
            raise _Fail(400, "INVALIDJOBSTATE", f"Cannot set state {target}")
        return JSONResponse(job.info())

    async def ingest_results(request: Request) -> Response:
        job = ingest_job(request)
        kind = str(request.path_params["kind"])
        if kind not in ("successfulResults", "failedResults", "unprocessedrecords"):
            raise _Fail(404, "NOT_FOUND", "The requested resource does not exist")
        return Response(job.results_csv(kind), media_type="text/csv")

    async def query_create(request: Request) -> Response:
        body = await json_body(request)
        if body.get("operation", "query") not in ("query", "queryAll"):
            raise _Fail(400, "INVALIDJOB", "Unsupported operation")
        job = QueryJob(query=str(body.get("query") or ""), operation=body.get("operation", "query"))
        job.run(db)
        state.query_jobs[job.id] = job
        return JSONResponse(job.info())

    async def query_job_route(request: Request) -> Response:
        job = query_job(request)
        if request.method == "DELETE":
            state.query_jobs.pop(job.id, None)
            return Response(status_code=204)
        if request.method == "PATCH":
            job.state = "Aborted"
        return JSONResponse(job.info())

    async def query_results(request: Request) -> Response:
        job = query_job(request)
        try:
            max_records = int(request.query_params.get("maxRecords") or 50_000)
        except ValueError:
            raise _Fail(400, "INVALIDPARAMETER", "maxRecords must be a number") from None
        text, count, locator = job.page(request.query_params.get("locator"), max(1, max_records))
        return Response(
            text,
            media_type="text/csv",
            headers={"Sforce-NumberOfRecords": str(count), "Sforce-Locator": locator},
        )

    # -- logins -----------------------------------------------------------------------------------

    def base_url(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    async def oauth_token(request: Request) -> Response:
        form = await request.form()
        grant = form.get("grant_type")
        cid, secret = form.get("client_id"), form.get("client_secret")
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            try:
                cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                cid = secret = None
        if cid != state.client_id or not secrets.compare_digest(
            str(secret or ""), state.client_secret
        ):
            return JSONResponse(
                {"error": "invalid_client", "error_description": "invalid client credentials"}, 400
            )
        if grant == "password":
            pw = str(form.get("password") or "")
            if form.get("username") != state.username or pw not in (
                state.password,
                state.password + state.security_token,
            ):
                return JSONResponse(
                    {"error": "invalid_grant", "error_description": "authentication failure"}, 400
                )
        elif grant != "client_credentials":
            return JSONResponse(
                {
                    "error": "unsupported_grant_type",
                    "error_description": "grant type not supported",
                },
                400,
            )
        token = state.issue_token()
        return JSONResponse(
            {
                "access_token": token,
                "instance_url": base_url(request),
                "id": f"{base_url(request)}/id/00DSANDBOX0000001/005SANDBOX0000001",
                "token_type": "Bearer",
                "issued_at": str(int(time.time() * 1000)),
                "signature": base64.b64encode(secrets.token_bytes(32)).decode(),
            }
        )

    async def soap_login(request: Request) -> Response:
        body = (await request.body()).decode("utf-8", "replace")
        user = re.search(r"<(?:\w+:)?username>(.*?)</(?:\w+:)?username>", body, re.S)
        pw = re.search(r"<(?:\w+:)?password>(.*?)</(?:\w+:)?password>", body, re.S)
        given_user = html.unescape(user.group(1)) if user else ""
        given_pw = html.unescape(pw.group(1)) if pw else ""
        if given_user != state.username or not secrets.compare_digest(
            given_pw, state.password + state.security_token
        ):
            fault = (
                '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
                'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
                'xmlns:sf="urn:fault.partner.soap.sforce.com"><soapenv:Body><soapenv:Fault>'
                "<faultcode>INVALID_LOGIN</faultcode><faultstring>INVALID_LOGIN: Invalid username, "
                "password, security token; or user locked out.</faultstring><detail><sf:LoginFault>"
                "<sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode><sf:exceptionMessage>Invalid "
                "username, password, security token; or user locked out.</sf:exceptionMessage>"
                "</sf:LoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
            )
            return Response(fault, 500, media_type="text/xml")
        token = state.issue_token()
        ver = request.path_params["version"]
        server = f"{base_url(request)}/services/Soap/u/{ver}/00DSANDBOX0000001"
        ok = (
            '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope '
            'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns="urn:partner.soap.sforce.com"><soapenv:Body><loginResponse><result>'
            f"<metadataServerUrl>{server}</metadataServerUrl><passwordExpired>false"
            f"</passwordExpired><sandbox>true</sandbox><serverUrl>{server}</serverUrl>"
            f"<sessionId>{html.escape(token)}</sessionId><userId>005SANDBOX0000001</userId>"
            "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
        )
        return Response(ok, 200, media_type="text/xml")

    # -- control surface --------------------------------------------------------------------------

    async def control_body(request: Request, model: type[BaseModel]) -> Any:
        try:
            return model.model_validate_json(await request.body() or b"{}")
        except ValidationError as exc:
            raise _Fail(422, "INVALID_INPUT", str(exc)) from None

    def control(handler: Handler) -> Handler:
        async def wrapped(request: Request) -> Response:
            try:
                return await handler(request)
            except _Fail as exc:
                return exc.response

        return wrapped

    async def seed_route(request: Request) -> Response:
        body: _SeedBody = await control_body(request, _SeedBody)
        obj = obj_or_404(body.object)
        stamps = db.seed_stamps(body.count)
        seed_value = state.seed if body.seed is None else body.seed
        records = _synthetic(obj.name, body.count, seed_value, body.bad_every, stamps)
        ids = db.insert(obj, records, raw=True)
        return JSONResponse({"object": obj.name, "ids": ids})

    async def records_post(request: Request) -> Response:
        body: _RecordsBody = await control_body(request, _RecordsBody)
        obj = obj_or_404(body.object)
        raw = []
        for rec in body.records:
            # Control inserts may set timestamps; convert booleans to stored form.
            converted = {}
            for key, value in rec.items():
                spec = obj.by_lower.get(key.lower())
                if spec is None:
                    raise _Fail(400, "INVALID_FIELD", f"No such column '{key}' on {obj.name}")
                converted[spec.name] = (
                    (1 if value else 0) if spec.type == "boolean" and value is not None else value
                )
            raw.append(converted)
        try:
            ids = db.insert(obj, raw, raw=True)
        except Exception as exc:  # sqlite3.IntegrityError: duplicate Id
            raise _Fail(400, "DUPLICATE_VALUE", str(exc)) from None
        return JSONResponse({"object": obj.name, "ids": ids})

    async def records_get(request: Request) -> Response:
        obj = obj_or_404(request.path_params["object"])
        return JSONResponse(db.dump(obj))

    async def limits_put(request: Request) -> Response:
        body: _LimitsBody = await control_body(request, _LimitsBody)
        if body.daily_limit is not None:
            state.daily_limit = body.daily_limit
        if body.token_ttl_seconds is not None:
            state.token_ttl_seconds = body.token_ttl_seconds
        if body.used is not None:
            state.used = body.used
        return JSONResponse(limits_view())

    def limits_view() -> dict[str, Any]:
        return {
            "daily_limit": state.daily_limit,
            "used": state.used,
            "token_ttl_seconds": state.token_ttl_seconds,
        }

    async def limits_get(request: Request) -> Response:
        return JSONResponse(limits_view())

    async def expire_tokens(request: Request) -> Response:
        count = len(state.tokens)
        state.tokens.clear()
        return JSONResponse({"expired": count})

    async def token_route(request: Request) -> Response:
        return JSONResponse(
            {"access_token": state.issue_token(), "instance_url": base_url(request)}
        )

    async def faults_put(request: Request) -> Response:
        config: FaultConfig = await control_body(request, FaultConfig)
        assert state.injector is not None
        state.injector.configure(config)
        return JSONResponse(config.model_dump())

    async def faults_get(request: Request) -> Response:
        assert state.injector is not None
        return JSONResponse(
            {**state.injector.config.model_dump(), "injected": dict(state.injector.injected)}
        )

    async def stats_get(request: Request) -> Response:
        with state.lock:
            counts = dict(state.stats)
        return JSONResponse(
            {"requests": counts, "total": sum(counts.values()), "api_usage": state.used}
        )

    async def stats_reset(request: Request) -> Response:
        with state.lock:
            state.stats.clear()
        return JSONResponse({"requests": {}, "total": 0})

    async def reset(request: Request) -> Response:
        db.reset()
        with state.lock:
            state.stats.clear()
            state.used = 0
            state.cursors.clear()
            state.ingest_jobs.clear()
            state.query_jobs.clear()
            state.tokens.clear()
            state.daily_limit = daily_limit
            state.token_ttl_seconds = token_ttl_seconds
        assert state.injector is not None
        state.injector.configure(FaultConfig())
        return JSONResponse({"reset": True})

    routes = [
        api("/sobjects", sobjects, ["GET"]),
        api("/sobjects/", sobjects, ["GET"]),
        api("/sobjects/{object}/describe", describe, ["GET"]),
        api("/sobjects/{object}/describe/", describe, ["GET"]),
        api("/sobjects/{object}", sobject_root, ["GET", "POST"]),
        api("/sobjects/{object}/", sobject_root, ["GET", "POST"]),
        api("/sobjects/{object}/updated/", updated, ["GET"]),
        api("/sobjects/{object}/deleted/", deleted, ["GET"]),
        api("/sobjects/{object}/{id}", record, ["GET", "PATCH", "DELETE"]),
        api("/sobjects/{object}/{field}/{value:path}", by_external_id, ["GET", "PATCH", "DELETE"]),
        api("/query", query, ["GET"]),
        api("/query/", query, ["GET"]),
        api("/query/{locator}", query_more, ["GET"]),
        api("/limits", limits, ["GET"]),
        api("/limits/", limits, ["GET"]),
        api("/composite/sobjects", composite_route, ["PATCH", "POST", "DELETE"]),
        api("/jobs/ingest", ingest_create, ["POST"]),
        api("/jobs/ingest/{job}", ingest_job_route, ["GET", "PATCH", "DELETE"]),
        api("/jobs/ingest/{job}/batches", ingest_batches, ["PUT"]),
        api("/jobs/ingest/{job}/{kind}", ingest_results, ["GET"]),
        api("/jobs/query", query_create, ["POST"]),
        api("/jobs/query/{job}", query_job_route, ["GET", "PATCH", "DELETE"]),
        api("/jobs/query/{job}/results", query_results, ["GET"]),
        Route("/services/oauth2/token", oauth_token, methods=["POST"]),
        Route("/services/Soap/u/{version}", soap_login, methods=["POST"]),
        Route("/_sandbox/seed", control(seed_route), methods=["POST"]),
        Route("/_sandbox/records", control(records_post), methods=["POST"]),
        Route("/_sandbox/records/{object}", control(records_get), methods=["GET"]),
        Route("/_sandbox/limits", control(limits_put), methods=["PUT"]),
        Route("/_sandbox/limits", control(limits_get), methods=["GET"]),
        Route("/_sandbox/expire-tokens", expire_tokens, methods=["POST"]),
        Route("/_sandbox/token", token_route, methods=["POST"]),
        Route("/_sandbox/faults", control(faults_put), methods=["PUT"]),
        Route("/_sandbox/faults", faults_get, methods=["GET"]),
        Route("/_sandbox/stats", stats_get, methods=["GET"]),
        Route("/_sandbox/stats/reset", stats_reset, methods=["POST"]),
        Route("/_sandbox/reset", reset, methods=["POST"]),
    ]
    inner = Starlette(
        routes=routes,
        exception_handlers={404: _not_found, 405: _not_found},
    )
    app = SalesforceSandboxApp(inner, state)
    state.injector = app
    return app


async def _not_found(request: Request, exc: Exception) -> Response:
    return _error(404, "NOT_FOUND", f"The requested resource does not exist: {request.url.path}")


class SalesforceSandboxApp(FaultInjector):
    """The emulator as an ASGI app (fault injection outermost); `state` is its live state."""

    def __init__(self, app: Any, state: SalesforceState) -> None:
        super().__init__(app)
        self.state = state
