"""Bulk API 2.0 jobs for the Salesforce emulator: ingest (insert, update, upsert, delete) and query.

Jobs run synchronously when their data is complete (UploadComplete for ingest, creation for
query), so a client's first status poll already sees JobComplete.
"""

from __future__ import annotations

import base64
import csv
import io
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandbox.salesforce.db import Database, RecordError, make_id
from sandbox.salesforce.soql import SoqlError, format_datetime, parse

__all__ = ["IngestJob", "JobError", "QueryJob", "decode_locator", "encode_locator"]

_job_numbers = itertools.count(1)


class JobError(Exception):
    """A job-level request error (HTTP 400/404 with errorCode)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _now() -> str:
    return format_datetime(datetime.now(UTC))


def encode_locator(offset: int) -> str:
    """An opaque-looking Sforce-Locator for a result offset."""
    return base64.urlsafe_b64encode(str(offset).encode()).decode().rstrip("=")


def decode_locator(locator: str) -> int:
    """The offset behind `encode_locator`, or JobError for a locator we never issued."""
    try:
        padded = locator + "=" * (-len(locator) % 4)
        return int(base64.urlsafe_b64decode(padded.encode()).decode())
    except (ValueError, UnicodeDecodeError):
        raise JobError(400, "INVALIDLOCATOR", f"Invalid locator: {locator}") from None


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _write_csv(header: list[str], rows: list[list[str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


@dataclass
class IngestJob:
    """A Bulk 2.0 ingest job and its per-record outcome."""

    object_name: str
    operation: str
    external_id: str | None = None
    id: str = field(default_factory=lambda: make_id("750", next(_job_numbers)))
    state: str = "Open"
    created: str = field(default_factory=_now)
    data: list[str] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    successes: list[list[str]] = field(default_factory=list)
    failures: list[list[str]] = field(default_factory=list)
    error_message: str | None = None

    def info(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "operation": self.operation,
            "object": self.object_name,
            "createdDate": self.created,
            "systemModstamp": self.created,
            "state": self.state,
            "externalIdFieldName": self.external_id,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": 59.0,
            "jobType": "V2Ingest",
            "lineEnding": "LF",
            "columnDelimiter": "COMMA",
            "numberRecordsProcessed": len(self.successes) + len(self.failures),
            "numberRecordsFailed": len(self.failures),
            "retries": 0,
            "totalProcessingTime": 0,
            "errorMessage": self.error_message,
        }

    def upload(self, body: str) -> None:
        if self.state != "Open":
            raise JobError(409, "INVALIDJOBSTATE", f"Job {self.id} is not Open: {self.state}")
        self.data.append(body)

    def run(self, db: Database) -> None:
        """Process every uploaded row; record-level errors go to failedResults."""
        obj = db.object(self.object_name)
        rows: list[list[str]] = []
        for chunk in self.data:
            reader = csv.reader(io.StringIO(chunk))
            header = next(reader, None)
            if header is None:
                continue
            if self.header and header != self.header:
                self.state, self.error_message = "Failed", "batches have different headers"
                return
            self.header = header
            rows.extend(reader)
        key = "Id" if self.operation == "update" else (self.external_id or "Id")
        for row in rows:
            values = dict(zip(self.header, row, strict=False))
            try:
                record_id, created = self._apply(db, obj, key, values)
            except RecordError as exc:
                err = f"{exc.code}:{exc.message}:{'--'.join(exc.fields)}"
                self.failures.append([values.get("Id", ""), err, *row])
            else:
                self.successes.append([record_id, "true" if created else "false", *row])
        db.commit()
        self.state = "JobComplete"

    def _apply(
        self, db: Database, obj: Any, key: str, values: Mapping[str, str]
    ) -> tuple[str, bool]:
        key_value = values.get(key, "")
        fields = {k: v for k, v in values.items() if k != "Id" and k != key}
        if self.operation in ("delete", "hardDelete"):
            if set(values) != {"Id"}:
                raise RecordError("INVALIDBATCH", "a delete job's CSV must have only an Id column")
            if not key_value:
                raise RecordError("MISSING_ARGUMENT", "Id not specified in a delete call", ["Id"])
            if not db.delete(obj, key_value, commit=False):
                raise RecordError("ENTITY_IS_DELETED", "entity is deleted", [])
            return key_value, False
        if self.operation == "insert":
            return db.insert(obj, [db.for_create(obj, self._coerce(db, obj, fields))], raw=True)[
                0
            ], True
        if not key_value:
            if self.operation == "upsert" and key == "Id":
                coerced = db.for_create(obj, self._coerce(db, obj, fields))
                return db.insert(obj, [coerced], raw=True)[0], True
            raise RecordError("MISSING_ARGUMENT", f"{key} not specified in an update call", [key])
        if key == "Id":
            ids = [key_value] if db.get(obj, key_value) else []
        else:
            spec = obj.by_lower.get(key.lower())
            if spec is None:
                raise RecordError("INVALID_FIELD", f"No such column '{key}'", [key])
            ids = db.find_id_by(obj, spec.name, key_value)
            fields = {**fields, key: key_value}
        if len(ids) > 1:
            raise RecordError("DUPLICATE_EXTERNAL_ID", f"{key} matches {len(ids)} records", [key])
        if not ids:
            if self.operation == "update" or key == "Id":
                raise RecordError("ENTITY_IS_DELETED", "entity is deleted", [])
            return db.insert(obj, [db.for_create(obj, self._coerce(db, obj, fields))], raw=True)[
                0
            ], True
        db.update(obj, ids[0], db.coerce(obj, fields, from_csv=True))
        return ids[0], False

    @staticmethod
    def _coerce(db: Database, obj: Any, fields: Mapping[str, str]) -> dict[str, Any]:
        # On insert an empty cell is simply no value (required fields then report missing).
        return db.coerce(obj, {k: v for k, v in fields.items() if v != ""}, from_csv=True)

    def results_csv(self, kind: str) -> str:
        if kind == "successfulResults":
            return _write_csv(["sf__Id", "sf__Created", *self.header], self.successes)
        if kind == "failedResults":
            return _write_csv(["sf__Id", "sf__Error", *self.header], self.failures)
        return _write_csv(self.header, [])


@dataclass
class QueryJob:
    """A Bulk 2.0 query job; rows are materialised (as CSV cells) when it is created."""

    query: str
    operation: str = "query"
    id: str = field(default_factory=lambda: make_id("750", next(_job_numbers)))
    state: str = "UploadComplete"
    created: str = field(default_factory=_now)
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    object_name: str = ""

    def run(self, db: Database) -> None:
        """Parse and run the query now (errors surface at creation, like Salesforce)."""
        try:
            parsed = parse(self.query)
            if parsed.count:
                raise SoqlError("MALFORMED_QUERY", "COUNT() is not supported in Bulk API 2.0")
            obj, names, rows = db.run_query(parsed)
        except SoqlError as exc:
            raise JobError(400, exc.code, exc.message) from None
        assert isinstance(rows, list)
        self.object_name = obj.name
        self.header = names
        bools = [n in obj.booleans for n in names]
        self.rows = [
            [
                _csv_cell(bool(v) if b and v is not None else v)
                for v, b in zip(row, bools, strict=True)
            ]
            for row in rows
        ]
        self.state = "JobComplete"

    def info(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "operation": self.operation,
            "object": self.object_name,
            "createdDate": self.created,
            "systemModstamp": self.created,
            "state": self.state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": 59.0,
            "jobType": "V2Query",
            "lineEnding": "LF",
            "columnDelimiter": "COMMA",
            "numberRecordsProcessed": len(self.rows),
            "retries": 0,
            "totalProcessingTime": 0,
        }

    def page(self, locator: str | None, max_records: int) -> tuple[str, int, str]:
        """(CSV text, number of records, next locator or "null")."""
        start = decode_locator(locator) if locator else 0
        end = min(start + max_records, len(self.rows))
        text = _write_csv(self.header, self.rows[start:end])
        return text, end - start, encode_locator(end) if end < len(self.rows) else "null"
