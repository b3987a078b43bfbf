"""The ColdSend emulator's ASGI app: API routes, auth, scopes, rate limits, stats and /_sandbox.

Layers, outermost first: `ColdSendApp` (a `FaultInjector` that also counts every /api/ request
for /_sandbox/stats), `_ApiGate` (API key, rate limit and X-RateLimit-* headers for /api/),
then the FastAPI app with the routes of contract sections 4-6 and the control surface of
section 10.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import secrets
import threading
from collections.abc import Iterator
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Body, Depends, FastAPI, File, Form, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader

from sandbox._faults import ASGIApp, FaultConfig, FaultInjector, Message, Receive, Scope, Send
from sandbox._server import InjectedConnectionDrop
from sandbox.coldsend.db import Store
from sandbox.coldsend.jobs import JobRunner, parse_upload
from sandbox.coldsend.models import (
    API_PREFIX,
    CONTROL_PREFIX,
    MAX_UPLOAD_BYTES,
    AdvanceRequest,
    ApiError,
    CampaignSettings,
    CampaignStatus,
    CampaignUpdate,
    DuplicateAction,
    JobsConfig,
    JobsPatch,
    KeyCreate,
    LeadIds,
    LeadStatus,
    LeadStatusRequest,
    LeadUpdate,
    LimitsConfig,
    LimitsPatch,
    ManualLead,
    ReplyRequest,
    SenderAccountCreate,
)
from sandbox.coldsend.ratelimit import Decision, RateLimiter
from sandbox.coldsend.simulate import advance

MISSING_KEY = "API key required. Include your API key in X-API-Key header."
INVALID_KEY = "Invalid or revoked API key"
# Legacy write scopes stand for these actions of their resource.
_WRITE_ACTIONS = frozenset({"create", "update", "delete", "pause", "activate"})
_LEGACY_WRITE = frozenset({"campaigns", "sender_accounts"})
EXPORT_COLUMNS = (
    "email",
    "first_name",
    "last_name",
    "company",
    "status",
    "custom_fields",
    "created_at",
)


def has_scope(granted: frozenset[str], required: str) -> bool:
    """Whether `granted` covers `required` (``*``, ``resource:all`` and legacy ``:write``)."""
    if required in granted or "*" in granted:
        return True
    resource, _, action = required.partition(":")
    if f"{resource}:all" in granted:
        return True
    return resource in _LEGACY_WRITE and action in _WRITE_ACTIONS and f"{resource}:write" in granted


def _hash_key(key: str) -> str:
    # Keys are kept hashed so a dump of the database does not leak them.
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


class RequestStats:
    """Counts /api/ requests by ``"<METHOD> <route template>"`` (benchmarks read these).

    Also counts the answers of 429 (rate limited), which a well-paced client never gets.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._rate_limited = 0
        self._routes: list[APIRoute] = []

    def bind(self, routes: list[APIRoute]) -> None:
        """Routes used to turn a path into its template."""
        self._routes = routes

    def record(self, scope: Scope) -> None:
        """Count one request."""
        path: str = scope["path"]
        method: str = scope["method"]
        template = path
        for route in self._routes:
            if route.path_regex.match(path):
                if method in (route.methods or ()):
                    template = route.path
                    break
                if template == path:
                    template = route.path
        name = f"{scope['method']} {template}"
        with self._lock:
            self._counts[name] = self._counts.get(name, 0) + 1

    def record_rate_limited(self) -> None:
        """Count one answer of 429."""
        with self._lock:
            self._rate_limited += 1

    def snapshot(self) -> dict[str, Any]:
        """``{"requests": {name: count}, "total": int, "rate_limited": int}``."""
        with self._lock:
            counts = dict(sorted(self._counts.items()))
            rate_limited = self._rate_limited
        return {"requests": counts, "total": sum(counts.values()), "rate_limited": rate_limited}

    def clear(self) -> None:
        """Start counting from zero."""
        with self._lock:
            self._counts.clear()
            self._rate_limited = 0


