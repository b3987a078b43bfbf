"""Rules shared by the row-and-column sources (Google Sheets, CSV): headers, status columns, diffs.

Header rule (the same for every tabular source):

* Surrounding spaces are trimmed.
* A blank header cell is named after its column letter, as a spreadsheet shows it:
  ``"Column C"`` for the third column.
* A repeated header (compared ignoring case and surrounding spaces) keeps its first occurrence
  as is; later ones become ``"Name (2)"``, ``"Name (3)"``, ... A mapping may use either form.

Write-back rule (the same for every tabular sink): `plan_row` compares what a row holds with
the status an update brings, applies `connectors.leads.advance` so a status never moves
backwards, and returns only the cells that differ.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from connectors.activities import Activity, ActivityResult, LoggedActivity
from connectors.leads import (
    FieldMapping,
    LeadStatus,
    MappingError,
    StatusUpdate,
    WriteFailure,
    WriteResult,
    advance,
    normalize_email,
    parse_status,
)

__all__ = [
    "DEFAULT_MAPPING",
    "FLAG_FALSE",
    "FLAG_TRUE",
    "NoHeaderError",
    "ReplyColumns",
    "RowPlan",
    "StatusColumns",
    "UpdateIndex",
    "column_letter",
    "effective_mapping",
    "email_column",
    "find_column",
    "format_reply_time",
    "latest_replies",
    "normalize_headers",
    "plan_reply",
    "plan_row",
]

FLAG_TRUE = "TRUE"
FLAG_FALSE = "FALSE"


DEFAULT_MAPPING = FieldMapping()


def effective_mapping(mapping: FieldMapping | None, header: Sequence[str]) -> FieldMapping:
    """The mapping to resolve against `header`: `mapping` as given, or the default one.

    The default names no column: the email column and the optional first name, last name and
    company columns are recognised from common export headers (`FieldMapping.resolve`). A
    mapping given explicitly keeps that recognition for every standard field it leaves out,
    and each column it names must exist.
    """
    del header
    return mapping or DEFAULT_MAPPING


def email_column(header: Sequence[str], mapping: FieldMapping | None, *, source: str) -> int:
    """0-based index of the column the source reads emails from: the sync's match key.

    The status sinks match rows on it by default, so the sync and the write-back of one store
    always agree on which column identifies a lead.
    """
    resolved = effective_mapping(mapping, header).resolve(header, source=source)
    return list(header).index(resolved.columns["email"])


class NoHeaderError(ValueError):
    """The source is empty or its header row is blank, so its columns cannot be known."""


def column_letter(index: int) -> str:
    """Spreadsheet column letters for a 0-based column index: 0 -> A, 25 -> Z, 26 -> AA."""
    if index < 0:
        raise ValueError(f"column index must be >= 0, got {index}")
    letters = ""
    n = index + 1
    while n:
        n, rem = divmod(n - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def normalize_headers(cells: Sequence[object]) -> list[str]:
    """Header names for a raw header row, following the module's header rule.

    Args:
        cells: The header row's cells as read (strings, numbers or None).

    Returns:
        One unique, non-blank name per cell, in order.
    """
    names: list[str] = []
    taken: set[str] = set()
    for index, cell in enumerate(cells):
        base = "" if cell is None else str(cell).strip()
        if not base:
            base = f"Column {column_letter(index)}"
        name = base
        n = 1
        while name.casefold() in taken:
            n += 1
            name = f"{base} ({n})"
        taken.add(name.casefold())
        names.append(name)
    return names


def find_column(header: Sequence[str], name: str, *, source: str) -> int:
    """0-based index of `name` in `header`: exact match first, then ignoring case and spaces.

    Raises:
        MappingError: `name` is not a column, naming it and listing the available ones.
    """
    try:
        return header.index(name)
    except ValueError:
        pass
    folded = name.strip().casefold()
    for index, column in enumerate(header):
        if column.strip().casefold() == folded:
            return index
    shown = ", ".join(repr(h) for h in list(header)[:30]) or "none"
    raise MappingError(f"{source} has no column {name!r}. Available: {shown}")


@dataclass(frozen=True, slots=True)
class StatusColumns:
    """The columns a status write-back fills; a flag column set to None is not written.

    Flags are ``TRUE``/``FALSE`` text derived from the status, and like statuses they only move
    forward: a flag that reads ``TRUE`` is never set back to ``FALSE`` (a lead that replied and
    later unsubscribed keeps ``Replied = TRUE``). Missing columns are added to the header.

    Attributes:
        status: Column holding the ColdSend status (``SENT``, ``REPLIED``, ...).
        opened: TRUE once the lead opened (OPENED or REPLIED).
        replied: TRUE once the lead replied.
        unsubscribed: TRUE once the lead unsubscribed.
        bounced: TRUE once an email to the lead bounced.
    """

    status: str = "ColdSend Status"
    opened: str | None = "ColdSend Opened"
    replied: str | None = "ColdSend Replied"
    unsubscribed: str | None = "ColdSend Unsubscribed"
    bounced: str | None = "ColdSend Bounced"

    def __post_init__(self) -> None:
        names = [n for n in self.names() if n is not None]
        if not self.status.strip():
            raise ValueError("StatusColumns.status must name a column")
        folded = [n.strip().casefold() for n in names]
        if len(set(folded)) != len(folded):
            raise ValueError(f"StatusColumns names must differ: {names}")

    def names(self) -> list[str]:
        """The configured column names, status first, flags after (None ones left out)."""
        flags = [self.opened, self.replied, self.unsubscribed, self.bounced]
        return [self.status, *(f for f in flags if f is not None)]


_OPENED = frozenset({LeadStatus.OPENED, LeadStatus.REPLIED})


def _flags_for(status: LeadStatus) -> tuple[bool, bool, bool, bool]:
    return (
        status in _OPENED,
        status is LeadStatus.REPLIED,
        status is LeadStatus.UNSUBSCRIBED,
        status is LeadStatus.BOUNCED,
    )


# Tables built once and shared by every row (interned flag tuples, one-status tuples, values).
# Bench figure they hold up: "client CPU <= 15 us/lead (marginal) for write-back".
_FLAGS = {status: _flags_for(status) for status in LeadStatus}
_VALUE = {status: status.value for status in LeadStatus}  # no enum property lookup per row
_ONE: dict[LeadStatus, tuple[LeadStatus]] = {status: (status,) for status in LeadStatus}


class UpdateIndex:
    """Status updates grouped by the value a row is matched on (email or source id).

    Several updates for one key are folded with `advance` in arrival order, remembering how each
    should be counted once the row's current status is known.
    """

    def __init__(self, updates: Iterable[StatusUpdate], *, match_value: str) -> None:
        if match_value not in ("email", "source_id"):
            raise ValueError(f"match_value must be 'email' or 'source_id', got {match_value!r}")
        # Key -> its statuses in arrival order. A key with one update (nearly all) maps to a
        # shared one-status tuple, so the index holds no object per key.
        self.by_key: dict[str, Sequence[LeadStatus]] = {}
        self.received = 0
        self.unmatchable: list[str] = []
        by_email = match_value == "email"
        by_key = self.by_key
        received = 0
        for update in updates:
            received += 1
            if by_email:
                key, _ = normalize_email(update.email)
                raw = update.email
            else:
                key = (update.source_id or "").strip() or None
                raw = update.email or "(no source id)"
            if key is None:
                self.unmatchable.append(raw)
                continue
            status = update.status
            held = by_key.get(key)
            if held is None:
                by_key[key] = _ONE.get(status) or (status,)
            elif isinstance(held, list):
                held.append(status)
            else:
                by_key[key] = [*held, status]
        self.received = received
        self.by_email = by_email

    def new_result(self) -> WriteResult:
        """A `WriteResult` already holding the updates no row can match.

        Without a usable email that is a failure; without a record key the lead came from
        another store (a CRM, another sheet), so it is simply not in this one.
        """
        result = WriteResult(received=self.received)
        if self.by_email:
            result.failures.extend(
                WriteFailure(key=k, reason="invalid email") for k in self.unmatchable
            )
        else:
            result.not_found.extend(self.unmatchable)
        return result

    def key_of(self, cell: object) -> str | None:
        """The lookup key for a row's match cell, or None when it cannot match anything."""
        if cell is None:
            return None
        if self.by_email:
            # A cell already holding a normalised key is its own key (normalising is
            # idempotent), so the common case skips the email rules.
            if isinstance(cell, str) and cell in self.by_key:
                return cell
            return normalize_email(cell)[0]
        return str(cell).strip() or None


