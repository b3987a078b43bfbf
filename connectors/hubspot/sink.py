"""ColdSend statuses written back onto HubSpot contact properties: read, never backwards, only changes.

For each 100 contacts: one batch read of their status properties, the tabular sinks' row rule
(`connectors._tabular.plan_row`: `advance` so a status never moves backwards, flags only move
forward, only differing values), and one batch update of the contacts whose values change.
A 207 answer is taken row by row: the rows HubSpot names in its errors are failures with its
message, the rest are written.

The status properties are created, in a "ColdSend" property group, when missing and the token
has the ``crm.schemas.contacts.write`` scope; without it the error names the scope and the
properties to create by hand.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from connectors._tabular import FLAG_TRUE, UpdateIndex, plan_row
from connectors.hubspot.connection import HubSpotConnection, PropertyInfo
from connectors.hubspot.errors import HubSpotScopeError
from connectors.leads import LeadStatus, MappingError, StatusUpdate, WriteFailure, WriteResult

__all__ = ["STATUS_GROUP", "HubSpotStatusSink", "StatusProperties"]

STATUS_GROUP = ("coldsend", "ColdSend")
_BATCH = 100
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class StatusProperties(BaseModel):
    """Which contact properties receive the status and the flags derived from it.

    A flag is set when the status implies it (opened: OPENED or REPLIED; replied: REPLIED;
    unsubscribed: UNSUBSCRIBED; bounced: BOUNCED) and never cleared once set. None disables a
    flag. HubSpot's own ``hs_email_optout`` is read-only to the CRM API, so unsubscribes go to a
    ColdSend property.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: str = Field(default="coldsend_status", description="Property for the status.")
    opened: str | None = Field(default="coldsend_opened", description="Checkbox set when opened.")
    replied: str | None = Field(default="coldsend_replied", description="Checkbox set on reply.")
    unsubscribed: str | None = Field(
        default="coldsend_unsubscribed", description="Checkbox set when the lead unsubscribed."
    )
    bounced: str | None = Field(default="coldsend_bounced", description="Checkbox set on bounce.")

    @field_validator("status", "opened", "replied", "unsubscribed", "bounced")
    @classmethod
    def _property_name(cls, value: str | None) -> str | None:
        if value is not None and not _NAME_RE.match(value):
            raise ValueError(
                f"{value!r} is not a HubSpot property internal name (lower-case letters, digits, _)"
            )
        return value

    def flags(self) -> tuple[str | None, str | None, str | None, str | None]:
        """The opened, replied, unsubscribed and bounced properties (None when off)."""
        return (self.opened, self.replied, self.unsubscribed, self.bounced)

    def names(self) -> list[str]:
        return [self.status, *(f for f in self.flags() if f)]


def _definition(name: str, *, status: bool) -> dict[str, Any]:
    if status:
        return {
            "name": name,
            "label": "ColdSend status",
            "type": "enumeration",
            "fieldType": "select",
            "groupName": STATUS_GROUP[0],
            "description": "The contact's status in its ColdSend campaign (written by ColdSend).",
            "options": [
                {"label": s.value.title(), "value": s.value, "displayOrder": i, "hidden": False}
                for i, s in enumerate(LeadStatus)
            ],
        }
    return {
        "name": name,
        "label": "ColdSend " + name.removeprefix("coldsend_").replace("_", " "),
        "type": "bool",
        "fieldType": "booleancheckbox",
        "groupName": STATUS_GROUP[0],
        "description": "Set by ColdSend; never cleared once set.",
        "options": [
            {"label": "Yes", "value": "true", "displayOrder": 0, "hidden": False},
            {"label": "No", "value": "false", "displayOrder": 1, "hidden": False},
        ],
    }