class ColdSendSandbox:
    """The emulator's state and settings; reachable as ``create_app(...).sandbox``.

    Attributes:
        store: The SQLite database.
        api: The inner FastAPI app (no fault injection, no API gate).
        admin_key: An API key with scope ``*`` that survives resets.
        limiter: Per-key rate limiter.
        jobs: Upload job runner.
        stats: Request counters.
        seed: Seed of the send simulation.
    """

    def __init__(
        self,
        *,
        db_path: str | None,
        admin_key: str | None,
        seed: int,
        per_minute: int,
        per_hour: int,
        job_rows_per_second: float,
    ) -> None:
        self.store = Store(db_path)
        self.seed = seed
        self.default_limits = LimitsConfig(per_minute=per_minute, per_hour=per_hour)
        self.limits = self.default_limits
        self.limiter = RateLimiter(per_minute=per_minute, per_hour=per_hour)
        self.default_jobs = JobsConfig(rows_per_second=job_rows_per_second)
        self.jobs = JobRunner(self.store, self.default_jobs)
        self.stats = RequestStats()
        self.admin_key = admin_key or f"cs_live_{secrets.token_urlsafe(32)}"
        self.store.add_key(_hash_key(self.admin_key), "admin", ["*"], admin=True)
        self._keys = self.store.keys()
        self.api: FastAPI
        self.faults: FaultInjector

    def __repr__(self) -> str:
        return f"ColdSendSandbox(db={self.store.path!r}, seed={self.seed})"

    def create_key(self, scopes: list[str], name: str | None = None) -> str:
        """Issue a new ``cs_live_`` key with `scopes`."""
        key = f"cs_live_{secrets.token_urlsafe(32)}"
        self.store.add_key(_hash_key(key), name, scopes, admin=False)
        self._keys = self.store.keys()
        return key

    def authenticate(self, key: str) -> tuple[str, frozenset[str]] | None:
        """``(key id, scopes)`` for a known key, else None."""
        key_id = _hash_key(key)
        scopes = self._keys.get(key_id)
        return None if scopes is None else (key_id, scopes)

    def set_limits(self, limits: LimitsConfig) -> None:
        """Apply rate limits (counts in the current windows are kept)."""
        self.limits = limits
        self.limiter.configure(per_minute=limits.per_minute, per_hour=limits.per_hour)

    def reset(self) -> None:
        """Wipe all data but the admin key; restore default limits, faults and job settings."""
        self.jobs.reset(self.default_jobs)
        self.store.wipe()
        self._keys = self.store.keys()
        self.set_limits(self.default_limits)
        self.limiter.clear()
        self.faults.configure(FaultConfig())
        self.stats.clear()


class ColdSendApp(FaultInjector):
    """The ASGI app `create_app` returns: fault injection plus request counting.

    Attributes:
        sandbox: The `ColdSendSandbox` behind it (state, settings, inner FastAPI app).
    """

    def __init__(self, sandbox: ColdSendSandbox) -> None:
        self.sandbox = sandbox
        super().__init__(_ApiGate(sandbox.api, sandbox))

    def configure(self, config: FaultConfig) -> None:
        """Apply `config`, confined to /api/ paths whatever its `path_prefix` says."""
        if not config.path_prefix.startswith("/api/"):
            config = config.model_copy(update={"path_prefix": "/api/"})
        super().configure(config)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await super().__call__(scope, receive, send)
            return
        self.sandbox.stats.record(scope)
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await super().__call__(scope, receive, tracking_send)
        except InjectedConnectionDrop:
            if not started:
                # Raised before any response, uvicorn would answer a tidy 500; promise a body
                # and die instead, so the client sees the broken connection a drop should be.
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [(b"content-length", b"100000")],
                    }
                )
            raise


def _json_message(status: int, body: Any, headers: list[tuple[bytes, bytes]]) -> list[Message]:
    payload = json.dumps(body).encode()
    return [
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        },
        {"type": "http.response.body", "body": payload},
    ]


class _ApiGate:
    """API key check and rate limiting for /api/, before routing; adds X-RateLimit-* headers."""

    def __init__(self, app: ASGIApp, sandbox: ColdSendSandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        sandbox = self.sandbox
        raw = next((v for k, v in scope["headers"] if k == b"x-api-key"), b"")
        key = raw.decode("latin-1").strip()
        found = sandbox.authenticate(key) if key else None
        if found is None:
            headers = sandbox.limiter.peek().headers()
            for message in _json_message(
                401, {"detail": INVALID_KEY if key else MISSING_KEY}, headers
            ):
                await send(message)
            return
        key_id, scopes = found
        decision: Decision = sandbox.limiter.hit(key_id)
        headers = decision.headers(retry_after_header=sandbox.limits.retry_after_header)
        if not decision.allowed:
            sandbox.stats.record_rate_limited()
            body = {"detail": f"Rate limit exceeded. Retry after {decision.retry_after} seconds."}
            for message in _json_message(429, body, headers):
                await send(message)
            return
        scope["coldsend.scopes"] = scopes

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)


