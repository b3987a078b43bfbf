"""The HubSpot emulator's data: contacts, contact properties and groups, lists, and their storage.

Contacts live in memory (a dict by id plus two sorted indexes: by id for the objects API's
paging, by ``(lastmodifieddate, id)`` for searches on the modification date) and, when a path
is given, in a SQLite file written through on every change, so a restarted sandbox finds them.

Values are kept the way the API shows them: every property value is a string (``"true"``,
``"42"``, ``"2024-05-01T12:00:00.000Z"``); ``hs_object_id``, ``createdate`` and
``lastmodifieddate`` are derived from the record. Every write through the API sets
``lastmodifieddate`` from a clock that never goes backwards.
"""

from __future__ import annotations

import bisect
import json
import random
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "DEFAULT_GROUPS",
    "READ_ONLY",
    "Contact",
    "ContactStore",
    "PropertyDef",
    "format_ms",
    "parse_ms",
]

# Properties the API computes: shown on every record, never written by a client.
READ_ONLY = frozenset(
    {"hs_object_id", "createdate", "lastmodifieddate", "hs_email_optout", "hs_marketable_status"}
)


@dataclass(slots=True)
class PropertyDef:
    """A contact property as ``/crm/v3/properties/contacts`` describes it."""

    name: str
    label: str
    type: str  # string, number, date, datetime, enumeration, bool
    field_type: str  # text, textarea, number, date, select, radio, checkbox, booleancheckbox
    group_name: str
    description: str = ""
    options: list[dict[str, Any]] = field(default_factory=list)
    read_only: bool = False
    hubspot_defined: bool = True
    display_order: int = -1
    created_ms: int = 0

    def to_api(self) -> dict[str, Any]:
        stamp = format_ms(self.created_ms)
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "description": self.description,
            "groupName": self.group_name,
            "options": self.options,
            "displayOrder": self.display_order,
            "calculated": False,
            "externalOptions": False,
            "hasUniqueValue": False,
            "hidden": False,
            "hubspotDefined": self.hubspot_defined,
            "archived": False,
            "formField": not self.read_only,
            "createdAt": stamp,
            "updatedAt": stamp,
            "modificationMetadata": {
                "archivable": not self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyValue": self.read_only,
            },
        }

    def to_row(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "field_type": self.field_type,
            "group_name": self.group_name,
            "description": self.description,
            "options": self.options,
            "read_only": self.read_only,
            "hubspot_defined": self.hubspot_defined,
            "display_order": self.display_order,
            "created_ms": self.created_ms,
        }


def _bool_options() -> list[dict[str, Any]]:
    return [
        {"label": "Yes", "value": "true", "displayOrder": 0, "hidden": False},
        {"label": "No", "value": "false", "displayOrder": 1, "hidden": False},
    ]


def _options(values: Iterable[str]) -> list[dict[str, Any]]:
    return [
        {"label": v.replace("_", " ").title(), "value": v, "displayOrder": i, "hidden": False}
        for i, v in enumerate(values)
    ]


DEFAULT_GROUPS: dict[str, str] = {
    "contactinformation": "Contact information",
    "emailinformation": "Email information",
    "sales_properties": "Sales properties",
}