class HubSpotStatusSink:
    """Writes ColdSend statuses onto HubSpot contacts, changing only what must change.

    Example:
        ```python
        sink = HubSpotStatusSink(conn)
        result = sink.write_statuses([StatusUpdate("ada@example.com", LeadStatus.OPENED, "1001")])
        ```
    """

    def __init__(
        self,
        conn: HubSpotConnection,
        *,
        properties: StatusProperties | None = None,
        match_by: Literal["id", "email"] = "id",
        create_properties: bool = True,
        parallel: int = 2,
    ) -> None:
        """Args:
        conn: The connection to write through.
        properties: Target properties; `StatusProperties()` defaults.
        match_by: "id" matches each update's source_id (the contact id the sync uploaded);
            "email" matches the contact's email.
        create_properties: Create missing status properties (needs crm.schemas.contacts.write).
        parallel: Chunks of 100 read and written at once (1: one after the other).
        """
        if match_by not in ("id", "email"):
            raise ValueError(f"match_by must be 'id' or 'email', got {match_by!r}")
        self.conn = conn
        self.properties = properties or StatusProperties()
        self.match_by = match_by
        self.create_properties = create_properties
        if parallel < 1:
            raise ValueError(f"parallel must be at least 1, got {parallel}")
        self.parallel = parallel
        self._checked = False

    def __repr__(self) -> str:
        return f"HubSpotStatusSink(match_by={self.match_by!r}, properties={self.properties!r})"

    # -- properties ---------------------------------------------------------------------------

    def ensure_properties(self) -> list[str]:
        """Check the status properties, creating missing ones; returns the names created.

        Raises:
            HubSpotScopeError: some are missing and the token may not create properties.
            MappingError: a property exists with a type that cannot hold the value, or is
                read-only, or is missing while `create_properties` is off.
        """
        if self._checked:
            return []
        props = self.conn.properties()
        names = self.properties.names()
        missing = [n for n in names if n not in props]
        created: list[str] = []
        if missing:
            if not self.create_properties:
                raise MappingError(
                    f"HubSpot contacts have no status propert{'y' if len(missing) == 1 else 'ies'} "
                    f"{', '.join(repr(m) for m in missing)}. Create them (status: a dropdown or "
                    "text; flags: single checkboxes) or let the store create them."
                )
            try:
                self._create(missing, props)
            except HubSpotScopeError as exc:
                raise HubSpotScopeError(
                    f"HubSpot contacts have no status propert{'y' if len(missing) == 1 else 'ies'} "
                    f"{', '.join(repr(m) for m in missing)}, and the token may not create them: it "
                    "lacks the scope crm.schemas.contacts.write. Add that scope to the private "
                    "app, or create the properties in HubSpot (status: a dropdown or text; flags: "
                    "single checkboxes) in a group named ColdSend.",
                    scopes=exc.scopes or ["crm.schemas.contacts.write"],
                    status=exc.status,
                    category=exc.category,
                    body=exc.body,
                ) from None
            created = missing
            props = self.conn.properties(refresh=True)
        self._check_types(props)
        self._checked = True
        return created

    def _create(self, missing: list[str], props: dict[str, PropertyInfo]) -> None:
        _, groups = self.conn.request(
            "api",
            self.conn.properties_groups.get_all_with_http_info,
            "contacts",
            what="reading the contact property groups",
        )
        if STATUS_GROUP[0] not in {g.get("name") for g in (groups or {}).get("results", [])}:
            self.conn.request(
                "api",
                self.conn.properties_groups.create_with_http_info,
                "contacts",
                {"name": STATUS_GROUP[0], "label": STATUS_GROUP[1], "displayOrder": -1},
                what="creating the ColdSend property group",
                replay_safe=False,
            )
        for name in missing:
            self.conn.request(
                "api",
                self.conn.properties_core.create_with_http_info,
                "contacts",
                _definition(name, status=name == self.properties.status),
                what=f"creating the contact property {name!r}",
                replay_safe=False,
            )

    def _check_types(self, props: dict[str, PropertyInfo]) -> None:
        problems: list[str] = []
        status = props[self.properties.status]
        if status.read_only:
            problems.append(f"{status.name!r} (status) is read-only")
        elif status.type not in ("string", "enumeration"):
            problems.append(
                f"{status.name!r} (status) is a {status.type} property, not text or a dropdown"
            )
        elif status.type == "enumeration":
            lacking = [s.value for s in LeadStatus if s.value not in status.options]
            if lacking:
                problems.append(f"{status.name!r} (status) lacks the options {', '.join(lacking)}")
        for name in self.properties.flags():
            if name is None:
                continue
            flag = props[name]
            if flag.read_only:
                problems.append(f"{name!r} (flag) is read-only")
            elif flag.type not in ("bool", "enumeration", "string") or (
                flag.type == "enumeration" and not {"true", "false"} <= set(flag.options)
            ):
                problems.append(f"{name!r} (flag) is a {flag.type} property, not a checkbox")
        if problems:
            raise MappingError("HubSpot status properties: " + "; ".join(problems))

    # -- writing ------------------------------------------------------------------------------

    def write_statuses(self, updates: Iterable[StatusUpdate]) -> WriteResult:
        """Write `updates` back; every update lands in the returned `WriteResult`.

        Raises:
            MappingError / HubSpotScopeError: see `ensure_properties`.
            HubSpotError: HubSpot refused a whole request.
        """
        start = self.conn.request_count
        self.ensure_properties()
        by_id = self.match_by == "id"
        index = UpdateIndex(updates, match_value="source_id" if by_id else "email")
        result = index.new_result()
        keys = list(index.by_key)
        if by_id:
            # A record id from another store (a Salesforce Id, a sheet key) is not a contact.
            foreign = [k for k in keys if not k.isdigit()]
            for key in foreign:
                result.not_found.extend([key] * len(index.by_key[key]))
            keys = [k for k in keys if k.isdigit()]
        names = self.properties.names()
        flags = self.properties.flags()
        flag_cols = tuple(
            (1 + sum(1 for f in flags[:i] if f)) if flag else None for i, flag in enumerate(flags)
        )
        columns = [self.properties.status, *(f for f in flags if f)]
        chunks = [keys[b : b + _BATCH] for b in range(0, len(keys), _BATCH)]

        def run(chunk: list[str]) -> WriteResult:
            return self._write_chunk(chunk, index, columns, flag_cols, names)

        if self.parallel > 1 and len(chunks) > 1:
            # Each chunk is one batch read and at most one batch update, independent of the
            # others: a few in flight keep the account's bucket busy whatever the latency
            # (the connection's rolling window counts requests in flight).
            pool = ThreadPoolExecutor(self.parallel, thread_name_prefix="hubspot-write")
            try:
                futures = [pool.submit(run, chunk) for chunk in chunks]
                for future in futures:
                    _merge(result, future.result())
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        else:
            for chunk in chunks:
                _merge(result, run(chunk))
        result.requests = self.conn.request_count - start
        return result

    def _write_chunk(
        self,
        chunk: list[str],
        index: UpdateIndex,
        columns: list[str],
        flag_cols: tuple[int | None, ...],
        names: list[str],
    ) -> WriteResult:
        """Read, plan and write up to 100 keys; what happened to them, counted."""
        result = WriteResult()
        found = self._read(chunk, names)
        changes: dict[str, dict[str, str]] = {}
        written_by_id: dict[str, tuple[str, int]] = {}
        for key in chunk:
            statuses = index.by_key[key]
            record = found.get(key)
            if record is None:
                result.not_found.extend([key] * len(statuses))
                continue
            contact_id, values = record
            row = [_cell(values.get(c), flag=i > 0) for i, c in enumerate(columns)]
            before = result.written
            planned = plan_row(
                row,
                statuses,
                status_col=0,
                flag_cols=flag_cols,  # type: ignore[arg-type]
                result=result,
                count=True,
            )
            if planned:
                changes[contact_id] = {
                    columns[col]: (text.lower() if col else text) for col, text in planned
                }
                written_by_id[contact_id] = (key, result.written - before)
        if changes:
            for contact_id, reason in self._update(changes).items():
                key, written = written_by_id[contact_id]
                result.written -= written
                result.failures.extend(
                    WriteFailure(key=key, reason=reason) for _ in range(max(1, written))
                )
                if written == 0:
                    # Only flags were to change: the status was counted unchanged or held.
                    _uncount_one(result)
        return result

    def _read(self, keys: list[str], names: list[str]) -> dict[str, tuple[str, dict[str, Any]]]:
        """Key -> (contact id, current properties) for the keys HubSpot has."""
        body: dict[str, Any] = {
            "inputs": [{"id": k} for k in keys],
            "properties": names if self.match_by == "id" else [*names, "email"],
            "propertiesWithHistory": [],
        }
        if self.match_by == "email":
            body["idProperty"] = "email"
        _, answer = self.conn.request(
            "api",
            self.conn.contacts_batch.read_with_http_info,
            body,
            what="reading the contacts' current statuses",
            archived=False,
        )
        out: dict[str, tuple[str, dict[str, Any]]] = {}
        for record in (answer or {}).get("results") or []:
            props = record.get("properties") or {}
            if self.match_by == "id":
                key = str(record["id"])
            else:
                key = str(props.get("email") or "").strip().lower()
            out[key] = (str(record["id"]), props)
        return out

    def _update(self, changes: dict[str, dict[str, str]]) -> dict[str, str]:
        """Write `changes` (contact id -> values) in one batch; contact id -> error for failures."""
        body = {"inputs": [{"id": cid, "properties": values} for cid, values in changes.items()]}
        status, answer = self.conn.request(
            "api",
            self.conn.contacts_batch.update_with_http_info,
            body,
            what=f"updating {len(changes)} contacts' statuses",
        )
        failed: dict[str, str] = {}
        answer = answer or {}
        for error in answer.get("errors") or []:
            message = f"{error.get('category', 'ERROR')}: {error.get('message', '')}".strip()
            for cid in (error.get("context") or {}).get("ids") or []:
                failed[str(cid)] = message
        done = {str(r.get("id")) for r in answer.get("results") or []}
        for cid in changes:
            if cid not in done and cid not in failed:
                failed[cid] = f"HubSpot answered {status} without a result for this contact"
        return failed


def _cell(value: Any, *, flag: bool) -> str:
    if value is None:
        return ""
    text = str(value)
    return FLAG_TRUE if flag and text.strip().lower() == "true" else text


def _merge(into: WriteResult, part: WriteResult) -> None:
    into.written += part.written
    into.unchanged += part.unchanged
    into.held_back += part.held_back
    into.not_found.extend(part.not_found)
    into.failures.extend(part.failures)


def _uncount_one(result: WriteResult) -> None:
    if result.unchanged:
        result.unchanged -= 1
    elif result.held_back:
        result.held_back -= 1