_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


def _need(required: str) -> Any:
    """A route dependency enforcing one scope (the key itself was checked by `_ApiGate`)."""

    def check(request: Request, _key: Annotated[str | None, Security(_api_key_header)]) -> None:
        granted: frozenset[str] | None = request.scope.get("coldsend.scopes")
        if granted is None:
            raise ApiError(401, MISSING_KEY)
        if not has_scope(granted, required):
            raise ApiError(
                403,
                {
                    "detail": f"Missing required scopes: {required}",
                    "error": "insufficient_scopes",
                    "required": [required],
                    "granted": sorted(granted),
                },
            )

    return Depends(check)


Page = Annotated[int, Query(ge=1)]
Limit = Annotated[int, Query(ge=1, le=100)]
Search = Annotated[str | None, Query(max_length=255)]


def _add_api_routes(r: FastAPI, sandbox: ColdSendSandbox) -> None:
    # Declared on the app itself (not an included router) so `app.routes` lists them with full
    # paths, which `RequestStats` matches against.
    store = sandbox.store

    # -- campaigns -----------------------------------------------------------------------------

    @r.post(API_PREFIX + "/campaigns", status_code=201, dependencies=[_need("campaigns:create")])
    def create_campaign(body: CampaignSettings) -> dict[str, Any]:
        return store.create_campaign(body)

    @r.get(API_PREFIX + "/campaigns", dependencies=[_need("campaigns:read")])
    def list_campaigns(
        page: Page = 1,
        limit: Limit = 20,
        status: CampaignStatus | None = None,
        status_filter: CampaignStatus | None = None,
        search: Search = None,
    ) -> dict[str, Any]:
        return store.list_campaigns(
            page=page, limit=limit, status=status or status_filter, search=search
        )

    @r.get(API_PREFIX + "/campaigns/{campaign_id}", dependencies=[_need("campaigns:read")])
    def get_campaign(campaign_id: str) -> dict[str, Any]:
        return store.get_campaign(campaign_id)

    @r.put(API_PREFIX + "/campaigns/{campaign_id}", dependencies=[_need("campaigns:update")])
    def update_campaign(campaign_id: str, body: CampaignUpdate) -> dict[str, Any]:
        return store.update_campaign(campaign_id, body)

    @r.delete(API_PREFIX + "/campaigns/{campaign_id}", dependencies=[_need("campaigns:delete")])
    def delete_campaign(campaign_id: str) -> dict[str, Any]:
        return store.transition(campaign_id, "delete")

    @r.post(API_PREFIX + "/campaigns/{campaign_id}/pause", dependencies=[_need("campaigns:pause")])
    def pause_campaign(campaign_id: str) -> dict[str, Any]:
        return store.transition(campaign_id, "pause")

    @r.post(
        API_PREFIX + "/campaigns/{campaign_id}/activate", dependencies=[_need("campaigns:activate")]
    )
    def activate_campaign(campaign_id: str) -> dict[str, Any]:
        return store.transition(campaign_id, "activate")

    # -- leads (fixed paths before /leads/{lead_id}) ---------------------------------------------

    @r.post(
        API_PREFIX + "/campaigns/{campaign_id}/leads",
        status_code=202,
        dependencies=[_need("leads:create")],
    )
    async def upload_leads(
        campaign_id: str,
        file: Annotated[bytes, File(description="CSV with a header row and an email column")],
        mapping: Annotated[str | None, Form(description="JSON: lead field -> CSV header")] = None,
        duplicate_action: Annotated[DuplicateAction, Form()] = "skip",
    ) -> dict[str, Any]:
        fields = _parse_mapping(mapping)
        await anyio.to_thread.run_sync(store.campaign_status, campaign_id)
        if len(file) > MAX_UPLOAD_BYTES:
            raise ApiError(400, f"File too large: the limit is 50 MB ({MAX_UPLOAD_BYTES} bytes)")
        upload = await anyio.to_thread.run_sync(parse_upload, file, fields)
        job_id, status = await anyio.to_thread.run_sync(store.create_job, campaign_id, upload.total)
        sandbox.jobs.submit(job_id, campaign_id, upload, duplicate_action)
        return {
            "success": True,
            "message": f"Upload accepted: {upload.total} row(s) queued for import",
            "job_id": job_id,
            "campaign_id": campaign_id,
            "status": status,
            "total_rows": upload.total,
        }

    @r.post(
        API_PREFIX + "/campaigns/{campaign_id}/leads/manual",
        status_code=201,
        dependencies=[_need("leads:create")],
    )
    def add_lead(campaign_id: str, body: ManualLead) -> dict[str, Any]:
        return store.add_manual_lead(campaign_id, body)

    @r.get(API_PREFIX + "/campaigns/{campaign_id}/leads", dependencies=[_need("leads:read")])
    def list_leads(
        campaign_id: str,
        page: Page = 1,
        limit: Limit = 20,
        status: LeadStatus | None = None,
        status_filter: LeadStatus | None = None,
        search: Search = None,
    ) -> dict[str, Any]:
        return store.list_leads(
            campaign_id, page=page, limit=limit, status=status or status_filter, search=search
        )

    @r.delete(API_PREFIX + "/campaigns/{campaign_id}/leads", dependencies=[_need("leads:delete")])
    def delete_leads(
        campaign_id: str, body: Annotated[LeadIds | list[str], Body()]
    ) -> dict[str, Any]:
        ids = body.lead_ids if isinstance(body, LeadIds) else body
        return store.delete_leads(campaign_id, ids)

    @r.get(
        API_PREFIX + "/campaigns/{campaign_id}/leads/export",
        dependencies=[_need("leads:read")],
        response_class=StreamingResponse,
        responses={200: {"content": {"text/csv": {}}}},
    )
    def export_leads(campaign_id: str) -> StreamingResponse:
        store.campaign_status(campaign_id)
        return StreamingResponse(
            _export_csv(store, campaign_id),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="leads-{campaign_id}.csv"'},
        )

    @r.get(
        API_PREFIX + "/campaigns/{campaign_id}/leads/upload/{job_id}",
        dependencies=[_need("leads:read")],
    )
    def get_upload_job(campaign_id: str, job_id: str) -> dict[str, Any]:
        return store.get_job(campaign_id, job_id)

    @r.get(
        API_PREFIX + "/campaigns/{campaign_id}/leads/{lead_id}", dependencies=[_need("leads:read")]
    )
    def get_lead(campaign_id: str, lead_id: str) -> dict[str, Any]:
        return store.get_lead(campaign_id, lead_id)

    @r.put(
        API_PREFIX + "/campaigns/{campaign_id}/leads/{lead_id}",
        dependencies=[_need("leads:update")],
    )
    def update_lead(campaign_id: str, lead_id: str, body: LeadUpdate) -> dict[str, Any]:
        return store.update_lead(campaign_id, lead_id, body)

    # -- sender accounts -----------------------------------------------------------------------

    @r.post(
        API_PREFIX + "/sender-accounts/smtp",
        status_code=201,
        dependencies=[_need("sender_accounts:create")],
    )
    def create_sender_account(body: SenderAccountCreate) -> dict[str, Any]:
        return store.create_inbox(body)

    @r.get(API_PREFIX + "/sender-accounts", dependencies=[_need("sender_accounts:read")])
    def list_sender_accounts(page: Page = 1, limit: Limit = 20) -> dict[str, Any]:
        return store.list_inboxes(page=page, limit=limit)

    @r.get(API_PREFIX + "/sender-accounts/{inbox_id}", dependencies=[_need("sender_accounts:read")])
    def get_sender_account(inbox_id: str) -> dict[str, Any]:
        return store.get_inbox(inbox_id)

    @r.delete(
        API_PREFIX + "/sender-accounts/{inbox_id}", dependencies=[_need("sender_accounts:delete")]
    )
    def delete_sender_account(inbox_id: str) -> dict[str, Any]:
        return store.delete_inbox(inbox_id)


