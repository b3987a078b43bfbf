"""CSV lead uploads: parsing and checks at request time, then a paced background import job.

The request handler calls `parse_upload` (size, header, email column, row count: the 400s of
the contract), then `JobRunner.submit`, which imports the rows in a thread so polls are
answered while it runs. A job walks PENDING -> VALIDATING -> IN_PROGRESS -> COMPLETED|FAILED at
`rows_per_second`, committing one slice at a time so the counters a poll sees always add up.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import random
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from sandbox.coldsend.db import Store, dumps
from sandbox.coldsend.models import (
    MAX_UPLOAD_BYTES,
    MAX_UPLOAD_ROWS,
    STANDARD_LEAD_FIELDS,
    ApiError,
    JobsConfig,
    is_valid_email,
    utc_now,
)

logger = logging.getLogger(__name__)

# Header spellings recognised without a mapping, compared with case, spaces, "_" and "-" removed.
_ALIASES = {
    "email": ("email", "emailaddress", "mail"),
    "first_name": ("firstname", "first", "givenname"),
    "last_name": ("lastname", "last", "surname", "familyname"),
    "company": ("company", "companyname", "organization", "organisation", "account"),
}


def _squash(header: str) -> str:
    return "".join(ch for ch in header.lower() if ch not in " _-")


@dataclass(frozen=True, slots=True)
class ParsedUpload:
    """A checked CSV: data rows plus where each lead field comes from.

    `columns` holds the column index of email, first_name, last_name and company (-1 when
    absent); `custom` the (column index, custom field name) pairs.
    """

    rows: list[list[str]]
    columns: tuple[int, int, int, int]
    custom: tuple[tuple[int, str], ...]

    @property
    def total(self) -> int:
        """Number of data rows."""
        return len(self.rows)


def parse_upload(data: bytes, mapping: dict[str, str] | None) -> ParsedUpload:
    """Check and parse an uploaded CSV.

    Args:
        data: The file's bytes (UTF-8, a BOM is allowed).
        mapping: Lead field -> CSV header, as sent in the ``mapping`` form field.

    Returns:
        The parsed upload.

    Raises:
        ApiError: 400 when the file is too large, has too many rows, is not UTF-8 CSV, has no
            header or no email column, or the mapping names a column the file lacks.
    """
    if len(data) > MAX_UPLOAD_BYTES:
        raise ApiError(400, f"File too large: the limit is 50 MB ({MAX_UPLOAD_BYTES} bytes)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ApiError(400, f"CSV file is not valid UTF-8 (byte {exc.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    rows: list[list[str]] = []
    try:
        for record in reader:
            if not record:
                continue
            if header is None:
                header = [h.strip() for h in record]
                continue
            if len(rows) == MAX_UPLOAD_ROWS:
                raise ApiError(
                    400,
                    f"CSV has more than {MAX_UPLOAD_ROWS:,} data rows; split it into files of "
                    f"at most {MAX_UPLOAD_ROWS:,} rows",
                )
            rows.append(record)
    except csv.Error as exc:
        raise ApiError(400, f"Malformed CSV at line {reader.line_num}: {exc}") from None
    if header is None:
        raise ApiError(400, "CSV file is empty: expected a header row with an email column")
    columns, custom = _plan(header, mapping or {})
    return ParsedUpload(rows=rows, columns=columns, custom=custom)


def _plan(
    header: list[str], mapping: dict[str, str]
) -> tuple[tuple[int, int, int, int], tuple[tuple[int, str], ...]]:
    exact = {h: i for i, h in reversed(list(enumerate(header)))}
    loose = {h.lower(): i for i, h in reversed(list(enumerate(header)))}
    used: set[int] = set()
    standard = dict.fromkeys(STANDARD_LEAD_FIELDS, -1)
    custom: dict[str, int] = {}
    for field, column in mapping.items():
        index = exact.get(column.strip(), loose.get(column.strip().lower()))
        if index is None:
            raise ApiError(
                400,
                f"mapping: column {column[:100]!r} for field {field[:100]!r} is not in the CSV header",
            )
        used.add(index)
        if field in standard:
            standard[field] = index
        else:
            custom[field.removeprefix("custom_") or field] = index
    for field, aliases in _ALIASES.items():
        if standard[field] >= 0:
            continue
        for i, h in enumerate(header):
            if i not in used and _squash(h) in aliases:
                standard[field] = i
                used.add(i)
                break
    if standard["email"] < 0:
        raise ApiError(
            400,
            "CSV has no email column: name a column 'email' or map one with "
            'mapping={"email": "<column header>"}',
        )
    for i, h in enumerate(header):
        if i not in used and h and h not in custom:
            custom[h] = i
    columns = (
        standard["email"],
        standard["first_name"],
        standard["last_name"],
        standard["company"],
    )
    return columns, tuple((i, name) for name, i in custom.items())


_Outcome = tuple[int, str, str, str | None, str | None, str | None, dict[str, str]]


class JobRunner:
    """Runs upload jobs in background threads, at a configured speed, with seeded faults."""

    def __init__(self, store: Store, config: JobsConfig) -> None:
        self.store = store
        self._lock = threading.Lock()
        self.config = config
        self._generation = 0
        self._submitted = 0

    def configure(self, config: JobsConfig) -> None:
        """Settings for jobs submitted from now on."""
        with self._lock:
            self.config = config

    def reset(self, config: JobsConfig) -> None:
        """Abandon running jobs (their rows are wiped anyway) and restore `config`."""
        with self._lock:
            self._generation += 1
            self._submitted = 0
            self.config = config

    def submit(
        self, job_id: str, campaign_id: str, upload: ParsedUpload, duplicate_action: str
    ) -> threading.Thread:
        """Start importing `upload` into `campaign_id` under the already created job."""
        with self._lock:
            config, generation, number = self.config, self._generation, self._submitted
            self._submitted += 1
        # The fate of the n-th job after a reset depends only on the seed: reproducible faults.
        rng = random.Random(f"{config.seed}:{number}")
        draw, where = rng.random(), rng.random()
        fate = (
            "fail"
            if draw < config.fail_rate
            else "stall"
            if draw < config.fail_rate + config.stall_rate
            else "ok"
        )
        thread = threading.Thread(
            target=self._run,
            args=(job_id, campaign_id, upload, duplicate_action, config, generation, fate, where),
            name=f"coldsend-job-{job_id[:8]}",
            daemon=True,
        )
        thread.start()
        return thread

    def _alive(self, generation: int) -> bool:
        return generation == self._generation

    def _wait_until(self, deadline: float, generation: int) -> bool:
        while True:
            left = deadline - time.monotonic()
            if not self._alive(generation):
                return False
            if left <= 0:
                return True
            time.sleep(min(left, 0.05))

    def _set(self, job_id: str, **fields: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self.store.tx() as c:
            c.execute(f"UPDATE jobs SET {sets} WHERE job_id = ?", [*fields.values(), job_id])

    def _run(
        self,
        job_id: str,
        campaign_id: str,
        upload: ParsedUpload,
        duplicate_action: str,
        config: JobsConfig,
        generation: int,
        fate: str,
        where: float,
    ) -> None:
        try:
            self._process(
                job_id, campaign_id, upload, duplicate_action, config, generation, fate, where
            )
        except Exception:
            logger.exception("upload job %s crashed", job_id)
            self._set(
                job_id,
                status="FAILED",
                error_message="Internal error while processing the upload",
                completed_at=utc_now(),
            )

    def _process(
        self,
        job_id: str,
        campaign_id: str,
        upload: ParsedUpload,
        duplicate_action: str,
        config: JobsConfig,
        generation: int,
        fate: str,
        where: float,
    ) -> None:
        rps = config.rows_per_second
        total = upload.total
        start = time.monotonic()
        self._set(job_id, status="VALIDATING", started_at=utc_now())
        outcomes = _validate(upload)
        # Validation is paced at ten times the import speed so a slow job shows the state.
        if not self._wait_until(start + total / (rps * 10), generation):
            return
        self._set(job_id, status="IN_PROGRESS")
        start = time.monotonic()
        size = max(1, min(1000, int(rps / 20)))
        slices = range(0, total, size)
        stop_at = int(where * len(slices)) if fate != "ok" and slices else -1
        for index, first in enumerate(slices):
            if not self._alive(generation):
                return
            if index == stop_at:
                if fate == "fail":
                    self._set(
                        job_id,
                        status="FAILED",
                        error_message="Upload processing failed (simulated fault); rows "
                        "processed before the failure were imported",
                        completed_at=utc_now(),
                    )
                # A stalled job stays IN_PROGRESS for ever.
                return
            part = outcomes[first : first + size]
            if not self._apply(job_id, campaign_id, part, duplicate_action):
                return
            if not self._wait_until(start + (first + len(part)) / rps, generation):
                return
        self._set(job_id, status="COMPLETED", completed_at=utc_now())

    def _apply(
        self,
        job_id: str,
        campaign_id: str,
        part: list[_Outcome | tuple[int, str, str]],
        action: str,
    ) -> bool:
        """Import one slice in one transaction; False when the campaign is gone."""
        now = utc_now()
        errors: list[tuple[str, int, str, str]] = []
        duplicates = 0
        candidates: list[_Outcome] = []
        for outcome in part:
            if len(outcome) == 3:
                row, email, kind = outcome
                if kind == "duplicate":
                    duplicates += 1
                else:
                    errors.append((job_id, row, email, kind))
            else:
                candidates.append(outcome)
        with self.store.tx() as c:
            if not c.execute(
                "SELECT 1 FROM campaigns WHERE campaign_id = ?", (campaign_id,)
            ).fetchone():
                c.execute(
                    "UPDATE jobs SET status = 'FAILED', error_message = ?, completed_at = ? "
                    "WHERE job_id = ?",
                    ("Campaign was deleted during the upload", now, job_id),
                )
                return False
            existing: dict[str, tuple[str, str]] = {}
            norms = [o[2] for o in candidates]
            for at in range(0, len(norms), 500):
                chunk = norms[at : at + 500]
                marks = ",".join("?" * len(chunk))
                for norm, lead_id, custom in c.execute(
                    "SELECT email_norm, lead_id, custom_fields FROM leads WHERE campaign_id = ? "
                    f"AND email_norm IN ({marks})",
                    [campaign_id, *chunk],
                ):
                    existing[norm] = (lead_id, custom)
            inserts: list[tuple[Any, ...]] = []
            updates: list[tuple[Any, ...]] = []
            removals: list[tuple[str]] = []
            for _row, email, norm, first, last, company, custom in candidates:
                found = existing.get(norm)
                if found is not None:
                    if action == "skip":
                        duplicates += 1
                        continue
                    if action == "update":
                        merged = {**_loads(found[1]), **custom}
                        updates.append((first, last, company, dumps(merged), found[0]))
                        continue
                    removals.append((found[0],))
                inserts.append(
                    (
                        str(uuid.uuid4()),
                        campaign_id,
                        job_id,
                        email,
                        norm,
                        first,
                        last,
                        company,
                        dumps(custom),
                        now,
                    )
                )
            if removals:
                c.executemany("DELETE FROM leads WHERE lead_id = ?", removals)
            c.executemany(
                "INSERT INTO leads (lead_id, campaign_id, batch_id, email, email_norm, first_name, "
                "last_name, company, custom_fields, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                inserts,
            )
            if updates:
                c.executemany(
                    "UPDATE leads SET first_name = coalesce(?, first_name), "
                    "last_name = coalesce(?, last_name), company = coalesce(?, company), "
                    "custom_fields = ? WHERE lead_id = ?",
                    updates,
                )
            c.executemany("INSERT INTO job_errors VALUES (?, ?, ?, ?)", errors)
            c.execute(
                "UPDATE jobs SET processed_count = processed_count + ?, "
                "success_count = success_count + ?, duplicate_count = duplicate_count + ?, "
                "error_count = error_count + ? WHERE job_id = ?",
                (len(part), len(inserts) + len(updates), duplicates, len(errors), job_id),
            )
        return True


def _loads(text: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(text)
    return value


def _validate(upload: ParsedUpload) -> list[_Outcome | tuple[int, str, str]]:
    """Per row: a lead to import, or (row, email, "invalid email" | "duplicate")."""
    ei, fi, li, ci = upload.columns
    custom = upload.custom
    seen: set[str] = set()
    out: list[_Outcome | tuple[int, str, str]] = []
    append = out.append
    for number, record in enumerate(upload.rows, 1):
        width = len(record)
        email = record[ei].strip() if ei < width else ""
        norm = email.lower()
        if not is_valid_email(norm):
            append((number, email, "invalid email"))
            continue
        if norm in seen:
            append((number, email, "duplicate"))
            continue
        seen.add(norm)
        append(
            (
                number,
                email,
                norm,
                (record[fi].strip() or None) if 0 <= fi < width else None,
                (record[li].strip() or None) if 0 <= li < width else None,
                (record[ci].strip() or None) if 0 <= ci < width else None,
                {name: value for i, name in custom if i < width and (value := record[i].strip())},
            )
        )
    return out
