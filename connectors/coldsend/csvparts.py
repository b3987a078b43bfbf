"""Split a stream of leads into ColdSend upload files (at most 10,000 rows and 50 MB each).

Parts are built while the leads are iterated, so memory holds one part at most, however many
leads the source yields (design principle 3). Each part remembers which caller row each of its
data rows came from, so the row errors of an upload job can be reported against the source.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import NamedTuple

from connectors.coldsend.errors import InvalidRequestError, UploadTooLarge
from connectors.coldsend.models import MAX_UPLOAD_BYTES, MAX_UPLOAD_ROWS
from connectors.leads import STANDARD_FIELDS, Lead

__all__ = ["CsvPart", "RowRef", "iter_csv_parts"]

# Rows are encoded this many at a time: big enough for csv.writer.writerows to dominate the
# cost, small enough that the rare byte-limit check row by row stays cheap.
_BATCH = 512
# Rows are CSV-encoded 512 at a time (one writer call per batch, not per row).
# Bench figure it holds up: "client CPU <= 15 us/lead (marginal) for sync".


class RowRef(NamedTuple):
    """The caller's identity of one data row of a part.

    A named tuple, not a class instance: a part keeps 10,000 of them alive, and tuples of
    strings and ints drop out of the garbage collector's tracking, so they do not make every
    full collection of a large process (a Prefect worker's) slower.

    Attributes:
        email: The lead's email.
        row_number: The lead's row in its source, if the source has rows.
        source_id: The lead's record id in its source, if any.
    """

    email: str
    row_number: int | None
    source_id: str | None


@dataclass(slots=True)
class CsvPart:
    """One upload file.

    Attributes:
        index: 0-based position of the part in the stream.
        data: The CSV file, UTF-8, header row first.
        row_count: Data rows in `data` (header excluded).
        rows: ``rows[i]`` identifies data row ``i + 1`` of the file (upload jobs number rows
            from 1).
        mapping: Lead field -> CSV header, to send along with the file.
    """

    index: int
    data: bytes
    row_count: int
    rows: list[RowRef] = field(repr=False)
    mapping: dict[str, str]

    def __repr__(self) -> str:
        return f"CsvPart(index={self.index}, row_count={self.row_count}, bytes={len(self.data)})"


def _header(
    custom_fields: Sequence[str], source_id_column: str | None, extra: Sequence[str] = ()
) -> list[str]:
    header = list(STANDARD_FIELDS)
    for name in [*custom_fields, *extra]:
        if not isinstance(name, str) or not name.strip():
            raise InvalidRequestError(f"custom field names must be non-empty strings, got {name!r}")
        header.append(name)
    if source_id_column is not None:
        if not source_id_column.strip():
            raise InvalidRequestError("source_id_column must not be blank (None leaves it out)")
        header.append(source_id_column)
    seen: set[str] = set()
    for name in header:
        # The API strips a leading "custom_" from custom field names, so these would collide too.
        key = name.strip().lower().removeprefix("custom_")
        if key in seen:
            raise InvalidRequestError(
                f"CSV column {name!r} appears twice or clashes with another column"
            )
        seen.add(key)
    return header


def _encode(rows: list[list[str]]) -> bytes:
    buf = io.StringIO()
    # "\r\n" (RFC 4180), not "\n": the writer quotes a field only when it holds a character
    # of the line terminator, so with "\n" a lone "\r" in a value would split the row.
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    return buf.getvalue().encode()


def iter_csv_parts(
    leads: Iterable[Lead],
    *,
    custom_fields: Sequence[str] = (),
    source_id_column: str | None = "crm_record_id",
    max_rows: int = MAX_UPLOAD_ROWS,
    max_bytes: int = MAX_UPLOAD_BYTES,
    extra_columns: Mapping[str, str] | None = None,
) -> Iterator[CsvPart]:
    """Build upload files from `leads` as they are iterated.

    The header is ``email,first_name,last_name,company,<custom_fields...>,<extra_columns...>,
    <source_id_column>``.
    The custom columns are fixed up front (a file has one header): a lead's custom field not
    named in `custom_fields` is not uploaded, a named one the lead lacks is left empty. The
    source id column is uploaded like any unmapped column, so ColdSend stores the CRM id as a
    custom field of the lead.

    Args:
        leads: The leads, e.g. the `Lead` values a `LeadSource` yields.
        custom_fields: Custom field names to upload, in column order.
        source_id_column: Column for `Lead.source_id`; None leaves it out.
        max_rows: Data rows per part (the API allows 10,000).
        max_bytes: Bytes per part, header included (the API allows 50 MB).
        extra_columns: Custom fields with the same value on every row (after the custom
            columns), e.g. which lead store a lead came from.

    Yields:
        `CsvPart` values, each within both limits; no empty part.

    Raises:
        InvalidRequestError: Column names clash or limits are out of range.
        UploadTooLarge: One lead's row alone exceeds `max_bytes` (named by row and email).
    """
    if not 1 <= max_rows <= MAX_UPLOAD_ROWS:
        raise InvalidRequestError(f"max_rows must be from 1 to {MAX_UPLOAD_ROWS}, got {max_rows}")
    if not 1 <= max_bytes <= MAX_UPLOAD_BYTES:
        raise InvalidRequestError(
            f"max_bytes must be from 1 to {MAX_UPLOAD_BYTES}, got {max_bytes}"
        )
    extra = dict(extra_columns or {})
    header = _header(custom_fields, source_id_column, list(extra))
    header_bytes = _encode([header])
    if len(header_bytes) >= max_bytes:
        raise UploadTooLarge(f"the CSV header alone is {len(header_bytes)} bytes, over max_bytes")
    mapping = {name: name for name in header[: 4 + len(custom_fields)]}
    mapping.update({name: name for name in extra})
    custom = tuple(custom_fields)
    constants = list(extra.values())
    with_id = source_id_column is not None

    chunks: list[bytes] = [header_bytes]
    refs: list[RowRef] = []
    size = len(header_bytes)
    index = 0

    def flush() -> CsvPart:
        nonlocal chunks, refs, size, index
        part = CsvPart(index, b"".join(chunks), len(refs), refs, dict(mapping))
        chunks, refs, size = [header_bytes], [], len(header_bytes)
        index += 1
        return part

    iterator = iter(leads)
    while True:
        # Never take more leads than the current part still has room for, so the row limit
        # holds without re-splitting a batch.
        batch = list(islice(iterator, min(_BATCH, max_rows - len(refs))))
        if not batch:
            break
        rows: list[list[str]] = []
        batch_refs: list[RowRef] = []
        for lead in batch:
            row = [lead.email, lead.first_name, lead.last_name, lead.company]
            if custom:
                values = lead.custom_fields
                row.extend([values.get(name, "") for name in custom])
            if constants:
                row.extend(constants)
            if with_id:
                row.append(lead.source_id or "")
            rows.append(row)
            batch_refs.append(RowRef(lead.email, lead.row_number, lead.source_id))
        encoded = _encode(rows)
        if size + len(encoded) <= max_bytes:
            chunks.append(encoded)
            refs.extend(batch_refs)
            size += len(encoded)
        else:
            # The byte limit falls inside this batch: place its rows one by one.
            for row, ref in zip(rows, batch_refs, strict=True):
                one = _encode([row])
                if len(header_bytes) + len(one) > max_bytes:
                    where = f"row {ref.row_number}" if ref.row_number is not None else "a lead"
                    if ref.source_id:
                        where += f" (record {ref.source_id})"
                    raise UploadTooLarge(
                        f"{where} with email {ref.email!r} is {len(one):,} bytes as CSV; with "
                        f"the header it cannot fit in an upload file of {max_bytes:,} bytes"
                    )
                if size + len(one) > max_bytes:
                    yield flush()
                chunks.append(one)
                refs.append(ref)
                size += len(one)
        if len(refs) >= max_rows:
            yield flush()
    if refs:
        yield flush()