@dataclass(slots=True)
class RowPlan:
    """Cells to change on one row: (0-based column index, new text)."""

    changes: list[tuple[int, str]]


def plan_row(
    row: Sequence[object],
    statuses: Sequence[LeadStatus],
    *,
    status_col: int,
    flag_cols: tuple[int | None, int | None, int | None, int | None],
    result: WriteResult,
    count: bool,
) -> list[tuple[int, str]]:
    """Cells that must change on `row` after applying `statuses` in order, never backwards.

    Args:
        row: The row's current cells (may be shorter than the header).
        statuses: Statuses arriving for this row's key, in arrival order.
        status_col: Index of the status column.
        flag_cols: Indexes of the opened, replied, unsubscribed, bounced columns (None = off).
        result: Counters to add to (written / unchanged / held_back), once per status.
        count: False when the same key already matched an earlier row (counted there).

    Returns:
        (column index, new text) pairs; empty when the row already holds everything.
    """
    width = len(row)
    current_text = row[status_col] if status_col < width else None
    current = parse_status(current_text)
    held = current
    for status in statuses:
        nxt = advance(held, status)
        if count:
            if nxt == held and status != held:
                result.held_back += 1
            elif nxt == held:
                result.unchanged += 1
            else:
                result.written += 1
        held = nxt
    changes: list[tuple[int, str]] = []
    if held is None:  # pragma: no cover - statuses is never empty
        return changes
    # A cell already naming the status ("replied ", "Replied") is left as the person wrote it.
    if current is not held:
        changes.append((status_col, _VALUE[held]))
    for col, flag in zip(flag_cols, _FLAGS[held], strict=True):
        if col is None:
            continue
        cell = row[col] if col < width else None
        text = "" if cell is None else str(cell).strip().upper()
        # Flags only move forward: TRUE stays TRUE whatever the status says now.
        want = FLAG_TRUE if (flag or text == FLAG_TRUE) else FLAG_FALSE
        if text != want:
            changes.append((col, want))
    return changes


