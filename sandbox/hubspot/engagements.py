"""Email engagements for the HubSpot emulator: the CRM v3 ``emails`` object and its contacts.

Enough of HubSpot's Emails API for logging replies: ``POST /crm/v3/objects/emails/batch/create``
with inline associations to contacts (association type 198, email to contact), ``POST
/crm/v3/objects/emails/search`` (EQ / IN filters on any property, 200 a page), and the email
properties (``GET|POST /crm/v3/properties/emails``) so a custom property can hold a key.
A create naming a contact that does not exist fails as a whole (400), as HubSpot's does.
Emails are kept in memory, and in SQLite when the emulator has a database file.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EMAIL_TO_CONTACT", "EmailEngagement", "EmailStore", "EngagementError"]

EMAIL_TO_CONTACT = 198  # HUBSPOT_DEFINED association type: email -> contact
_DIRECTIONS = {"EMAIL", "INCOMING_EMAIL", "FORWARDED_EMAIL"}
_STANDARD = (
    "hs_timestamp",
    "hs_email_direction",
    "hs_email_subject",
    "hs_email_text",
    "hs_email_html",
    "hs_email_status",
    "hubspot_owner_id",
)


class EngagementError(Exception):
    """A request HubSpot would refuse with 400 VALIDATION_ERROR."""


@dataclass
class EmailEngagement:
    id: int
    properties: dict[str, str]
    contact_ids: list[int] = field(default_factory=list)

    def to_api(self, names: Iterable[str] | None = None) -> dict[str, Any]:
        props = self.properties if names is None else {n: self.properties.get(n) for n in names}
        return {
            "id": str(self.id),
            "properties": {"hs_object_id": str(self.id), **props},
            "archived": False,
        }


class EmailStore:
    """Email engagements and the email properties, thread-safe, optionally in SQLite."""

    def __init__(self, db_path: str | None = None) -> None:
        self.lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        self.emails: dict[int, EmailEngagement] = {}
        self.custom: dict[str, dict[str, Any]] = {}
        self.next_id = 50_001
        self.reset()
        if db_path:
            self._db = sqlite3.connect(db_path, check_same_thread=False)
            self._db.executescript(
                "CREATE TABLE IF NOT EXISTS emails (id INTEGER PRIMARY KEY, props TEXT NOT NULL,"
                " contacts TEXT NOT NULL);"
                "CREATE TABLE IF NOT EXISTS email_properties (name TEXT PRIMARY KEY,"
                " definition TEXT NOT NULL);"
            )
            for eid, props, contacts in self._db.execute("SELECT id, props, contacts FROM emails"):
                self.emails[eid] = EmailEngagement(eid, json.loads(props), json.loads(contacts))
                self.next_id = max(self.next_id, eid + 1)
            for name, definition in self._db.execute(
                "SELECT name, definition FROM email_properties"
            ):
                self.custom[name] = json.loads(definition)

    def reset(self) -> None:
        with self.lock:
            self.emails = {}
            self.custom = {}
            self.next_id = 50_001
            if self._db is not None:
                self._db.executescript("DELETE FROM emails; DELETE FROM email_properties;")
                self._db.commit()

    # -- properties -----------------------------------------------------------------------------

    def property_list(self) -> list[dict[str, Any]]:
        standard = [
            {"name": n, "label": n, "type": "string", "fieldType": "text", "groupName": "email"}
            for n in _STANDARD
        ]
        return standard + list(self.custom.values())

    def add_property(self, definition: Mapping[str, Any]) -> dict[str, Any]:
        name = str(definition.get("name") or "")
        if not name or name in _STANDARD or name in self.custom:
            raise EngagementError(f"Property {name!r} already exists or has no name")
        prop = {
            "name": name,
            "label": str(definition.get("label") or name),
            "type": str(definition.get("type") or "string"),
            "fieldType": str(definition.get("fieldType") or "text"),
            "groupName": str(definition.get("groupName") or "email"),
            "hasUniqueValue": bool(definition.get("hasUniqueValue", False)),
        }
        with self.lock:
            self.custom[name] = prop
            if self._db is not None:
                self._db.execute(
                    "INSERT OR REPLACE INTO email_properties VALUES (?, ?)",
                    (name, json.dumps(prop)),
                )
                self._db.commit()
        return prop

    # -- emails ---------------------------------------------------------------------------------

    def create(
        self, inputs: Sequence[Mapping[str, Any]], contact_exists: Callable[[int], bool]
    ) -> list[EmailEngagement]:
        """Create every input or none (a bad input fails the whole batch, as HubSpot does)."""
        planned: list[tuple[dict[str, str], list[int]]] = []
        known = set(_STANDARD) | set(self.custom)
        for index, item in enumerate(inputs):
            props = {
                str(k): "" if v is None else str(v)
                for k, v in (item.get("properties") or {}).items()
            }
            unknown = sorted(set(props) - known)
            if unknown:
                raise EngagementError(
                    f"Property values were not valid: inputs[{index}]: property "
                    f"{unknown[0]!r} does not exist"
                )
            if not props.get("hs_timestamp"):
                raise EngagementError(f"inputs[{index}]: hs_timestamp is required")
            direction = props.get("hs_email_direction")
            if direction is not None and direction not in _DIRECTIONS:
                raise EngagementError(f"inputs[{index}]: bad hs_email_direction {direction!r}")
            unique = [p for p, d in self.custom.items() if d.get("hasUniqueValue") and props.get(p)]
            for name in unique:
                if any(e.properties.get(name) == props[name] for e in self.emails.values()):
                    raise EngagementError(
                        f"inputs[{index}]: a email with {name}={props[name]!r} already exists"
                    )
            contacts: list[int] = []
            for assoc in item.get("associations") or []:
                to = str((assoc.get("to") or {}).get("id") or "")
                types = assoc.get("types") or []
                if not any(t.get("associationTypeId") == EMAIL_TO_CONTACT for t in types):
                    raise EngagementError(f"inputs[{index}]: unsupported association type {types}")
                if not to.isdigit() or not contact_exists(int(to)):
                    raise EngagementError(
                        f"inputs[{index}]: association target contact {to} does not exist"
                    )
                contacts.append(int(to))
            planned.append((props, contacts))
        created: list[EmailEngagement] = []
        with self.lock:
            for props, contacts in planned:
                email = EmailEngagement(self.next_id, props, contacts)
                self.next_id += 1
                self.emails[email.id] = email
                created.append(email)
            if self._db is not None:
                self._db.executemany(
                    "INSERT INTO emails VALUES (?, ?, ?)",
                    [(e.id, json.dumps(e.properties), json.dumps(e.contact_ids)) for e in created],
                )
                self._db.commit()
        return created

    def search(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """EQ / IN filters ANDed in a group, groups ORed; sorted by id, 200 a page."""
        groups = body.get("filterGroups") or []
        limit = int(body.get("limit") or 10)
        if not 1 <= limit <= 200:
            raise EngagementError("limit must be between 1 and 200")
        after = int(body.get("after") or 0)
        names = body.get("properties") or None

        def matches(email: EmailEngagement, filters: list[Mapping[str, Any]]) -> bool:
            for f in filters:
                value = email.properties.get(str(f.get("propertyName")))
                op = f.get("operator")
                if op == "EQ":
                    if value != str(f.get("value")):
                        return False
                elif op == "IN":
                    values = [str(v) for v in f.get("values") or []]
                    if len(values) > 100:
                        raise EngagementError("IN filters take at most 100 values")
                    if value not in values:
                        return False
                else:
                    raise EngagementError(f"operator {op!r} is not supported by the emulator")
            return True

        with self.lock:
            found = [
                e
                for eid, e in sorted(self.emails.items())
                if eid > after
                and (not groups or any(matches(e, g.get("filters") or []) for g in groups))
            ]
        page = found[:limit]
        out: dict[str, Any] = {"total": len(found), "results": [e.to_api(names) for e in page]}
        if len(found) > limit:
            out["paging"] = {"next": {"after": str(page[-1].id)}}
        return out
