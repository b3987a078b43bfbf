"""The HubSpot CRM v3 emulator: contacts, search, batches, properties, lists, tokens, rate limits.

Served paths (what hubspot-api-client 12 calls; bodies and answers shaped as HubSpot documents):

* ``GET  /crm/v3/objects/contacts``                  page by id (``limit`` <= 100, ``after``)
* ``GET|PATCH /crm/v3/objects/contacts/{id}``         one contact (``idProperty=email`` works)
* ``POST /crm/v3/objects/contacts``                   create one
* ``POST /crm/v3/objects/contacts/search``            filter groups, one sort, 200 a page, 10k cap
* ``POST /crm/v3/objects/contacts/batch/read|update|create``  100 inputs; 207 with ``errors``
* ``GET|POST /crm/v3/properties/contacts``, ``GET /crm/v3/properties/contacts/{name}``
* ``GET|POST /crm/v3/properties/contacts/groups``
* ``GET  /crm/v3/lists/{listId}/memberships``          ``recordId`` pages (``limit`` <= 250)

Errors use HubSpot's envelope ``{"status": "error", "message", "correlationId", "category"}``
(401 ``INVALID_AUTHENTICATION`` / ``EXPIRED_AUTHENTICATION``, 403 ``MISSING_SCOPES`` naming
the scope in ``errors[].context.requiredGranularScopes``, 400 ``VALIDATION_ERROR``, 404
``OBJECT_NOT_FOUND``, 409 ``CONFLICT``, 429 ``RATE_LIMIT`` with a ``policyName``).

Control surface (never faulted, never rate limited, no token), under ``/_sandbox/``:
``POST tokens``, ``POST tokens/expire``, ``POST seed``, ``GET|POST contacts``, ``POST lists``,
``GET|PUT limits``, ``GET|PUT faults``, ``PUT row-faults``, ``GET stats``, ``POST stats/reset``,
``POST reset``.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox._faults import FaultConfig, FaultInjector
from sandbox.hubspot.engagements import EmailStore, EngagementError
from sandbox.hubspot.limits import Limits, RateLimiter
from sandbox.hubspot.search import SearchError, run_search
from sandbox.hubspot.store import READ_ONLY, Contact, ContactStore, PropertyDef, format_ms

__all__ = ["ALL_SCOPES", "HubSpotSandboxApp", "HubSpotState", "create_app"]

READ = "crm.objects.contacts.read"
WRITE = "crm.objects.contacts.write"
SCHEMA_READ = "crm.schemas.contacts.read"
SCHEMA_WRITE = "crm.schemas.contacts.write"
LISTS_READ = "crm.lists.read"
ALL_SCOPES = (READ, WRITE, SCHEMA_READ, SCHEMA_WRITE, LISTS_READ)
BATCH_MAX = 100
PAGE_MAX = 100
LIST_PAGE_MAX = 250
DEFAULT_PROPERTIES = (
    "createdate",
    "email",
    "firstname",
    "hs_object_id",
    "lastmodifieddate",
    "lastname",
)
_TYPES = {
    "string": {"text", "textarea", "phonenumber", "html", "file"},
    "number": {"number", "calculation_equation"},
    "date": {"date"},
    "datetime": {"date"},
    "enumeration": {"select", "radio", "checkbox", "booleancheckbox", "calculation_equation"},
    "bool": {"booleancheckbox", "calculation_equation"},
}

Handler = Callable[[Request], Awaitable[Response]]


class HubSpotFail(Exception):
    """An error answer in HubSpot's envelope."""

    def __init__(self, status: int, category: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.category = category
        self.message = message
        self.extra = extra

    def response(self, headers: Mapping[str, str] | None = None) -> JSONResponse:
        body = {
            "status": "error",
            "message": self.message,
            "correlationId": str(uuid.uuid4()),
            "category": self.category,
            **self.extra,
        }
        return JSONResponse(body, self.status, headers=dict(headers or {}))


@dataclass
class TokenInfo:
    scopes: frozenset[str]
    expires_at: float | None = None  # monotonic time; None: a private app token (no expiry)


@dataclass
class HubSpotState:
    """The emulator's live state besides contacts: tokens, limits, faults on rows, counts."""

    store: ContactStore
    limiter: RateLimiter
    tokens: dict[str, TokenInfo]
    default_token: str
    emails: EmailStore = field(default_factory=EmailStore)
    row_faults: dict[str, str] = field(default_factory=dict)
    stats: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    injector: FaultInjector | None = None

    def issue_token(
        self,
        scopes: list[str] | None = None,
        expires_in: float | None = None,
        token: str | None = None,
    ) -> str:
        value = token or "pat-na1-" + str(uuid.UUID(bytes=secrets.token_bytes(16)))
        expiry = time.monotonic() + expires_in if expires_in is not None else None
        self.tokens[value] = TokenInfo(frozenset(ALL_SCOPES if scopes is None else scopes), expiry)
        return value


# ---------------------------------------------------------------------------------------------
# Control surface models
# ---------------------------------------------------------------------------------------------


class _TokenBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scopes: list[str] | None = None
    expires_in_seconds: float | None = Field(default=None, ge=0)


class _ExpireBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str | None = None


class _SeedBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: int = Field(ge=0, le=1_000_000)
    seed: int = 0
    same_modified: int = Field(default=0, ge=0, description="How many share one lastmodifieddate.")
    modified_ms: int | None = None
    spacing_ms: int = Field(default=1000, ge=0)
    bad_every: int | None = Field(default=None, ge=2)
    opted_out_every: int | None = Field(default=None, ge=1)
    properties: dict[str, str] | None = None


class _ContactsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    contacts: list[dict[str, Any]]


class _ListBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = "Sandbox list"
    ids: list[int]


class _RowFaultsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[str]
    message: str = "Injected row failure"


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _property_names(request: Request) -> list[str] | None:
    values = request.query_params.getlist("properties")
    if not values:
        return None
    return [n.strip() for v in values for n in v.split(",") if n.strip()]


def _names(requested: list[str] | None, store: ContactStore) -> list[str]:
    """Properties to show: the requested ones that exist (HubSpot ignores the others)."""
    if not requested:
        return list(DEFAULT_PROPERTIES)
    return list(dict.fromkeys(n for n in requested if n in store.properties))


def _contact_json(contact: Contact, names: list[str]) -> dict[str, Any]:
    return contact.to_api(names)


def _now_iso() -> str:
    return format_ms(int(time.time() * 1000))


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw or b"{}")
    except ValueError:
        raise HubSpotFail(400, "VALIDATION_ERROR", "Invalid input JSON on line 1") from None