# ---------------------------------------------------------------------------------------------
# Replies: "Last reply" and "Last reply at" columns
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReplyColumns:
    """The columns a row's newest reply goes to (added to the header when missing).

    Attributes:
        text: The reply's text (neutralised against formulas by each sink's own means).
        at: When it was received, ISO 8601 UTC (``2026-01-02T10:00:00Z``). It is also the
            row's memory: a reply no newer than this cell is already shown and not written.
    """

    text: str = "Last reply"
    at: str = "Last reply at"

    def __post_init__(self) -> None:
        if not self.text.strip() or not self.at.strip():
            raise ValueError("ReplyColumns names must not be blank")
        if self.text.strip().casefold() == self.at.strip().casefold():
            raise ValueError(f"ReplyColumns names must differ: {self.text!r}")

    def names(self) -> list[str]:
        return [self.text, self.at]


def format_reply_time(at: datetime) -> str:
    """A reply time as the "Last reply at" cell shows it: UTC, seconds, ``Z``."""
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cell_time(cell: object) -> datetime | None:
    if not isinstance(cell, str) or not cell.strip():
        return None
    try:
        value = datetime.fromisoformat(cell.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def latest_replies(
    activities: Sequence[Activity], *, match_value: str
) -> tuple[dict[str, Activity], ActivityResult]:
    """Each row key's newest reply, and a result already holding what no row will show.

    Sends and replies older than another one for the same key are `skipped` (the columns show
    the newest reply only); an activity without a key to match (no email, no record id: the
    lead came from another store) is in `no_record`.
    """
    by_email = match_value == "email"
    result = ActivityResult(received=len(activities))
    latest: dict[str, Activity] = {}
    for activity in activities:
        if activity.kind != "reply":
            result.skipped.append(LoggedActivity(activity.key, activity.email))
            continue
        if by_email:
            key = normalize_email(activity.email)[0]
        else:
            key = (activity.source_id or "").strip() or None
        if key is None:
            result.no_record.append(activity)
            continue
        held = latest.get(key)
        if held is None or (activity.at, activity.key) > (held.at, held.key):
            if held is not None:
                result.skipped.append(LoggedActivity(held.key, key))
            latest[key] = activity
        else:
            result.skipped.append(LoggedActivity(activity.key, key))
    return latest, result


def plan_reply(
    row: Sequence[object], reply: Activity, *, text_col: int, at_col: int
) -> list[tuple[int, str]]:
    """Cells to change so `row` shows `reply`; empty when it shows it or a newer one already.

    The text is returned as is: each sink neutralises it its own way (RAW writes for Sheets,
    `neutralize_cell` for CSV files).
    """
    stamp = format_reply_time(reply.at)
    shown = _cell_time(row[at_col]) if at_col < len(row) else None
    new = _cell_time(stamp)
    if shown is not None and new is not None and shown >= new:
        return []
    return [(text_col, reply.text), (at_col, stamp)]
