"""Streaming reader of ColdSend's lead export (GET /campaigns/{id}/leads/export, text/csv).

The export is one call for every lead of a campaign, so it is the cheap way to learn each
email's status (design principle 5). Rows are parsed as the bytes arrive; memory stays at one
network chunk however many leads the campaign has.
"""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any

import httpx

from connectors.coldsend.errors import (
    APIConnectionError,
    APITimeoutError,
    ExportFormatError,
    RequestInfo,
)
from connectors.leads import LeadStatus

__all__ = ["EXPORT_COLUMNS", "ExportRow", "ExportStream", "parse_export"]

EXPORT_COLUMNS = (
    "email",
    "first_name",
    "last_name",
    "company",
    "status",
    "custom_fields",
    "created_at",
)

_STATUS = {s.value: s for s in LeadStatus}


def _custom_fields(text: str) -> Any:
    """The custom_fields column decoded.

    Fast path for what the export holds for nearly every lead, one string value without
    escapes (``{"crm_record_id":"00Q..."}``): with four quotes, no backslash and only printable
    characters, the text between the quotes is exactly what JSON decodes. Anything else goes
    to json.loads.
    """
    if text[:2] == '{"' and text[-2:] == '"}' and text.count('"') == 4 and "\\" not in text:
        key, sep, value = text[2:-2].partition('":"')
        if not sep:
            key, sep, value = text[2:-2].partition('": "')
        if sep and key.isprintable() and value.isprintable():
            return {key: value}
    return json.loads(text)


@dataclass(slots=True)
class ExportRow:
    """One lead of the export.

    Attributes:
        email: The address as ColdSend stores it.
        first_name / last_name / company: Text, possibly empty.
        status: The lead's status.
        custom_fields: Decoded from the JSON column.
        created_at: When the lead was added, None when the column is empty.
    """

    email: str
    first_name: str
    last_name: str
    company: str
    status: LeadStatus
    custom_fields: dict[str, Any]
    created_at: datetime | None


def _lines(chunks: Iterable[str]) -> Iterator[str]:
    # csv.reader needs each line with its terminator to keep newlines inside quoted fields.
    # Only "\n" splits: str.splitlines would also split on \x1c, \u2028 and friends, which may
    # legitimately sit inside a field. Lines are made a chunk at a time (a list comprehension
    # costs a fraction of a generator step per line).
    pending = ""
    for chunk in chunks:
        if not chunk:
            continue
        parts = (pending + chunk).split("\n")
        pending = parts.pop()
        yield from [part + "\n" for part in parts]
    if pending:
        yield pending


def _decode(chunks: Iterable[bytes]) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8-sig")("strict")
    try:
        for chunk in chunks:
            yield decoder.decode(chunk)
        yield decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise ExportFormatError(f"lead export is not valid UTF-8: {exc.reason}") from None


def parse_export(chunks: Iterable[bytes]) -> Iterator[ExportRow]:
    """Parse export CSV bytes, in chunks as they arrive, into `ExportRow` values.

    Columns are found by header name, so extra or reordered columns are tolerated; ``email``
    and ``status`` are required.

    Raises:
        ExportFormatError: A required column is missing, or a row is malformed (named by
            its 1-based data row number).
    """
    reader = csv.reader(_lines(_decode(chunks)))
    header = next(reader, None)
    if header is None:
        return
    index = {name.strip().lower(): i for i, name in enumerate(header)}
    missing = [c for c in ("email", "status") if c not in index]
    if missing:
        raise ExportFormatError(
            f"lead export has no {', '.join(missing)} column; header is {header[:20]}"
        )
    i_email, i_status = index["email"], index["status"]
    i_first, i_last, i_company, i_custom, i_created = (
        index.get(c, -1)
        for c in ("first_name", "last_name", "company", "custom_fields", "created_at")
    )
    status_of = _STATUS.get
    loads = _custom_fields
    fromiso = datetime.fromisoformat
    for row_number, row in enumerate(reader, start=1):
        if not row:
            continue
        try:
            status = status_of(row[i_status].strip().upper())
            if status is None:
                raise ExportFormatError(f"unknown lead status {row[i_status]!r}")
            raw_custom = row[i_custom] if i_custom >= 0 else ""
            custom = loads(raw_custom) if raw_custom and raw_custom != "{}" else {}
            if not isinstance(custom, dict):
                raise ExportFormatError("custom_fields is not a JSON object")
            raw_created = row[i_created] if i_created >= 0 else ""
            yield ExportRow(
                row[i_email],
                row[i_first] if i_first >= 0 else "",
                row[i_last] if i_last >= 0 else "",
                row[i_company] if i_company >= 0 else "",
                status,
                custom,
                fromiso(raw_created) if raw_created else None,
            )
        except (IndexError, ValueError, ExportFormatError) as exc:
            why = (
                f"has {len(row)} columns, the header {len(header)}"
                if isinstance(exc, IndexError)
                else str(exc)
            )
            raise ExportFormatError(f"lead export row {row_number}: {why}") from None


class ExportStream:
    """The rows of one lead export, read while they arrive.

    Use it as a context manager (the request is made on entry, so a missing campaign raises
    there) or just iterate it; either way the connection is released at the end, on error and
    on leaving the ``with`` block early.

    Example:
        ```python
        with client.export_leads(campaign_id) as rows:
            statuses = {row.email: row.status for row in rows}
        ```

    Attributes:
        rows_read: Rows yielded so far.
    """

    def __init__(
        self, open_response: Callable[[], httpx.Response], *, request: RequestInfo
    ) -> None:
        self._open = open_response
        self._request = request
        self._response: httpx.Response | None = None
        self._started = False
        self._closed = False
        self.rows_read = 0

    def __repr__(self) -> str:
        return f"<ExportStream {self._request} rows_read={self.rows_read}>"

    def __enter__(self) -> ExportStream:
        self._ensure_open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _ensure_open(self) -> httpx.Response:
        if self._closed:
            raise RuntimeError("this export stream is closed; call export_leads() again")
        if self._response is None:
            self._response = self._open()
        return self._response

    def close(self) -> None:
        """Release the connection (idempotent)."""
        self._closed = True
        if self._response is not None:
            self._response.close()
            self._response = None

    def __iter__(self) -> Iterator[ExportRow]:
        if self._started:
            raise RuntimeError("an export stream can be iterated once; call export_leads() again")
        self._started = True
        response = self._ensure_open()
        try:
            for row in parse_export(response.iter_bytes()):
                self.rows_read += 1
                yield row
        except httpx.TransportError as exc:
            # Rows already yielded cannot be taken back, so this is not retried here; the caller
            # starts the export again (it is one request).
            cls = APITimeoutError if isinstance(exc, httpx.TimeoutException) else APIConnectionError
            raise cls(
                f"lead export broke after {self.rows_read} rows ({type(exc).__name__}) "
                f"from {self._request}",
                request=self._request,
            ) from exc
        finally:
            self.close()