def _validate_values(
    store: ContactStore, props: Mapping[str, Any]
) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Property values as text, and HubSpot's per-property validation errors."""
    out: dict[str, str] = {}
    errors: list[dict[str, Any]] = []

    def problem(name: str, code: str, message: str) -> None:
        errors.append(
            {
                "isValid": False,
                "message": message,
                "error": code,
                "name": name,
                "localizedErrorMessage": message,
            }
        )

    for name, raw in props.items():
        prop = store.properties.get(name)
        if prop is None:
            problem(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
            continue
        if name in READ_ONLY or prop.read_only:
            problem(
                name,
                "READ_ONLY_VALUE",
                f'"{name}" is a read only property; its value cannot be set.',
            )
            continue
        value = (
            ""
            if raw is None
            else ("true" if raw is True else "false" if raw is False else str(raw))
        )
        if value and prop.type == "bool" and value.lower() not in ("true", "false"):
            problem(name, "INVALID_BOOLEAN", f"{value!r} is not a valid boolean value for {name}")
            continue
        if value and prop.type == "bool":
            value = value.lower()
        if value and prop.type == "enumeration" and prop.field_type != "booleancheckbox":
            allowed = {o["value"] for o in prop.options}
            chosen = value.split(";") if prop.field_type == "checkbox" else [value]
            bad = [v for v in chosen if v not in allowed]
            if bad:
                problem(
                    name,
                    "INVALID_OPTION",
                    f"{bad[0]} was not one of the allowed options: "
                    + ", ".join(
                        f"[label: {o['label']!r} value: {o['value']!r}]" for o in prop.options
                    ),
                )
                continue
        if value and prop.type == "number":
            try:
                float(value)
            except ValueError:
                problem(name, "INVALID_FLOAT", f"{value!r} is not a valid number for {name}")
                continue
        out[name] = value
    return out, errors


def _values_fail(errors: list[dict[str, Any]]) -> HubSpotFail:
    return HubSpotFail(
        400, "VALIDATION_ERROR", "Property values were not valid: " + json.dumps(errors)
    )


# ---------------------------------------------------------------------------------------------
# App factory
# ---------------------------------------------------------------------------------------------


def create_app(
    *,
    db_path: str | None = None,
    token: str | None = None,
    limits: Limits | None = None,
) -> HubSpotSandboxApp:
    """Build the emulator app, wrapped in a `FaultInjector`.

    Args:
        db_path: SQLite file to keep contacts, properties and lists in; in memory when None.
        token: The private app token with every scope (random when None; read it back from
            ``app.state.default_token``).
        limits: Rate limits; HubSpot's Free/Starter ones (100 per 10 s, search 5/s) by default.

    Returns:
        The ASGI app; its live `HubSpotState` is ``app.state``.
    """
    store = ContactStore(db_path)
    initial_limits = limits or Limits()
    state = HubSpotState(
        store=store,
        limiter=RateLimiter(initial_limits),
        tokens={},
        default_token="",
        emails=EmailStore(db_path),
    )
    state.default_token = state.issue_token(token=token)

    def api(
        path: str, handler: Handler, methods: list[str], scope: str, *, search: bool = False
    ) -> Route:
        async def endpoint(request: Request) -> Response:
            label = f"{request.method} {path}"
            with state.lock:
                state.stats[label] += 1
            auth = request.headers.get("authorization", "")
            given = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
            info = state.tokens.get(given)
            if info is None:
                return HubSpotFail(
                    401,
                    "INVALID_AUTHENTICATION",
                    "Authentication credentials not found. This API supports OAuth 2.0 "
                    "authentication and you can find more details at "
                    "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                ).response()
            if info.expires_at is not None and info.expires_at <= time.monotonic():
                return HubSpotFail(
                    401,
                    "EXPIRED_AUTHENTICATION",
                    "The OAuth token used to make this call expired "
                    f"{int(time.monotonic() - info.expires_at) + 1} second(s) ago.",
                ).response()
            if scope not in info.scopes:
                return HubSpotFail(
                    403,
                    "MISSING_SCOPES",
                    "This app hasn't been granted all required scopes to make this call. Read "
                    "more about required scopes here: https://developers.hubspot.com/scopes.",
                    errors=[
                        {
                            "message": "One or more of the following scopes are required.",
                            "context": {"requiredGranularScopes": [scope]},
                        }
                    ],
                    links={"scopes": "https://developers.hubspot.com/scopes"},
                ).response()
            verdict = state.limiter.admit(search=search)
            if not verdict.admitted:
                with state.lock:
                    state.stats[f"429 {verdict.policy}"] += 1
                policy = verdict.policy or "TEN_SECONDLY_ROLLING"
                return HubSpotFail(
                    429,
                    "RATE_LIMITS",
                    f"You have reached your {policy.lower()} limit.",
                    errorType="RATE_LIMIT",
                    policyName=policy,
                ).response(verdict.headers)
            try:
                response = await handler(request)
            except HubSpotFail as exc:
                response = exc.response()
            except SearchError as exc:
                response = HubSpotFail(400, "VALIDATION_ERROR", str(exc)).response()
            for name, value in verdict.headers.items():
                response.headers[name] = value
            return response

        return Route(path, endpoint, methods=methods)

    def contact_or_404(raw_id: str, id_property: str | None = None) -> Contact:
        contact: Contact | None
        if id_property and id_property != "hs_object_id":
            contact = store.find_by(id_property, raw_id)
        else:
            contact = store.contacts.get(int(raw_id)) if raw_id.isdigit() else None
        if contact is None:
            raise HubSpotFail(
                404, "OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric."
            )
        return contact

    # -- objects ------------------------------------------------------------------------------

    async def list_contacts(request: Request) -> Response:
        params = request.query_params
        try:
            limit = int(params.get("limit", "10"))
            after = int(params.get("after", "0") or "0")
        except ValueError:
            raise HubSpotFail(400, "VALIDATION_ERROR", "limit and after must be integers") from None
        if not 1 <= limit <= PAGE_MAX:
            raise HubSpotFail(400, "VALIDATION_ERROR", f"limit must be between 1 and {PAGE_MAX}")
        if params.get("archived", "false").lower() == "true":
            return JSONResponse({"results": []})
        names = _names(_property_names(request), store)
        with store.lock:
            ids, next_id = store.ids_after(after, limit)
            results = [_contact_json(store.contacts[i], names) for i in ids]
        body: dict[str, Any] = {"results": results}
        if next_id is not None:
            link = f"{request.base_url}crm/v3/objects/contacts?after={next_id}"
            body["paging"] = {"next": {"after": str(next_id), "link": link}}
        return JSONResponse(body)

    async def one_contact(request: Request) -> Response:
        raw_id = request.path_params["contact_id"]
        contact = contact_or_404(raw_id, request.query_params.get("idProperty"))
        if request.method == "PATCH":
            body = await _json_body(request)
            values, errors = _validate_values(store, body.get("properties") or {})
            if errors:
                raise _values_fail(errors)
            store.update(contact.id, values)
            store.save([contact])
            return JSONResponse(
                _contact_json(contact, list(dict.fromkeys([*DEFAULT_PROPERTIES, *values])))
            )
        names = _names(_property_names(request), store)
        return JSONResponse(_contact_json(contact, names))

    async def create_contact(request: Request) -> Response:
        body = await _json_body(request)
        created = create([body.get("properties") or {}])
        return JSONResponse(_contact_json(created[0], list(DEFAULT_PROPERTIES)), 201)

    def create(records: list[Mapping[str, Any]]) -> list[Contact]:
        cleaned: list[dict[str, str]] = []
        for record in records:
            values, errors = _validate_values(store, record)
            if errors:
                raise _values_fail(errors)
            email = values.get("email")
            if email:
                existing = store.find_by("email", email)
                if existing is not None:
                    raise HubSpotFail(
                        409, "CONFLICT", f"Contact already exists. Existing ID: {existing.id}"
                    )
            cleaned.append(values)
        return store.add(cleaned)

    async def search(request: Request) -> Response:
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise HubSpotFail(400, "VALIDATION_ERROR", "The search body must be a JSON object.")
        page = run_search(store, body)
        requested = body.get("properties")
        names = list(DEFAULT_PROPERTIES)
        if isinstance(requested, list) and requested:
            names = list(
                dict.fromkeys([*DEFAULT_PROPERTIES, *_names([str(n) for n in requested], store)])
            )
        out: dict[str, Any] = {
            "total": page.total,
            "results": [_contact_json(c, names) for c in page.contacts],
        }
        if page.next_after is not None:
            out["paging"] = {"next": {"after": str(page.next_after)}}
        return JSONResponse(out)

    def batch_inputs(body: Any) -> list[dict[str, Any]]:
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list):
            raise HubSpotFail(400, "VALIDATION_ERROR", "Invalid input JSON: 'inputs' is required")
        if len(inputs) > BATCH_MAX:
            raise HubSpotFail(
                400,
                "VALIDATION_ERROR",
                f"Batch input contains {len(inputs)} inputs; the limit is {BATCH_MAX}.",
            )
        return [i for i in inputs if isinstance(i, dict)]

    def batch_answer(
        results: list[dict[str, Any]],
        errors: list[dict[str, Any]],
        started: str,
        created: bool = False,
    ) -> Response:
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": _now_iso(),
        }
        if errors:
            body["numErrors"] = len(errors)
            body["errors"] = errors
            return JSONResponse(body, 207)
        return JSONResponse(body, 201 if created else 200)

    def not_found_error(ids: list[str]) -> dict[str, Any]:
        return {
            "status": "error",
            "category": "OBJECT_NOT_FOUND",
            "message": "Could not get some CONTACT objects, they may be deleted or not exist. "
            "Check that ids are valid.",
            "context": {"ids": ids},
        }

    async def batch_read(request: Request) -> Response:
        started = _now_iso()
        body = await _json_body(request)
        inputs = batch_inputs(body)
        id_property = body.get("idProperty")
        names = _names([str(n) for n in body.get("properties") or []], store)
        results: list[dict[str, Any]] = []
        missing: list[str] = []
        with store.lock:
            for item in inputs:
                raw = str(item.get("id", ""))
                try:
                    contact = contact_or_404(raw, id_property)
                except HubSpotFail:
                    missing.append(raw)
                    continue
                results.append(_contact_json(contact, names))
        return batch_answer(results, [not_found_error(missing)] if missing else [], started)

    async def batch_update(request: Request) -> Response:
        started = _now_iso()
        body = await _json_body(request)
        inputs = batch_inputs(body)
        ids = [str(i.get("id", "")) for i in inputs]
        if len(set(ids)) != len(ids):
            raise HubSpotFail(400, "VALIDATION_ERROR", "Duplicate IDs found in batch input")
        planned: list[tuple[Contact, dict[str, str]]] = []
        missing: list[str] = []
        failed: dict[str, list[str]] = {}
        all_errors: list[dict[str, Any]] = []
        with store.lock:
            for item in inputs:
                raw = str(item.get("id", ""))
                values, errors = _validate_values(store, item.get("properties") or {})
                if errors:
                    all_errors.extend(errors)
                    continue
                contact = store.contacts.get(int(raw)) if raw.isdigit() else None
                if contact is None:
                    missing.append(raw)
                    continue
                if raw in state.row_faults:
                    failed.setdefault(state.row_faults[raw], []).append(raw)
                    continue
                planned.append((contact, values))
            if all_errors:
                # One invalid value fails the whole batch, as HubSpot does.
                raise _values_fail(all_errors)
            for contact, values in planned:
                store.update(contact.id, values)
            store.save([c for c, _ in planned])
            results = [
                _contact_json(c, list(dict.fromkeys([*DEFAULT_PROPERTIES, *values])))
                for c, values in planned
            ]
        errors_out = [not_found_error(missing)] if missing else []
        errors_out += [
            {
                "status": "error",
                "category": "VALIDATION_ERROR",
                "message": message,
                "context": {"ids": rows},
            }
            for message, rows in failed.items()
        ]
        return batch_answer(results, errors_out, started)

    async def batch_create(request: Request) -> Response:
        started = _now_iso()
        body = await _json_body(request)
        inputs = batch_inputs(body)
        created = create([i.get("properties") or {} for i in inputs])
        return batch_answer(
            [_contact_json(c, list(DEFAULT_PROPERTIES)) for c in created], [], started, True
        )

    # -- email engagements (replies logged on contacts) --------------------------------------

    async def emails_create(request: Request) -> Response:
        started = _now_iso()
        inputs = batch_inputs(await _json_body(request))
        try:
            created = state.emails.create(inputs, lambda cid: cid in store.contacts)
        except EngagementError as exc:
            raise HubSpotFail(400, "VALIDATION_ERROR", str(exc)) from None
        return batch_answer([e.to_api() for e in created], [], started, True)

    async def emails_search(request: Request) -> Response:
        try:
            return JSONResponse(state.emails.search(await _json_body(request)))
        except (EngagementError, ValueError, TypeError) as exc:
            raise HubSpotFail(400, "VALIDATION_ERROR", str(exc)) from None

    async def email_properties(request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse({"results": state.emails.property_list()})
        try:
            return JSONResponse(state.emails.add_property(await _json_body(request)), 201)
        except EngagementError as exc:
            raise HubSpotFail(409, "CONFLICT", str(exc)) from None

    async def one_email_property(request: Request) -> Response:
        name = request.path_params["name"]
        found = next((p for p in state.emails.property_list() if p["name"] == name), None)
        if found is None:
            raise HubSpotFail(404, "OBJECT_NOT_FOUND", f"Unable to find property {name}")
        return JSONResponse(found)

    async def emails_get(request: Request) -> Response:
        with state.emails.lock:
            out = [
                {
                    "id": str(e.id),
                    "properties": e.properties,
                    "contact_ids": [str(c) for c in e.contact_ids],
                }
                for e in state.emails.emails.values()
            ]
        return JSONResponse(out)

    # -- properties, groups, lists ------------------------------------------------------------

    async def properties(request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse({"results": [p.to_api() for p in store.properties.values()]})
        body = await _json_body(request)
        name = str(body.get("name") or "")
        if (
            not name
            or not name.replace("_", "").isalnum()
            or not name[0].isalpha()
            or name != name.lower()
        ):
            raise HubSpotFail(
                400,
                "VALIDATION_ERROR",
                f"Invalid property name {name!r}: use lower-case letters, digits and _.",
            )
        if name in store.properties:
            raise HubSpotFail(
                409, "OBJECT_ALREADY_EXISTS", f"A property named '{name}' already exists."
            )
        prop_type = str(body.get("type") or "")
        field_type = str(body.get("fieldType") or "")
        if prop_type not in _TYPES or field_type not in _TYPES[prop_type]:
            raise HubSpotFail(
                400,
                "VALIDATION_ERROR",
                f"Invalid type/fieldType {prop_type!r}/{field_type!r} for property {name!r}.",
            )
        group = str(body.get("groupName") or "")
        if group not in store.groups:
            raise HubSpotFail(400, "VALIDATION_ERROR", f"Property group {group!r} does not exist.")
        options = body.get("options") or []
        if prop_type in ("enumeration", "bool") and not options:
            raise HubSpotFail(
                400, "VALIDATION_ERROR", f"Property {name!r} of type {prop_type} needs options."
            )
        prop = PropertyDef(
            name=name,
            label=str(body.get("label") or name),
            type=prop_type,
            field_type=field_type,
            group_name=group,
            description=str(body.get("description") or ""),
            options=[
                {
                    "label": str(o.get("label", o.get("value", ""))),
                    "value": str(o.get("value", "")),
                    "displayOrder": int(o.get("displayOrder", i)),
                    "hidden": bool(o.get("hidden", False)),
                }
                for i, o in enumerate(options)
                if isinstance(o, dict)
            ],
            hubspot_defined=False,
            created_ms=store.now_ms(),
        )
        store.add_property(prop)
        return JSONResponse(prop.to_api(), 201)

    async def one_property(request: Request) -> Response:
        name = request.path_params["name"]
        prop = store.properties.get(name)
        if prop is None:
            raise HubSpotFail(404, "OBJECT_NOT_FOUND", f"Unable to find property {name}")
        return JSONResponse(prop.to_api())

    async def groups(request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse(
                {
                    "results": [
                        {"name": n, "label": label, "displayOrder": i, "archived": False}
                        for i, (n, label) in enumerate(store.groups.items())
                    ]
                }
            )
        body = await _json_body(request)
        name = str(body.get("name") or "")
        if not name or not name.replace("_", "").isalnum() or name != name.lower():
            raise HubSpotFail(400, "VALIDATION_ERROR", f"Invalid group name {name!r}.")
        if name in store.groups:
            raise HubSpotFail(
                409, "OBJECT_ALREADY_EXISTS", f"A property group named '{name}' already exists."
            )
        label = str(body.get("label") or name)
        store.add_group(name, label)
        return JSONResponse(
            {"name": name, "label": label, "displayOrder": -1, "archived": False}, 201
        )

    async def memberships(request: Request) -> Response:
        list_id = request.path_params["list_id"]
        members = store.lists.get(list_id)
        if members is None:
            raise HubSpotFail(404, "OBJECT_NOT_FOUND", f"List {list_id} does not exist.")
        try:
            limit = int(request.query_params.get("limit", "100"))
            after = int(request.query_params.get("after", "0") or "0")
        except ValueError:
            raise HubSpotFail(400, "VALIDATION_ERROR", "limit and after must be integers") from None
        if not 1 <= limit <= LIST_PAGE_MAX:
            raise HubSpotFail(
                400, "VALIDATION_ERROR", f"limit must be between 1 and {LIST_PAGE_MAX}"
            )
        page = members[after : after + limit]
        stamp = _now_iso()
        body: dict[str, Any] = {
            "total": len(members),
            "results": [{"recordId": str(i), "membershipTimestamp": stamp} for i in page],
        }
        if after + limit < len(members):
            body["paging"] = {"next": {"after": str(after + limit)}}
        return JSONResponse(body)

    # -- control surface ----------------------------------------------------------------------

    async def control_body(request: Request, model: type[BaseModel]) -> Any:
        try:
            return model.model_validate_json(await request.body() or b"{}")
        except ValidationError as exc:
            raise HubSpotFail(422, "VALIDATION_ERROR", str(exc)) from None

    def control(handler: Handler) -> Handler:
        async def wrapped(request: Request) -> Response:
            try:
                return await handler(request)
            except HubSpotFail as exc:
                return exc.response()

        return wrapped

    async def tokens_post(request: Request) -> Response:
        body: _TokenBody = await control_body(request, _TokenBody)
        return JSONResponse({"token": state.issue_token(body.scopes, body.expires_in_seconds)})

    async def tokens_expire(request: Request) -> Response:
        body: _ExpireBody = await control_body(request, _ExpireBody)
        now = time.monotonic() - 1
        targets = [body.token] if body.token else list(state.tokens)
        for value in targets:
            if value in state.tokens:
                state.tokens[value].expires_at = now
        return JSONResponse({"expired": len(targets)})

    async def seed_route(request: Request) -> Response:
        body: _SeedBody = await control_body(request, _SeedBody)
        ids = store.seed(
            body.count,
            seed=body.seed,
            same_modified=body.same_modified,
            modified_ms=body.modified_ms,
            spacing_ms=body.spacing_ms,
            bad_every=body.bad_every,
            opted_out_every=body.opted_out_every,
            extra=body.properties,
        )
        return JSONResponse(
            {
                "count": len(ids),
                "first_id": ids[0] if ids else None,
                "last_id": ids[-1] if ids else None,
            }
        )

    async def contacts_route(request: Request) -> Response:
        if request.method == "GET":
            with store.lock:
                out = [
                    {
                        **c.props,
                        "hs_object_id": str(c.id),
                        "lastmodifieddate": format_ms(c.updated_ms),
                    }
                    for c in store.contacts.values()
                ]
            return JSONResponse(out)
        body: _ContactsBody = await control_body(request, _ContactsBody)
        try:
            added = store.add(body.contacts)
        except ValueError as exc:
            raise HubSpotFail(409, "CONFLICT", str(exc)) from None
        return JSONResponse({"ids": [str(c.id) for c in added]})

    async def lists_post(request: Request) -> Response:
        body: _ListBody = await control_body(request, _ListBody)
        return JSONResponse({"listId": store.add_list(body.name, body.ids)})

    async def limits_route(request: Request) -> Response:
        if request.method == "PUT":
            body: Limits = await control_body(request, Limits)
            state.limiter.configure(body)
        return JSONResponse(
            {**state.limiter.limits.model_dump(), "daily_used": state.limiter.daily_used}
        )

    async def faults_route(request: Request) -> Response:
        assert state.injector is not None
        if request.method == "PUT":
            config: FaultConfig = await control_body(request, FaultConfig)
            state.injector.configure(config)
        return JSONResponse(
            {**state.injector.config.model_dump(), "injected": dict(state.injector.injected)}
        )

    async def row_faults(request: Request) -> Response:
        body: _RowFaultsBody = await control_body(request, _RowFaultsBody)
        state.row_faults = dict.fromkeys(body.ids, body.message)
        return JSONResponse({"ids": body.ids})

    async def stats_get(request: Request) -> Response:
        with state.lock:
            counts = dict(state.stats)
        requests = {k: v for k, v in counts.items() if not k.startswith("429 ")}
        limited = {k[4:]: v for k, v in counts.items() if k.startswith("429 ")}
        return JSONResponse(
            {
                "requests": requests,
                "total": sum(requests.values()),
                "rate_limited": limited,
                "daily_used": state.limiter.daily_used,
            }
        )

    async def stats_reset(request: Request) -> Response:
        with state.lock:
            state.stats.clear()
        return JSONResponse({"requests": {}, "total": 0})

    async def reset(request: Request) -> Response:
        store.reset()
        state.emails.reset()
        with state.lock:
            state.stats.clear()
            state.row_faults.clear()
            default = state.tokens.get(state.default_token)
            state.tokens.clear()
            if default is not None:
                default.expires_at = None
                default.scopes = frozenset(ALL_SCOPES)
                state.tokens[state.default_token] = default
        state.limiter.configure(initial_limits)
        state.limiter.daily_used = 0
        assert state.injector is not None
        state.injector.configure(FaultConfig())
        return JSONResponse({"reset": True})

    c = "/crm/v3/objects/contacts"
    routes = [
        api(c, list_contacts, ["GET"], READ),
        api(c, create_contact, ["POST"], WRITE),
        api(c + "/search", search, ["POST"], READ, search=True),
        api(c + "/batch/read", batch_read, ["POST"], READ),
        api(c + "/batch/update", batch_update, ["POST"], WRITE),
        api(c + "/batch/create", batch_create, ["POST"], WRITE),
        api(c + "/{contact_id}", one_contact, ["GET"], READ),
        api(c + "/{contact_id}", one_contact, ["PATCH"], WRITE),
        api("/crm/v3/properties/contacts", properties, ["GET"], SCHEMA_READ),
        api("/crm/v3/properties/contacts", properties, ["POST"], SCHEMA_WRITE),
        api("/crm/v3/properties/contacts/groups", groups, ["GET"], SCHEMA_READ),
        api("/crm/v3/properties/contacts/groups", groups, ["POST"], SCHEMA_WRITE),
        api("/crm/v3/properties/contacts/{name}", one_property, ["GET"], SCHEMA_READ),
        api("/crm/v3/lists/{list_id}/memberships", memberships, ["GET"], LISTS_READ),
        api("/crm/v3/objects/emails/batch/create", emails_create, ["POST"], WRITE),
        api("/crm/v3/objects/emails/search", emails_search, ["POST"], READ, search=True),
        api("/crm/v3/properties/emails", email_properties, ["GET"], SCHEMA_READ),
        api("/crm/v3/properties/emails", email_properties, ["POST"], SCHEMA_WRITE),
        api("/crm/v3/properties/emails/{name}", one_email_property, ["GET"], SCHEMA_READ),
        Route("/_sandbox/emails", emails_get, methods=["GET"]),
        Route("/_sandbox/tokens", control(tokens_post), methods=["POST"]),
        Route("/_sandbox/tokens/expire", control(tokens_expire), methods=["POST"]),
        Route("/_sandbox/seed", control(seed_route), methods=["POST"]),
        Route("/_sandbox/contacts", control(contacts_route), methods=["GET", "POST"]),
        Route("/_sandbox/lists", control(lists_post), methods=["POST"]),
        Route("/_sandbox/limits", control(limits_route), methods=["GET", "PUT"]),
        Route("/_sandbox/faults", control(faults_route), methods=["GET", "PUT"]),
        Route("/_sandbox/row-faults", control(row_faults), methods=["PUT"]),
        Route("/_sandbox/stats", stats_get, methods=["GET"]),
        Route("/_sandbox/stats/reset", stats_reset, methods=["POST"]),
        Route("/_sandbox/reset", reset, methods=["POST"]),
    ]
    inner = Starlette(routes=routes, exception_handlers={404: _not_found, 405: _not_found})
    app = HubSpotSandboxApp(inner, state)
    state.injector = app
    return app


async def _not_found(request: Request, exc: Exception) -> Response:
    return HubSpotFail(
        404, "OBJECT_NOT_FOUND", f"Resource not found: {request.url.path}"
    ).response()


class HubSpotSandboxApp(FaultInjector):
    """The emulator as an ASGI app (fault injection outermost); `state` is its live state."""

    def __init__(self, app: Any, state: HubSpotState) -> None:
        super().__init__(app)
        self.state = state
