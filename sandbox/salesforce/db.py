"""SQLite storage for the Salesforce emulator: Lead, Contact, Account and Task tables, ids, writes.

Values are stored the way the API shows them: datetimes as ``2024-01-01T00:00:00.000+0000``
strings (UTC, so text order is time order), booleans as 0/1, numbers as SQLite numbers. Every
write bumps SystemModstamp and LastModifiedDate from a clock that never goes backwards. Writes
are checked as Salesforce checks them: required fields (REQUIRED_FIELD_MISSING), types, email
format, lengths and restricted picklists; compound ``Name`` fields are computed, read-only.
"""

from __future__ import annotations

import itertools
import math
import re
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.salesforce.soql import Query, SoqlError, compile_query, format_datetime

__all__ = [
    "OBJECTS",
    "SANDBOX_USER_ID",
    "TASK_STATUSES",
    "Database",
    "FieldDef",
    "RecordError",
    "make_id",
]

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def make_id(prefix: str, number: int) -> str:
    """An 18-character Salesforce id: 3-char key prefix, 12 base-62 digits, 3-char checksum."""
    digits = []
    for _ in range(12):
        number, rem = divmod(number, 62)
        digits.append(_B62[rem])
    base = prefix + "".join(reversed(digits))
    suffix = ""
    for chunk in range(3):
        bits = 0
        for pos, ch in enumerate(base[chunk * 5 : chunk * 5 + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << pos
        suffix += _CHECKSUM[bits]
    return base + suffix


@dataclass(frozen=True, slots=True)
class FieldDef:
    """A field of an emulated object, with the describe() attributes clients look at.

    `required`: nillable false with no default, so a create without it (or an update setting it
    to null) fails with REQUIRED_FIELD_MISSING. `default`: the value a create without the field
    gets (defaultedOnCreate). `computed`: the SQL expression of a read-only compound field.
    """

    name: str
    type: str
    label: str
    updateable: bool = True
    length: int = 0
    restricted: tuple[str, ...] = ()  # allowed values of a restricted picklist
    required: bool = False
    default: str | None = None
    external_id: bool = False
    computed: str | None = None

    @property
    def nillable(self) -> bool:
        return (
            self.updateable and not self.required and self.default is None
        ) and self.type != "boolean"

    @property
    def id_lookup(self) -> bool:
        """Usable to find a record in an upsert (Id, Email, Name and external ids)."""
        return self.external_id or self.name in ("Id", "Email") or self.computed is not None

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "length": self.length,
            "nillable": self.nillable,
            "updateable": self.updateable,
            "createable": self.updateable,
            "defaultedOnCreate": self.default is not None
            or self.type == "boolean"
            or (not self.updateable and self.computed is None),
            "defaultValue": False if self.type == "boolean" else self.default,
            "calculated": False,
            "nameField": self.name == "Name",
            "externalId": self.external_id,
            "idLookup": self.id_lookup,
            "unique": self.external_id or self.name == "Id",
            "filterable": True,
            "sortable": True,
            "custom": self.name.endswith("__c"),
            "soapType": _SOAP_TYPES.get(self.type, "xsd:string"),
            "restrictedPicklist": bool(self.restricted),
            "picklistValues": [
                {"value": v, "label": v, "active": True, "defaultValue": v == self.default}
                for v in self.restricted
            ],
        }


_SOAP_TYPES = {
    "id": "tns:ID",
    "boolean": "xsd:boolean",
    "datetime": "xsd:dateTime",
    "date": "xsd:date",
    "double": "xsd:double",
    "currency": "xsd:double",
    "int": "xsd:int",
}

# A person's compound Name: "First Last", or just the last name (never an empty string).
_PERSON_NAME = (
    "NULLIF(TRIM(COALESCE(NULLIF(\"FirstName\", '') || ' ', '') || COALESCE(\"LastName\", '')), '')"
)
_EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_SYSTEM_FIELDS = (
    FieldDef("CreatedDate", "datetime", "Created Date", updateable=False),
    FieldDef("LastModifiedDate", "datetime", "Last Modified Date", updateable=False),
    FieldDef("SystemModstamp", "datetime", "System Modstamp", updateable=False),
)


_LEAD_STATUSES = (
    "Open - Not Contacted",
    "Working - Contacted",
    "Closed - Converted",
    "Closed - Not Converted",
)


def _fields(lead: bool) -> list[FieldDef]:
    out = [
        FieldDef("Id", "id", "Record ID", updateable=False, length=18),
        FieldDef("FirstName", "string", "First Name", length=40),
        FieldDef("LastName", "string", "Last Name", length=80, required=True),
        FieldDef(
            "Name", "string", "Full Name", updateable=False, length=121, computed=_PERSON_NAME
        ),
    ]
    if lead:
        out.append(FieldDef("Company", "string", "Company", length=255, required=True))
    out += [
        FieldDef("Email", "email", "Email", length=80),
        FieldDef("LeadSource", "picklist", "Lead Source", length=255),
        FieldDef("Country", "string", "Country", length=80),
        FieldDef(
            "Status",
            "picklist",
            "Status",
            length=255,
            restricted=_LEAD_STATUSES,
            default=_LEAD_STATUSES[0] if lead else None,
        ),
        FieldDef("HasOptedOutOfEmail", "boolean", "Email Opt Out"),
        FieldDef("ColdSend_Status__c", "picklist", "ColdSend Status", length=255),
        FieldDef("ColdSend_Opened__c", "boolean", "ColdSend Opened"),
        FieldDef("ColdSend_Replied__c", "boolean", "ColdSend Replied"),
        FieldDef("ColdSend_Bounced__c", "boolean", "ColdSend Bounced"),
        FieldDef("OwnerId", "reference", "Owner ID", length=18),
        FieldDef("External_Id__c", "string", "External Id", length=255, external_id=True),
        *_SYSTEM_FIELDS,
    ]
    return out


SANDBOX_USER_ID = make_id("005", 1)
"""The emulator's one user: the default owner of records and tasks created without one."""

TASK_STATUSES = ("Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred")


def _task_fields() -> list[FieldDef]:
    # An activity on a Lead or Contact (WhoId). ColdSend_Reply_Id__c is the custom, filterable
    # text field ColdSend's reply logging stores its idempotency key in.
    return [
        FieldDef("Id", "id", "Activity ID", updateable=False, length=18),
        FieldDef("Subject", "string", "Subject", length=255),
        FieldDef("Description", "textarea", "Description", length=32000),
        FieldDef("Status", "picklist", "Status", length=255, restricted=TASK_STATUSES),
        FieldDef(
            "Priority", "picklist", "Priority", length=255, restricted=("High", "Normal", "Low")
        ),
        FieldDef("ActivityDate", "date", "Due Date Only"),
        FieldDef(
            "TaskSubtype",
            "picklist",
            "Task Subtype",
            length=255,
            restricted=("Task", "Email", "ListEmail", "Cadence", "Call", "LinkedIn"),
        ),
        FieldDef("WhoId", "reference", "Name ID", length=18),
        FieldDef("OwnerId", "reference", "Assigned To ID", length=18),
        FieldDef("ColdSend_Reply_Id__c", "string", "ColdSend Reply Id", length=255),
        *_SYSTEM_FIELDS,
    ]


def _account_fields() -> list[FieldDef]:
    return [
        FieldDef("Id", "id", "Account ID", updateable=False, length=18),
        FieldDef("Name", "string", "Account Name", length=255, required=True),
        FieldDef("Industry", "picklist", "Industry", length=255),
        FieldDef("Website", "url", "Website", length=255),
        FieldDef("Phone", "phone", "Account Phone", length=40),
        FieldDef("NumberOfEmployees", "int", "Employees"),
        FieldDef("AnnualRevenue", "currency", "Annual Revenue"),
        FieldDef("External_Id__c", "string", "External Id", length=255, external_id=True),
        *_SYSTEM_FIELDS,
    ]


class _Object:
    def __init__(self, name: str, prefix: str, fields: list[FieldDef]) -> None:
        self.name = name
        self.prefix = prefix
        self.fields = fields
        self.by_lower = {f.name.lower(): f for f in fields}
        self.names = [f.name for f in fields]
        self.stored = [f.name for f in fields if f.computed is None]
        self.booleans = {f.name for f in fields if f.type == "boolean"}
        self.required = [f for f in fields if f.required]
        self.defaults = {f.name: f.default for f in fields if f.default is not None}

    def describe(self, version: str) -> dict[str, Any]:
        """The sObject's describe (or, without fields, its `metadata()` objectDescribe)."""
        base = f"/services/data/v{version}/sobjects/{self.name}"
        return {
            "name": self.name,
            "label": self.name,
            "labelPlural": self.name + "s",
            "keyPrefix": self.prefix,
            "custom": False,
            "createable": True,
            "updateable": True,
            "deletable": True,
            "queryable": True,
            "retrieveable": True,
            "searchable": True,
            "undeletable": True,
            "urls": {
                "sobject": base,
                "describe": f"{base}/describe",
                "rowTemplate": f"{base}/{{ID}}",
            },
        }


OBJECTS: dict[str, _Object] = {
    "Lead": _Object("Lead", "00Q", _fields(lead=True)),
    "Contact": _Object("Contact", "003", _fields(lead=False)),
    "Account": _Object("Account", "001", _account_fields()),
    "Task": _Object("Task", "00T", _task_fields()),
}

_SQL_TYPES = {"boolean": "INTEGER", "int": "INTEGER", "double": "REAL", "currency": "REAL"}


class RecordError(Exception):
    """A record-level write error, reported per record like Salesforce does."""

    def __init__(self, code: str, message: str, fields: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = list(fields)

    def as_json(self) -> dict[str, Any]:
        """The error as composite and create results list it (``statusCode``)."""
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}

    def as_rest(self) -> dict[str, Any]:
        """The error as a single-record REST call answers it (``errorCode``)."""
        return {"errorCode": self.code, "message": self.message, "fields": self.fields}


class Database:
    """The emulator's records; thread-safe through one lock (the app runs on one event loop)."""

    def __init__(self, path: str | None = None) -> None:
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(path or ":memory:", check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=MEMORY")
        self._conn.execute("PRAGMA synchronous=OFF")
        self._last_stamp = ""
        self._create()
        with self._lock:
            # Ids are numbered across objects; deleted records' numbers are never reused.
            existing = sum(
                int(self._conn.execute(f'SELECT COUNT(*) FROM "{name}"').fetchone()[0])
                for name in [*OBJECTS, "_Deleted"]
            )
        self._counter = itertools.count(existing + 1)

    def _create(self) -> None:
        with self._lock:
            # The recycle bin's log, for sobjects/{object}/deleted/ (what was deleted, when).
            self._conn.execute(
                'CREATE TABLE IF NOT EXISTS "_Deleted" ("Object" TEXT, "Id" TEXT, "DeletedDate" TEXT)'
            )
            for obj in OBJECTS.values():
                cols = ", ".join(self._column(f, new_table=True) for f in obj.fields)
                self._conn.execute(f'CREATE TABLE IF NOT EXISTS "{obj.name}" ({cols})')
                # A state directory from an older emulator lacks newer fields: add them.
                have = {r[1] for r in self._conn.execute(f'PRAGMA table_xinfo("{obj.name}")')}
                for spec in obj.fields:
                    if spec.name not in have:
                        self._conn.execute(
                            f'ALTER TABLE "{obj.name}" ADD COLUMN {self._column(spec)}'
                        )
                self._conn.execute(
                    f'CREATE INDEX IF NOT EXISTS "{obj.name}_modstamp" '
                    f'ON "{obj.name}" ("SystemModstamp", "Id")'
                )
                for col in ("Email", "ColdSend_Reply_Id__c"):
                    if col.lower() in obj.by_lower:
                        self._conn.execute(
                            f'CREATE INDEX IF NOT EXISTS "{obj.name}_{col}" '
                            f'ON "{obj.name}" ("{col}" COLLATE NOCASE)'
                        )

    @staticmethod
    def _column(spec: FieldDef, *, new_table: bool = False) -> str:
        if spec.computed is not None:
            return f'"{spec.name}" TEXT GENERATED ALWAYS AS ({spec.computed}) VIRTUAL'
        primary = " PRIMARY KEY" if spec.name == "Id" and new_table else ""
        return f'"{spec.name}" {_SQL_TYPES.get(spec.type, "TEXT")}{primary}'

    def reset(self) -> None:
        """Delete every record."""
        with self._lock:
            for obj in OBJECTS.values():
                self._conn.execute(f'DELETE FROM "{obj.name}"')
            self._conn.commit()
            self._counter = itertools.count(1)
            self._last_stamp = ""
            self._conn.execute('DELETE FROM "_Deleted"')
            self._conn.commit()

    # -- helpers -------------------------------------------------------------------------------

    @staticmethod
    def object(name: str) -> _Object:
        """The object definition, matched case-insensitively, or KeyError."""
        for obj_name, obj in OBJECTS.items():
            if obj_name.lower() == name.lower():
                return obj
        raise KeyError(name)

    def now(self) -> str:
        """A SystemModstamp for a write now; never earlier than the previous one."""
        stamp = format_datetime(datetime.now(UTC))
        if stamp < self._last_stamp:
            stamp = self._last_stamp
        self._last_stamp = stamp
        return stamp

    def new_id(self, obj: _Object) -> str:
        return make_id(obj.prefix, next(self._counter))

    def to_api(self, obj: _Object, names: Sequence[str], row: Sequence[Any]) -> dict[str, Any]:
        """A row as the REST API shows it (booleans as JSON booleans)."""
        out: dict[str, Any] = {}
        for name, value in zip(names, row, strict=True):
            out[name] = bool(value) if name in obj.booleans and value is not None else value
        return out

    def coerce(self, obj: _Object, values: Mapping[str, Any], *, from_csv: bool) -> dict[str, Any]:
        """Validate a write's field values and convert them to stored form.

        Raises:
            RecordError: unknown, read-only or ill-typed fields, bad emails, too-long text, a
                bad restricted picklist value, or a required field set to null.
        """
        out: dict[str, Any] = {}
        for key, value in values.items():
            spec = obj.by_lower.get(key.lower())
            if spec is None:
                raise RecordError(
                    "INVALID_FIELD", f"No such column '{key}' on sobject of type {obj.name}", [key]
                )
            if not spec.updateable:
                raise RecordError(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {spec.name}. Please check the security "
                    "settings of this field and verify that it is read/write for your profile "
                    "or permission set.",
                    [spec.name],
                )
            if from_csv:
                if value == "":
                    continue  # Bulk API: an empty cell leaves the field unchanged
                if value == "#N/A":
                    value = None
            elif value == "" and spec.type != "boolean":
                value = None  # Salesforce stores an empty text value as null
            out[spec.name] = self._typed(spec, value, from_csv)
        return out

    @staticmethod
    def _typed(spec: FieldDef, value: Any, from_csv: bool) -> Any:
        def wrong_type() -> RecordError:
            return RecordError(
                "INVALID_TYPE_ON_FIELD_IN_RECORD",
                f"{spec.label}: value not of required type: {value}",
                [spec.name],
            )

        if value is None:
            if spec.required or spec.default is not None:
                raise RecordError(
                    "REQUIRED_FIELD_MISSING",
                    f"Required fields are missing: [{spec.name}]",
                    [spec.name],
                )
            if spec.type == "boolean":
                raise wrong_type()  # a checkbox is never null
            return None
        if spec.type == "boolean":
            if from_csv and isinstance(value, str) and value.lower() in ("true", "false"):
                value = value.lower() == "true"
            if not isinstance(value, bool):
                raise wrong_type()
            return 1 if value else 0
        if spec.type in ("int", "double", "currency"):
            number: Any = value
            if from_csv and isinstance(value, str):
                try:
                    number = float(value) if spec.type != "int" else int(value)
                except ValueError:
                    raise wrong_type() from None
            if isinstance(number, bool) or not isinstance(number, int | float):
                raise wrong_type()
            if isinstance(number, float) and not math.isfinite(number):
                raise wrong_type()
            if spec.type == "int":
                if isinstance(number, float) and not number.is_integer():
                    raise wrong_type()
                return int(number)
            return float(number)
        if not isinstance(value, str):
            raise wrong_type()
        if spec.restricted and value not in spec.restricted:
            raise RecordError(
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"{spec.label}: bad value for restricted picklist field: {value}",
                [spec.name],
            )
        if spec.length and len(value) > spec.length:
            raise RecordError(
                "STRING_TOO_LONG",
                f"{spec.label}: data value too large: {value[:40]} (max length={spec.length})",
                [spec.name],
            )
        if spec.type == "email" and not _EMAIL_RE.match(value):
            raise RecordError(
                "INVALID_EMAIL_ADDRESS",
                f"{spec.label}: invalid email address: {value}",
                [spec.name],
            )
        return value

    def for_create(self, obj: _Object, values: Mapping[str, Any]) -> dict[str, Any]:
        """Already-coerced values of a new record with defaults applied and required fields checked.

        Raises:
            RecordError: REQUIRED_FIELD_MISSING naming every missing required field.
        """
        out = {**obj.defaults, **values}
        missing = [f.name for f in obj.required if out.get(f.name) in (None, "")]
        if missing:
            raise RecordError(
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(missing)}]",
                missing,
            )
        return out

    # -- reads ---------------------------------------------------------------------------------

    def run_query(self, query: Query) -> tuple[_Object, list[str], list[tuple[Any, ...]] | int]:
        """Execute a parsed query: (object, field names, rows) or the COUNT() number.

        Raises:
            SoqlError: unknown object (INVALID_TYPE) or field (INVALID_FIELD).
        """
        try:
            obj = self.object(query.object_name)
        except KeyError:
            raise SoqlError(
                "INVALID_TYPE",
                f"sObject type '{query.object_name}' is not supported. If you are attempting "
                "to use a custom object, be sure to append the '__c' after the entity name.",
            ) from None
        sql, params, names = compile_query(query, obj.by_lower, obj.name)
        with self._lock:
            cursor = self._conn.execute(sql, params)
            if query.count:
                return obj, [], int(cursor.fetchone()[0])
            return obj, names, cursor.fetchall()

    def get(self, obj: _Object, record_id: str) -> dict[str, Any] | None:
        with self._lock:
            cols = ", ".join(f'"{n}"' for n in obj.names)
            row = self._conn.execute(
                f'SELECT {cols} FROM "{obj.name}" WHERE "Id" = ?', (record_id,)
            ).fetchone()
        return None if row is None else self.to_api(obj, obj.names, row)

    def dump(self, obj: _Object) -> list[dict[str, Any]]:
        with self._lock:
            cols = ", ".join(f'"{n}"' for n in obj.names)
            rows = self._conn.execute(f'SELECT {cols} FROM "{obj.name}" ORDER BY "Id"').fetchall()
        return [self.to_api(obj, obj.names, row) for row in rows]

    def find_id_by(self, obj: _Object, field_name: str, value: Any) -> list[str]:
        with self._lock:
            rows = self._conn.execute(
                f'SELECT "Id" FROM "{obj.name}" WHERE "{field_name}" = ? COLLATE NOCASE',
                (value,),
            ).fetchall()
        return [r[0] for r in rows]

    # -- writes --------------------------------------------------------------------------------

    def insert(
        self, obj: _Object, records: Iterable[Mapping[str, Any]], *, raw: bool = False
    ) -> list[str]:
        """Insert records; returns their Ids.

        With `raw`, values are already in stored form (from `coerce`, seeding or the control
        surface, which may also set CreatedDate/SystemModstamp) and are not validated again.
        """
        ids: list[str] = []
        rows: list[tuple[Any, ...]] = []
        with self._lock:
            for record in records:
                values = (
                    dict(record)
                    if raw
                    else self.for_create(obj, self.coerce(obj, record, from_csv=False))
                )
                for name in obj.booleans:
                    if values.get(name) is None:
                        values[name] = 0  # checkboxes are never null in Salesforce
                record_id = values.get("Id") or self.new_id(obj)
                stamp = values.get("SystemModstamp") or self.now()
                values["Id"] = record_id
                values.setdefault("CreatedDate", stamp)
                values.setdefault("LastModifiedDate", stamp)
                values["SystemModstamp"] = stamp
                rows.append(tuple(values.get(n) for n in obj.stored))
                ids.append(record_id)
            marks = ", ".join("?" for _ in obj.stored)
            cols = ", ".join(f'"{n}"' for n in obj.stored)
            self._conn.executemany(f'INSERT INTO "{obj.name}" ({cols}) VALUES ({marks})', rows)
            self._conn.commit()
        return ids

    def update(self, obj: _Object, record_id: str, values: Mapping[str, Any]) -> None:
        """Apply already-coerced values to one record, bumping its modstamps.

        Raises:
            RecordError: ENTITY_IS_DELETED when there is no such record.
        """
        with self._lock:
            stamp = self.now()
            full = {**values, "LastModifiedDate": stamp, "SystemModstamp": stamp}
            sets = ", ".join(f'"{k}" = ?' for k in full)
            cur = self._conn.execute(
                f'UPDATE "{obj.name}" SET {sets} WHERE "Id" = ?', [*full.values(), record_id]
            )
            if cur.rowcount == 0:
                raise RecordError("ENTITY_IS_DELETED", "entity is deleted")

    def delete(self, obj: _Object, record_id: str, *, commit: bool = True) -> bool:
        """Delete one record; False when there was none. Deletions are logged (``deleted/``)."""
        with self._lock:
            cur = self._conn.execute(f'DELETE FROM "{obj.name}" WHERE "Id" = ?', (record_id,))
            if commit:
                self._conn.commit()
            if cur.rowcount > 0:
                self._conn.execute(
                    'INSERT INTO "_Deleted" VALUES (?, ?, ?)', (obj.name, record_id, self.now())
                )
            return cur.rowcount > 0

    def deleted_between(
        self, obj: _Object, start: str, end: str
    ) -> tuple[list[tuple[str, str]], str | None]:
        """((Id, deletedDate) deleted in [start, end], oldest first), and the earliest logged."""
        with self._lock:
            rows = self._conn.execute(
                'SELECT "Id", "DeletedDate" FROM "_Deleted" WHERE "Object" = ? '
                'AND "DeletedDate" >= ? AND "DeletedDate" <= ? ORDER BY "DeletedDate"',
                (obj.name, start, end),
            ).fetchall()
            first = self._conn.execute('SELECT MIN("DeletedDate") FROM "_Deleted"').fetchone()
        return [(r[0], r[1]) for r in rows], first[0]

    def updated_between(self, obj: _Object, start: str, end: str) -> list[str]:
        """Ids of records whose SystemModstamp is in [start, end], oldest first."""
        with self._lock:
            rows = self._conn.execute(
                f'SELECT "Id" FROM "{obj.name}" WHERE "SystemModstamp" >= ? '
                'AND "SystemModstamp" <= ? ORDER BY "SystemModstamp", "Id"',
                (start, end),
            ).fetchall()
        return [r[0] for r in rows]

    def commit(self) -> None:
        with self._lock:
            self._conn.commit()

    def rollback(self) -> None:
        with self._lock:
            self._conn.rollback()

    def seed_stamps(self, count: int) -> list[str]:
        """Distinct, increasing modstamps one second apart, ending an hour before now."""
        end = datetime.now(UTC) - timedelta(hours=1)
        start = end - timedelta(seconds=count)
        return [format_datetime(start + timedelta(seconds=i)) for i in range(count)]