def _parse_mapping(raw: str | None) -> dict[str, str] | None:
    if raw is None or not raw.strip():
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ApiError(
            422,
            [
                {
                    "loc": ["body", "mapping"],
                    "msg": "mapping must be a JSON object of lead field -> CSV column header",
                    "type": "value_error",
                }
            ],
        )
    return value


def _export_csv(store: Store, campaign_id: str) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    for batch in store.export_batches(campaign_id):
        writer.writerows(
            (row[1], row[2] or "", row[3] or "", row[4] or "", row[5], row[6], row[7])
            for row in batch
        )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()


def _control_router(sandbox: ColdSendSandbox) -> APIRouter:
    r = APIRouter(prefix=CONTROL_PREFIX, include_in_schema=False)

    @r.post("/keys", status_code=201)
    def create_key(body: KeyCreate) -> dict[str, Any]:
        return {"api_key": sandbox.create_key(body.scopes, body.name), "scopes": body.scopes}

    @r.post("/reset")
    def reset() -> dict[str, Any]:
        sandbox.reset()
        return {"ok": True}

    @r.post("/advance")
    def advance_sending(body: AdvanceRequest | None = None) -> dict[str, Any]:
        return advance(sandbox.store, sandbox.seed, (body or AdvanceRequest()).steps)

    @r.put("/leads/status")
    def set_lead_status(body: LeadStatusRequest) -> dict[str, Any]:
        return sandbox.store.set_lead_status(body.campaign_id, body.email, body.status)

    @r.post("/replies", status_code=201)
    def add_reply(body: ReplyRequest) -> dict[str, Any]:
        return sandbox.store.add_reply(body)

    @r.get("/limits")
    def get_limits() -> LimitsConfig:
        return sandbox.limits

    @r.put("/limits")
    def put_limits(body: LimitsPatch) -> LimitsConfig:
        patch = body.model_dump(exclude_none=True)
        sandbox.set_limits(sandbox.limits.model_copy(update=patch))
        return sandbox.limits

    @r.get("/jobs")
    def get_jobs() -> JobsConfig:
        return sandbox.jobs.config

    @r.put("/jobs")
    def put_jobs(body: JobsPatch) -> JobsConfig:
        patch = body.model_dump(exclude_none=True)
        config = JobsConfig.model_validate({**sandbox.jobs.config.model_dump(), **patch})
        sandbox.jobs.configure(config)
        return config

    @r.get("/faults")
    def get_faults() -> FaultConfig:
        return sandbox.faults.config

    @r.put("/faults")
    def put_faults(body: FaultConfig) -> FaultConfig:
        sandbox.faults.configure(body)
        return sandbox.faults.config

    @r.get("/stats")
    def get_stats() -> dict[str, Any]:
        return sandbox.stats.snapshot()

    @r.post("/stats/reset")
    def reset_stats() -> dict[str, Any]:
        sandbox.stats.clear()
        return {"ok": True}

    return r