def _default_properties() -> list[PropertyDef]:
    text = [
        ("email", "Email"),
        ("firstname", "First Name"),
        ("lastname", "Last Name"),
        ("company", "Company Name"),
        ("jobtitle", "Job Title"),
        ("phone", "Phone Number"),
        ("city", "City"),
        ("country", "Country/Region"),
        ("industry", "Industry"),
        ("website", "Website URL"),
    ]
    out = [PropertyDef(n, label, "string", "text", "contactinformation") for n, label in text]
    out += [
        PropertyDef(
            "hs_object_id", "Record ID", "number", "number", "contactinformation", read_only=True
        ),
        PropertyDef(
            "createdate", "Create Date", "datetime", "date", "contactinformation", read_only=True
        ),
        PropertyDef(
            "lastmodifieddate",
            "Last Modified Date",
            "datetime",
            "date",
            "contactinformation",
            read_only=True,
        ),
        PropertyDef(
            "lifecyclestage",
            "Lifecycle Stage",
            "enumeration",
            "radio",
            "contactinformation",
            options=_options(
                [
                    "subscriber",
                    "lead",
                    "marketingqualifiedlead",
                    "salesqualifiedlead",
                    "opportunity",
                    "customer",
                ]
            ),
        ),
        # The contact's owner (a user id); the reply log gives each email the same owner.
        PropertyDef("hubspot_owner_id", "Contact owner", "string", "text", "sales_properties"),
        PropertyDef(
            "hs_lead_status",
            "Lead Status",
            "enumeration",
            "radio",
            "sales_properties",
            options=_options(["NEW", "OPEN", "IN_PROGRESS", "CONNECTED", "UNQUALIFIED"]),
        ),
        PropertyDef(
            "hs_email_optout",
            "Unsubscribed from all email",
            "bool",
            "booleancheckbox",
            "emailinformation",
            options=_bool_options(),
            read_only=True,
        ),
        PropertyDef(
            "hs_marketable_status",
            "Marketing contact status",
            "enumeration",
            "select",
            "contactinformation",
            options=[
                {"label": "Marketing contact", "value": "true", "displayOrder": 0, "hidden": False},
                {
                    "label": "Non-marketing contact",
                    "value": "false",
                    "displayOrder": 1,
                    "hidden": False,
                },
            ],
            read_only=True,
        ),
    ]
    return out


def format_ms(ms: int) -> str:
    """Epoch milliseconds as HubSpot writes datetimes: ``2024-05-01T12:00:00.123Z``."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_ms(value: object) -> int | None:
    """Epoch milliseconds from a filter or property value: digits (ms) or an ISO 8601 date-time."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)


@dataclass(slots=True)
class Contact:
    """One contact: id, writable property values (strings), create and modify times in ms."""

    id: int
    props: dict[str, str]
    created_ms: int
    updated_ms: int

    def value(self, name: str) -> str | None:
        """The property's value as the API shows it, derived ones included; None when unset."""
        if name == "hs_object_id":
            return str(self.id)
        if name == "lastmodifieddate":
            return format_ms(self.updated_ms)
        if name == "createdate":
            return format_ms(self.created_ms)
        return self.props.get(name)

    def to_api(self, names: Iterable[str]) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "properties": {n: self.value(n) for n in names},
            "createdAt": format_ms(self.created_ms),
            "updatedAt": format_ms(self.updated_ms),
            "archived": False,
        }


_FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Margaret", "Linus", "Radia", "Tim"]
_LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Thompson", "Hamilton", "Perlman"]
_COMPANIES = ["Initech", "Globex", "Umbrella", "Hooli", "Vandelay", "Acme", "Stark", "Wayne"]
_INDUSTRIES = ["Fintech", "Retail", "Logistics", "Healthcare", "SaaS"]
_STAGES = ["subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead"]


