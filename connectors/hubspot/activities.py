"""ColdSend replies (and optionally sends) logged as HubSpot email engagements on the contact, once.

Each reply becomes an email (CRM v3 ``emails`` object) associated with the contact (association
type 198), ``hs_email_direction = INCOMING_EMAIL``, its time in ``hs_timestamp``, subject and
text, owned by the contact's owner; a send (when asked) is an outgoing ``EMAIL``.

Exactly once: each email carries the activity's idempotency key in an email property
(``coldsend_reply_id`` by default, created when missing). Before writing, the batch's keys are
searched (``IN`` filters of 100); only the missing ones are created, 100 per batch request.
HubSpot's search index lags a write by a few seconds, so a create whose answer is lost is not
looked up again at once: it is reported as failed, and the next run (which searches again,
well after) creates only what is still missing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

from connectors.activities import Activity, ActivityResult, LoggedActivity
from connectors.hubspot.connection import HubSpotConnection
from connectors.hubspot.errors import HubSpotConnectionError, HubSpotError, HubSpotScopeError
from connectors.leads import MappingError, WriteFailure, normalize_email

__all__ = ["DEFAULT_KEY_PROPERTY", "EMAIL_TO_CONTACT", "HubSpotActivitySink"]

DEFAULT_KEY_PROPERTY = "coldsend_reply_id"
EMAIL_TO_CONTACT = 198  # HUBSPOT_DEFINED association type: email -> contact
_BATCH = 100
_IN_VALUES = 100
_SEARCH_PAGE = 200
_TEXT_MAX = 65_000
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class HubSpotActivitySink:
    """Logs activities as email engagements on the contacts the leads came from (implements
    `ActivitySink`).

    Requests per batch of N activities: one search per 100 keys, one contact read per 100
    contacts, and ceil(N / 100) creates for the new ones (plus, once per connection, one
    read of the email properties, and one create when the key property is missing).

    Args:
        conn: The connection to write through.
        match_by: "id" finds the contact by the id the sync stored; "email" by its email.
        key_property: Email property holding the idempotency key (created when missing; needs
            the crm.schemas.contacts.write scope).
    """

    def __init__(
        self,
        conn: HubSpotConnection,
        *,
        match_by: Literal["id", "email"] = "id",
        key_property: str = DEFAULT_KEY_PROPERTY,
    ) -> None:
        if match_by not in ("id", "email"):
            raise ValueError(f"match_by must be 'id' or 'email', got {match_by!r}")
        if not _NAME_RE.match(key_property):
            raise ValueError(f"{key_property!r} is not a HubSpot property internal name")
        self.conn = conn
        self.match_by = match_by
        self.key_property = key_property
        self._checked = False

    def __repr__(self) -> str:
        return (
            f"HubSpotActivitySink(match_by={self.match_by!r}, key_property={self.key_property!r})"
        )

    def _ensure_key_property(self) -> None:
        if self._checked:
            return
        _, body = self.conn.request(
            "api",
            self.conn.properties_core.get_all_with_http_info,
            "emails",
            what="reading the email properties",
        )
        names = {p.get("name") for p in (body or {}).get("results", [])}
        if self.key_property not in names:
            definition = {
                "name": self.key_property,
                "label": "ColdSend reply id",
                "type": "string",
                "fieldType": "text",
                "groupName": "emailinformation",
                "description": "Set by ColdSend: the reply this email logs (never logged twice).",
            }
            try:
                self.conn.request(
                    "api",
                    self.conn.properties_core.create_with_http_info,
                    "emails",
                    definition,
                    what=f"creating the email property {self.key_property!r}",
                    replay_safe=False,
                )
            except HubSpotScopeError as exc:
                raise MappingError(
                    f"HubSpot emails have no property {self.key_property!r} to keep ColdSend's "
                    "reply ids in, and the token may not create it (scope "
                    "crm.schemas.contacts.write). Add the scope, or create a single-line text "
                    "property with that internal name on the Email object."
                ) from exc
        self._checked = True

    def write_activities(self, activities: Sequence[Activity]) -> ActivityResult:
        """Create an email engagement for each activity HubSpot does not hold yet.

        Raises:
            MappingError: the key property is missing and cannot be created.
            HubSpotError: HubSpot refused a search, a read or a whole request.
        """
        start = self.conn.request_count
        result = ActivityResult(received=len(activities))
        try:
            self._write(activities, result)
        finally:
            result.requests = self.conn.request_count - start
        return result

    def _write(self, activities: Sequence[Activity], result: ActivityResult) -> None:
        unique: dict[str, Activity] = {}
        for activity in activities:
            if activity.kind == "follow_up":
                # A to-do, not an email: HubSpot stores take replies and sends only.
                result.skipped.append(LoggedActivity(activity.key, activity.source_id or ""))
            elif activity.key in unique:
                result.already_logged.append(LoggedActivity(activity.key, activity.email))
            else:
                unique[activity.key] = activity
        if not unique:
            return
        self._ensure_key_property()
        existing = self._logged(list(unique))
        todo: list[Activity] = []
        for key, activity in unique.items():
            found = existing.get(key)
            if found is not None:
                result.already_logged.append(LoggedActivity(key, found[0], found[1]))
            else:
                todo.append(activity)
        contacts = self._contacts(todo)
        ready: list[tuple[Activity, str, str | None]] = []
        for activity in todo:
            match = self._match_key(activity)
            contact = contacts.get(match) if match else None
            foreign = (activity.source_id or "").strip()
            if contact is not None:
                ready.append((activity, contact[0], contact[1]))
            elif self.match_by == "id" and foreign and not foreign.isdigit():
                # Another store's record id (a Salesforce Id, a sheet key): that store's own
                # write-back logs this reply.
                result.skipped.append(LoggedActivity(activity.key, foreign))
            else:
                result.no_record.append(activity)
        for begin in range(0, len(ready), _BATCH):
            self._create(ready[begin : begin + _BATCH], result)

    def _match_key(self, activity: Activity) -> str | None:
        if self.match_by == "id":
            key = (activity.source_id or "").strip()
            return key if key.isdigit() else None  # another store's id is not a contact
        return normalize_email(activity.email)[0]

    def _logged(self, keys: list[str]) -> dict[str, tuple[str, str]]:
        """Key -> (contact id or "", email id) for the keys HubSpot already holds."""
        out: dict[str, tuple[str, str]] = {}
        for begin in range(0, len(keys), _IN_VALUES):
            chunk = keys[begin : begin + _IN_VALUES]
            after: str | None = None
            while True:
                body: dict[str, Any] = {
                    "filterGroups": [
                        {
                            "filters": [
                                {
                                    "propertyName": self.key_property,
                                    "operator": "IN",
                                    "values": chunk,
                                }
                            ]
                        }
                    ],
                    "properties": [self.key_property],
                    "limit": _SEARCH_PAGE,
                }
                if after:
                    body["after"] = after
                _, answer = self.conn.request(
                    "search",
                    self.conn.emails_search.do_search_with_http_info,
                    body,
                    what="looking up replies already logged",
                )
                for row in (answer or {}).get("results") or []:
                    key = (row.get("properties") or {}).get(self.key_property)
                    if isinstance(key, str):
                        out[key] = ("", str(row.get("id") or ""))
                after = (((answer or {}).get("paging") or {}).get("next") or {}).get("after")
                if not after:
                    break
        return out

    def _contacts(self, todo: list[Activity]) -> dict[str, tuple[str, str | None]]:
        """Match key -> (contact id, owner id) for the contacts that exist."""
        keys = sorted({k for a in todo if (k := self._match_key(a))})
        out: dict[str, tuple[str, str | None]] = {}
        for begin in range(0, len(keys), _BATCH):
            chunk = keys[begin : begin + _BATCH]
            body: dict[str, Any] = {
                "inputs": [{"id": k} for k in chunk],
                "properties": ["email", "hubspot_owner_id"],
                "propertiesWithHistory": [],
            }
            if self.match_by == "email":
                body["idProperty"] = "email"
            _, answer = self.conn.request(
                "api",
                self.conn.contacts_batch.read_with_http_info,
                body,
                what="reading the contacts replies belong to",
                archived=False,
            )
            for record in (answer or {}).get("results") or []:
                props = record.get("properties") or {}
                cid = str(record["id"])
                key = cid if self.match_by == "id" else normalize_email(props.get("email"))[0]
                if key:
                    owner = props.get("hubspot_owner_id")
                    out[key] = (cid, str(owner) if owner else None)
        return out

    def _properties(self, activity: Activity, owner: str | None) -> dict[str, str]:
        incoming = activity.kind == "reply"
        text = activity.text
        if activity.is_unsubscribe:
            text += "\n\n-- ColdSend read this reply as a request to unsubscribe."
        props = {
            "hs_timestamp": activity.at.isoformat(),
            "hs_email_direction": "INCOMING_EMAIL" if incoming else "EMAIL",
            "hs_email_subject": activity.subject or "(no subject)",
            "hs_email_text": text[:_TEXT_MAX],
            self.key_property: activity.key,
        }
        if not incoming:
            props["hs_email_status"] = "SENT"
        if owner:
            props["hubspot_owner_id"] = owner
        return props

    def _create(
        self, batch: list[tuple[Activity, str, str | None]], result: ActivityResult
    ) -> None:
        body = {
            "inputs": [
                {
                    "properties": self._properties(activity, owner),
                    "associations": [
                        {
                            "to": {"id": contact},
                            "types": [
                                {
                                    "associationCategory": "HUBSPOT_DEFINED",
                                    "associationTypeId": EMAIL_TO_CONTACT,
                                }
                            ],
                        }
                    ],
                }
                for activity, contact, owner in batch
            ]
        }
        try:
            _, answer = self.conn.request(
                "api",
                self.conn.emails_batch.create_with_http_info,
                body,
                what=f"logging {len(batch)} replies as emails",
                replay_safe=False,
            )
        except HubSpotConnectionError as exc:
            # Maybe written: the next run's search (after HubSpot's index caught up) decides.
            for activity, _contact, _owner in batch:
                result.failures.append(
                    WriteFailure(activity.key, f"answer lost ({exc}); the next run reconciles")
                )
            return
        except HubSpotError as exc:
            if exc.status != 400:
                raise
            # One contact was deleted since it was read: HubSpot refuses the whole batch.
            # Read them again; log the rest, report the gone ones.
            still = self._contacts([a for a, _, _ in batch])
            kept = [(a, c, o) for a, c, o in batch if self._match_key(a) in still]
            result.no_record.extend(a for a, _, _ in batch if self._match_key(a) not in still)
            if len(kept) == len(batch):
                for activity, _contact, _owner in batch:
                    result.failures.append(WriteFailure(activity.key, f"email not created: {exc}"))
                return
            if kept:
                self._create(kept, result)
            return
        created = (answer or {}).get("results") or []
        by_key = {
            str((row.get("properties") or {}).get(self.key_property)): str(row.get("id") or "")
            for row in created
        }
        for activity, contact, _owner in batch:
            email_id = by_key.get(activity.key)
            if email_id is not None:
                result.created.append(LoggedActivity(activity.key, contact, email_id))
            else:
                result.failures.append(
                    WriteFailure(activity.key, "HubSpot answered without this email")
                )