def create_app(
    *,
    db_path: str | None = None,
    admin_key: str | None = None,
    seed: int = 0,
    per_minute: int = 100,
    per_hour: int = 1000,
    job_rows_per_second: float = 20_000.0,
) -> ColdSendApp:
    """Build the ColdSend emulator.

    Args:
        db_path: SQLite file to keep state in; None keeps it in memory.
        admin_key: The ``*``-scoped key that survives resets; random when None (read it from
            ``app.sandbox.admin_key``).
        seed: Seed of the send simulation (``/_sandbox/advance``).
        per_minute: Default requests per minute per key.
        per_hour: Default requests per hour per key.
        job_rows_per_second: Default speed of upload jobs.

    Returns:
        The ASGI app, fault injection outermost. ``app.sandbox`` is the `ColdSendSandbox`
        (state, settings and the inner FastAPI app as ``app.sandbox.api``).

    Example:
        >>> from sandbox._server import serving
        >>> app = create_app(seed=7)
        >>> with serving(app) as server:  # doctest: +SKIP
        ...     base_url = f"{server.url}/api/public/v1"
    """
    sandbox = ColdSendSandbox(
        db_path=db_path,
        admin_key=admin_key,
        seed=seed,
        per_minute=per_minute,
        per_hour=per_hour,
        job_rows_per_second=job_rows_per_second,
    )
    api = FastAPI(
        title="ColdSend Public API v1 (emulator)",
        version="1.0.0",
        description="Local emulator of the ColdSend public API; control surface at /_sandbox/.",
    )

    @api.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status_code)

    @api.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # Only loc/msg/type: FastAPI's default also echoes the input, which may hold passwords.
        detail = [
            {
                "loc": list(err.get("loc", ())),
                "msg": err.get("msg", ""),
                "type": err.get("type", ""),
            }
            for err in exc.errors()
        ]
        return JSONResponse({"detail": detail}, status_code=422)

    @api.exception_handler(UnicodeEncodeError)
    async def _bad_text(_request: Request, _exc: UnicodeEncodeError) -> JSONResponse:
        # Lone surrogates ("\ud800") survive JSON parsing but cannot be stored as UTF-8.
        return JSONResponse({"detail": "Request contains text that is not valid Unicode"}, 400)

    _add_api_routes(api, sandbox)
    api.include_router(_control_router(sandbox))
    sandbox.api = api
    sandbox.stats.bind(
        [r for r in api.routes if isinstance(r, APIRoute) and r.path.startswith(API_PREFIX)]
    )
    app = ColdSendApp(sandbox)
    sandbox.faults = app
    return app