class ContactStore:
    """Contacts, properties, groups and lists, thread-safe, optionally kept in SQLite."""

    def __init__(self, db_path: str | None = None) -> None:
        self.lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        self._last_ms = 0
        self.reset()
        if db_path:
            self._db = sqlite3.connect(db_path, check_same_thread=False)
            self._db.executescript(
                "CREATE TABLE IF NOT EXISTS contacts (id INTEGER PRIMARY KEY, props TEXT NOT NULL,"
                " created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);"
                "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
            )
            self._load()

    # -- state --------------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to an empty account with HubSpot's default properties and groups."""
        with self.lock:
            self.contacts: dict[int, Contact] = {}
            self.properties: dict[str, PropertyDef] = {p.name: p for p in _default_properties()}
            self.groups: dict[str, str] = dict(DEFAULT_GROUPS)
            self.lists: dict[str, list[int]] = {}
            self.list_names: dict[str, str] = {}
            self.next_id = 1001
            self._ids: list[int] = []
            self._by_mod: list[tuple[int, int]] = []
            self._mod_dirty = False
            if self._db is not None:
                self._db.executescript("DELETE FROM contacts; DELETE FROM meta;")
                self._db.commit()

    def _load(self) -> None:
        assert self._db is not None
        rows = self._db.execute("SELECT id, props, created_ms, updated_ms FROM contacts").fetchall()
        for cid, props, created, updated in rows:
            self.contacts[cid] = Contact(cid, json.loads(props), created, updated)
        if self.contacts:
            self.next_id = max(self.contacts) + 1
            self._last_ms = max(c.updated_ms for c in self.contacts.values())
        self._ids = sorted(self.contacts)
        self._mod_dirty = True
        meta = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        for row in json.loads(meta.get("properties", "[]")):
            self.properties[row["name"]] = PropertyDef(**row)
        self.groups.update(json.loads(meta.get("groups", "{}")))
        self.lists.update(json.loads(meta.get("lists", "{}")))
        self.list_names.update(json.loads(meta.get("list_names", "{}")))

    def _save_meta(self) -> None:
        if self._db is None:
            return
        custom = [p.to_row() for p in self.properties.values() if not p.hubspot_defined]
        groups = {k: v for k, v in self.groups.items() if k not in DEFAULT_GROUPS}
        items = {
            "properties": json.dumps(custom),
            "groups": json.dumps(groups),
            "lists": json.dumps(self.lists),
            "list_names": json.dumps(self.list_names),
        }
        self._db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", list(items.items()))
        self._db.commit()

    def _save(self, contacts: Iterable[Contact]) -> None:
        if self._db is None:
            return
        self._db.executemany(
            "INSERT OR REPLACE INTO contacts VALUES (?, ?, ?, ?)",
            [(c.id, json.dumps(c.props), c.created_ms, c.updated_ms) for c in contacts],
        )
        self._db.commit()

    def now_ms(self) -> int:
        """The current time in ms, never before the last one handed out."""
        now = int(time.time() * 1000)
        self._last_ms = max(self._last_ms, now)
        return self._last_ms

    # -- contacts -----------------------------------------------------------------------------

    def add(self, records: Iterable[Mapping[str, Any]]) -> list[Contact]:
        """Insert contacts. Each record holds property values and may set ``id``, ``createdate``
        and ``lastmodifieddate`` (ms or ISO) explicitly, as seeding needs."""
        out: list[Contact] = []
        with self.lock:
            for record in records:
                props = {k: _as_text(v) for k, v in record.items() if v is not None}
                explicit_id = props.pop("id", None) or props.pop("hs_object_id", None)
                cid = int(explicit_id) if explicit_id else self.next_id
                if cid in self.contacts:
                    raise ValueError(f"contact {cid} exists")
                now = self.now_ms()
                modified = parse_ms(props.pop("lastmodifieddate", None)) or now
                created = parse_ms(props.pop("createdate", None)) or min(now, modified)
                contact = Contact(cid, props, created, modified)
                self.contacts[cid] = contact
                self.next_id = max(self.next_id, cid + 1)
                if not self._ids or cid > self._ids[-1]:
                    self._ids.append(cid)
                else:
                    bisect.insort(self._ids, cid)
                out.append(contact)
            self._mod_dirty = True
            self._save(out)
        return out

    def update(self, cid: int, props: Mapping[str, str]) -> Contact:
        """Set property values on one contact (modification time: now). KeyError if absent."""
        with self.lock:
            contact = self.contacts[cid]
            for name, value in props.items():
                if value == "" or value is None:
                    contact.props.pop(name, None)
                else:
                    contact.props[name] = value
            contact.updated_ms = self.now_ms()
            self._mod_dirty = True
            return contact

    def save(self, contacts: Iterable[Contact]) -> None:
        with self.lock:
            self._save(contacts)

    def archive(self, cid: int) -> bool:
        with self.lock:
            if self.contacts.pop(cid, None) is None:
                return False
            index = bisect.bisect_left(self._ids, cid)
            if index < len(self._ids) and self._ids[index] == cid:
                del self._ids[index]
            self._mod_dirty = True
            if self._db is not None:
                self._db.execute("DELETE FROM contacts WHERE id = ?", (cid,))
                self._db.commit()
            return True

    def ids_after(self, after: int, limit: int) -> tuple[list[int], int | None]:
        """Up to `limit` ids greater than or equal to `after`, and the next cursor (or None)."""
        with self.lock:
            start = bisect.bisect_left(self._ids, after)
            page = self._ids[start : start + limit]
            more = start + limit < len(self._ids)
            return page, (self._ids[start + limit] if more else None)

    def by_modified(self) -> list[tuple[int, int]]:
        """``(lastmodifieddate ms, id)`` for every contact, sorted (rebuilt after changes)."""
        with self.lock:
            if self._mod_dirty:
                self._by_mod = sorted((c.updated_ms, c.id) for c in self.contacts.values())
                self._mod_dirty = False
            return self._by_mod

    def find_by(self, name: str, value: str) -> Contact | None:
        """The first contact whose `name` equals `value` (emails compared ignoring case)."""
        folded = value.strip().lower()
        with self.lock:
            for contact in self.contacts.values():
                held = contact.value(name)
                if held is not None and held.strip().lower() == folded:
                    return contact
        return None

    def iter_ids(self) -> Iterator[int]:
        with self.lock:
            ids = list(self._ids)
        return iter(ids)

    # -- properties, groups, lists ------------------------------------------------------------

    def add_property(self, prop: PropertyDef) -> None:
        with self.lock:
            self.properties[prop.name] = prop
            self._save_meta()

    def add_group(self, name: str, label: str) -> None:
        with self.lock:
            self.groups[name] = label
            self._save_meta()

    def add_list(self, name: str, ids: list[int]) -> str:
        with self.lock:
            list_id = str(len(self.lists) + 1)
            self.lists[list_id] = list(ids)
            self.list_names[list_id] = name
            self._save_meta()
            return list_id

    # -- seeding ------------------------------------------------------------------------------

    def seed(
        self,
        count: int,
        *,
        seed: int = 0,
        same_modified: int = 0,
        modified_ms: int | None = None,
        spacing_ms: int = 1000,
        bad_every: int | None = None,
        opted_out_every: int | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> list[int]:
        """Synthetic contacts. The first `same_modified` share one lastmodifieddate (a bulk
        import); the rest are `spacing_ms` apart after it. Every `bad_every`-th has no email,
        every `opted_out_every`-th has opted out of email."""
        rng = random.Random(seed)
        base = modified_ms if modified_ms is not None else self.now_ms() - count * spacing_ms
        start = self.next_id
        records: list[dict[str, Any]] = []
        for i in range(count):
            n = start + i
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            record: dict[str, Any] = {
                "firstname": first,
                "lastname": last,
                "company": rng.choice(_COMPANIES),
                "lifecyclestage": rng.choice(_STAGES),
                "country": rng.choice(["US", "CA", "GB", "DE", "FR"]),
                "industry": rng.choice(_INDUSTRIES),
                "hs_marketable_status": "true",
                "hs_email_optout": "false",
                "lastmodifieddate": base
                if i < same_modified
                else base + (i - same_modified + 1) * spacing_ms,
                "createdate": base - 86_400_000,
            }
            if bad_every is None or (i + 1) % bad_every:
                record["email"] = f"{first.lower()}.{last.lower()}.{n}@example.com"
            if opted_out_every and (i + 1) % opted_out_every == 0:
                record["hs_email_optout"] = "true"
                record["hs_marketable_status"] = "false"
            if extra:
                record.update(extra)
            records.append(record)
        return [c.id for c in self.add(records)]


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
